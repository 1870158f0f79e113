// The scale search that ggml's iq2_xxs, iq2_xs, iq2_s, iq3_xxs and iq3_s quantizers share
// (ggml-quants.c quantize_row_iq2_xxs_impl, _iq2_xs_impl, _iq2_s_impl, _iq3_xxs_impl,
// _iq3_s_impl; iq2_find_best_neighbour, iq3_find_best_neighbour): the magnitudes of a
// sub-block snap, group by group, to the odd levels 2l+1 of a lattice grid at each of a
// range of trial scales; off-grid groups move to their best neighbour on the grid; the
// trial with the best weighted fit wins. C float semantics (rounding.ts): each op rounded
// to f32, sums in C order.
import * as rounding from './rounding.ts';
import type { IqGrid } from './iquants-grid.ts';

const f32 = rounding.f32;
const nearestIntC = rounding.nearestIntC;
const FLT_MAX = f32(3.4028234663852886e38);

/** The largest sub-block (iq2_xxs, iq3_*: 32 weights). */
const MAX_N = 32;
const MAX_GROUPS = 8;

// Scratch: the C's stack arrays.
export const xval = new Float32Array(MAX_N);
export const weight = new Float32Array(MAX_N);
export const waux = new Float32Array(MAX_N);
/** The winning levels 0..kMaxQ-1 per weight (L). */
export const levels = new Int8Array(MAX_N);
const trial = new Int8Array(MAX_N); // Laux
const onGrid = new Uint8Array(MAX_GROUPS);
/** findBestNeighbour's table of error terms by coordinate and level (8 x 4 or 4 x 8). */
const terms = new Float32Array(32);
const trialOnGrid = new Uint8Array(MAX_GROUPS);

/**
 * ggml's iq2/iq3_find_best_neighbour: of `grid`'s neighbours of level vector u, the point
 * with the least sum of w*(scale*q - x)^2 (the first of equal ones); writes its levels to
 * L[l0..] and returns its index.
 */
export function findBestNeighbour(grid: IqGrid, u: number, x0: number, scale: number, L: Int8Array, l0: number): number {
  const list = grid.neighbours(u);
  const dims = grid.dims;
  const coords = grid.coords;
  const termIndex = grid.termIndex;
  // The term w*(scale*q - x)^2 of coordinate i depends on its level alone: tabulate it
  // (the same f32 ops as C's loop, so the same values), then each point's sum is lookups.
  const levelCount = grid.levelCount;
  for (let i = 0; i < dims; i++) {
    const x = xval[x0 + i];
    const w = waux[x0 + i];
    for (let l = 0; l < levelCount; l++) {
      const diff = f32(f32(scale * (2 * l + 1)) - x);
      terms[(i << grid.bits) + l] = f32(f32(w * diff) * diff);
    }
  }
  let bestD2 = FLT_MAX;
  let best = -1;
  // Terms are >= 0, so a partial sum only grows: once it reaches the best, the point
  // cannot win (C keeps the first of equal sums), and the rest of its sum is skipped.
  let j = 0;
  if (dims === 8) {
    // Two points at a time: their sums are independent chains of roundings, which the CPU
    // overlaps; the choice between them stays in list order.
    for (; j + 1 < list.length; j += 2) {
      const p = list[j] * 8;
      const q = list[j + 1] * 8;
      let a = terms[termIndex[p]];
      let b = terms[termIndex[q]];
      a = f32(a + terms[termIndex[p + 1]]);
      b = f32(b + terms[termIndex[q + 1]]);
      a = f32(a + terms[termIndex[p + 2]]);
      b = f32(b + terms[termIndex[q + 2]]);
      a = f32(a + terms[termIndex[p + 3]]);
      b = f32(b + terms[termIndex[q + 3]]);
      a = f32(a + terms[termIndex[p + 4]]);
      b = f32(b + terms[termIndex[q + 4]]);
      a = f32(a + terms[termIndex[p + 5]]);
      b = f32(b + terms[termIndex[q + 5]]);
      a = f32(a + terms[termIndex[p + 6]]);
      b = f32(b + terms[termIndex[q + 6]]);
      a = f32(a + terms[termIndex[p + 7]]);
      b = f32(b + terms[termIndex[q + 7]]);
      if (a < bestD2) {
        bestD2 = a;
        best = list[j];
      }
      if (b < bestD2) {
        bestD2 = b;
        best = list[j + 1];
      }
    }
  }
  for (; j < list.length; j++) {
    const p = list[j] * dims;
    let d2 = terms[termIndex[p]];
    for (let i = 1; i < dims && d2 < bestD2; i++) d2 = f32(d2 + terms[termIndex[p + i]]);
    if (d2 < bestD2) {
      bestD2 = d2;
      best = list[j];
    }
  }
  // ggml aborts here (GGML_ASSERT): only non-finite or overflowing inputs get here.
  if (best < 0) throw new RangeError("no grid point fits: the values are too large (their squared errors overflow f32), where ggml aborts (GGML_ASSERT(grid_index >= 0))");
  for (let i = 0; i < dims; i++) L[l0 + i] = (coords[best * dims + i] - 1) >> 1;
  return best;
}

/** The level vector u of L[l0..l0+dims) (coordinate i at bits i*bits). */
export function levelVector(grid: IqGrid, L: Int8Array, l0: number): number {
  let u = 0;
  for (let i = 0; i < grid.dims; i++) u |= L[l0 + i] << (grid.bits * i);
  return u;
}

/**
 * Snap group k's magnitudes to levels at inverse scale id into L (clamped to 0..kMaxQ-1):
 * nearest_int(0.5f*(id*x - 1)). Returns the level vector.
 */
function snapGroup(grid: IqGrid, k: number, id: number, kMaxQ: number, L: Int8Array): number {
  const dims = grid.dims;
  let u = 0;
  for (let i = 0; i < dims; i++) {
    const l = nearestIntC(f32(0.5 * f32(f32(id * xval[k * dims + i]) - 1)));
    const c = l < 0 ? 0 : l > kMaxQ - 1 ? kMaxQ - 1 : l;
    L[k * dims + i] = c;
    u |= c << (grid.bits * i);
  }
  return u;
}

/** sum w*x*q and sum w*q*q over the n weights, q = 2L+1, in C order: [sumqx, sumq2]. */
let sumQX = 0;
let sumQ2 = 0;
function fit(n: number, L: Int8Array): void {
  let qx = 0;
  let q2 = 0;
  for (let i = 0; i < n; i++) {
    const w = weight[i];
    const q = 2 * L[i] + 1;
    qx = f32(qx + f32(f32(w * xval[i]) * q));
    q2 = f32(q2 + f32(f32(w * q) * q));
  }
  sumQX = qx;
  sumQ2 = q2;
}

export interface SearchShape {
  readonly grid: IqGrid;
  /** Weights in the sub-block. */
  readonly n: number;
  /** Levels per coordinate (3 for iq2, 8 for iq3). */
  readonly kMaxQ: number;
  /** Trials is = -range..range at inverse scales (2*kMaxQ-1 + is*step)/max. */
  readonly range: number;
  readonly step: number;
  /** Group flags before the trials (iq3_s starts with all off the grid, the others on). */
  readonly startOnGrid: boolean;
  /** After the trials, re-snap every group (iq3_s) or only the off-grid ones. */
  readonly refineAll: boolean;
}

/**
 * The trial loop and the refit of iq2_xs, iq2_s, iq3_xxs and iq3_s on xval/weight/waux:
 * `max` is the largest magnitude (> 0). Leaves the levels in `levels`; returns the scale.
 */
export function searchScale(shape: SearchShape, max: number): number {
  const { grid, n, kMaxQ, range, step } = shape;
  const groups = n / grid.dims;
  let best = 0;
  let scale = f32(max / (2 * kMaxQ - 1));
  levels.fill(0, 0, n);
  onGrid.fill(shape.startOnGrid ? 1 : 0, 0, groups);
  for (let is = -range; is <= range; is++) {
    const id = f32(f32(2 * kMaxQ - 1 + f32(is * step)) / max);
    const thisScale = f32(1 / id);
    for (let k = 0; k < groups; k++) {
      const u = snapGroup(grid, k, id, kMaxQ, trial);
      trialOnGrid[k] = 1;
      if (grid.map[u] < 0) {
        trialOnGrid[k] = 0;
        findBestNeighbour(grid, u, k * grid.dims, thisScale, trial, k * grid.dims);
      }
    }
    fit(n, trial);
    if (sumQ2 > 0 && f32(sumQX * sumQX) > f32(best * sumQ2)) {
      scale = f32(sumQX / sumQ2);
      best = f32(scale * sumQX);
      levels.set(trial.subarray(0, n));
      onGrid.set(trialOnGrid.subarray(0, groups));
    }
  }
  let offGrid = 0;
  for (let k = 0; k < groups; k++) if (!onGrid[k]) offGrid++;
  if (offGrid > 0 && scale > 0) {
    const id = f32(1 / scale);
    for (let k = 0; k < groups; k++) {
      if (onGrid[k] && !shape.refineAll) continue;
      const u = snapGroup(grid, k, id, kMaxQ, levels);
      if (grid.map[u] < 0) findBestNeighbour(grid, u, k * grid.dims, scale, levels, k * grid.dims);
    }
    fit(n, levels);
    if (sumQ2 > 0) scale = f32(sumQX / sumQ2);
  }
  return scale;
}

/**
 * iq2_xxs's search: the trials start from make_qp_quants' scale (eff_max = scale*kMaxQ),
 * and every group is re-snapped after them. Returns the scale; `levels` holds the levels.
 */
export function searchScaleFromEffMax(shape: SearchShape, effMax: number, startScale: number): number {
  const { grid, n, kMaxQ, range, step } = shape;
  const groups = n / grid.dims;
  let best = 0;
  let scale = startScale;
  for (let is = -range; is <= range; is++) {
    const id = f32(f32(2 * kMaxQ - 1 + f32(is * step)) / effMax);
    const thisScale = f32(1 / id);
    for (let k = 0; k < groups; k++) {
      const u = snapGroup(grid, k, id, kMaxQ, trial);
      if (grid.map[u] < 0) findBestNeighbour(grid, u, k * grid.dims, thisScale, trial, k * grid.dims);
    }
    fit(n, trial);
    if (sumQ2 > 0 && f32(sumQX * sumQX) > f32(best * sumQ2)) {
      scale = f32(sumQX / sumQ2);
      best = f32(scale * sumQX);
      levels.set(trial.subarray(0, n));
    }
  }
  if (scale > 0) {
    const id = f32(1 / scale);
    for (let k = 0; k < groups; k++) {
      const u = snapGroup(grid, k, id, kMaxQ, levels);
      if (grid.map[u] < 0) findBestNeighbour(grid, u, k * grid.dims, scale, levels, k * grid.dims);
    }
    fit(n, levels);
    if (sumQ2 > 0) scale = f32(sumQX / sumQ2);
  }
  return scale;
}

/**
 * Signs of group k's 8 weights into xval as magnitudes; with `evenSigns` (the iq2_xxs,
 * iq2_xs and iq3_xxs grids store 7 sign bits, the eighth making their count even) an odd
 * count flips the weight of least w*x^2 back. Returns the sign bits (7 or 8 of them).
 */
export function splitSigns(x: Float32Array, x0: number, k: number, evenSigns: boolean): number {
  let signs = 0;
  let flips = 0;
  for (let i = 0; i < 8; i++) {
    const v = x[x0 + 8 * k + i];
    if (v >= 0) xval[8 * k + i] = v;
    else {
      xval[8 * k + i] = -v;
      flips++;
      signs |= 1 << i;
    }
  }
  if (!evenSigns) return signs;
  if (flips % 2) {
    let imin = 0;
    let min = f32(f32(weight[8 * k] * x[x0 + 8 * k]) * x[x0 + 8 * k]);
    for (let i = 1; i < 8; i++) {
      const v = x[x0 + 8 * k + i];
      const ax = f32(f32(weight[8 * k + i] * v) * v);
      if (ax < min) {
        min = ax;
        imin = i;
      }
    }
    xval[8 * k + imin] = -xval[8 * k + imin];
    signs ^= 1 << imin;
  }
  return signs & 127;
}

/** C MAX over xval[0..n): the largest magnitude as `max = MAX(max, xval[i])` finds it. */
export function maxOfXval(n: number): number {
  let max = xval[0];
  for (let i = 1; i < n; i++) max = max > xval[i] ? max : xval[i];
  return max;
}

/** weight[i] = qw[i] * sqrtf(sigma2 + x^2), or `fallback(x)` without importance. */
export function fillWeights(
  x: Float32Array, x0: number, n: number, importance: Float32Array | undefined, col: number, sigma2: number,
  fallback: (xi: number) => number,
): void {
  for (let i = 0; i < n; i++) {
    const xi = x[x0 + i];
    weight[i] = importance ? f32(importance[col + i] * f32(Math.sqrt(f32(sigma2 + f32(xi * xi))))) : fallback(xi);
    waux[i] = f32(Math.sqrt(weight[i]));
  }
}
