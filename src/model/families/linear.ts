// The matrix-product seam of every forward pass: a WeightProvider gives a tensor's f32
// values, a Linear computes y = W·x for a weight by name. The CPU reference (cpuLinear,
// matmulF32) accumulates in f64; gpu-linear.ts plugs in WebGPU's quantized kernels.

/** A tensor's values as f32, row-major in PyTorch order (rows of the innermost dimension). */
export type WeightProvider = (name: string) => Float32Array;

/**
 * A provider that can also give row r of a tensor on its own (a packed tensor's row decoded
 * alone, the same floats as that row of the whole decode): the forward pass reads embedding
 * rows through it, so a quantized token embedding is never decoded whole.
 */
export interface RowReader {
  row(name: string, r: number, cols: number): Float32Array;
}

/** Row r of the tensor `name` ([rows, cols]): through the provider's row reader where it has one. */
export function weightRow(weights: WeightProvider, name: string, r: number, cols: number): Float32Array {
  const reader = (weights as WeightProvider & Partial<RowReader>).row;
  return reader ? reader(name, r, cols) : weights(name).subarray(r * cols, (r + 1) * cols);
}

/**
 * y = W·x for `n` input vectors, W = the tensor `name` of shape [rows, cols] (PyTorch
 * order: `rows` outputs, rows of `cols` = GGUF ne0). x holds n vectors of `cols` one after
 * another; the result holds n vectors of `rows`. May return a Promise (a GPU readback).
 *
 * Plugging in the GPU: keep the packed blocks of each quantized tensor (weights.ts
 * `QuantizedWeights.packed`) and return
 *   (name, x, n, rows, cols) => { const p = packed.get(name); if (!p) return cpu(name, x, n, rows, cols);
 *     return n === 1 ? matvecOnGpu(gpu, p.type, p.bytes, rows, cols, x) : <n calls, or a matmul kernel> }
 * The forward pass calls it with n = tokens in the chunk (1 while generating).
 */
export type Linear = (name: string, x: Float32Array, n: number, rows: number, cols: number) => Float32Array | Promise<Float32Array>;

/** The CPU reference product over f32 weights, accumulating in f64. */
export function cpuLinear(weights: WeightProvider): Linear {
  return (name, x, n, rows, cols) => {
    const w = weights(name);
    if (w.length !== rows * cols) throw new Error(`tensor '${name}' has ${w.length} values, expected ${rows} x ${cols}`);
    return matmulF32(w, rows, cols, x, n);
  };
}

/**
 * y[t][r] = Σ_c w[r][c]·x[t][c], f64 accumulation, f32 result.
 * A plain loop streams all of W once per token (memory-bound past the caches); here two rows
 * meet four tokens at a time, so each weight read serves four tokens and each input read two
 * rows (x0.37-0.38 of the plain loop's time at 1024-2816 columns: `npx tsx bench/cpu-products.ts`).
 * Every sum still runs over c in order, from 0, so y is the plain loop's bit for bit.
 */
export function matmulF32(w: Float32Array, rows: number, cols: number, x: Float32Array, n: number): Float32Array {
  const y = new Float32Array(n * rows);
  let t = 0;
  for (; t + 4 <= n; t += 4) {
    let r = 0;
    for (; r + 2 <= rows; r += 2) rows2Tokens4(w, r, cols, x, t, y, rows);
    if (r < rows) rows1Tokens4(w, r, cols, x, t, y, rows);
  }
  for (; t < n; t++) {
    const xo = t * cols;
    for (let r = 0; r < rows; r++) {
      const wo = r * cols;
      let s = 0;
      for (let c = 0; c < cols; c++) s += w[wo + c] * x[xo + c];
      y[t * rows + r] = s;
    }
  }
  return y;
}

/** Rows r, r + 1 against tokens t..t + 3 (matmulF32's tile). Plain scalars: destructured, V8 made them 2.5x slower. */
function rows2Tokens4(w: Float32Array, r: number, cols: number, x: Float32Array, t: number, y: Float32Array, rows: number): void {
  const wa = r * cols;
  const wb = wa + cols;
  const x0 = t * cols;
  const x1 = x0 + cols;
  const x2 = x1 + cols;
  const x3 = x2 + cols;
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
  for (let c = 0; c < cols; c++) {
    const a = w[wa + c];
    const b = w[wb + c];
    const v0 = x[x0 + c];
    const v1 = x[x1 + c];
    const v2 = x[x2 + c];
    const v3 = x[x3 + c];
    a0 += a * v0;
    a1 += a * v1;
    a2 += a * v2;
    a3 += a * v3;
    b0 += b * v0;
    b1 += b * v1;
    b2 += b * v2;
    b3 += b * v3;
  }
  const o = t * rows + r;
  y[o] = a0;
  y[o + rows] = a1;
  y[o + 2 * rows] = a2;
  y[o + 3 * rows] = a3;
  y[o + 1] = b0;
  y[o + 1 + rows] = b1;
  y[o + 1 + 2 * rows] = b2;
  y[o + 1 + 3 * rows] = b3;
}

/** Row r against tokens t..t + 3 (an odd row count's last row). */
function rows1Tokens4(w: Float32Array, r: number, cols: number, x: Float32Array, t: number, y: Float32Array, rows: number): void {
  const wa = r * cols;
  const x0 = t * cols;
  const x1 = x0 + cols;
  const x2 = x1 + cols;
  const x3 = x2 + cols;
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (let c = 0; c < cols; c++) {
    const a = w[wa + c];
    a0 += a * x[x0 + c];
    a1 += a * x[x1 + c];
    a2 += a * x[x2 + c];
    a3 += a * x[x3 + c];
  }
  const o = t * rows + r;
  y[o] = a0;
  y[o + rows] = a1;
  y[o + 2 * rows] = a2;
  y[o + 3 * rows] = a3;
}
