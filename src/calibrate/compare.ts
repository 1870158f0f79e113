// What calibration buys, layer by layer: every blk.* weight of a Llama quantized at ~4 bits
// by round-to-nearest, by Q4_K without and with an importance matrix (llama-imatrix's, from
// the calibration text: imatrix.ts), by AWQ and by GPTQ (both from the calibration text's
// inputs), and by GPTQ into Q4_K's own grid (gptqQ4_K: what `quantize --gptq` writes for a
// Q4_K tensor, so Q4_K's three rows compare one storage format), each scored by its layer output MSE ||XWᵀ − XŴᵀ||² / (n · rows) on held-out text
// (X: the layer's inputs in the F32 model over a different text, the eval text by default).
// RTN, AWQ and GPTQ share GPTQ's asym INT4 grid in groups of `group` columns (grid.ts);
// Q4_K is ggml's (the reference codec, quant/types.ts), its rows zero-padded to its 256-value
// super-blocks where they are shorter (stories260K's 64 and 172; the padded inputs are 0, so
// the padding changes no output; for GPTQ they are dead columns, whose weights it zeroes). Each layer is done on its own from F32 inputs (no
// sequential quantization of earlier layers), which is what a per-layer comparison asks.
// GPTQ runs where the caller says (options.gptq: the engine passes GPTQ on WebGPU,
// gptq-gpu.ts, when it has a device), else on the CPU (gptq.ts); the result says which.
// options.actOrder puts both GPTQ methods in act-order (static groups, gptq.ts).
import { quantType } from '../quant/types.ts';
import { EVAL_TEXT } from '../model/eval-text.ts';
import { klDivergence, logSoftmax } from '../model/eval.ts';
import { argmax, LlamaModel } from '../model/llama.ts';
import { mapProvider } from '../model/weights.ts';
import { chunkTokens, collectInputs, defaultChunk, linearWeightNames, type CalibrationModel, type CalibrationProgress, type LayerInputs } from './activations.ts';
import { assertMethodSupported } from '../model/families/support.ts';
import { awqQuantize } from './awq.ts';
import { CALIBRATION_STORY_TEXT } from './calibration-text.ts';
import { gram, outputMse, quantizeRtn, type Grid } from './grid.ts';
import type { GpuGrid } from './gptq-gpu.ts';
import { gptqQ4_K, gptqQuantize, hessian, type GptqOptions } from './gptq.ts';
import { accumulateSquares } from './imatrix.ts';

import { CALIBRATION_METHODS, type CalibrationMethod } from './methods.ts';

export { CALIBRATION_METHODS, METHOD_LABELS, type CalibrationMethod } from './methods.ts';

/** The held-out text's chunk: short, as the eval text is (~200 tokens). */
export const HELD_OUT_CHUNK = 64;
export const DEFAULT_GROUP = 32;

export interface CompareCalibrationOptions {
  /** Default: the built-in calibration stories. */
  calibrationText?: string;
  /** Default: the eval text (model/eval-text.ts). */
  heldOutText?: string;
  /** Calibration chunk (default as `quantlab calibrate`). */
  chunk?: number;
  /** INT4 group of RTN, AWQ and GPTQ (32, 64 or 128; default 32). */
  group?: number;
  /** GPTQ of each layer; default gptqQuantize on the CPU. */
  gptq?: GptqRunner;
  /** Both GPTQ methods in act-order (static groups: gptq.ts); default GPTQ's own column order. */
  actOrder?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: CalibrationProgress) => void;
}

/** Where GPTQ ran, per layer: the GPU may be lost mid-way, and the runner then goes on on the CPU. */
export type GptqBackend = 'webgpu' | 'cpu';

/** Runs GPTQ on one layer (gptqQuantize's contract; gptqQ4_K's for 'q4_K') and says where it ran. */
export interface GptqRunner {
  /** The device, for the UI ('google swiftshader … (fallback)'); absent for the CPU. */
  device?: string;
  quantize(w: Float32Array, rows: number, cols: number, h: Float64Array, grid: GpuGrid, options?: GptqOrder): Promise<{ values: ArrayLike<number>; backend: GptqBackend }>;
}

export type GptqOrder = Pick<GptqOptions, 'actOrder'>;

/** GPTQ on the CPU, the reference (gptq.ts). */
export const CPU_GPTQ: GptqRunner = {
  quantize: async (w, rows, cols, h, grid, options = {}) => ({
    values: grid.kind === 'q4_K' ? gptqQ4_K(w, rows, cols, h, options).values : gptqQuantize(w, rows, cols, h, { grid, ...options }),
    backend: 'cpu',
  }),
};

export interface LayerComparison {
  name: string;
  rows: number;
  cols: number;
  mse: Record<CalibrationMethod, number>;
  awqAlpha: number;
}

/** The whole model with every blk.* weight under one method, on the held-out text. */
export interface ModelScore {
  /** Mean KL(p_F32 || p_method) over the scored positions, nats. */
  klMean: number;
  ppl: number;
  /** Share of positions whose argmax equals F32's. */
  top1Agree: number;
}

export interface CalibrationComparison {
  calibration: { tokens: number; chunk: number; chunks: number };
  heldOut: { tokens: number; chunk: number; rows: number };
  group: number;
  /** Bits per weight of each method's storage (GPTQ's: 4-bit codes, f16 scale and 4-bit zero per group). */
  bpw: Record<CalibrationMethod, number>;
  layers: LayerComparison[];
  totals: Record<CalibrationMethod, number>;
  /** Where GPTQ ran: 'webgpu' when every layer's (both grids) ran there; layers on the GPU of all; act-order or not. */
  gptq: { backend: GptqBackend; device?: string; gpuLayers: number; layers: number; actOrder: boolean };
  /**
   * The whole model on the held-out text (every position after BOS scored, one pass), with
   * every blk.* weight quantized by the method and the rest (embedding, norms, output) F32.
   */
  model: { positions: number; f32Ppl: number; methods: Record<CalibrationMethod, ModelScore> };
}

function check(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('cancelled');
}

const Q4_K = quantType('q4_K')!;
/** Columns of a row zero-padded to Q4_K's 256-value super-blocks. */
const q4KPadded = (cols: number) => Math.ceil(cols / Q4_K.blockSize) * Q4_K.blockSize;

/** Rows of `cols` values zero-padded to `padded` columns, and back. */
function padRows(w: ArrayLike<number>, rows: number, cols: number, padded: number): Float32Array {
  const out = new Float32Array(rows * padded);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * padded + c] = w[r * cols + c];
  return out;
}
function cutRows(w: ArrayLike<number>, rows: number, cols: number, padded: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = w[r * padded + c];
  return out;
}

/** Q4_K (ggml's codec) of rows zero-padded to 256, decoded and cut back. */
function quantizeQ4K(w: Float32Array, rows: number, cols: number, importance: Float32Array | undefined): Float32Array {
  const padded = q4KPadded(cols);
  let imp: Float32Array | undefined;
  if (importance) {
    imp = new Float32Array(padded).fill(1);
    imp.set(importance);
  }
  return cutRows(Q4_K.codec.decode(Q4_K.codec.encode(padRows(w, rows, cols, padded), padded, imp), rows, padded), rows, cols, padded);
}

/** GPTQ into Q4_K's grid of rows zero-padded to 256 (the Hessian's padding columns 0: dead), cut back. */
async function gptqQ4KPadded(runner: GptqRunner, w: Float32Array, rows: number, cols: number, h: Float64Array, order: GptqOrder) {
  const padded = q4KPadded(cols);
  const hp = new Float64Array(padded * padded);
  for (let i = 0; i < cols; i++) hp.set(h.subarray(i * cols, (i + 1) * cols), i * padded);
  const r = await runner.quantize(padRows(w, rows, cols, padded), rows, padded, hp, { kind: 'q4_K' }, order);
  return { values: cutRows(r.values, rows, cols, padded), backend: r.backend };
}

export async function compareCalibration(cm: CalibrationModel, options: CompareCalibrationOptions = {}): Promise<CalibrationComparison> {
  const calibText = options.calibrationText ?? CALIBRATION_STORY_TEXT;
  const heldText = options.heldOutText ?? EVAL_TEXT;
  const group = options.group ?? DEFAULT_GROUP;
  if (![32, 64, 128].includes(group)) throw new Error(`the group must be 32, 64 or 128, not ${group}`);
  const calibTokens = cm.tokenize(calibText).length;
  const heldTokens = cm.tokenize(heldText).length;
  const chunk = options.chunk ?? defaultChunk(calibTokens, cm.config.contextLength);
  const calibChunks = chunkTokens(cm.tokenize(calibText), chunk, cm.bosId, cm.addBos).chunks.length;
  const heldChunk = Math.min(HELD_OUT_CHUNK, defaultChunk(heldTokens, cm.config.contextLength));
  assertMethodSupported(cm.config, 'gptq'); // the comparison runs GPTQ on every linear
  const names = linearWeightNames(cm.config);
  const total = calibChunks + Math.floor(heldTokens / heldChunk) + names.length + 1 + CALIBRATION_METHODS.length;
  let done = 0;
  const tick = (label: string) => options.onProgress?.({ done: ++done, total, label });

  const calib = await collectInputs(cm, calibText, chunk, { signal: options.signal, onChunk: (d, n) => tick(`calibration text: chunk ${d} of ${n}`) });
  const held = await collectInputs(cm, heldText, heldChunk, { signal: options.signal, onChunk: (d, n) => tick(`held-out text: chunk ${d} of ${n}`) });
  const grid: Grid = { kind: 'int', bits: 4, group };

  const layers: LayerComparison[] = [];
  const gptqRunner = options.gptq ?? CPU_GPTQ;
  const actOrder = options.actOrder ?? false;
  const order: GptqOrder = { actOrder };
  let gptqGpuLayers = 0;
  const quantized = new Map(CALIBRATION_METHODS.map((m) => [m, new Map(cm.weights)]));
  for (const name of names) {
    check(options.signal);
    const w = cm.weights.get(cm.fileName(name))!;
    const c = calib.get(name) as LayerInputs;
    const t = held.get(name) as LayerInputs;
    const cols = c.cols;
    const rows = w.length / cols;
    // llama-imatrix's statistics for this weight, normalized as llama-quantize does (sum / count).
    const sums = new Float32Array(cols);
    accumulateSquares(sums, c.x, c.n);
    const importance = sums.map((v) => Math.fround(v / c.n));
    const g = gram(t.x, t.n, cols);
    const awq = awqQuantize(w, rows, cols, c.x, c.n, grid);
    const h = hessian(c.x, c.n, cols);
    const gptq = await gptqRunner.quantize(w, rows, cols, h, grid, order);
    const gptqQ4K = await gptqQ4KPadded(gptqRunner, w, rows, cols, h, order);
    if (gptq.backend === 'webgpu' && gptqQ4K.backend === 'webgpu') gptqGpuLayers++;
    const byMethod: Record<CalibrationMethod, ArrayLike<number>> = {
      rtn: quantizeRtn(w, rows, cols, grid),
      q4_K: quantizeQ4K(w, rows, cols, undefined),
      q4_K_imatrix: quantizeQ4K(w, rows, cols, importance),
      awq: awq.weights,
      gptq: gptq.values,
      gptq_q4_K: gptqQ4K.values,
    };
    for (const m of CALIBRATION_METHODS) quantized.get(m)!.set(cm.fileName(name), Float32Array.from(byMethod[m]));
    layers.push({
      name,
      rows,
      cols,
      awqAlpha: awq.alpha,
      mse: Object.fromEntries(CALIBRATION_METHODS.map((m) => [m, outputMse(w, byMethod[m], rows, cols, g, t.n)])) as Record<CalibrationMethod, number>,
    });
    tick(name);
  }

  // The whole model on the held-out text: F32, then each method's weights.
  const heldIds = cm.tokenize(heldText);
  const logits = async (weights: Map<string, Float32Array>) => {
    const provider = mapProvider(weights);
    const m = new LlamaModel(cm.config, provider);
    return m.forward(heldIds.slice(0, -1), m.newCache(heldIds.length), { logits: 'all' });
  };
  const positions = heldIds.length - 1;
  const V = cm.config.nVocab;
  const base = await logits(cm.weights);
  tick('held-out text: F32 model');
  const lpBase = new Float64Array(V);
  const lp = new Float64Array(V);
  let f32Nll = 0;
  for (let i = 0; i < positions; i++) f32Nll -= logSoftmax(base, i * V, V, lpBase)[heldIds[i + 1]];
  const methods = {} as Record<CalibrationMethod, ModelScore>;
  for (const m of CALIBRATION_METHODS) {
    check(options.signal);
    const out = await logits(quantized.get(m)!);
    let kl = 0;
    let nll = 0;
    let agree = 0;
    for (let i = 0; i < positions; i++) {
      logSoftmax(base, i * V, V, lpBase);
      logSoftmax(out, i * V, V, lp);
      kl += klDivergence(lpBase, lp);
      nll -= lp[heldIds[i + 1]];
      if (argmax(out, i * V, V) === argmax(base, i * V, V)) agree++;
    }
    methods[m] = { klMean: kl / positions, ppl: Math.exp(nll / positions), top1Agree: agree / positions };
    tick(`held-out text: ${m} model`);
  }
  const totals = Object.fromEntries(CALIBRATION_METHODS.map((m) => [m, layers.reduce((s, l) => s + l.mse[m], 0)])) as Record<CalibrationMethod, number>;
  const int4 = 4 + 20 / group;
  return {
    calibration: { tokens: calibTokens, chunk, chunks: calibChunks },
    heldOut: { tokens: heldTokens, chunk: heldChunk, rows: layers.length > 0 ? held.get(names[0])!.n : 0 },
    group,
    bpw: { rtn: int4, q4_K: 4.5, q4_K_imatrix: 4.5, awq: int4, gptq: int4, gptq_q4_K: 4.5 },
    layers,
    totals,
    gptq: {
      backend: layers.length > 0 && gptqGpuLayers === layers.length ? 'webgpu' : 'cpu',
      device: gptqGpuLayers > 0 ? gptqRunner.device : undefined,
      gpuLayers: gptqGpuLayers,
      layers: layers.length,
      actOrder,
    },
    model: { positions, f32Ppl: Math.exp(f32Nll / positions), methods },
  };
}
