// AWQ as an export (Lin et al. 2023; the folding of llm-awq auto_scale.py apply_scale /
// AutoAWQ's scale_ln_fcs and scale_fc_fc): a linear's input columns are multiplied by s and
// 1/s is folded into the operation that makes its input, so the F32 model computes the same
// function and the scaled weights are then quantized by the plain export (round-to-nearest,
// the preset's types): the GGUF is an ordinary one llama.cpp runs. Per Llama layer:
// - attn_q, attn_k, attn_v read attn_norm's output: one s, searched over the three, 1/s
//   folded into attn_norm.weight;
// - ffn_gate, ffn_up read ffn_norm's output: one s, 1/s into ffn_norm.weight;
// - ffn_down reads silu(gate)·up: 1/s into the rows of ffn_up;
// - attn_output reads attention·V: 1/s into the rows of attn_v (and of qwen2's attn_v.bias),
//   only when n_head == n_head_kv (with grouped KV heads a V row feeds several heads'
//   columns: not scaled).
// phi3's fused tensors: attn_qkv is q/k/v's group (one s, into attn_norm) and attn_output's
// 1/s goes into its v rows; ffn_up (gate rows, then up rows) is gate/up's group (into
// ffn_norm) and ffn_down's 1/s goes into its up rows. qwen2: attn_v.bias takes v's row fold.
// Gemma: the MLP is scored by the family's own feedForward (GELU-tanh); its norms store w+1
// and multiply by it, so 1/s divides the stored weight as is.
// The search (awq.ts awqSearchBy, α on AWQ's grid) quantizes each linear as the file stores
// it (its rows already divided by a later linear's s: attn_output and ffn_down are searched
// first) with the round-to-nearest codec of the type the export plan gives it. The losses are
// llm-awq's (module2inspect): for q/k/v the attention block's output (self_attn; q and k act
// through the softmax: scored by their own output MSE instead, stories260K Q4_0's KL to F32
// went from RTN's 0.0927 to 0.0928), for gate/up the MLP's output, for attn_output and
// ffn_down their own output MSE.
// Inputs are collected once on the original model: folding leaves every layer's output
// unchanged, so later layers see the same inputs.
import type { ModelIndex } from '../formats/model.ts';
import { GGUF_VALUE_TYPE } from '../formats/gguf/constants.ts';
import { ggufEntry, type GgufMetadataEntry } from '../formats/gguf/metadata.ts';
import { type ExportPlan, type PrecomputedTensors } from '../export/plan.ts';
import { type ExportSource, type ExportSourceTensor, rowCount } from '../export/source.ts';
import { quantType, quantTypeByGgmlId } from '../quant/types.ts';
import { LlamaModel, matmulF32, type LlamaConfig, type Linear } from '../model/llama.ts';
import { assertMethodSupported } from '../model/families/support.ts';
import { familyModule } from '../model/families/family-registry.ts';
import { chunkTokens, collectInputs, defaultChunk, layerStages, openCalibrationModel, type CalibrationModel, type CalibrationProgress, type LayerInputs } from './activations.ts';
import { awqLoss, awqSearchBy, effectiveWeights, meanAbs, storedWeights, type AwqLinear } from './awq.ts';
import { gram } from './grid.ts';
import { BUILTIN_CALIBRATION_DATASET, CALIBRATION_STORY_TEXT } from './calibration-text.ts';

/** Header keys of an AWQ export. */
export const AWQ_KEYS = {
  dataset: 'quantize.awq.dataset',
  tensors: 'quantize.awq.tensors_count',
  chunks: 'quantize.awq.chunks_count',
  chunkSize: 'quantize.awq.chunk_size',
} as const;

export interface AwqExportOptions {
  /** The calibration text (default: the built-in stories). */
  text?: string;
  /** What quantize.awq.dataset says (default: the built-in text's name). */
  dataset?: string;
  chunk?: number;
  signal?: AbortSignal;
  onProgress?: (p: CalibrationProgress) => void;
}

/** One searched scale: the linears sharing it, what it was folded into, its α and losses. */
export interface AwqGroup {
  linears: string[];
  /** The linears as searched (original weights, row folds, the export type's quantizer), and s. */
  layers: AwqLinear[];
  scales: Float64Array;
  foldedInto: string;
  alpha: number;
  /** The search's loss on the calibration inputs (the attention block's output for q/k/v, else the linears' summed output MSE), at α and at α = 0. */
  loss: number;
  rtnLoss: number;
  /** The same loss on other inputs of the group (chunks of `chunk`): with the group's s as stored, and for plain RTN (s = 1, no row folds). */
  heldOut(x: LayerInputs, chunk: number): Promise<{ awq: number; rtn: number }>;
}

export interface AwqExport {
  /** The export source with the scaled and folded tensors in place of the model's. */
  source: ExportSource;
  /** No tensors: the quantize.awq.* header keys (ExportRequest.precomputed). */
  precomputed: PrecomputedTensors;
  groups: AwqGroup[];
  /** Why a linear was left unscaled. */
  skipped: string[];
  dataset: string;
  textTokens: number;
  chunk: number;
  chunks: number;
}

/**
 * AWQ's scaled model for an export plan (planExport of the original source, no precomputed
 * tensors): searches every layer's scales on the calibration text and returns the source
 * the export then quantizes as usual.
 */
export async function awqExport(model: ModelIndex, source: ExportSource, plan: ExportPlan, options: AwqExportOptions = {}): Promise<AwqExport> {
  const text = options.text ?? CALIBRATION_STORY_TEXT;
  const dataset = options.dataset ?? BUILTIN_CALIBRATION_DATASET;
  const cm = await openCalibrationModel(model);
  assertMethodSupported(cm.config, 'awq');
  const { nLayer, nHead, nHeadKv } = cm.config;
  const tokens = cm.tokenize(text);
  const chunk = options.chunk ?? defaultChunk(tokens.length, cm.config.contextLength);
  const chunks = chunkTokens(tokens, chunk, cm.bosId, cm.addBos).chunks.length;
  // q/k/v and gate/up share their input: one of each is enough.
  // (phi3: attn_qkv and the gate|up ffn_up, fused.)
  const stages = layerStages(cm.config);
  const readers = stages.map((stage) => stage[0]);
  const only = new Set(Array.from({ length: nLayer }, (_, i) => readers.map((w) => `blk.${i}.${w}.weight`)).flat());
  let done = 0;
  const total = chunks + nLayer;
  const tick = (label: string) => options.onProgress?.({ done: ++done, total, label });
  const inputs = await collectInputs(cm, text, chunk, { only, signal: options.signal, onChunk: (d, n) => tick(`calibration text: chunk ${d} of ${n}`) });

  const sourceByName = new Map(source.tensors.map((t) => [t.name, t]));
  const planByName = new Map(plan.tensors.map((t) => [t.name, t]));
  const read = async (name: string) => {
    const t = sourceByName.get(name);
    if (!t) throw new Error(`AWQ: no tensor '${name}' in the model`);
    return { rows: rowCount(t.ne), cols: t.ne[0], values: await source.readF32(t, { first: 0, count: rowCount(t.ne) }) };
  };
  // The search reads the weights as the forward pass does (a converted model's Q/K rows in
  // the files' order): each row is quantized on its own, so the losses are the file's.
  const linear = (name: string, rowScale?: Float64Array): AwqLinear & { name: string } => {
    const w = cm.weights.get(cm.fileName(name))!;
    const cols = name.endsWith('ffn_down.weight') ? cm.config.nFf : name.endsWith('attn_output.weight') ? nHead * cm.config.headDim : cm.config.nEmbd;
    const rows = w.length / cols;
    const type = quantType(planByName.get(name)!.type)!;
    return { name, w, rows, rowScale, quantize: (stored) => type.codec.decode(type.codec.encode(stored, cols), rows, cols) };
  };

  const replaced = new Map<string, Float32Array>();
  const groups: AwqGroup[] = [];
  const skipped: string[] = [];
  /** The source's values of `l` stored under s. */
  const store = async (l: AwqLinear & { name: string }, s: Float64Array) => {
    const { rows, values } = await read(l.name);
    replaced.set(l.name, storedWeights({ ...l, w: values, rows }, s));
  };
  /** Searches the group's s with `lossOn` (default: the linears' summed output MSE) and stores the scaled linears. */
  const search = async (layers: (AwqLinear & { name: string })[], x: LayerInputs | undefined, foldedInto: string, lossOn: GroupLoss = linearsLoss) => {
    if (!x) {
      skipped.push(`${layers.map((l) => l.name).join(', ')}: no calibration inputs`);
      return null;
    }
    const r = await awqSearchBy(meanAbs(x.x, x.n, x.cols), lossOn(layers, x, chunk));
    for (const l of layers) await store(l, r.scales);
    const heldOut = async (y: LayerInputs, yChunk: number) => ({
      awq: await lossOn(layers, y, yChunk)(r.scales),
      rtn: await lossOn(layers.map((l) => ({ ...l, rowScale: undefined })), y, yChunk)(ones(y.cols)),
    });
    groups.push({ linears: layers.map((l) => l.name), layers, scales: r.scales, foldedInto, alpha: r.alpha, loss: r.loss, rtnLoss: r.rtnLoss, heldOut });
    return r.scales;
  };
  const foldIntoNorm = async (name: string, s: Float64Array) => {
    const { values } = await read(name);
    replaced.set(name, values.map((g, c) => g / s[c]));
  };

  const foldIntoBias = async (name: string, s: Float64Array) => {
    const { values } = await read(name);
    replaced.set(name, values.map((b, r) => b / s[r]));
  };

  for (let i = 0; i < nLayer; i++) {
    if (options.signal?.aborted) throw options.signal.reason instanceof Error ? options.signal.reason : new Error('cancelled');
    const p = `blk.${i}.`;
    const x = (w: string) => inputs.get(`${p}${w}.weight`);
    // The later linears first: their scales divide the rows of v and up, which the q/k/v and
    // gate/up searches then see as stored.
    const fusedQkv = stages[0][0] === 'attn_qkv';
    const fusedUp = stages[2][0] === 'ffn_up';
    const qDim = nHead * cm.config.headDim;
    const kvDim = nHeadKv * cm.config.headDim;
    let vRows: Float64Array | undefined;
    if (nHead === nHeadKv) {
      vRows = (await search([linear(`${p}attn_output.weight`)], x('attn_output'), fusedQkv ? `${p}attn_qkv.weight v rows` : `${p}attn_v.weight rows`)) ?? undefined;
      // qwen2: v = W_v·h + b_v, so a row of v divided by s divides its bias too (the softmax's
      // weights sum to 1: attention·V then carries the same 1/s that attn_output's columns undo).
      if (vRows && sourceByName.has(`${p}attn_v.bias`)) await foldIntoBias(`${p}attn_v.bias`, vRows);
    } else {
      skipped.push(`${p}attn_output.weight: n_head ${nHead} != n_head_kv ${nHeadKv} (a V row feeds several heads' columns: no fold for its scales)`);
    }
    const upRows = (await search([linear(`${p}ffn_down.weight`)], x('ffn_down'), fusedUp ? `${p}ffn_up.weight up rows` : `${p}ffn_up.weight rows`)) ?? undefined;
    // phi3's fused tensors: the later linear's 1/s goes into their v rows / up rows alone.
    const qkv = fusedQkv
      ? [linear(`${p}attn_qkv.weight`, vRows && withLeadingOnes(qDim + kvDim, vRows))]
      : [linear(`${p}attn_q.weight`), linear(`${p}attn_k.weight`), linear(`${p}attn_v.weight`, vRows)];
    // q and k act through the attention scores: scored on the attention block's output.
    const sQkv = await search(qkv, x(stages[0][0]), `${p}attn_norm.weight`, (layers, h, c) => attentionBlockLoss(cm, i, h, c, layers));
    if (sQkv) await foldIntoNorm(`${p}attn_norm.weight`, sQkv);
    else if (vRows) await store(qkv[qkv.length - 1], ones(cm.config.nEmbd));
    const up = linear(`${p}ffn_up.weight`, upRows && (fusedUp ? withLeadingOnes(cm.config.nFf, upRows) : upRows));
    const gateUp = fusedUp ? [up] : [linear(`${p}ffn_gate.weight`), up];
    const sGateUp = await search(gateUp, x(stages[2][0]), `${p}ffn_norm.weight`, (layers, h) => mlpBlockLoss(cm, i, h, layers));
    if (sGateUp) await foldIntoNorm(`${p}ffn_norm.weight`, sGateUp);
    else if (upRows) await store(up, ones(cm.config.nEmbd));
    tick(`blk.${i}`);
  }

  const { STRING, UINT32 } = GGUF_VALUE_TYPE;
  const scaled = groups.reduce((n, g) => n + g.linears.length, 0);
  const keys: GgufMetadataEntry[] = [
    ggufEntry(AWQ_KEYS.dataset, STRING, dataset),
    ggufEntry(AWQ_KEYS.tensors, UINT32, scaled),
    ggufEntry(AWQ_KEYS.chunks, UINT32, chunks),
    ggufEntry(AWQ_KEYS.chunkSize, UINT32, chunk),
  ];
  return {
    source: replacedSource(source, replaced),
    precomputed: { tensors: new Map(), keys, method: 'awq' },
    groups,
    skipped,
    dataset,
    textTokens: tokens.length,
    chunk,
    chunks,
  };
}

/** A group's loss as a function of s, on inputs x cut in chunks of `chunk`. */
type NamedLinear = AwqLinear & { name: string };
type GroupLoss = (layers: readonly NamedLinear[], x: LayerInputs, chunk: number) => (s: Float64Array) => number | Promise<number>;

/** The linears' summed output MSE (awq.ts awqLoss). */
const linearsLoss: GroupLoss = (layers, x) => {
  const g = gram(x.x, x.n, x.cols);
  return (s) => awqLoss(layers, s, g, x.n);
};

/**
 * llm-awq's loss for the q/k/v scales (module2inspect = self_attn): the squared difference of
 * layer `layer`'s attention block output (attn_output, in f32, of the causal attention with
 * RoPE over each calibration chunk: model/llama.ts's forward, one layer, stopped there) with
 * q/k/v as the file will compute them, from the original's; h: their inputs, chunk by chunk.
 */
function attentionBlockLoss(cm: CalibrationModel, layer: number, h: LayerInputs, chunk: number, qkv: readonly NamedLinear[]): (s: Float64Array) => Promise<number> {
  const c = cm.config;
  const L = c.names.layers[layer];
  // One layer, with that layer's window and RoPE (Gemma's local/global layers differ).
  const config: LlamaConfig = { ...c, nLayer: 1, nVocab: chunk, names: { ...c.names, layers: [L] }, layerAttention: [c.layerAttention[layer]] };
  // The q/k/v products are answered from h; the embedding only has to exist.
  const zeros = new Float32Array(chunk * c.nEmbd);
  const weights = (name: string) => (name === c.names.tokenEmbd ? zeros : cm.weights.get(name)!);
  const positions = Array.from({ length: chunk }, (_, i) => i);
  const STOP = new Error('attention block done');
  const files = qkv.map((l) => cm.fileName(l.name));
  const blockOutput = async (ws: Float32Array[]) => {
    const out = new Float32Array(h.n * c.nEmbd);
    for (let start = 0; start + chunk <= h.n; start += chunk) {
      const rows = h.x.subarray(start * h.cols, (start + chunk) * h.cols);
      const product: Linear = (name, x, n, outRows, cols) => {
        const at = files.indexOf(name);
        if (at >= 0) return matmulF32(ws[at], outRows, cols, rows, n);
        if (name !== L.o) throw new Error(`AWQ: unexpected product ${name}`);
        out.set(matmulF32(weights(L.o), outRows, cols, x, n), start * c.nEmbd);
        throw STOP;
      };
      const model = new LlamaModel(config, weights, product);
      await model.forward(positions, model.newCache(chunk)).catch((e: unknown) => {
        if (e !== STOP) throw e;
      });
    }
    return out;
  };
  const f32 = (l: AwqLinear) => Float32Array.from(l.w);
  const reference = blockOutput(qkv.map(f32));
  return async (s) => {
    const [a, b] = [await reference, await blockOutput(qkv.map((l) => Float32Array.from(effectiveWeights(l, s))))];
    let sum = 0;
    for (let i = 0; i < a.length; i++) sum += (a[i] - b[i]) ** 2;
    return sum / h.n;
  };
}

/**
 * llm-awq's loss for the gate/up scales (module2inspect = mlp): the squared difference of the
 * MLP's output ffn_down(act(gate·x) ⊙ up·x), ffn_down in f32, with gate and up as the file
 * will compute them, from the original's. The MLP is the family's own feedForward (SiLU for
 * llama/qwen, GELU-tanh through ggml's f16 table for Gemma), stopped at ffn_down's product:
 * Gemma's post_ffw_norm comes after it and does not change what is folded.
 */
function mlpBlockLoss(cm: CalibrationModel, layer: number, x: LayerInputs, gateUp: readonly NamedLinear[]): (s: Float64Array) => Promise<number> {
  const c = cm.config;
  const L = c.names.layers[layer];
  const weights = (name: string) => cm.weights.get(name)!;
  const STOP = new Error('MLP done');
  const files = gateUp.map((l) => cm.fileName(l.name));
  const output = async (ws: Float32Array[]) => {
    let out: Float32Array | null = null;
    const product: Linear = (name, input, n, outRows, cols) => {
      const at = files.indexOf(name);
      if (at >= 0) return matmulF32(ws[at], outRows, cols, x.x, n);
      if (name !== L.down) throw new Error(`AWQ: unexpected product ${name}`);
      out = matmulF32(weights(L.down), outRows, cols, input, n);
      throw STOP;
    };
    const layers = familyModule(c.family).layers({ config: c, weights, linear: product });
    // The residual's values are not read: gate and up are answered from x, their inputs.
    await layers.feedForward(layer, new Float32Array(x.n * c.nEmbd), x.n).catch((e: unknown) => {
      if (e !== STOP) throw e;
    });
    return out! as Float32Array;
  };
  const reference = output(gateUp.map((l) => Float32Array.from(l.w)));
  return async (s) => {
    const y = await output(gateUp.map((l) => Float32Array.from(effectiveWeights(l, s))));
    const r = await reference;
    let sum = 0;
    for (let i = 0; i < y.length; i++) sum += (y[i] - r[i]) ** 2;
    return sum / x.n;
  };
}

/** Row scales of a fused tensor whose last rows alone take `tail` (phi3's v rows, up rows). */
function withLeadingOnes(lead: number, tail: Float64Array): Float64Array {
  const out = new Float64Array(lead + tail.length).fill(1);
  out.set(tail, lead);
  return out;
}

/** s = 1 over n columns (a row fold with no column scaling of its own). */
function ones(n: number): Float64Array {
  return new Float64Array(n).fill(1);
}

/** `source` with some tensors' values replaced (f32, the tensor's shape); their bytes in the tensor's own type. */
export function replacedSource(source: ExportSource, replaced: ReadonlyMap<string, Float32Array>): ExportSource {
  const rowsOf = (t: ExportSourceTensor, values: Float32Array, first: number, count: number) => values.subarray(first * t.ne[0], (first + count) * t.ne[0]);
  return {
    metadata: source.metadata,
    tensors: source.tensors,
    slabElements: source.slabElements,
    readBytes: async (t, rows) => {
      const values = replaced.get(t.name);
      if (!values) return source.readBytes(t, rows);
      const part = rowsOf(t, values, rows.first, rows.count);
      const type = quantTypeByGgmlId(t.type);
      if (!type) throw new Error(`AWQ: ${t.name} has a type (${t.type}) it cannot write`);
      return type.reference.encode(part.slice(), t.ne[0]);
    },
    readF32: async (t, rows, scratch) => {
      const values = replaced.get(t.name);
      return values ? rowsOf(t, values, rows.first, rows.count) : source.readF32(t, rows, scratch);
    },
  };
}
