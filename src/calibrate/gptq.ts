// GPTQ (Frantar et al. 2022), the CPU reference, written from the algorithm of
// IST-DASLab/gptq gptq.py (GPTQ.add_batch, fasterquant):
// - H = 2/N · XᵀX over the N calibration input rows of the layer;
// - dead columns (H_ii = 0): H_ii = 1 and the weights of that column 0;
// - damping: H += λI, λ = 1% of mean(diag H) (percdamp = .01);
// - Hinv = the upper Cholesky factor U of H⁻¹ (H⁻¹ = UᵀU), from H's own Cholesky factor;
// - columns left to right in blocks of 128: quantize column i (each row on its group's
//   grid, found when the column opens a new group), err = (w − q) / U_ii, the rest of the
//   block -= err · U_i,(i+1..); after the block, the later columns -= Err · U_block,later
//   (the lazy batch update).
// One deviation, stated: GPTQ finds a group's params on W, which within a block does not yet
// hold the block's own error updates; we find them on the updated values, so the blocked
// algorithm equals the unblocked one exactly in exact arithmetic for any group size (with
// groups that divide the block, as 32/64/128 of 128, GPTQ's and ours are the same).
// Act-order (options.actOrder, AutoGPTQ's desc_act with static_groups, auto_gptq
// quantization/gptq.py fasterquant): the columns walked in order of decreasing H_ii (ties
// left to right), each group's params found first, on the weights before any update, so a
// group stays the contiguous run of columns Q4_0, Q4_K and INT4 groups store (without static
// groups, act-order groups are runs in the walk's order, which need a g_idx no GGUF type has).
// f64 throughout, but for the grids' own f32 arithmetic.
// Grids: grid.ts's (int, q4_0) and Q4_K's super-blocks (gptqQ4_K), whose params, found when
// a row reaches a super-block's first column, are ggml's for the row's values then.
import { f32ToF16Bits } from '../formats/float16.ts';
import { quantType } from '../quant/types.ts';
import {
  gram, gridGroup, groupParams, q4_0Code, Q4_0_GROUP, q4KBlockParams, type Q4KBlockParams, q4KCode, q4KCodeAt, q4KValue, Q4_K_GROUP, quantizeValue,
  type Grid, type GroupParams,
} from './grid.ts';

export const GPTQ_BLOCK = 128;
export const GPTQ_PERCDAMP = 0.01;

export interface GptqOptions {
  grid: Grid;
  blockSize?: number;
  percdamp?: number;
  /** Act-order with static groups (see the header); default off, GPTQ's own order. */
  actOrder?: boolean;
}

/** In-place lower Cholesky factor of an SPD n x n matrix (row-major); throws if not SPD. */
export function choleskyLower(a: Float64Array, n: number): Float64Array {
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let s = a[j * n + j];
    for (let k = 0; k < j; k++) s -= l[j * n + k] * l[j * n + k];
    if (!(s > 0)) throw new Error(`GPTQ: the Hessian is not positive definite (pivot ${j}: ${s}); more calibration text or more damping`);
    const d = Math.sqrt(s);
    l[j * n + j] = d;
    for (let i = j + 1; i < n; i++) {
      let t = a[i * n + j];
      for (let k = 0; k < j; k++) t -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = t / d;
    }
  }
  return l;
}

/** L⁻¹ of a lower triangular L (row-major), by forward substitution a row at a time. */
export function lowerInverse(l: Float64Array, n: number): Float64Array {
  const x = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const xi = i * n;
    for (let k = 0; k < i; k++) {
      const a = l[xi + k];
      if (a === 0) continue;
      const xk = k * n;
      for (let j = 0; j <= k; j++) x[xi + j] -= a * x[xk + j];
    }
    const d = l[xi + i];
    for (let j = 0; j < i; j++) x[xi + j] /= d;
    x[xi + i] = 1 / d;
  }
  return x;
}

/** H = 2/N · XᵀX for N input rows of `cols`. */
export function hessian(x: ArrayLike<number>, n: number, cols: number): Float64Array {
  const h = gram(x, n, cols);
  const f = 2 / n;
  for (let k = 0; k < h.length; k++) h[k] *= f;
  return h;
}

/**
 * The dead-column fix and damping applied to a copy of H, and U (upper, row-major) with
 * H⁻¹ = UᵀU; `dead` marks the columns whose weights GPTQ zeroes.
 * GPTQ gets U as cholesky(cholesky_inverse(cholesky(H)), upper): two factorizations and an
 * inverse. Here J reverses the order: with K Kᵀ = J·H·J (K lower), H = A·Aᵀ for the upper
 * A = J·K·J, so H⁻¹ = (A⁻¹)ᵀ·A⁻¹ and U = A⁻¹ = J·K⁻¹·J (upper, positive diagonal: the same
 * unique factor): one factorization and one triangular inverse, half the arithmetic.
 */
export function prepareHessian(h: Float64Array, cols: number, percdamp = GPTQ_PERCDAMP): { u: Float64Array; dead: Uint8Array } {
  const a = h.slice();
  const dead = new Uint8Array(cols);
  for (let i = 0; i < cols; i++) {
    if (a[i * cols + i] === 0) {
      dead[i] = 1;
      a[i * cols + i] = 1;
    }
  }
  let mean = 0;
  for (let i = 0; i < cols; i++) mean += a[i * cols + i];
  const damp = (percdamp * mean) / cols;
  for (let i = 0; i < cols; i++) a[i * cols + i] += damp;
  const last = cols - 1;
  const reversed = new Float64Array(cols * cols);
  for (let i = 0; i < cols; i++) for (let j = 0; j < cols; j++) reversed[i * cols + j] = a[(last - i) * cols + (last - j)];
  const kInv = lowerInverse(choleskyLower(reversed, cols), cols);
  const u = new Float64Array(cols * cols);
  for (let i = 0; i < cols; i++) for (let j = i; j < cols; j++) u[i * cols + j] = kInv[(last - i) * cols + (last - j)];
  return { u, dead };
}

/**
 * GPTQ of a rows x cols weight (row-major, rows = output channels) given its Hessian
 * (`hessian`). Returns the quantized weights (dequantized values, f64).
 */
export function gptqQuantize(w: ArrayLike<number>, rows: number, cols: number, h: Float64Array, options: GptqOptions): Float64Array {
  return gptqRun(w, rows, cols, h, options, gridColumns(options.grid));
}

/** Q4_0 block: f16 d, then 16 bytes: element j in the low nibble of byte j, element j + 16 in its high nibble. */
const Q4_0_BLOCK_BYTES = quantType('q4_0')!.typeSize;
/** block_q4_K: f16 d, f16 dmin, 12 bytes of scales and mins, 128 bytes of nibbles. */
const Q4_K_BLOCK_BYTES = quantType('q4_K')!.typeSize;

/**
 * GPTQ into Q4_0's grid, as Q4_0 blocks (ggml's layout, block_q4_0): what a GGUF Q4_0
 * tensor would hold; the Q4_0 codec decodes them to exactly the values GPTQ chose.
 */
export function gptqQ4_0(w: ArrayLike<number>, rows: number, cols: number, h: Float64Array, options: Omit<GptqOptions, 'grid'> = {}): { values: Float64Array; bytes: Uint8Array } {
  if (cols % Q4_0_GROUP !== 0) throw new Error(`Q4_0 needs rows of a multiple of ${Q4_0_GROUP} values, not ${cols}`);
  const bytes = new Uint8Array((rows * cols / Q4_0_GROUP) * Q4_0_BLOCK_BYTES);
  const values = gptqRun(w, rows, cols, h, options, gridColumns({ kind: 'q4_0' }, (r, col, x, p) => {
    const block = (r * cols + col) / Q4_0_GROUP | 0;
    const at = block * Q4_0_BLOCK_BYTES;
    const j = col % Q4_0_GROUP;
    if (j === 0) {
      const bits = f32ToF16Bits(p.scale);
      bytes[at] = bits & 0xff;
      bytes[at + 1] = bits >> 8;
    }
    const code = q4_0Code(x, p.scale);
    if (j < 16) bytes[at + 2 + j] |= code;
    else bytes[at + 2 + j - 16] |= code << 4;
  }));
  return { values, bytes };
}

/**
 * GPTQ into Q4_K's grid, as block_q4_K super-blocks: when a row reaches the first column of
 * a super-block, its d, dmin and 6-bit scales and mins are ggml's quantize_row_q4_K_ref's for
 * the row's current (error-updated) 256 values (grid.ts q4KBlockParams; with act-order, its
 * values before the walk); each column is then coded with them. The Q4_K codec decodes the
 * blocks to exactly the values GPTQ used.
 */
export function gptqQ4_K(w: ArrayLike<number>, rows: number, cols: number, h: Float64Array, options: Omit<GptqOptions, 'grid'> = {}): { values: Float64Array; bytes: Uint8Array } {
  if (cols % Q4_K_GROUP !== 0) throw new Error(`Q4_K needs rows of a multiple of ${Q4_K_GROUP} values, not ${cols}`);
  const blocksPerRow = cols / Q4_K_GROUP;
  const bytes = new Uint8Array(rows * blocksPerRow * Q4_K_BLOCK_BYTES);
  const columns: ColumnGrid<Q4KBlockParams> = {
    group: Q4_K_GROUP,
    params: (v, from) => q4KBlockParams(v, from),
    quantize(r, col, x, p) {
      const e = col % Q4_K_GROUP;
      const at = (r * blocksPerRow + Math.floor(col / Q4_K_GROUP)) * Q4_K_BLOCK_BYTES;
      if (e === 0) bytes.set(p.header, at);
      const [dl, dm] = [p.scale[e >> 5], p.min[e >> 5]];
      const code = q4KCode(x, dl, dm);
      const { byte, high } = q4KCodeAt(e);
      bytes[at + byte] |= high ? code << 4 : code;
      return q4KValue(code, dl, dm);
    },
  };
  return { values: gptqRun(w, rows, cols, h, options, columns), bytes };
}

/**
 * How gptqRun puts a row on a grid: `params` finds a group's params from one row's values
 * v[from..to), `quantize` returns x (column `col`) on them (and may record its code).
 */
interface ColumnGrid<P> {
  group: number;
  params(v: Float64Array, from: number, to: number): P;
  quantize(row: number, col: number, x: number, params: P): number;
}

type CodeSink = (row: number, col: number, x: number, params: GroupParams) => void;

/** A Grid (grid.ts) as gptqRun's columns, each value handed to `sink` with its group's params. */
function gridColumns(grid: Grid, sink?: CodeSink): ColumnGrid<GroupParams> {
  return {
    group: gridGroup(grid),
    params: (v, from, to) => groupParams(grid, v, from, to),
    quantize(r, col, x, p) {
      sink?.(r, col, x, p);
      return quantizeValue(grid, x, p);
    },
  };
}

/** Act-order: the columns by decreasing H_ii (a dead column's counted as 1, as GPTQ sets it), ties left to right. */
export function actOrder(h: Float64Array, cols: number): Int32Array {
  const diag = (i: number) => h[i * cols + i] || 1;
  return Int32Array.from({ length: cols }, (_, i) => i).sort((a, b) => diag(b) - diag(a) || a - b);
}

/** H with rows and columns taken in `order`. */
function permuted(h: Float64Array, cols: number, order: Int32Array): Float64Array {
  const p = new Float64Array(cols * cols);
  for (let i = 0; i < cols; i++) for (let j = 0; j < cols; j++) p[i * cols + j] = h[order[i] * cols + order[j]];
  return p;
}

function gptqRun<P>(w: ArrayLike<number>, rows: number, cols: number, h: Float64Array, options: Omit<GptqOptions, 'grid'>, grid: ColumnGrid<P>): Float64Array {
  const group = grid.group;
  const block = options.blockSize ?? GPTQ_BLOCK;
  // The walk's k-th column is order[k] (the identity without act-order); W and U are in walk order.
  const order = options.actOrder ? actOrder(h, cols) : null;
  const columnAt = (k: number) => (order ? order[k] : k);
  const { u, dead } = prepareHessian(order ? permuted(h, cols, order) : h, cols, options.percdamp);
  const W = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let k = 0; k < cols; k++) W[r * cols + k] = dead[k] ? 0 : w[r * cols + columnAt(k)];
  const fixed = order ? staticGroups(W, rows, cols, order, grid) : null;
  const current: P[] = new Array(rows);
  const Q = new Float64Array(rows * cols);
  const err = new Float64Array(rows * block); // Err1[r][i]
  for (let i1 = 0; i1 < cols; i1 += block) {
    const i2 = Math.min(i1 + block, cols);
    for (let k = i1; k < i2; k++) {
      const col = columnAt(k);
      if (!fixed && k % group === 0) {
        const end = Math.min(k + group, cols);
        for (let r = 0; r < rows; r++) current[r] = grid.params(W, r * cols + k, r * cols + end);
      }
      const d = u[k * cols + k];
      const urow = k * cols;
      for (let r = 0; r < rows; r++) {
        const o = r * cols;
        const x = W[o + k];
        const q = grid.quantize(r, col, x, fixed ? fixed(r, col) : current[r]);
        Q[o + col] = q;
        const e = (x - q) / d;
        err[r * block + (k - i1)] = e;
        for (let j = k + 1; j < i2; j++) W[o + j] -= e * u[urow + j];
      }
    }
    // Lazy batch update of the columns after the block: W[:, i2:] -= Err1 · U[i1:i2, i2:].
    if (i2 < cols) {
      for (let r = 0; r < rows; r++) {
        const o = r * cols;
        for (let k = 0; k < i2 - i1; k++) {
          const e = err[r * block + k];
          if (e === 0) continue;
          const ur = (i1 + k) * cols;
          for (let j = i2; j < cols; j++) W[o + j] -= e * u[ur + j];
        }
      }
    }
  }
  return Q;
}

/**
 * Static groups: every row's group params from the weights before the walk (W in walk
 * order, dead columns zeroed), back in column order; (row, column) -> its group's params.
 */
function staticGroups<P>(W: Float64Array, rows: number, cols: number, order: Int32Array, grid: ColumnGrid<P>): (row: number, col: number) => P {
  const inColumnOrder = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let k = 0; k < cols; k++) inColumnOrder[r * cols + order[k]] = W[r * cols + k];
  const groups = Math.ceil(cols / grid.group);
  const params: P[] = new Array(rows * groups);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < groups; g++) {
      const from = r * cols + g * grid.group;
      params[r * groups + g] = grid.params(inColumnOrder, from, Math.min(from + grid.group, (r + 1) * cols));
    }
  }
  return (r, col) => params[r * groups + Math.floor(col / grid.group)];
}
