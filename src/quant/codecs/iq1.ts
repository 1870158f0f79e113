// IQ1_S and IQ1_M: 1.5625 and 1.75 bits per weight. Groups of 8 weights are one point of a
// 2048-point grid of ternary vectors (levels -1, 0, 1: iquants-grid.ts), shifted by a
// per-group delta of +-1/8, byte for byte as ggml makes them (the llama.cpp bundled with
// node-llama-cpp 3.22.1, ggml/src/ggml-quants.c: quantize_row_iq1_s_impl,
// quantize_row_iq1_m_impl, iq1_find_best_neighbour2, dequantize_row_iq1_s/_m;
// ggml-common.h: block_iq1_s, block_iq1_m, IQ1S_DELTA).
//
// block_iq1_s, 50 bytes per 256 weights (8 sub-blocks of 32, 4 groups of 8):
//   0..1    d        f16 super-block scale (stored times 1.125, ggml's fudge factor)
//   2..33   qs       low 8 bits of each group's grid index (11 bits)
//   34..49  qh       u16 LE per sub-block: bits 3k..3k+2 = high bits of group k's index,
//                    bits 12..14 = 3-bit scale s, bit 15 = delta sign.
//                    Weight = d*(2s+1) * (grid + delta), delta = -1/8 if bit 15 else +1/8.
// block_iq1_m, 56 bytes (16 sub-blocks of 16, 2 groups of 8):
//   0..31   qs       low 8 bits of each group's grid index
//   32..47  qh       byte per sub-block: bits 0..2 / 4..6 = high index bits of group 0 / 1,
//                    bit 3 / bit 7 = delta sign of group 0 / 1
//   48..55  scales   four u16 LE: 3-bit sub-block scales at bits 3i (i = 0..3, the
//                    sub-blocks 4j..4j+3), and a nibble of the f16 super-block scale in bits
//                    12..15 (u16 j holds bits 4j..4j+3 of it). Weight = d*(2s+1)*(grid+delta).
// The quantizer solves each sub-block exactly over the two boundaries that split its
// sorted weights into the three levels, then snaps groups off the grid to their best
// neighbour. IQ1_S needs importance weights (ggml asserts them); IQ1_M takes them or not.
import type { Codec } from '../codec.ts';
import * as rounding from './rounding.ts';
import * as search from './search.ts';
import * as blocks from './iq-blocks.ts';
import * as float16 from '../../formats/float16.ts';
import { IQ1_DELTA, iq1sGrid, type IqGrid } from './iquants-grid.ts';

const f32 = rounding.f32;
const nearestIntC = rounding.nearestIntC;
const f32ToF16Bits = float16.f32ToF16Bits;
const { countBlocks, readU16, writeU16, writeF16, f16Value, isNaNF16, fillNaN } = blocks;

export const QK_K = 256;
export const IQ1_S_BYTES = 2 + QK_K / 8 + QK_K / 16;
export const IQ1_M_BYTES = QK_K / 8 + QK_K / 16 + QK_K / 32;

const FLT_MAX = f32(3.4028234663852886e38);
const GROUP_MAX_EPS_IQ1_S = f32(1e-12);
const GROUP_MAX_EPS_IQ1_M = f32(1e-7);
const IQ1_S_SCALE_FUDGE = 1.125;
const IQ1_M_SCALE_FUDGE = f32(1.1125);
/** The shifted levels: x_p for delta +1/8, x_m for -1/8 (exact in f32). */
const X_P = Float32Array.of(-1 + IQ1_DELTA, IQ1_DELTA, 1 + IQ1_DELTA);
const X_M = Float32Array.of(-1 - IQ1_DELTA, -IQ1_DELTA, 1 - IQ1_DELTA);

// ---------------------------------------------------------------------------------------
// Decoding

/** Eight weights of grid point `index`: dl * (grid + delta). */
function putGroup(out: Float32Array, o: number, values: Int8Array, index: number, dl: number, delta: number): void {
  const p = index * 8;
  for (let j = 0; j < 8; j++) out[o + j] = dl * (values[p + j] + delta);
}

function decodeIq1S(data: Uint8Array, rows: number, rowLength: number): Float32Array {
  const n = countBlocks('iq1_s', data, rows, rowLength, QK_K, IQ1_S_BYTES);
  const values = iq1sGrid().values;
  const out = new Float32Array(n * QK_K);
  for (let b = 0; b < n; b++) {
    const at = b * IQ1_S_BYTES;
    const h = readU16(data, at);
    if (isNaNF16(h)) {
      fillNaN(out, b * QK_K, QK_K, h);
      continue;
    }
    const d = f16Value(h);
    for (let ib = 0; ib < 8; ib++) {
      const qh = readU16(data, at + 34 + 2 * ib);
      const dl = f32(d * (2 * ((qh >> 12) & 7) + 1));
      const delta = qh & 0x8000 ? -IQ1_DELTA : IQ1_DELTA;
      for (let l = 0; l < 4; l++) {
        const index = data[at + 2 + 4 * ib + l] | (((qh >> (3 * l)) & 7) << 8);
        putGroup(out, b * QK_K + 32 * ib + 8 * l, values, index, dl, delta);
      }
    }
  }
  return out;
}

/** The f16 bits of iq1_m's super-block scale, gathered from the top nibbles of scales. */
function iq1mScaleBits(data: Uint8Array, sc: number): number {
  return (readU16(data, sc) >> 12) | ((readU16(data, sc + 2) >> 8) & 0x00f0) | ((readU16(data, sc + 4) >> 4) & 0x0f00) | (readU16(data, sc + 6) & 0xf000);
}

function decodeIq1M(data: Uint8Array, rows: number, rowLength: number): Float32Array {
  const n = countBlocks('iq1_m', data, rows, rowLength, QK_K, IQ1_M_BYTES);
  const values = iq1sGrid().values;
  const out = new Float32Array(n * QK_K);
  for (let b = 0; b < n; b++) {
    const at = b * IQ1_M_BYTES;
    const h = iq1mScaleBits(data, at + 48);
    if (isNaNF16(h)) {
      fillNaN(out, b * QK_K, QK_K, h);
      continue;
    }
    const d = f16Value(h);
    for (let ib = 0; ib < 8; ib++) {
      const sc = readU16(data, at + 48 + 2 * (ib >> 1));
      const shift = 6 * (ib % 2);
      const dl1 = f32(d * (2 * ((sc >> shift) & 7) + 1));
      const dl2 = f32(d * (2 * ((sc >> (shift + 3)) & 7) + 1));
      for (let l = 0; l < 4; l++) {
        const qh = data[at + 32 + 2 * ib + (l >> 1)];
        const high = l & 1 ? qh << 4 : qh << 8;
        const index = data[at + 4 * ib + l] | (high & 0x700);
        const delta = qh & (l & 1 ? 0x80 : 0x08) ? -IQ1_DELTA : IQ1_DELTA;
        putGroup(out, b * QK_K + 32 * ib + 8 * l, values, index, l < 2 ? dl1 : dl2, delta);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Encoding

const weight = new Float32Array(32);
const L = new Int8Array(32);
const order = new Int32Array(32);
const sumx = new Float32Array(33);
const sumw = new Float32Array(33);
const px = [new Float32Array(17), new Float32Array(17)];
const pw = [new Float32Array(17), new Float32Array(17)];
const scales = new Float32Array(16);
const shifts = new Int8Array(16);
const index = new Uint16Array(4);
/** findBestNeighbour's error terms by coordinate (x4) and level. */
const terms = new Float32Array(32);

function fillWeights(x: Float32Array, x0: number, n: number, imp: Float32Array | undefined, col: number, sigma2: number): void {
  for (let i = 0; i < n; i++) {
    const xi = x[x0 + i];
    weight[i] = imp ? f32(imp[col + i] * f32(Math.sqrt(f32(sigma2 + f32(xi * xi))))) : f32(xi * xi);
  }
}

/** fabsf max of x[x0..x0+n) as `max = MAX(max, fabsf(x))` finds it. */
function absMax(x: Float32Array, x0: number, n: number): number {
  let max = Math.abs(x[x0]);
  for (let i = 1; i < n; i++) {
    const a = Math.abs(x[x0 + i]);
    max = max > a ? max : a;
  }
  return max;
}

/**
 * order[0..n) = indices of x[x0..] by ascending value, equal values in index order: glibc's
 * qsort (a merge sort for arrays this small) is stable, and ggml sorts (value, index) pairs
 * on the value alone.
 */
function sortIndices(x: Float32Array, x0: number, n: number): void {
  for (let j = 0; j < n; j++) {
    const v = x[x0 + j];
    let i = j;
    while (i > 0 && x[x0 + order[i - 1]] > v) {
      order[i] = order[i - 1];
      i--;
    }
    order[i] = j;
  }
}

/** L by the boundaries: sorted positions below i1 -> 0, below i2 -> 1, the rest -> 2. */
function assignLevels(n: number, i1: number, i2: number): void {
  for (let j = 0; j < n; j++) L[order[j]] = j < i1 ? 0 : j < i2 ? 1 : 2;
}

/**
 * iq1_find_best_neighbour2: of the neighbours of level vector u, the point with the least
 * sum of w*(scale*xx[level] - x)^2; writes its levels to L[l0..] and returns its index.
 */
function findBestNeighbour(grid: IqGrid, u: number, x: Float32Array, x0: number, w0: number, scale: number, xx: Float32Array, l0: number): number {
  const list = grid.neighbours(u);
  const coords = grid.coords;
  const termIndex = grid.termIndex;
  // Each coordinate's term depends on its level alone: tabulated once (C's f32 ops), then
  // summed by lookup; a partial sum that reaches the best cannot win (terms are >= 0).
  for (let i = 0; i < 8; i++) {
    for (let l = 0; l < 3; l++) {
      const diff = f32(f32(scale * xx[l]) - x[x0 + i]);
      terms[(i << 2) + l] = f32(f32(weight[w0 + i] * diff) * diff);
    }
  }
  let best = FLT_MAX;
  let bestIndex = -1;
  let j = 0;
  // Two points at a time: independent chains of roundings the CPU overlaps; the choice
  // between them stays in list order.
  for (; j + 1 < list.length; j += 2) {
    const p = list[j] * 8;
    const q = list[j + 1] * 8;
    let a = terms[termIndex[p]];
    let b = terms[termIndex[q]];
    for (let i = 1; i < 8; i++) {
      a = f32(a + terms[termIndex[p + i]]);
      b = f32(b + terms[termIndex[q + i]]);
    }
    if (a < best) {
      best = a;
      bestIndex = list[j];
    }
    if (b < best) {
      best = b;
      bestIndex = list[j + 1];
    }
  }
  for (; j < list.length; j++) {
    const p = list[j] * 8;
    let d2 = terms[termIndex[p]];
    for (let i = 1; i < 8 && d2 < best; i++) d2 = f32(d2 + terms[termIndex[p + i]]);
    if (d2 < best) {
      best = d2;
      bestIndex = list[j];
    }
  }
  // ggml then scans the whole grid (reading past its inputs) and may abort: only inputs
  // whose squared errors overflow get here.
  if (bestIndex < 0) throw new RangeError("no grid point fits: the values are too large (their squared errors overflow f32), where ggml aborts (GGML_ASSERT(grid_index >= 0))");
  for (let i = 0; i < 8; i++) L[l0 + i] = (coords[bestIndex * 8 + i] - 1) >> 1;
  return bestIndex;
}

function levelVector(l0: number): number {
  let u = 0;
  for (let i = 0; i < 8; i++) u |= L[l0 + i] << (2 * i);
  return u;
}

/**
 * Snap each group of 8 to the grid (its best neighbour when off it) into index[];
 * `levelsOf(k)` picks the group's shifted levels. Returns whether all were on the grid.
 */
function snapGroups(grid: IqGrid, groups: number, x: Float32Array, x0: number, scale: number, levelsOf: (k: number) => Float32Array): boolean {
  let allOnGrid = true;
  for (let k = 0; k < groups; k++) {
    const u = levelVector(8 * k);
    let gi = grid.map[u];
    if (gi < 0) {
      allOnGrid = false;
      gi = findBestNeighbour(grid, u, x, x0 + 8 * k, 8 * k, scale, levelsOf(k), 8 * k);
    }
    index[k] = gi;
  }
  return allOnGrid;
}

/** The least-squares scale of the snapped groups, or `scale` if the fit is not positive. */
function refitScale(grid: IqGrid, groups: number, x: Float32Array, x0: number, scale: number, levelsOf: (k: number) => Float32Array): number {
  let sumqx = 0;
  let sumq2 = 0;
  for (let k = 0; k < groups; k++) {
    const xx = levelsOf(k);
    const p = index[k] * 8;
    for (let j = 0; j < 8; j++) {
      const w = weight[8 * k + j];
      const q = xx[(grid.coords[p + j] - 1) >> 1];
      sumqx = f32(sumqx + f32(f32(w * q) * x[x0 + 8 * k + j]));
      sumq2 = f32(sumq2 + f32(f32(w * q) * q));
    }
  }
  return sumqx > 0 && sumq2 > 0 ? f32(sumqx / sumq2) : scale;
}

function sigmaSquared(x: Float32Array, off: number): number {
  return f32(f32(2 * search.sumOfSquares(x, off, QK_K)) / QK_K);
}

/** ((a*v)*v) in float. */
const sq = (a: number, v: number) => f32(f32(a * v) * v);

function encodeIq1SBlock(x: Float32Array, off: number, imp: Float32Array, col: number, out: Uint8Array, at: number): void {
  const grid = iq1sGrid();
  out.fill(0, at, at + IQ1_S_BYTES);
  let maxScale = 0;
  const sigma2 = sigmaSquared(x, off);
  for (let ib = 0; ib < 8; ib++) {
    const xb = off + 32 * ib;
    fillWeights(x, xb, 32, imp, col + 32 * ib, sigma2);
    const max = absMax(x, xb, 32);
    scales[ib] = 0;
    shifts[ib] = 1;
    if (max < GROUP_MAX_EPS_IQ1_S) continue;
    sortIndices(x, xb, 32);
    sumx[0] = sumw[0] = 0;
    for (let j = 0; j < 32; j++) {
      const i = order[j];
      sumx[j + 1] = f32(sumx[j] + f32(weight[i] * x[xb + i]));
      sumw[j + 1] = f32(sumw[j] + weight[i]);
    }
    let bestScore = -FLT_MAX;
    let scale = max;
    let best1 = -1;
    let best2 = -1;
    let bestShift = 0;
    for (let i1 = 0; i1 <= 32; i1++) {
      for (let i2 = i1; i2 <= 32; i2++) {
        const sx0 = f32(sumx[i1] - sumx[0]), sx1 = f32(sumx[i2] - sumx[i1]), sx2 = f32(sumx[32] - sumx[i2]);
        const sw0 = f32(sumw[i1] - sumw[0]), sw1 = f32(sumw[i2] - sumw[i1]), sw2 = f32(sumw[32] - sumw[i2]);
        let sumqx = f32(f32(f32(sx0 * X_P[0]) + f32(sx1 * X_P[1])) + f32(sx2 * X_P[2]));
        let sumq2 = f32(f32(sq(sw0, X_P[0]) + sq(sw1, X_P[1])) + sq(sw2, X_P[2]));
        if (sumq2 > 0 && f32(sumqx * sumqx) > f32(bestScore * sumq2)) {
          scale = f32(sumqx / sumq2);
          bestScore = f32(scale * sumqx);
          best1 = i1;
          best2 = i2;
          bestShift = 1;
        }
        sumqx = f32(f32(f32(sx0 * X_M[0]) + f32(sx1 * X_M[1])) + f32(sx2 * X_M[2]));
        sumq2 = f32(f32(sq(sw0, X_M[0]) + sq(sw1, X_M[1])) + sq(sw2, X_M[2]));
        if (sumq2 > 0 && f32(sumqx * sumqx) > f32(bestScore * sumq2)) {
          scale = f32(sumqx / sumq2);
          bestScore = f32(scale * sumqx);
          best1 = i1;
          best2 = i2;
          bestShift = -1;
        }
      }
    }
    if (best1 < 0 || best2 < 0 || bestShift === 0) continue;
    assignLevels(32, best1, best2);
    if (scale < 0) {
      for (let j = 0; j < 32; j++) L[j] = 2 - L[j];
      scale = -scale;
      bestShift = -bestShift;
    }
    const xx = bestShift === 1 ? X_P : X_M;
    const levelsOf = () => xx;
    if (!snapGroups(grid, 4, x, xb, scale, levelsOf)) scale = refitScale(grid, 4, x, xb, scale, levelsOf);
    let h = 0;
    for (let k = 0; k < 4; k++) {
      out[at + 2 + 4 * ib + k] = index[k] & 255;
      h |= (index[k] >> 8) << (3 * k);
    }
    writeU16(out, at + 34 + 2 * ib, h);
    scales[ib] = scale;
    shifts[ib] = bestShift;
    maxScale = maxScale > scale ? maxScale : scale;
  }
  if (!maxScale) return;
  const d = f32(maxScale / 15);
  writeF16(out, at, f32(d * IQ1_S_SCALE_FUDGE));
  const id = f32(1 / d);
  for (let ib = 0; ib < 8; ib++) {
    let l = nearestIntC(f32(0.5 * f32(f32(id * scales[ib]) - 1)));
    l = l < 0 ? 0 : l > 7 ? 7 : l;
    if (shifts[ib] === -1) l |= 8;
    out[at + 34 + 2 * ib + 1] |= l << 4;
  }
}

// iq1_m's four sign choices per sub-block: k = 2*(group 0 uses x_m) + (group 1 uses x_m).
const IQ1M_MASKS = [0x00, 0x80, 0x08, 0x88];
const shiftedLevels = (k: number, bestK: number) => ((k === 0 ? bestK < 2 : bestK % 2 === 0) ? X_P : X_M);

const superScales = new Uint16Array(4);
const sumqxK = new Float32Array(4);
const sumq2K = new Float32Array(4);

function encodeIq1MBlock(x: Float32Array, off: number, imp: Float32Array | undefined, col: number, out: Uint8Array, at: number): void {
  const grid = iq1sGrid();
  out.fill(0, at, at + IQ1_M_BYTES);
  let maxScale = 0;
  const sigma2 = sigmaSquared(x, off);
  const p2 = X_P[2];
  const m2 = X_M[2];
  const cp1 = f32(f32(X_P[0] * X_P[0]) - f32(X_P[1] * X_P[1]));
  const cp2 = f32(f32(X_P[1] * X_P[1]) - f32(X_P[2] * X_P[2]));
  const cm1 = f32(f32(X_M[0] * X_M[0]) - f32(X_M[1] * X_M[1]));
  const cm2 = f32(f32(X_M[1] * X_M[1]) - f32(X_M[2] * X_M[2]));
  for (let ib = 0; ib < 16; ib++) {
    const xb = off + 16 * ib;
    fillWeights(x, xb, 16, imp, col + 16 * ib, sigma2);
    const max = absMax(x, xb, 16);
    scales[ib] = 0;
    shifts[ib] = 0;
    if (max < GROUP_MAX_EPS_IQ1_M) continue;
    sortIndices(x, xb, 16);
    // Prefix sums per half of the sub-block (each half has its own delta sign).
    px[0][0] = px[1][0] = pw[0][0] = pw[1][0] = 0;
    for (let j = 0; j < 16; j++) {
      const i = order[j];
      const h = i < 8 ? 0 : 1;
      px[h][j + 1] = f32(px[h][j] + f32(weight[i] * x[xb + i]));
      px[1 - h][j + 1] = px[1 - h][j];
      pw[h][j + 1] = f32(pw[h][j] + weight[i]);
      pw[1 - h][j + 1] = pw[1 - h][j];
    }
    const tx0 = px[0][16], tx1 = px[1][16];
    const tw0 = pw[0][16], tw1 = pw[1][16];
    const tp0 = f32(tx0 * p2), tp1 = f32(tx1 * p2), tm0 = f32(tx0 * m2), tm1 = f32(tx1 * m2);
    const wp0 = sq(tw0, p2), wp1 = sq(tw1, p2), wm0 = sq(tw0, m2), wm1 = sq(tw1, m2);
    let bestScore = -FLT_MAX;
    let scale = max;
    let best1 = -1;
    let best2 = -1;
    let bestK = -1;
    for (let i1 = 0; i1 <= 16; i1++) {
      for (let i2 = i1; i2 <= 16; i2++) {
        const sx0 = f32(px[0][i1] + px[0][i2]);
        const sx1 = f32(px[1][i1] + px[1][i2]);
        const qxp0 = f32(tp0 - sx0), qxm0 = f32(tm0 - sx0);
        const qxp1 = f32(tp1 - sx1), qxm1 = f32(tm1 - sx1);
        const q2p0 = f32(f32(wp0 + f32(pw[0][i1] * cp1)) + f32(pw[0][i2] * cp2));
        const q2m0 = f32(f32(wm0 + f32(pw[0][i1] * cm1)) + f32(pw[0][i2] * cm2));
        const q2p1 = f32(f32(wp1 + f32(pw[1][i1] * cp1)) + f32(pw[1][i2] * cp2));
        const q2m1 = f32(f32(wm1 + f32(pw[1][i1] * cm1)) + f32(pw[1][i2] * cm2));
        sumqxK[0] = f32(qxp0 + qxp1);
        sumqxK[1] = f32(qxp0 + qxm1);
        sumqxK[2] = f32(qxm0 + qxp1);
        sumqxK[3] = f32(qxm0 + qxm1);
        sumq2K[0] = f32(q2p0 + q2p1);
        sumq2K[1] = f32(q2p0 + q2m1);
        sumq2K[2] = f32(q2m0 + q2p1);
        sumq2K[3] = f32(q2m0 + q2m1);
        for (let k = 0; k < 4; k++) {
          const sqx = sumqxK[k];
          const sq2 = sumq2K[k];
          if (sq2 > 0 && f32(sqx * sqx) > f32(bestScore * sq2)) {
            scale = f32(sqx / sq2);
            bestScore = f32(scale * sqx);
            best1 = i1;
            best2 = i2;
            bestK = k;
          }
        }
      }
    }
    if (best1 < 0 || best2 < 0 || bestK < 0) continue;
    assignLevels(16, best1, best2);
    if (scale < 0) {
      for (let j = 0; j < 16; j++) L[j] = 2 - L[j];
      scale = -scale;
      bestK = 3 - bestK;
    }
    const k0 = bestK;
    const levelsOf = (k: number) => shiftedLevels(k, k0);
    if (!snapGroups(grid, 2, x, xb, scale, levelsOf)) scale = refitScale(grid, 2, x, xb, scale, levelsOf);
    out[at + 2 * ib] = index[0] & 255;
    out[at + 2 * ib + 1] = index[1] & 255;
    out[at + 32 + ib] = (index[0] >> 8) | ((index[1] >> 8) << 4);
    scales[ib] = scale;
    shifts[ib] = bestK;
    maxScale = maxScale > scale ? maxScale : scale;
  }
  if (!maxScale) return;

  // The super-block scale: refit over the coded sub-block scales and grid points.
  let d = f32(maxScale / 15);
  const id = f32(1 / d);
  let sumqx = 0;
  let sumq2 = 0;
  const sc = superScales.fill(0);
  for (let ib = 0; ib < 16; ib++) {
    let l = nearestIntC(f32(0.5 * f32(f32(id * scales[ib]) - 1)));
    l = l < 0 ? 0 : l > 7 ? 7 : l;
    sc[ib >> 2] |= l << (3 * (ib % 4));
    out[at + 32 + ib] |= IQ1M_MASKS[shifts[ib]];
    const xb = off + 16 * ib;
    fillWeights(x, xb, 16, imp, col + 16 * ib, sigma2);
    const qh = out[at + 32 + ib];
    for (let k = 0; k < 2; k++) {
      const xx = shiftedLevels(k, shifts[ib]);
      const p = (out[at + 2 * ib + k] + ((qh << (8 - 4 * k)) & 0x700)) * 8;
      for (let j = 0; j < 8; j++) {
        const w = weight[8 * k + j];
        const q = f32(xx[(grid.coords[p + j] - 1) >> 1] * (2 * l + 1));
        sumqx = f32(sumqx + f32(f32(w * q) * x[xb + 8 * k + j]));
        sumq2 = f32(sumq2 + f32(f32(w * q) * q));
      }
    }
  }
  if (sumq2 > 0) d = f32(sumqx / sumq2);
  const s = f32ToF16Bits(f32(d * IQ1_M_SCALE_FUDGE));
  sc[0] |= (s & 0x000f) << 12;
  sc[1] |= (s & 0x00f0) << 8;
  sc[2] |= (s & 0x0f00) << 4;
  sc[3] |= s & 0xf000;
  for (let j = 0; j < 4; j++) writeU16(out, at + 48 + 2 * j, sc[j]);
}

function encodeRowWith(
  blockBytes: number, encodeBlock: (x: Float32Array, off: number, imp: Float32Array, col: number, out: Uint8Array, at: number) => void,
  needsImportance: string | null,
) {
  return (x: Float32Array, off: number, n: number, imp: Float32Array | undefined, out: Uint8Array, at: number) => {
    if (needsImportance && !imp) {
      throw new Error(`${needsImportance} needs importance weights (an imatrix): ggml_quantize_chunk and llama-quantize refuse it without`);
    }
    for (let b = 0; b < n / QK_K; b++) encodeBlock(x, off + b * QK_K, imp as Float32Array, b * QK_K, out, at + b * blockBytes);
  };
}

/** IQ1_S: 1.5625 bits per weight; encoding needs importance weights. */
export const IQ1_S: Codec = {
  encode: blocks.encodeRows('iq1_s', QK_K, IQ1_S_BYTES, encodeRowWith(IQ1_S_BYTES, encodeIq1SBlock, 'iq1_s'), true),
  decode: decodeIq1S,
};

/** IQ1_M: 1.75 bits per weight; importance weights optional. */
export const IQ1_M: Codec = {
  encode: blocks.encodeRows('iq1_m', QK_K, IQ1_M_BYTES, encodeRowWith(IQ1_M_BYTES, encodeIq1MBlock, null), true),
  decode: decodeIq1M,
};
