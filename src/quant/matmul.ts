// Reference matrix products for the quantized matmul (src/gpu/matmul.ts) and the error a
// quantization type puts into a product. Plain scalar code, no GPU (house rule 3).
//
// Layouts (the same as the GPU's): W is `rows` rows of `cols` values, row-major (GGUF's
// ne0 = cols); X is n vectors of `cols` values, token t at [t * cols, (t + 1) * cols);
// Y = W X is n vectors of `rows` values, token t, row r at t * rows + r. That is ggml's
// and PyTorch's (x @ W^T) token-major layout; a matvec is the case n = 1.
import type { QuantType } from './types.ts';

function checkShape(w: ArrayLike<number>, rows: number, cols: number, x: ArrayLike<number>, n: number, what: string): void {
  if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(cols) || cols <= 0 || !Number.isInteger(n) || n < 1) {
    throw new RangeError(`${what}: bad shape ${rows} x ${cols} times ${cols} x ${n}`);
  }
  if (w.length !== rows * cols) throw new RangeError(`${what}: W has ${w.length} values, expected ${rows} x ${cols}`);
  if (x.length !== cols * n) throw new RangeError(`${what}: X has ${x.length} values, expected ${n} vectors of ${cols}`);
}

/**
 * Y = W X accumulated in f32, in a fixed order: for each output, s = 0, then for
 * k = 0 .. cols-1 in order, s = f32(s + f32(W[r,k] * X[k,t])) (no fused multiply-add).
 * The GPU sums in another order (per-block partial sums, then a tree): both are within
 * f32 rounding of matmulF64.
 */
export function matmulF32(w: Float32Array, rows: number, cols: number, x: Float32Array, n: number): Float32Array {
  checkShape(w, rows, cols, x, n, 'matmulF32');
  const y = new Float32Array(rows * n);
  const f = Math.fround;
  for (let t = 0; t < n; t++) {
    const xo = t * cols;
    for (let r = 0; r < rows; r++) {
      const wo = r * cols;
      let s = 0;
      for (let k = 0; k < cols; k++) s = f(s + f(w[wo + k] * x[xo + k]));
      y[t * rows + r] = s;
    }
  }
  return y;
}

/** Y = W X in f64 (each f32 product is exact in f64; the sums round at 2^-53): the reference. */
export function matmulF64(w: ArrayLike<number>, rows: number, cols: number, x: ArrayLike<number>, n: number): Float64Array {
  checkShape(w, rows, cols, x, n, 'matmulF64');
  const y = new Float64Array(rows * n);
  for (let t = 0; t < n; t++) {
    const xo = t * cols;
    for (let r = 0; r < rows; r++) {
      const wo = r * cols;
      let s = 0;
      for (let k = 0; k < cols; k++) s += w[wo + k] * x[xo + k];
      y[t * rows + r] = s;
    }
  }
  return y;
}

export function matvecF32(w: Float32Array, rows: number, cols: number, x: Float32Array): Float32Array {
  return matmulF32(w, rows, cols, x, 1);
}

export function matvecF64(w: ArrayLike<number>, rows: number, cols: number, x: ArrayLike<number>): Float64Array {
  return matmulF64(w, rows, cols, x, 1);
}

/** The CPU product of packed weights: W decoded by the type's CPU codec, then multiplied. */
export interface DequantizedProduct {
  /** W as the CPU codec decodes it (rows x cols). */
  readonly w: Float32Array;
  /** matmulF32 of the decoded W. */
  readonly f32: Float32Array;
  /** matmulF64 of the decoded W: what the GPU product is checked against. */
  readonly f64: Float64Array;
}

export function dequantizedProduct(type: QuantType, packedW: Uint8Array, rows: number, cols: number, x: Float32Array, n = 1): DequantizedProduct {
  const w = type.codec.decode(packedW, rows, cols);
  return { w, f32: matmulF32(w, rows, cols, x, n), f64: matmulF64(w, rows, cols, x, n) };
}

/** Norm-wise relative error ||y - ref|| / ||ref|| in f64 (0 when both are zero, Infinity when only ref is). */
export function relativeError(y: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (y.length !== ref.length) throw new RangeError(`relativeError: ${y.length} values vs ${ref.length}`);
  let err = 0;
  let norm = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = y[i] - ref[i];
    err += d * d;
    norm += ref[i] * ref[i];
  }
  if (norm === 0) return err === 0 ? 0 : Infinity;
  return Math.sqrt(err / norm);
}

/** How far a quantized product is from the unquantized one. */
export interface ProductError {
  /** ||Y_q - Y|| / ||Y||, norm-wise over all outputs. */
  readonly relError: number;
  /** max |Y_q - Y| over all outputs. */
  readonly maxAbsError: number;
  /** 10 log10(||Y||^2 / ||Y_q - Y||^2); Infinity when exact. */
  readonly snrDb: number;
  /** Cosine of Y_q and Y (flattened); 1 for two zero products. */
  readonly cosine: number;
}

/** Error of `approx` against `ref` as a ProductError. */
export function productError(approx: ArrayLike<number>, ref: ArrayLike<number>): ProductError {
  if (approx.length !== ref.length) throw new RangeError(`productError: ${approx.length} values vs ${ref.length}`);
  let err = 0;
  let nr = 0;
  let na = 0;
  let dot = 0;
  let maxAbs = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = approx[i] - ref[i];
    err += d * d;
    nr += ref[i] * ref[i];
    na += approx[i] * approx[i];
    dot += approx[i] * ref[i];
    maxAbs = Math.max(maxAbs, Math.abs(d));
  }
  return {
    relError: nr === 0 ? (err === 0 ? 0 : Infinity) : Math.sqrt(err / nr),
    maxAbsError: maxAbs,
    snrDb: err === 0 ? Infinity : 10 * Math.log10(nr / err),
    cosine: nr === 0 || na === 0 ? (nr === na ? 1 : 0) : dot / Math.sqrt(nr * na),
  };
}

export interface ProductErrorOptions {
  /** Importance weights per column, passed to the codec (llama.cpp's imatrix). */
  importance?: Float32Array;
  /** The type's blocks of W when already quantized (skips the encode). */
  packed?: Uint8Array;
}

/**
 * The error quantizing W to `type` puts into Y = W X: W quantized and decoded by the CPU
 * codec, both products in f64 so that only the quantization error is measured.
 */
export function matmulError(type: QuantType, w: Float32Array, rows: number, cols: number, x: Float32Array, n: number, options: ProductErrorOptions = {}): ProductError {
  checkShape(w, rows, cols, x, n, 'matmulError');
  const packed = options.packed ?? type.codec.encode(w, cols, options.importance);
  const wq = type.codec.decode(packed, rows, cols);
  return productError(matmulF64(wq, rows, cols, x, n), matmulF64(w, rows, cols, x, n));
}

/** ||W_q x - W x|| / ||W x||: the relative error of the decode-case product (see matmulError). */
export function matvecError(type: QuantType, w: Float32Array, rows: number, cols: number, x: Float32Array, options: ProductErrorOptions = {}): number {
  return matmulError(type, w, rows, cols, x, 1, options).relError;
}
