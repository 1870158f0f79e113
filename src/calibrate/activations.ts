// Calibration passes: the forward pass (model/llama.ts) over a text, cut into chunks as
// llama.cpp's llama-imatrix cuts it (tools/imatrix/imatrix.cpp compute_imatrix, pinned
// source /tmp/llamacpp): the text tokenized with BOS, n_chunk = floor(tokens / chunk)
// chunks of `chunk` tokens (the rest dropped), at least two of them ("you need at least
// 2*n_ctx tokens"), each run from an empty KV cache with its first token replaced by BOS.
// Every matrix product of a `blk.*` weight is shown to a hook with its input rows, under
// the weight's llama.cpp (GGUF) name, which is what llama-imatrix's collect_imatrix sees
// (src0->name; it skips products of fewer than 16 rows and output.weight by default).
import type { ModelIndex } from '../formats/model.ts';
import { cpuLinear, llamaConfig, LlamaModel, type LlamaConfig, type WeightProvider } from '../model/llama.ts';
import { modelTokenizer } from '../model/eval.ts';
import { mapProvider, readLlamaWeights } from '../model/weights.ts';

/** llama-imatrix's default context (common_params n_ctx for the tool). */
export const IMATRIX_DEFAULT_CHUNK = 512;
/** collect_imatrix ignores products with fewer input rows ("why are small batches ignored (<16 tokens)?"). */
export const IMATRIX_MIN_ROWS = 16;

export interface CalibrationProgress {
  done: number;
  total: number;
  label: string;
}

/** (weight's GGUF name, input rows x[n][cols]) for each blk.* product. */
export type ActivationHook = (ggufName: string, x: Float32Array, n: number, cols: number) => void;

export interface ChunkedText {
  /** The chunks' tokens, BOS first in each. */
  chunks: number[][];
  chunk: number;
  /** Tokens of the whole text (BOS included). */
  textTokens: number;
}

function check(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('cancelled');
}

/**
 * The chunk length used when none is given: llama-imatrix's 512, made smaller (a power of
 * two, at least 16) when the text or the model's context cannot hold two such chunks.
 */
export function defaultChunk(textTokens: number, contextLength: number): number {
  let c = IMATRIX_DEFAULT_CHUNK;
  while (c > IMATRIX_MIN_ROWS && (c > contextLength || 2 * c > textTokens)) c /= 2;
  return c;
}

/** compute_imatrix's chunking of the tokenized text. */
export function chunkTokens(tokens: readonly number[], chunk: number, bosId: number | null, addBos: boolean): ChunkedText {
  if (!Number.isInteger(chunk) || chunk < IMATRIX_MIN_ROWS) {
    throw new Error(`the chunk must be a whole number of at least ${IMATRIX_MIN_ROWS} tokens (llama-imatrix skips smaller batches), not ${chunk}`);
  }
  if (tokens.length < 2 * chunk) {
    throw new Error(`the text has ${tokens.length} tokens; chunks of ${chunk} need at least ${2 * chunk} (llama-imatrix's rule: two chunks); give a longer text or a smaller --chunk`);
  }
  const n = Math.floor(tokens.length / chunk);
  const chunks: number[][] = [];
  for (let i = 0; i < n; i++) {
    const c = tokens.slice(i * chunk, (i + 1) * chunk);
    if (addBos && bosId !== null) c[0] = bosId;
    chunks.push(c);
  }
  return { chunks, chunk, textTokens: tokens.length };
}

export interface CalibrationModel {
  config: LlamaConfig;
  /** f32 weights by name in the files. */
  weights: Map<string, Float32Array>;
  /** The file name of each GGUF name (identity for a GGUF). */
  fileName: (ggufName: string) => string;
  tokenize: (text: string) => number[];
  bosId: number | null;
  addBos: boolean;
}

/** Reads what calibration needs: config, f32 weights, tokenizer. */
export async function openCalibrationModel(model: ModelIndex): Promise<CalibrationModel> {
  const config = llamaConfig(model);
  const tokenizer = await modelTokenizer(model);
  const weights = await readLlamaWeights(model, config);
  return {
    config,
    weights,
    fileName: (g) => {
      const f = config.ggufNames.get(g);
      if (!f) throw new Error(`no tensor '${g}' in the model`);
      return f;
    },
    tokenize: (text) => {
      const t = tokenizer.encode(text);
      if (t.some((id) => id >= config.nVocab)) throw new Error(`the tokenizer gives ids beyond the model's ${config.nVocab} embeddings`);
      return t;
    },
    bosId: tokenizer.vocab.bosId,
    addBos: tokenizer.vocab.addBos,
  };
}

/**
 * A layer's linear weights in the order their inputs become known: a stage's inputs depend
 * on the stages before it alone (q/k/v read the normed residual; the output projection
 * reads attention over q/k/v; gate/up the normed residual after it; down gate/up's product).
 * AutoGPTQ's "true sequential" groups for Llama (inside_layer_modules).
 */
export const LAYER_STAGES = [['attn_q', 'attn_k', 'attn_v'], ['attn_output'], ['ffn_gate', 'ffn_up'], ['ffn_down']] as const;

/**
 * The model's stages: LAYER_STAGES, where a fused weight is one stage of its own with the
 * stage's input (phi3's attn_qkv reads attn_norm's output as q/k/v do; its ffn_up, gate rows
 * then up rows, reads ffn_norm's output as gate/up do): GPTQ quantizes it as one problem.
 */
export function layerStages(config: Pick<LlamaConfig, 'names'>): readonly (readonly string[])[] {
  const L = config.names.layers[0];
  return [L?.qkv ? ['attn_qkv'] : LAYER_STAGES[0], LAYER_STAGES[1], L && !L.gate ? ['ffn_up'] : LAYER_STAGES[2], LAYER_STAGES[3]];
}

/** Layer il's weights of one stage, by GGUF name. */
export const stageWeightNames = (il: number, stage: readonly string[]) => stage.map((w) => `blk.${il}.${w}.weight`);

/** The blk.* weights (GGUF names) whose products a calibration pass sees, in forward order. */
export function linearWeightNames(config: LlamaConfig): string[] {
  const out: string[] = [];
  for (let i = 0; i < config.nLayer; i++) for (const stage of layerStages(config)) out.push(...stageWeightNames(i, stage));
  return out;
}

/**
 * Runs the model over each chunk and shows every blk.* product's input to `hook` (by GGUF
 * name). `weights` overrides the model's (a quantized variant); default: the model's.
 */
export async function runCalibration(
  cm: CalibrationModel,
  chunks: readonly number[][],
  hook: ActivationHook,
  options: { weights?: WeightProvider; signal?: AbortSignal; onChunk?: (done: number, total: number) => void } = {},
): Promise<void> {
  const provider = options.weights ?? mapProvider(cm.weights);
  const byFile = new Map<string, string>();
  for (const [g, f] of cm.config.ggufNames) byFile.set(f, g);
  const base = cpuLinear(provider);
  const linear = (name: string, x: Float32Array, n: number, rows: number, cols: number) => {
    const g = byFile.get(name);
    if (g !== undefined && g.startsWith('blk.') && n >= IMATRIX_MIN_ROWS) hook(g, x, n, cols);
    return base(name, x, n, rows, cols);
  };
  const model = new LlamaModel(cm.config, provider, linear);
  for (const [i, c] of chunks.entries()) {
    check(options.signal);
    await model.forward(c, model.newCache(c.length));
    options.onChunk?.(i + 1, chunks.length);
  }
}

/**
 * A calibration pass for GPTQ as its reference runs it (IST-DASLab/gptq llama.py
 * llama_sequential; by stages as AutoGPTQ's true_sequential): the chunks go through the
 * model one layer at a time, and through a layer stage by stage (LAYER_STAGES). The inputs
 * of a stage's weights are collected over every chunk with the model's weights as they are
 * then, and handed to `quantizeStage`, which may replace those weights in cm.weights; the
 * next stages and layers then see the replaced ones. So each weight is quantized for the
 * inputs the quantized model before it gives it, not the F32 model's.
 */
export async function calibrateSequentially(
  cm: CalibrationModel,
  chunks: readonly number[][],
  quantizeStage: (names: string[], inputs: Map<string, LayerInputs>) => void | Promise<void>,
  options: { signal?: AbortSignal; onPass?: (label: string) => void } = {},
): Promise<void> {
  const c = cm.config;
  const byFile = new Map<string, string>();
  for (const [g, f] of c.ggufNames) byFile.set(f, g);
  const base = cpuLinear(mapProvider(cm.weights));
  let collecting: Map<string, Float32Array[]> | null = null;
  const linear = (name: string, x: Float32Array, n: number, rows: number, cols: number) => {
    const list = collecting?.get(byFile.get(name) ?? '');
    if (list && n >= IMATRIX_MIN_ROWS) list.push(x.slice());
    return base(name, x, n, rows, cols);
  };
  const model = new LlamaModel(c, mapProvider(cm.weights), linear);
  const kvDim = c.nHeadKv * c.headDim;
  // Each chunk's residual stream, and one layer's keys and values (every layer rewrites them).
  const states = chunks.map((tokens) => ({ x: model.embed(tokens), n: tokens.length, k: new Float32Array(tokens.length * kvDim), v: new Float32Array(tokens.length * kvDim) }));
  const attention = (il: number, s: (typeof states)[number], x: Float32Array) => model.attention(il, x, s.n, 0, s.k, s.v);
  const feedForward = (il: number, s: (typeof states)[number], x: Float32Array) => model.feedForward(il, x, s.n);
  const stages = layerStages(c);
  const halves = [
    { run: attention, stages: stages.slice(0, 2) },
    { run: feedForward, stages: stages.slice(2) },
  ];
  for (let il = 0; il < c.nLayer; il++) {
    for (const half of halves) {
      for (const stage of half.stages) {
        const names = stageWeightNames(il, stage);
        collecting = new Map(names.map((n) => [n, []]));
        for (const s of states) {
          check(options.signal);
          await half.run(il, s, s.x.slice());
        }
        const inputs = joinInputs(cm, collecting);
        collecting = null;
        options.onPass?.(`layer ${il}: inputs of ${stage.join(', ')}`);
        await quantizeStage(names, inputs);
      }
      for (const s of states) {
        check(options.signal);
        await half.run(il, s, s.x);
      }
    }
  }
}

/** Each weight's collected input rows as one LayerInputs (names with none are left out). */
function joinInputs(cm: CalibrationModel, parts: ReadonlyMap<string, readonly Float32Array[]>): Map<string, LayerInputs> {
  const out = new Map<string, LayerInputs>();
  for (const [name, list] of parts) {
    if (list.length === 0) continue;
    const total = list.reduce((s, p) => s + p.length, 0);
    const x = new Float32Array(total);
    let at = 0;
    for (const p of list) {
      x.set(p, at);
      at += p.length;
    }
    const cols = colsOf(cm, name);
    out.set(name, { x, n: total / cols, cols });
  }
  return out;
}

export interface LayerInputs {
  /** Input rows, one after another (n x cols). */
  x: Float32Array;
  n: number;
  cols: number;
}

/**
 * Every blk.* weight's input rows over a text (chunked as above), by GGUF name; `only`
 * keeps those names alone.
 */
export async function collectInputs(
  cm: CalibrationModel,
  text: string,
  chunk: number,
  options: { only?: ReadonlySet<string>; signal?: AbortSignal; onChunk?: (done: number, total: number) => void } = {},
): Promise<Map<string, LayerInputs>> {
  const { chunks } = chunkTokens(cm.tokenize(text), chunk, cm.bosId, cm.addBos);
  const parts = new Map<string, Float32Array[]>();
  await runCalibration(
    cm,
    chunks,
    (name, x) => {
      if (options.only && !options.only.has(name)) return;
      const list = parts.get(name) ?? [];
      list.push(x.slice());
      parts.set(name, list);
    },
    { signal: options.signal, onChunk: options.onChunk },
  );
  return joinInputs(cm, parts);
}

/** Input columns of a weight (its row length). */
export function colsOf(cm: CalibrationModel, ggufName: string): number {
  const w = cm.weights.get(cm.fileName(ggufName));
  if (!w) throw new Error(`no weights for '${ggufName}'`);
  const c = cm.config;
  return ggufName.endsWith('ffn_down.weight') ? c.nFf : ggufName.endsWith('attn_output.weight') ? c.nHead * c.headDim : c.nEmbd;
}
