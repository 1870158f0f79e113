// AWQ (Lin et al. 2023, mit-han-lab/llm-awq auto_scale.py _search_module_scale), per linear
// weight: s = mean|x|^α per input channel (x: the calibration inputs), normalized as AWQ
// does (s / sqrt(max s · min s), s clamped to >= 1e-4 first); W·diag(s) quantized on the
// grid, then ·diag(s)⁻¹; α from the grid {0, 1/20, ..., 19/20} minimizing the layer output
// MSE on the calibration inputs. α = 0 is plain round-to-nearest, so the calibration loss
// never exceeds RTN's.
// In a deployed AWQ model diag(s)⁻¹ is folded into the previous op (the RMSNorm weight
// before q/k/v and gate/up, v before attn_output, up before down) and the file stores
// Q(W·diag(s)); we keep it explicit (Ŵ = Q(W·diag(s))·diag(s)⁻¹), since AWQ export to GGUF
// is not done here. The grid is GPTQ's asym INT grid (grid.ts), the same RTN and GPTQ use,
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
