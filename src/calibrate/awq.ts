// AWQ (Lin et al. 2023, mit-han-lab/llm-awq auto_scale.py _search_module_scale), per linear
// weight: s = mean|x|^α per input channel (x: the calibration inputs), normalized as AWQ
// does (s / sqrt(max s · min s), s clamped to >= 1e-4 first); W·diag(s) quantized on the
// grid, then ·diag(s)⁻¹; α from the grid {0, 1/20, ..., 19/20} minimizing the layer output
// MSE on the calibration inputs. α = 0 is plain round-to-nearest, so the calibration loss
// never exceeds RTN's.
// In a deployed AWQ model diag(s)⁻¹ is folded into the previous op (the RMSNorm weight
// before q/k/v and gate/up, v before attn_output, up before down) and the file stores
// Q(W·diag(s)); awqQuantize keeps it explicit (Ŵ = Q(W·diag(s))·diag(s)⁻¹) for the
// comparison; awqSearchBy and awqLoss are the export's (awq-export.ts): one s shared by the
// linears that read the same input, each quantized as the export will quantize it (its own
// type's round-to-nearest) in the form the file stores. The grid is GPTQ's asym INT grid (grid.ts), the same RTN and GPTQ use,
// so that the three differ only in their method (llm-awq's own grid leaves 0 out of the
// range; a detail at 4 bits).
import { gram, outputMse, quantizeRtn, type Grid } from './grid.ts';

export const AWQ_GRID_POINTS = 20;
const AWQ_MIN_SCALE = 1e-4;

export interface AwqResult {
  /** Ŵ = Q(W·diag(s))·diag(s)⁻¹, row-major. */
  weights: Float64Array;
  alpha: number;
  /** Per input channel. */
  scales: Float64Array;
  /** Layer output MSE on the calibration inputs at the chosen α, and at α = 0 (RTN). */
  calibrationMse: number;
  rtnCalibrationMse: number;
}

/** mean |x| per column over n input rows. */
export function meanAbs(x: ArrayLike<number>, n: number, cols: number): Float64Array {
  const m = new Float64Array(cols);
  for (let t = 0; t < n; t++) for (let c = 0; c < cols; c++) m[c] += Math.abs(x[t * cols + c]);
  for (let c = 0; c < cols; c++) m[c] /= n;
  return m;
}

/** AWQ's scales for one α. */
export function awqScales(actMean: Float64Array, alpha: number): Float64Array {
  const s = actMean.map((v) => Math.max(Math.pow(v, alpha), AWQ_MIN_SCALE));
  let max = -Infinity;
  let min = Infinity;
  for (const v of s) {
    max = Math.max(max, v);
    min = Math.min(min, v);
  }
  const norm = Math.sqrt(max * min);
  return s.map((v) => v / norm);
}

/** Q(W·diag(s))·diag(s)⁻¹. */
export function quantizeScaled(w: ArrayLike<number>, rows: number, cols: number, s: Float64Array, grid: Grid): Float64Array {
  const scaled = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) scaled[r * cols + c] = w[r * cols + c] * s[c];
  const q = quantizeRtn(scaled, rows, cols, grid);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) q[r * cols + c] /= s[c];
  return q;
}

/** AWQ's α search for a rows x cols weight on n calibration input rows x. */
export function awqQuantize(w: ArrayLike<number>, rows: number, cols: number, x: ArrayLike<number>, n: number, grid: Grid): AwqResult {
  const act = meanAbs(x, n, cols);
  const g = gram(x, n, cols);
  let best: AwqResult | null = null;
  let rtn = NaN;
  for (let i = 0; i < AWQ_GRID_POINTS; i++) {
    const alpha = i / AWQ_GRID_POINTS;
    const scales = awqScales(act, alpha);
    const weights = quantizeScaled(w, rows, cols, scales, grid);
    const mse = outputMse(w, weights, rows, cols, g, n);
    if (i === 0) rtn = mse;
    if (!best || mse < best.calibrationMse) best = { weights, alpha, scales, calibrationMse: mse, rtnCalibrationMse: rtn };
  }
  return { ...best!, rtnCalibrationMse: rtn };
}

/**
 * A linear weight AWQ scales, as the export stores it: diag(1/rowScale)·W·diag(s), the rows
 * divided by a later layer's scales folded into them (v before attn_output, up before down;
 * none: ones), rounded to f32, then quantized by `quantize` (the export type's RTN).
 */
export interface AwqLinear {
  /** The original weight, rows x cols, row-major. */
  w: ArrayLike<number>;
  rows: number;
  rowScale?: Float64Array;
  /** The stored values' dequantized round trip through the export's quantizer. */
  quantize: (stored: Float32Array) => ArrayLike<number>;
}

/** The values the file stores for `l` under input scales s: f32(W[r][c]·s[c] / rowScale[r]). */
export function storedWeights(l: AwqLinear, s: ArrayLike<number>): Float32Array {
  const cols = s.length;
  const out = new Float32Array(l.rows * cols);
  for (let r = 0; r < l.rows; r++) {
    const rs = l.rowScale ? l.rowScale[r] : 1;
    for (let c = 0; c < cols; c++) out[r * cols + c] = (l.w[r * cols + c] * s[c]) / rs;
  }
  return out;
}

/** What the model computes with the stored, quantized weight, in W's frame: diag(rowScale)·Q(stored)·diag(s)⁻¹. */
export function effectiveWeights(l: AwqLinear, s: ArrayLike<number>): Float64Array {
  const cols = s.length;
  const q = l.quantize(storedWeights(l, s));
  const out = new Float64Array(l.rows * cols);
  for (let r = 0; r < l.rows; r++) {
    const rs = l.rowScale ? l.rowScale[r] : 1;
    for (let c = 0; c < cols; c++) out[r * cols + c] = (q[r * cols + c] * rs) / s[c];
  }
  return out;
}

/** Σ of the linears' output MSE with input scales s, on the inputs whose XᵀX is g (n rows). */
export function awqLoss(linears: readonly AwqLinear[], s: ArrayLike<number>, g: Float64Array, n: number): number {
  let loss = 0;
  for (const l of linears) loss += outputMse(l.w, effectiveWeights(l, s), l.rows, s.length, g, n);
  return loss;
}

export interface AwqSearch {
  alpha: number;
  scales: Float64Array;
  /** The loss on the calibration inputs at α, and at α = 0 (s = 1: plain RTN of the stored form). */
  loss: number;
  rtnLoss: number;
}

/** AWQ's α grid over the scales of `actMean` (mean |x| per input column), scored by `loss`. */
export async function awqSearchBy(actMean: Float64Array, loss: (s: Float64Array) => number | Promise<number>): Promise<AwqSearch> {
  let best: AwqSearch | null = null;
  let rtnLoss = NaN;
  for (let i = 0; i < AWQ_GRID_POINTS; i++) {
    const alpha = i / AWQ_GRID_POINTS;
    const scales = awqScales(actMean, alpha);
    const l = await loss(scales);
    if (i === 0) rtnLoss = l;
    if (!best || l < best.loss) best = { alpha, scales, loss: l, rtnLoss };
  }
  return { ...best!, rtnLoss };
}
