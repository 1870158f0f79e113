// The quantization grids GPTQ, AWQ and round-to-nearest are compared on: per output row
// and group of input columns, a (scale, zero) found from the group's current values, and
// x -> its dequantized grid value. Scalar f64 code (house rule 3), row-major weights.
// - 'int': GPTQ's Quantizer (IST-DASLab/gptq quant.py, find_params with perchannel and
//   weight=True; quantize): asym, xmin = min(min, 0), xmax = max(max, 0) (both 0 -> [-1, 1]),
//   scale = (xmax - xmin) / maxq, zero = round(-xmin / scale), maxq = 2^bits - 1,
//   q = clamp(round(x / scale) + zero, 0, maxq), value = scale * (q - zero). Scales stay f32
//   here (our INT4 codec stores them as f16: src/quant/codecs/intn.ts).
// - 'q4_0': ggml's Q4_0 block of 32 (quantize_row_q4_0_ref): d = (the value of largest
//   magnitude) / -8, codes min(15, trunc(x / d + 8.5)) with the f32 d, value = (q - 8) * f16(d).
//   GPTQ into this grid gives weights Q4_0 blocks hold exactly.
// - Q4_K (q4KBlockParams, q4KCode, q4KValue; GPTQ only, gptq.ts gptqQ4_K): ggml's super-block
//   of 256 (quantize_row_q4_K_ref): d, dmin and eight 6-bit scales and mins found from the
//   256 values by our reference codec's own encoder, then q = clamp(nearest_int((x + dm)/dl), 0, 15)
//   with dl = f16(d)·sc_j, dm = f16(dmin)·m_j, value = dl·q − dm (dequantize_row_q4_K).
// A last group shorter than `group` (a row length it does not divide, as stories260K's 172)
// is a group of its own, as GPTQ's column groups are.
import { f16BitsToF32, f32ToF16Bits } from '../formats/float16.ts';
import { Q4_K, QK_K } from '../quant/codecs/kquants.ts';
import { nearestIntC } from '../quant/codecs/rounding.ts';

export type Grid = { kind: 'int'; bits: number; group: number } | { kind: 'q4_0' };

export const Q4_0_GROUP = 32;

export function gridGroup(grid: Grid): number {
  return grid.kind === 'q4_0' ? Q4_0_GROUP : grid.group;
}

export function gridLabel(grid: Grid): string {
  return grid.kind === 'q4_0' ? 'q4_0' : `int${grid.bits}_g${grid.group}`;
}

/** torch.round: half to even. */
function roundEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface GroupParams {
  scale: number;
  zero: number;
}

/** The grid's params for the values v[from..to) (one row's group). */
export function groupParams(grid: Grid, v: ArrayLike<number>, from: number, to: number): GroupParams {
  if (grid.kind === 'q4_0') {
    let amax = 0;
    let max = 0;
    for (let i = from; i < to; i++) {
      const a = Math.abs(v[i]);
      if (a > amax) {
        amax = a;
        max = v[i];
      }
    }
    return { scale: Math.fround(max / -8), zero: 8 };
  }
  let lo = 0;
  let hi = 0;
  for (let i = from; i < to; i++) {
    if (v[i] < lo) lo = v[i];
    if (v[i] > hi) hi = v[i];
  }
  if (lo === 0 && hi === 0) {
    lo = -1;
    hi = 1;
  }
  const maxq = 2 ** grid.bits - 1;
  const scale = Math.fround((hi - lo) / maxq);
  return { scale, zero: roundEven(-lo / scale) };
}

/** Q4_0's code of x for the block scale d (f32, before its f16 rounding), as ggml computes it. */
export function q4_0Code(x: number, d: number): number {
  const id = d !== 0 ? Math.fround(1 / d) : 0;
  return Math.max(0, Math.min(15, Math.trunc(Math.fround(Math.fround(x * id) + 8.5))));
}

/** Q4_K's super-block: 256 values, sub-blocks of 32 with their own 6-bit scale and min. */
export const Q4_K_GROUP = QK_K;
/** block_q4_K's header (f16 d, f16 dmin, scales[12]); qs[128] follow it. */
export const Q4_K_HEADER_BYTES = 16;

export interface Q4KBlockParams {
  /** block_q4_K's first 16 bytes, as ggml writes them for these values. */
  header: Uint8Array;
  /** Per sub-block of 32: dl = f16(d)·sc_j and dm = f16(dmin)·m_j, in f32 as ggml computes them. */
  scale: Float32Array;
  min: Float32Array;
}

/**
 * The block params ggml's quantize_row_q4_K_ref finds for 256 values (rounded to f32, the
 * C's float input): our reference Q4_K codec encodes them (no importance: the _ref path)
 * and the header is read back, so the params are the codec's byte for byte.
 */
export function q4KBlockParams(values: ArrayLike<number>, from: number): Q4KBlockParams {
  const x = new Float32Array(Q4_K_GROUP);
  for (let i = 0; i < Q4_K_GROUP; i++) x[i] = values[from + i];
  const header = Q4_K.encode(x, Q4_K_GROUP).slice(0, Q4_K_HEADER_BYTES);
  const view = new DataView(header.buffer);
  const d = f16BitsToF32(view.getUint16(0, true));
  const dmin = f16BitsToF32(view.getUint16(2, true));
  const scale = new Float32Array(8);
  const min = new Float32Array(8);
  for (let j = 0; j < 8; j++) {
    const [sc, m] = q4KScaleMin(header, j);
    scale[j] = d * sc;
    min[j] = dmin * m;
  }
  return { header, scale, min };
}

/** ggml get_scale_min_k4: sub-block j's 6-bit scale and min from scales[12] (header bytes 4..15). */
function q4KScaleMin(header: Uint8Array, j: number): [number, number] {
  const q = header.subarray(4);
  if (j < 4) return [q[j] & 63, q[j + 4] & 63];
  return [(q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)];
}

/**
 * Q4_K's code of x in a sub-block with scale dl and min dm, as quantize_row_q4_K_ref's last
 * loop: clamp(nearest_int((x + dm)/dl), 0, 15) in float; with dl = 0 ggml keeps the search's
 * code, which any code decodes the same (to −dm), so 0 here.
 */
export function q4KCode(x: number, dl: number, dm: number): number {
  if (dl === 0) return 0;
  return Math.max(0, Math.min(15, nearestIntC(Math.fround(Math.fround(Math.fround(x) + dm) / dl))));
}

/** dequantize_row_q4_K's value of code q: dl·q − dm, each step in f32. */
export function q4KValue(q: number, dl: number, dm: number): number {
  return Math.fround(Math.fround(dl * q) - dm);
}

/** Byte of element e (0..255) of a block_q4_K's qs, after the header, and whether it is the high nibble. */
export function q4KCodeAt(e: number): { byte: number; high: boolean } {
  return { byte: Q4_K_HEADER_BYTES + 32 * (e >> 6) + (e & 31), high: (e & 32) !== 0 };
}

/** x's value on the grid. */
export function quantizeValue(grid: Grid, x: number, p: GroupParams): number {
  if (grid.kind === 'q4_0') return (q4_0Code(x, p.scale) - 8) * f16BitsToF32(f32ToF16Bits(p.scale));
  const maxq = 2 ** grid.bits - 1;
  const q = Math.max(0, Math.min(maxq, roundEven(x / p.scale) + p.zero));
  return p.scale * (q - p.zero);
}

/** Round-to-nearest: each row's groups quantized on their own values. */
export function quantizeRtn(w: ArrayLike<number>, rows: number, cols: number, grid: Grid): Float64Array {
  const g = gridGroup(grid);
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c0 = 0; c0 < cols; c0 += g) {
      const c1 = Math.min(c0 + g, cols);
      const p = groupParams(grid, w, o + c0, o + c1);
      for (let c = c0; c < c1; c++) out[o + c] = quantizeValue(grid, w[o + c], p);
    }
  }
  return out;
}

/**
 * G = XᵀX (cols x cols, f64) of n input rows. The upper triangle gathers four rows of X at a
 * time, so each G entry is read and written once per four rows rather than once per row
 * (x0.42-0.51 of its time: `npx tsx bench/cpu-products.ts`); each entry still adds its terms
 * row by row, in order, so G is the one-row-at-a-time loop's bit for bit (a zero term leaves
 * a sum unchanged).
 */
export function gram(x: ArrayLike<number>, n: number, cols: number): Float64Array {
  const g = new Float64Array(cols * cols);
  let t = 0;
  for (; t + 4 <= n; t += 4) {
    const o0 = t * cols;
    const o1 = o0 + cols;
    const o2 = o1 + cols;
    const o3 = o2 + cols;
    for (let i = 0; i < cols; i++) {
      const a0 = x[o0 + i];
      const a1 = x[o1 + i];
      const a2 = x[o2 + i];
      const a3 = x[o3 + i];
      const gi = i * cols;
      for (let j = i; j < cols; j++) {
        let s = g[gi + j];
        s += a0 * x[o0 + j];
        s += a1 * x[o1 + j];
        s += a2 * x[o2 + j];
        s += a3 * x[o3 + j];
        g[gi + j] = s;
      }
    }
  }
  for (; t < n; t++) {
    const o = t * cols;
    for (let i = 0; i < cols; i++) {
      const xi = x[o + i];
      if (xi === 0) continue;
      const gi = i * cols;
      for (let j = i; j < cols; j++) g[gi + j] += xi * x[o + j];
    }
  }
  for (let i = 0; i < cols; i++) for (let j = 0; j < i; j++) g[i * cols + j] = g[j * cols + i];
  return g;
}

/**
 * Layer output MSE: ||X Wᵀ − X Ŵᵀ||² / (n · rows), from G = XᵀX: Σ_r Δ_r G Δ_rᵀ / (n · rows).
 */
export function outputMse(w: ArrayLike<number>, wq: ArrayLike<number>, rows: number, cols: number, g: Float64Array, n: number): number {
  const d = new Float64Array(cols);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) d[c] = w[r * cols + c] - wq[r * cols + c];
    for (let i = 0; i < cols; i++) {
      if (d[i] === 0) continue;
      let s = 0;
      const gi = i * cols;
      for (let j = 0; j < cols; j++) s += g[gi + j] * d[j];
      total += d[i] * s;
    }
  }
  return total / (n * rows);
}
