// AWQ as an export (Lin et al. 2023; the folding of llm-awq auto_scale.py apply_scale /
// AutoAWQ's scale_ln_fcs and scale_fc_fc): a linear's input columns are multiplied by s and
// 1/s is folded into the operation that makes its input, so the F32 model computes the same
// function and the scaled weights are then quantized by the plain export (round-to-nearest,
// the preset's types): the GGUF is an ordinary one llama.cpp runs. Per Llama layer:
// - attn_q, attn_k, attn_v read attn_norm's output: one s, searched over the three, 1/s
//   folded into attn_norm.weight;
// - ffn_gate, ffn_up read ffn_norm's output: one s, 1/s into ffn_norm.weight;
// - ffn_down reads silu(gate)·up: 1/s into the rows of ffn_up;
// - attn_output reads attention·V: 1/s into the rows of attn_v, only when n_head ==
//   n_head_kv (with grouped KV heads a V row feeds several heads' columns: not scaled).
// The search (awq.ts awqSearch) scores each linear as the file stores it (its rows already
// divided by a later linear's s: attn_output and ffn_down are searched first) on the type the
// export plan gives it, with that type's round-to-nearest codec.
// Inputs are collected once on the original model: folding leaves every layer's output
// unchanged, so later layers see the same inputs.
import type { ModelIndex } from '../formats/model.ts';
import { GGUF_VALUE_TYPE } from '../formats/gguf/constants.ts';
import { ggufEntry, type GgufMetadataEntry } from '../formats/gguf/metadata.ts';
import { type ExportPlan, type ExportSource, type ExportSourceTensor, type PrecomputedTensors, rowCount } from '../engine/export.ts';
import { quantType, quantTypeByGgmlId } from '../quant/types.ts';
import { chunkTokens, collectInputs, defaultChunk, openCalibrationModel, type CalibrationProgress, type LayerInputs } from './activations.ts';
import { awqSearch, storedWeights, type AwqLinear } from './awq.ts';
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
  /** Summed output MSE of the linears on the calibration inputs, at α and at α = 0. */
  loss: number;
  rtnLoss: number;
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
  const { nLayer, nHead, nHeadKv } = cm.config;
  const tokens = cm.tokenize(text);
  const chunk = options.chunk ?? defaultChunk(tokens.length, cm.config.contextLength);
  const chunks = chunkTokens(tokens, chunk, cm.bosId, cm.addBos).chunks.length;
  // q/k/v and gate/up share their input: one of each is enough.
  const readers = ['attn_q', 'attn_output', 'ffn_gate', 'ffn_down'];
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
    return { t, values: await source.readF32(t, { first: 0, count: rowCount(t.ne) }) };
  };
  const linear = async (name: string, rowScale?: Float64Array): Promise<AwqLinear & { name: string }> => {
    const { t, values } = await read(name);
    const rows = rowCount(t.ne);
    const cols = t.ne[0];
    const type = quantType(planByName.get(name)!.type)!;
    // A copy: the codec may hand back a view of its scratch.
    return { name, w: values.slice(), rows, rowScale, quantize: (stored) => type.codec.decode(type.codec.encode(stored, cols), rows, cols) };
  };

  const replaced = new Map<string, Float32Array>();
  const groups: AwqGroup[] = [];
  const skipped: string[] = [];
  const search = async (layers: (AwqLinear & { name: string })[], x: LayerInputs | undefined, foldedInto: string) => {
    if (!x) {
      skipped.push(`${layers.map((l) => l.name).join(', ')}: no calibration inputs`);
      return null;
    }
    const r = awqSearch(layers, x.x, x.n, x.cols);
    for (const l of layers) replaced.set(l.name, storedWeights(l, r.scales));
    groups.push({ linears: layers.map((l) => l.name), layers, scales: r.scales, foldedInto, alpha: r.alpha, loss: r.loss, rtnLoss: r.rtnLoss });
    return r.scales;
  };
  const foldIntoNorm = async (name: string, s: Float64Array) => {
    const { values } = await read(name);
    replaced.set(name, values.map((g, c) => g / s[c]));
  };

  for (let i = 0; i < nLayer; i++) {
    if (options.signal?.aborted) throw options.signal.reason instanceof Error ? options.signal.reason : new Error('cancelled');
    const p = `blk.${i}.`;
    const x = (w: string) => inputs.get(`${p}${w}.weight`);
    // The later linears first: their scales divide the rows of v and up, which the q/k/v and
    // gate/up searches then see as stored.
    let vRows: Float64Array | undefined;
    if (nHead === nHeadKv) {
      vRows = (await search([await linear(`${p}attn_output.weight`)], x('attn_output'), `${p}attn_v.weight rows`)) ?? undefined;
    } else {
      skipped.push(`${p}attn_output.weight: n_head ${nHead} != n_head_kv ${nHeadKv} (a V row feeds several heads' columns: no fold for its scales)`);
    }
    const upRows = (await search([await linear(`${p}ffn_down.weight`)], x('ffn_down'), `${p}ffn_up.weight rows`)) ?? undefined;
    const sQkv = await search(
      [await linear(`${p}attn_q.weight`), await linear(`${p}attn_k.weight`), await linear(`${p}attn_v.weight`, vRows)],
      x('attn_q'),
      `${p}attn_norm.weight`,
    );
    if (sQkv) await foldIntoNorm(`${p}attn_norm.weight`, sQkv);
    else if (vRows) replaced.set(`${p}attn_v.weight`, storedWeights(await linear(`${p}attn_v.weight`, vRows), ones(vRows.length)));
    const sGateUp = await search([await linear(`${p}ffn_gate.weight`), await linear(`${p}ffn_up.weight`, upRows)], x('ffn_gate'), `${p}ffn_norm.weight`);
    if (sGateUp) await foldIntoNorm(`${p}ffn_norm.weight`, sGateUp);
    else if (upRows) replaced.set(`${p}ffn_up.weight`, storedWeights(await linear(`${p}ffn_up.weight`, upRows), ones(upRows.length)));
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
