// The CPU forward pass's fast matrix products: WebAssembly SIMD (wasm/matmul.ts, in the
// fast codecs' module) over slabs of weight rows. A slab (~128 KiB of f32 rows, a level-2
// cache's worth) is copied, or decoded from a quantized tensor's packed blocks, into the
// module's memory and meets every input there, so the weights stream from RAM once per
// product whatever the token count, and a quantized tensor never needs an f32 copy.
//
// Numerics (the tolerance, stated): the products are exact in f64 and summed in f64 as
// the reference (families/linear.ts matmulF32) sums them, but in two interleaved partial
// sums; each output is the reference's f32, or one f32 ulp from it (the f64 sums differ by
// ~1e-16 relative, so only a value next to an f32 rounding boundary can round the other
// way). Eval's KL figures stay within 1e-6 relative of the reference path (fast-linear.test.ts).
//
// accumulate 'f32' (F32 weights under --activations ggml: see Sums): llama.cpp's numerics instead, products and sums in f32 over four
// SIMD lanes (wasm/matmul.ts matmulSlabF32), about 3x the f64 kernel's speed; each output is
// within a few f32 ulps of Σ|w·x| of the reference (fast-linear.test.ts states the bound).
// Where the engine validates relaxed SIMD (Node via node.ts's flag) each step is one
// f32x4.relaxed_madd (matmul-relaxed.wasm): fused where the CPU has FMA, as llama.cpp's, ~1.2x
// the mul + add kernel; the same bits run to run on one machine, not across machines
// (fast-linear-relaxed.test.ts: a scalar fused reference, and the fallback's bits). Not the default: tried 2026-12-07, f32
// sums moved eval's KL figures up to 1.0e-5 relative from the reference path's (stories260K
// Q4_K_M median KL; the test below holds 1e-6).
//
// Without the module installed (QUANTLAB_FAST_CODECS=0, or before installFastCodecs), or for
// a column count that is not a multiple of 4, the reference matmulF32 runs.
import { wasmMatmulExports } from '../quant/fast/wasm-codecs.ts';
import type { QuantType } from '../quant/types.ts';
import type { ActivationMode } from './activations.ts';
import { matmulF32, type Linear, type WeightProvider } from './families/linear.ts';
import type { PackedTensor } from './weights.ts';

/** Weight bytes per slab: fits a level-2 cache beside the inputs. */
const SLAB_BYTES = 128 * 1024;
const WASM_PAGE = 65536;

/** How a product sums: in f64 (the reference's figures, to an ulp) or in f32 (llama.cpp's, faster). */
export type Accumulate = 'f64' | 'f32';

/**
 * How a Linear sums each product: one Accumulate for every tensor, or 'ggml', llama.cpp's
 * choice by weight type: f32 sums for F32 weights (llama.cpp's vec_dot_f32: it quantizes no
 * activations for them), f64 for packed ones (llama.cpp sums their integer block products
 * exactly; the f64 sum of the decoded products is the nearer figure).
 */
export type Sums = Accumulate | 'ggml';

/** The Accumulate of one product under `sums`, for packed or F32 weights. */
export function accumulateOf(sums: Sums, packed: boolean): Accumulate {
  return sums === 'ggml' ? (packed ? 'f64' : 'f32') : sums;
}

/** The sums of an activation mode's products: llama.cpp's ('ggml') under --activations ggml, the reference's (f64) under every other. */
export function sumsFor(activations: ActivationMode | undefined): Sums {
  return activations === 'ggml' ? 'ggml' : 'f64';
}

/** Rows [r0, r1) of a weight matrix as f32, written into `out` (length (r1 - r0) × cols). */
export type RowSource = (r0: number, r1: number, out: Float32Array) => void;

/** Rows of a plain f32 matrix. */
export function f32Rows(w: Float32Array, cols: number): RowSource {
  return (r0, r1, out) => out.set(w.subarray(r0 * cols, r1 * cols));
}

/** Bytes of one packed row of `cols` values of `type`. */
export function packedRowBytes(type: QuantType, cols: number): number {
  return type.bytesFor(1, cols);
}

/** Rows of a packed tensor, decoded by its codec (the fast decoder where there is one: the reference's floats bit for bit). */
export function packedRows(p: PackedTensor): RowSource {
  const rowBytes = packedRowBytes(p.type, p.cols);
  return (r0, r1, out) => out.set(p.type.codec.decode(p.bytes.subarray(r0 * rowBytes, r1 * rowBytes), r1 - r0, p.cols));
}

/** Rows per slab for `cols` columns: even (the kernel pairs rows), at least 2. */
export function slabRows(cols: number): number {
  return Math.max(2, Math.floor(SLAB_BYTES / (cols * 4)) & ~1);
}

/** True when products run in WebAssembly (the module is installed). */
export function fastMatmulAvailable(): boolean {
  return wasmMatmulExports() !== null;
}

/**
 * y = W·x over rows [r0, r1) of W only (n inputs of `cols`): the result holds n vectors of
 * r1 - r0 values. The reference's order and numerics up to one ulp (see the top).
 */
export function matmulRows(rowsOf: RowSource, r0: number, r1: number, cols: number, x: Float32Array, n: number, accumulate: Accumulate = 'f64'): Float32Array {
  const rows = r1 - r0;
  const e = wasmMatmulExports();
  if (!e || cols % 4 !== 0) {
    const w = new Float32Array(rows * cols);
    rowsOf(r0, r1, w);
    return matmulF32(w, rows, cols, x, n);
  }
  const slab = Math.min(slabRows(cols), rows);
  // Module memory from heapBase: x (f32, then widened to f64 for f64 sums), one slab of rows,
  // the whole output (each slab's kernel writes its columns of it in place: one copy out).
  const wide = accumulate === 'f64';
  const xAt = align(e.heapBase());
  const wideAt = align(xAt + n * cols * 4);
  const wAt = align(wideAt + (wide ? n * cols * 8 : 0));
  const yAt = align(wAt + slab * cols * 4);
  const end = yAt + n * rows * 4;
  if (end > e.memory.buffer.byteLength) e.memory.grow(Math.ceil((end - e.memory.buffer.byteLength) / WASM_PAGE));
  const buffer = e.memory.buffer;
  new Float32Array(buffer, xAt, n * cols).set(x.subarray(0, n * cols));
  if (wide) e.widenF32(xAt, n * cols, wideAt);
  const wView = new Float32Array(buffer, wAt, slab * cols);
  for (let s = 0; s < rows; s += slab) {
    const m = Math.min(slab, rows - s);
    rowsOf(r0 + s, r0 + s + m, m === slab ? wView : wView.subarray(0, m * cols));
    if (wide) e.matmulSlab(wAt, m, cols, wideAt, n, yAt + s * 4, rows);
    else e.matmulSlabF32(wAt, m, cols, xAt, n, yAt + s * 4, rows);
  }
  return new Float32Array(buffer, yAt, n * rows).slice();
}

function align(at: number): number {
  return (at + 15) & ~15;
}

/** Bytes of decoded weights fastCpuLinear keeps by default: a small model's every tensor, a 0.5B model's few. */
export const DECODED_BUDGET_BYTES = 256 * 1024 * 1024;

/**
 * The fast CPU Linear: each tensor with packed blocks (a preset's converted tensors)
 * decoded from them, every other tensor from `weights` as f32. Decoded tensors are kept
 * while they fit `decodedBudgetBytes` (a small model decodes each tensor once); past it, a
 * tensor is decoded slab by slab in every product and never held as f32 whole.
 * `sums`: see Sums (the reference's f64 sums unless asked).
 */
export function fastCpuLinear(
  weights: WeightProvider,
  packed: ReadonlyMap<string, PackedTensor> | null = null,
  decodedBudgetBytes = DECODED_BUDGET_BYTES,
  sums: Sums = 'f64',
): Linear {
  const decoded = new Map<string, Float32Array>();
  let decodedBytes = 0;
  return (name, x, n, rows, cols) => {
    const p = packed?.get(name);
    if (p) {
      if (p.rows !== rows || p.cols !== cols) throw new Error(`tensor '${name}' is ${p.rows} x ${p.cols}, expected ${rows} x ${cols}`);
      let w = decoded.get(name);
      if (!w && decodedBytes + rows * cols * 4 <= decodedBudgetBytes) {
        w = p.type.codec.decode(p.bytes, rows, cols);
        decoded.set(name, w);
        decodedBytes += w.byteLength;
      }
      const accumulate = accumulateOf(sums, true);
      return w ? product(w, rows, cols, x, n, accumulate) : matmulRows(packedRows(p), 0, rows, cols, x, n, accumulate);
    }
    const w = weights(name);
    if (w.length !== rows * cols) throw new Error(`tensor '${name}' has ${w.length} values, expected ${rows} x ${cols}`);
    return product(w, rows, cols, x, n, accumulateOf(sums, false));
  };
}

/** W·x for f32 weights: in WebAssembly when it runs, else the reference on W itself (no copy). */
function product(w: Float32Array, rows: number, cols: number, x: Float32Array, n: number, accumulate: Accumulate): Float32Array {
  return fastMatmulAvailable() && cols % 4 === 0 ? matmulRows(f32Rows(w, cols), 0, rows, cols, x, n, accumulate) : matmulF32(w, rows, cols, x, n);
}
