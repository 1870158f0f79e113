// AssemblyScript: the lattice i-quant encoders iq2_xxs, iq2_xs, iq2_s, iq3_xxs and iq3_s,
// ported from the TypeScript reference (src/quant/codecs/lattice-search.ts, iq2.ts, iq3.ts;
// ggml-quants.c quantize_row_iq2_xxs_impl .. _iq3_s_impl, iq2/iq3_find_best_neighbour).
// Each f32(...) of the reference is one f32 operation here, in the same order.
//
// The grids are not in this source: JavaScript hands each grid's level list
// (src/quant/codecs/iquants-grid-data.ts) to iqGridInit once, which derives, as
// iquants-grid.ts does, the quantizer coordinates, the map of level vectors to grid points
// and every reachable off-grid vector's neighbour list (the one-off start-up work ggml's
// iq2xs_init_impl / iq3xs_init_impl does), into memory the caller keeps for it.
// A row whose search finds no neighbour (squared errors overflowing f32: the reference
// throws) is flagged for the reference.
import { GROUP_MAX_EPS, ONE_TENTH, FLT_MAX, flagRow, ldf, stf, ldu8, stu8, ldi8, makeQpQuants, nearestInt, storeF16, sumOfSquares } from './common';

export const IQ_QK = 256;
export const IQ2_XXS_BYTES = 66;
export const IQ2_XS_BYTES = 74;
export const IQ2_S_BYTES = 82;
export const IQ3_XXS_BYTES = 98;
export const IQ3_S_BYTES = 110;

/** Grid slots (the g of iqGridInit), shared with src/quant/fast/wasm-codecs.ts. */
export const GRID_IQ2XXS = 0, GRID_IQ2XS = 1, GRID_IQ2S = 2, GRID_IQ3XXS = 3, GRID_IQ3S = 4, GRID_IQ1S = 5;
const GRID_SLOTS = 8;
// Per grid slot: size, dims, bits, map (i32 per level vector), coords (i8), termIndex (u8),
// listAt (u32 per level vector: its neighbour list, or 0), levelCount, coordVectors (4-dim
// grids: each point's coordinates 2l+1 as an f32x4).
const FIELDS = 10;
const gridInfo = memory.data(GRID_SLOTS * FIELDS * 4, 16);

/** True when grid slot g has been set up by iqGridInit. */
export function iqGridReady(g: i32): bool {
  return load<u32>(gridInfo + <usize>(g * FIELDS) * 4) != 0;
}

// The current grid (useGrid).
let gSize = 0, gDims = 0, gBits = 0;
let gMap: usize = 0, gCoords: usize = 0, gTermIndex: usize = 0, gListAt: usize = 0, gCoordVectors: usize = 0;

export function useGrid(g: i32): void {
  const p = gridInfo + <usize>(g * FIELDS) * 4;
  gSize = load<i32>(p);
  gDims = load<i32>(p, 4);
  gBits = load<i32>(p, 8);
  gMap = load<u32>(p, 12);
  gCoords = load<u32>(p, 16);
  gTermIndex = load<u32>(p, 20);
  gListAt = load<u32>(p, 24);
  gCoordVectors = load<u32>(p, 32);
}

@inline function align16(p: usize): usize {
  return (p + 15) & ~(<usize>15);
}

/** Grow the memory to hold [0, end). */
function ensureMemory(end: usize): void {
  const have = (<usize>memory.size()) << 16;
  if (end > have) memory.grow(<i32>((end - have + 0xffff) >> 16));
}

const dist2 = memory.data(2048 * 4, 16); // i32 per grid point
const histogram = memory.data(1024 * 4, 16); // i32 per squared distance

/**
 * Set up grid slot g from its `size` level vectors (u16 at `levels`, `dims` coordinates of
 * `bits` bits each, coordinate 0 lowest), placed there by the caller, with ggml's nwant:
 * every table after the levels. Returns the end of what it wrote (the caller keeps
 * [levels, end) for the grid from now on; the memory grows to hold it).
 */
export function iqGridInit(g: i32, levels: usize, size: i32, dims: i32, bits: i32, nwant: i32): usize {
  const mask = (1 << bits) - 1;
  const mapSize = bits == 2 ? 43692 : 4096;
  const map = align16(levels + <usize>size * 2);
  const coords = map + <usize>mapSize * 4;
  const termIndex = coords + <usize>(size * dims);
  const coordVectors = align16(termIndex + <usize>(size * dims));
  const listAt = coordVectors + (dims == 4 ? <usize>size * 16 : 0);
  let pool = listAt + <usize>mapSize * 4;
  ensureMemory(pool);
  memory.fill(map, 0xff, <usize>mapSize * 4);
  memory.fill(listAt, 0, <usize>mapSize * 4);
  let levelCount = 0;
  for (let p = 0; p < size; p++) {
    const v = <i32>load<u16>(levels + <usize>p * 2);
    for (let k = 0; k < dims; k++) {
      const l = (v >> (bits * k)) & mask;
      stu8(coords, p * dims + k, 2 * l + 1);
      stu8(termIndex, p * dims + k, (k << bits) + l);
      if (l + 1 > levelCount) levelCount = l + 1;
    }
    store<i32>(map + (<usize>v << 2), p);
    if (dims == 4) {
      for (let k = 0; k < 4; k++) store<f32>(coordVectors + <usize>(16 * p + 4 * k), <f32>ldi8(coords, p * 4 + k));
    }
  }
  // Neighbour lists of every off-grid vector the searches can reach (levels < levelCount):
  // all points at the nwant smallest squared distances, by (distance, index).
  const histogramSize = dims * (2 * mask) * (2 * mask) + 1;
  for (let u = 0; u < mapSize; u++) {
    if (load<i32>(map + (<usize>u << 2)) >= 0) continue;
    let reachable = true;
    for (let k = 0; k < dims; k++) if (((u >> (bits * k)) & mask) >= levelCount) reachable = false;
    if (!reachable) continue;
    memory.fill(histogram, 0, <usize>histogramSize * 4);
    for (let p = 0; p < size; p++) {
      let d2 = 0;
      for (let k = 0; k < dims; k++) {
        const diff = ldi8(coords, p * dims + k) - (2 * ((u >> (bits * k)) & mask) + 1);
        d2 += diff * diff;
      }
      store<i32>(dist2 + (<usize>p << 2), d2);
      const h = histogram + (<usize>d2 << 2);
      store<i32>(h, load<i32>(h) + 1);
    }
    let count = 0, kept = 0, limit = 0;
    for (let d = 0; d < histogramSize && kept < nwant; d++) {
      const h = load<i32>(histogram + (<usize>d << 2));
      if (h == 0) continue;
      kept++;
      count += h;
      limit = d;
    }
    // [u32 count][u16 points, padded to 8 bytes][u64 per point: its dims term offsets, a byte each]
    const packedAt = (pool + 4 + <usize>count * 2 + 7) & ~(<usize>7);
    ensureMemory(packedAt + <usize>count * 8 + 16);
    store<u32>(listAt + (<usize>u << 2), <u32>pool);
    store<u32>(pool, <u32>count);
    let at = pool + 4;
    let packed = packedAt;
    for (let d = 0; d <= limit; d++) {
      if (load<i32>(histogram + (<usize>d << 2)) == 0) continue;
      for (let p = 0; p < size; p++) {
        if (load<i32>(dist2 + (<usize>p << 2)) == d) {
          store<u16>(at, <u16>p);
          at += 2;
          let offsets: u64 = 0;
          for (let k = 0; k < dims; k++) offsets |= (<u64>ldu8(termIndex, p * dims + k) << 2) << (8 * k);
          store<u64>(packed, offsets);
          packed += 8;
        }
      }
    }
    pool = align16(packed);
  }
  const info = gridInfo + <usize>(g * FIELDS) * 4;
  store<i32>(info, size);
  store<i32>(info, dims, 4);
  store<i32>(info, bits, 8);
  store<u32>(info, <u32>map, 12);
  store<u32>(info, <u32>coords, 16);
  store<u32>(info, <u32>termIndex, 20);
  store<u32>(info, <u32>listAt, 24);
  store<i32>(info, levelCount, 28);
  store<u32>(info, <u32>coordVectors, 32);
  return pool;
}

// ---------------------------------------------------------------------------------------
// The search (lattice-search.ts), on the scratch below: the C's stack arrays.

const xval = memory.data(32 * 4, 16);
const wx = memory.data(32 * 4, 16); // weight * xval, the same f32 product in every trial's fit
const weight = memory.data(32 * 4, 16);
const waux = memory.data(32 * 4, 16);
const levels = memory.data(32, 16); // i8: the winning levels
const trial = memory.data(32, 16); // i8: Laux
const onGrid = memory.data(8, 16);
const trialOnGrid = memory.data(8, 16);
const terms = memory.data(32 * 4, 16); // f32 by (coordinate << bits) + level
const qpLevels = memory.data(32, 16);
const scales = memory.data(16 * 4, 16);
const groupSigns = memory.data(4, 16);
const q2 = memory.data(16 * 4, 16);

/**
 * findBestNeighbour: of the current grid's neighbours of level vector u, the point with the
 * least sum of w*(scale*q - x)^2 (the first of equal ones); its levels into L[l0..]. A
 * search that finds none flags the row (the reference throws there) and leaves point 0.
 */
function findBestNeighbour(u: i32, x0: i32, scale: f32, L: usize, l0: i32): i32 {
  const dims = gDims;
  if (dims == 4) return findBestNeighbour4(u, x0, scale, L, l0);
  // The term w*(scale*(2l+1) - x)^2 of coordinate i at level l, at (i << bits) + l: four
  // levels per vector, each lane the reference's f32 operations (levels 3 of the 2-bit
  // grids are never read).
  const s4 = f32x4.splat(scale);
  const q0 = f32x4.mul(s4, f32x4(1, 3, 5, 7));
  if (gBits == 2) {
    for (let i = 0; i < dims; i++) {
      const x = f32x4.splat(ldf(xval, x0 + i));
      const w = f32x4.splat(ldf(waux, x0 + i));
      const diff = f32x4.sub(q0, x);
      v128.store(terms + (<usize>i << 4), f32x4.mul(f32x4.mul(w, diff), diff));
    }
  } else {
    const q1 = f32x4.mul(s4, f32x4(9, 11, 13, 15));
    for (let i = 0; i < dims; i++) {
      const x = f32x4.splat(ldf(xval, x0 + i));
      const w = f32x4.splat(ldf(waux, x0 + i));
      const d0 = f32x4.sub(q0, x);
      const d1 = f32x4.sub(q1, x);
      v128.store(terms + (<usize>i << 5), f32x4.mul(f32x4.mul(w, d0), d0));
      v128.store(terms + (<usize>i << 5), f32x4.mul(f32x4.mul(w, d1), d1), 16);
    }
  }
  let best = scanNeighbours(u, terms);
  if (best < 0) {
    flagRow();
    best = 0;
  }
  const c = gCoords + <usize>(best * dims);
  for (let i = 0; i < dims; i++) stu8(L, l0 + i, (ldi8(c, i) - 1) >> 1);
  return best;
}

/**
 * findBestNeighbour on a 4-dimensional grid (iq3), whose lists are short (5 to 7 points on
 * average): each point's four terms w*(scale*q - x)^2 as one vector, summed in coordinate
 * order, instead of a table of all 32.
 */
@inline function findBestNeighbour4(u: i32, x0: i32, scale: f32, L: usize, l0: i32): i32 {
  const list = <usize>load<u32>(gListAt + (<usize>u << 2));
  const count = list ? <i32>load<u32>(list) : 0;
  const s4 = f32x4.splat(scale);
  const x4 = v128.load(xval + (<usize>x0 << 2));
  const w4 = v128.load(waux + (<usize>x0 << 2));
  let bestD2: f32 = FLT_MAX;
  let best = -1;
  for (let j = 0; j < count; j++) {
    const point = <i32>load<u16>(list + 4 + (<usize>j << 1));
    const diff = f32x4.sub(f32x4.mul(s4, v128.load(gCoordVectors + (<usize>point << 4))), x4);
    const t = f32x4.mul(f32x4.mul(w4, diff), diff);
    const d2: f32 = f32x4.extract_lane(t, 0) + f32x4.extract_lane(t, 1) + f32x4.extract_lane(t, 2) + f32x4.extract_lane(t, 3);
    const better = d2 < bestD2;
    best = select<i32>(point, best, better);
    bestD2 = select<f32>(d2, bestD2, better);
  }
  if (best < 0) {
    flagRow();
    best = 0;
  }
  const c = gCoords + <usize>(best * 4);
  for (let i = 0; i < 4; i++) stu8(L, l0 + i, (ldi8(c, i) - 1) >> 1);
  return best;
}

/**
 * Of the current grid's neighbours of the off-grid level vector u, the point whose sum of
 * its coordinates' terms (f32 at byte offset (coordinate << bits + level) * 4 from `terms`,
 * summed in coordinate order as C's loop) is least, the first of equal ones; -1 when none
 * is below FLT_MAX (overflow, where the reference throws).
 */
export function scanNeighbours(u: i32, terms: usize): i32 {
  const dims = gDims;
  const list = <usize>load<u32>(gListAt + (<usize>u << 2));
  const count = list ? <i32>load<u32>(list) : 0;
  const packed = (list + 4 + <usize>count * 2 + 7) & ~(<usize>7);
  // Each point's sum of its coordinates' terms, in coordinate order (as C's loop); the
  // first of equal sums wins.
  let bestD2: f32 = FLT_MAX;
  let bestJ = -1;
  if (dims == 8) {
    for (let j = 0; j < count; j++) {
      const o = load<u64>(packed + (<usize>j << 3));
      const lo = <u32>o;
      const hi = <u32>(o >> 32);
      let d2: f32 = load<f32>(terms + <usize>(lo & 0xff));
      d2 += load<f32>(terms + <usize>((lo >> 8) & 0xff));
      d2 += load<f32>(terms + <usize>((lo >> 16) & 0xff));
      d2 += load<f32>(terms + <usize>(lo >> 24));
      d2 += load<f32>(terms + <usize>(hi & 0xff));
      d2 += load<f32>(terms + <usize>((hi >> 8) & 0xff));
      d2 += load<f32>(terms + <usize>((hi >> 16) & 0xff));
      d2 += load<f32>(terms + <usize>(hi >> 24));
      // Branch-free (the winner is unpredictable): select, as `if (d2 < bestD2)`.
      const better = d2 < bestD2;
      bestJ = select<i32>(j, bestJ, better);
      bestD2 = select<f32>(d2, bestD2, better);
    }
  } else {
    for (let j = 0; j < count; j++) {
      const lo = load<u32>(packed + (<usize>j << 3));
      let d2: f32 = load<f32>(terms + <usize>(lo & 0xff));
      d2 += load<f32>(terms + <usize>((lo >> 8) & 0xff));
      d2 += load<f32>(terms + <usize>((lo >> 16) & 0xff));
      d2 += load<f32>(terms + <usize>(lo >> 24));
      // Branch-free (the winner is unpredictable): select, as `if (d2 < bestD2)`.
      const better = d2 < bestD2;
      bestJ = select<i32>(j, bestJ, better);
      bestD2 = select<f32>(d2, bestD2, better);
    }
  }
  return bestJ < 0 ? -1 : <i32>load<u16>(list + 4 + (<usize>bestJ << 1));
}

/** The level (0..) of coordinate i of the current grid's point p. */
export function pointLevel(p: i32, i: i32): i32 {
  return (ldi8(gCoords, p * gDims + i) - 1) >> 1;
}

/** The current grid's point of level vector u, or -1 off the grid. */
export function gridPointOf(u: i32): i32 {
  return load<i32>(gMap + (<usize>u << 2));
}

/** Snap group k's magnitudes at inverse scale id into L (clamped to 0..kMaxQ-1); returns the level vector. */
@inline function snapGroup(k: i32, id: f32, kMaxQ: i32, L: usize): i32 {
  const hi = i32x4.splat(kMaxQ - 1);
  if (gDims == 4) {
    const c = snap4(v128.load(xval + (<usize>k << 4)), id, hi);
    store<u32>(L + (<usize>k << 2), <u32>i32x4.extract_lane(i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(c, c), c), 0));
    return horizontalSum(i32x4.mul(c, i32x4(1, 8, 64, 512)));
  }
  const c0 = snap4(v128.load(xval + (<usize>k << 5)), id, hi);
  const c1 = snap4(v128.load(xval + (<usize>k << 5), 16), id, hi);
  store<u64>(L + (<usize>k << 3), i64x2.extract_lane(i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(c0, c1), c0), 0));
  return horizontalSum(v128.or(i32x4.mul(c0, i32x4(1, 4, 16, 64)), i32x4.mul(c1, i32x4(256, 1024, 4096, 16384))));
}

/** nearest_int(0.5f*(id*x - 1)) of four magnitudes (nearestInt's mantissa trick, lane by lane), clamped to 0..hi. */
@inline function snap4(x: v128, id: f32, hi: v128): v128 {
  const v = f32x4.mul(f32x4.splat(0.5), f32x4.sub(f32x4.mul(f32x4.splat(id), x), f32x4.splat(1)));
  const l = i32x4.sub(v128.and(f32x4.add(v, f32x4.splat(12582912)), i32x4.splat(0x007fffff)), i32x4.splat(0x00400000));
  return i32x4.min_s(i32x4.max_s(l, i32x4.splat(0)), hi);
}

@inline function horizontalSum(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}

@inline function onGridIndex(u: i32): i32 {
  return load<i32>(gMap + (<usize>u << 2));
}

function fillWx(n: i32): void {
  for (let i = 0; i < n; i += 4) {
    const o = <usize>i << 2;
    v128.store(wx + o, f32x4.mul(v128.load(weight + o), v128.load(xval + o)));
  }
}

let sumQX: f32 = 0;
let sumQ2: f32 = 0;
function fit(n: i32, L: usize): void {
  let qx: f32 = 0;
  let q2: f32 = 0;
  for (let i = 0; i < n; i++) {
    const w = ldf(weight, i);
    const q = <f32>(ldi8(L, i) * 2 + 1);
    qx += ldf(wx, i) * q;
    q2 += w * q * q;
  }
  sumQX = qx;
  sumQ2 = q2;
}

/** lattice-search.ts searchScale: the trials and the refit; `levels` gets the levels; returns the scale. */
function searchScale(n: i32, kMaxQ: i32, range: i32, step: f32, startOnGrid: bool, refineAll: bool, mx: f32): f32 {
  const dims = gDims;
  const groups = n / dims;
  fillWx(n);
  let best: f32 = 0;
  let scale: f32 = mx / <f32>(kMaxQ * 2 - 1);
  memory.fill(levels, 0, n);
  memory.fill(onGrid, startOnGrid ? 1 : 0, groups);
  for (let is = -range; is <= range; is++) {
    const id: f32 = (<f32>(kMaxQ * 2 - 1) + <f32>is * step) / mx;
    const thisScale: f32 = <f32>1 / id;
    for (let k = 0; k < groups; k++) {
      const u = snapGroup(k, id, kMaxQ, trial);
      stu8(trialOnGrid, k, 1);
      if (onGridIndex(u) < 0) {
        stu8(trialOnGrid, k, 0);
        findBestNeighbour(u, k * dims, thisScale, trial, k * dims);
      }
    }
    fit(n, trial);
    if (sumQ2 > 0 && sumQX * sumQX > best * sumQ2) {
      scale = sumQX / sumQ2;
      best = scale * sumQX;
      memory.copy(levels, trial, n);
      memory.copy(onGrid, trialOnGrid, groups);
    }
  }
  let offGrid = 0;
  for (let k = 0; k < groups; k++) if (!ldu8(onGrid, k)) offGrid++;
  if (offGrid > 0 && scale > 0) {
    const id: f32 = <f32>1 / scale;
    for (let k = 0; k < groups; k++) {
      if (ldu8(onGrid, k) && !refineAll) continue;
      const u = snapGroup(k, id, kMaxQ, levels);
      if (onGridIndex(u) < 0) findBestNeighbour(u, k * dims, scale, levels, k * dims);
    }
    fit(n, levels);
    if (sumQ2 > 0) scale = sumQX / sumQ2;
  }
  return scale;
}

/** lattice-search.ts searchScaleFromEffMax (iq2_xxs). */
function searchScaleFromEffMax(n: i32, kMaxQ: i32, range: i32, step: f32, effMax: f32, startScale: f32): f32 {
  const dims = gDims;
  const groups = n / dims;
  fillWx(n);
  let best: f32 = 0;
  let scale = startScale;
  for (let is = -range; is <= range; is++) {
    const id: f32 = (<f32>(kMaxQ * 2 - 1) + <f32>is * step) / effMax;
    const thisScale: f32 = <f32>1 / id;
    for (let k = 0; k < groups; k++) {
      const u = snapGroup(k, id, kMaxQ, trial);
      if (onGridIndex(u) < 0) findBestNeighbour(u, k * dims, thisScale, trial, k * dims);
    }
    fit(n, trial);
    if (sumQ2 > 0 && sumQX * sumQX > best * sumQ2) {
      scale = sumQX / sumQ2;
      best = scale * sumQX;
      memory.copy(levels, trial, n);
    }
  }
  if (scale > 0) {
    const id: f32 = <f32>1 / scale;
    for (let k = 0; k < groups; k++) {
      const u = snapGroup(k, id, kMaxQ, levels);
      if (onGridIndex(u) < 0) findBestNeighbour(u, k * dims, scale, levels, k * dims);
    }
    fit(n, levels);
    if (sumQ2 > 0) scale = sumQX / sumQ2;
  }
  return scale;
}

/** lattice-search.ts splitSigns: group k's magnitudes into xval; the sign bits (7 with evenSigns). */
function splitSigns(x: usize, k: i32, evenSigns: bool): i32 {
  let signs = 0;
  let flips = 0;
  for (let i = 0; i < 8; i++) {
    const v = ldf(x, 8 * k + i);
    if (v >= 0) stf(xval, 8 * k + i, v);
    else {
      stf(xval, 8 * k + i, -v);
      flips++;
      signs |= 1 << i;
    }
  }
  if (!evenSigns) return signs;
  if (flips & 1) {
    let imin = 0;
    const v0 = ldf(x, 8 * k);
    let mn: f32 = ldf(weight, 8 * k) * v0 * v0;
    for (let i = 1; i < 8; i++) {
      const v = ldf(x, 8 * k + i);
      const ax: f32 = ldf(weight, 8 * k + i) * v * v;
      if (ax < mn) {
        mn = ax;
        imin = i;
      }
    }
    stf(xval, 8 * k + imin, -ldf(xval, 8 * k + imin));
    signs ^= 1 << imin;
  }
  return signs & 127;
}

function maxOfXval(n: i32): f32 {
  let mx = ldf(xval, 0);
  for (let i = 1; i < n; i++) {
    const v = ldf(xval, i);
    mx = mx > v ? mx : v;
  }
  return mx;
}

const FALLBACK_ZERO = 0, FALLBACK_SQUARE = 1, FALLBACK_QUARTER_SIGMA = 2;
/** weight = qw * sqrtf(sigma2 + x^2), or the fallback without importance; waux = sqrtf(weight). */
function fillWeights(x: usize, n: i32, qw: usize, sigma2: f32, fallback: i32, quarterSigma2: f32): void {
  for (let i = 0; i < n; i++) {
    const xi = ldf(x, i);
    let w: f32;
    if (qw) w = ldf(qw, i) * sqrt<f32>(sigma2 + xi * xi);
    else if (fallback == FALLBACK_SQUARE) w = xi * xi;
    else if (fallback == FALLBACK_QUARTER_SIGMA) w = quarterSigma2 + xi * xi;
    else w = 0;
    stf(weight, i, w);
    stf(waux, i, sqrt<f32>(w));
  }
}

/** The grid index of levels[l0..l0+dims) (on the grid after the search; a flagged row may leave -1). */
function gridIndexOf(l0: i32): i32 {
  let u = 0;
  for (let i = 0; i < gDims; i++) u |= ldi8(levels, l0 + i) << (gBits * i);
  const index = onGridIndex(u);
  if (index < 0) flagRow();
  return index & 0xffff;
}

@inline function subScaleCode(id: f32, scale: f32): i32 {
  const l = nearestInt(<f32>0.5 * (id * scale - <f32>1));
  return l < 0 ? 0 : l > 15 ? 15 : l;
}

@inline function ldScale(ib: i32): f32 {
  return ldf(scales, ib);
}

// ---------------------------------------------------------------------------------------
// Blocks (iq2.ts, iq3.ts). x: 256 values, qw: their importance or 0, out: the block.

export function encodeBlockIq2Xxs(x: usize, qw: usize, out: usize): void {
  useGrid(GRID_IQ2XXS);
  memory.fill(q2, 0, 64);
  let maxScale: f32 = 0;
  const sigma2: f32 = sumOfSquares(x, IQ_QK) / <f32>IQ_QK;
  for (let ib = 0; ib < 8; ib++) {
    const xb = x + <usize>(128 * ib);
    fillWeights(xb, 32, qw ? qw + <usize>(128 * ib) : 0, sigma2, FALLBACK_ZERO, 0);
    for (let k = 0; k < 4; k++) stu8(groupSigns, k, splitSigns(xb, k, true));
    const mx = maxOfXval(32);
    stf(scales, ib, 0);
    if (mx < GROUP_MAX_EPS) continue;
    let scale = makeQpQuants(32, 4, xval, qpLevels, weight);
    const effMax: f32 = scale * <f32>3;
    if (effMax <= 0) continue;
    memory.copy(levels, qpLevels, 32);
    scale = searchScaleFromEffMax(32, 3, 6, ONE_TENTH, effMax, scale);
    if (scale < 0) {
      scale = -scale;
      for (let k = 0; k < 4; k++) stu8(groupSigns, k, ~ldu8(groupSigns, k) & 127);
    }
    let grid: u32 = 0, signs: u32 = 0;
    for (let k = 0; k < 4; k++) {
      grid |= <u32>gridIndexOf(8 * k) << (8 * k);
      signs |= <u32>ldu8(groupSigns, k) << (7 * k);
    }
    store<u32>(q2 + <usize>(8 * ib), load<u32>(q2 + <usize>(8 * ib)) | grid);
    store<u32>(q2 + <usize>(8 * ib + 4), load<u32>(q2 + <usize>(8 * ib + 4)) | signs);
    stf(scales, ib, scale);
    maxScale = maxScale > scale ? maxScale : scale;
  }
  if (maxScale == 0) {
    memory.fill(out, 0, IQ2_XXS_BYTES);
    return;
  }
  const d: f32 = maxScale / <f32>31;
  storeF16(out, d);
  const id: f32 = <f32>1 / d;
  for (let ib = 0; ib < 8; ib++) {
    const p = q2 + <usize>(8 * ib + 4);
    store<u32>(p, load<u32>(p) | (<u32>subScaleCode(id, ldScale(ib)) << 28));
  }
  memory.copy(out + 2, q2, 64);
}

/** The 16-weight sub-block search of iq2_xs and iq2_s: its scale, or -1 when all zero. */
function encodeSubBlock16(xb: usize, evenSigns: bool, eps: f32): f32 {
  for (let k = 0; k < 2; k++) stu8(groupSigns, k, splitSigns(xb, k, evenSigns));
  const mx = maxOfXval(16);
  memory.fill(levels, 0, 16);
  if (mx < eps) return -1;
  let scale = searchScale(16, 3, 9, ONE_TENTH, true, false, mx);
  if (scale < 0) {
    scale = -scale;
    const keep = evenSigns ? 127 : 255;
    for (let k = 0; k < 2; k++) stu8(groupSigns, k, ~ldu8(groupSigns, k) & keep);
  }
  return scale;
}

export function encodeBlockIq2Xs(x: usize, qw: usize, out: usize): void {
  useGrid(GRID_IQ2XS);
  memory.fill(out, 0, IQ2_XS_BYTES);
  let maxScale: f32 = 0;
  const sigma2: f32 = sumOfSquares(x, IQ_QK) / <f32>IQ_QK;
  for (let ib = 0; ib < 16; ib++) {
    const xb = x + <usize>(64 * ib);
    fillWeights(xb, 16, qw ? qw + <usize>(64 * ib) : 0, sigma2, FALLBACK_ZERO, 0);
    const scale = encodeSubBlock16(xb, true, GROUP_MAX_EPS);
    stf(scales, ib, scale < 0 ? 0 : scale);
    if (scale < 0) continue;
    for (let k = 0; k < 2; k++) store<u16>(out + <usize>(2 + 2 * (2 * ib + k)), <u16>(gridIndexOf(8 * k) | (ldu8(groupSigns, k) << 9)));
    maxScale = maxScale > scale ? maxScale : scale;
  }
  if (maxScale == 0) {
    memory.fill(out, 0, IQ2_XS_BYTES);
    return;
  }
  const d: f32 = maxScale / <f32>31;
  storeF16(out, d);
  const id: f32 = <f32>1 / d;
  for (let ib = 0; ib < 16; ib++) {
    const at = 66 + (ib >> 1);
    stu8(out, at, ldu8(out, at) | (subScaleCode(id, ldScale(ib)) << (4 * (ib & 1))));
  }
}

const GROUP_MAX_EPS_IQ2_S: f32 = 1e-8;
const IQ2_S_SCALE_FUDGE: f32 = 0.9875;

export function encodeBlockIq2S(x: usize, qw: usize, out: usize): void {
  useGrid(GRID_IQ2S);
  memory.fill(out, 0, IQ2_S_BYTES);
  let maxScale: f32 = 0;
  const sigma2: f32 = (<f32>2 * sumOfSquares(x, IQ_QK)) / <f32>IQ_QK;
  const quarterSigma2: f32 = <f32>0.25 * sigma2;
  for (let ib = 0; ib < 16; ib++) {
    const xb = x + <usize>(64 * ib);
    fillWeights(xb, 16, qw ? qw + <usize>(64 * ib) : 0, sigma2, FALLBACK_QUARTER_SIGMA, quarterSigma2);
    const scale = encodeSubBlock16(xb, false, GROUP_MAX_EPS_IQ2_S);
    stf(scales, ib, scale < 0 ? 0 : scale);
    if (scale < 0) continue;
    for (let k = 0; k < 2; k++) {
      const i8 = 2 * ib + k;
      const index = gridIndexOf(8 * k);
      stu8(out, 2 + i8, index & 255);
      const at = 66 + (i8 >> 2);
      stu8(out, at, ldu8(out, at) | ((index >> 8) << (2 * (i8 & 3))));
      stu8(out, 34 + i8, ldu8(groupSigns, k));
    }
    maxScale = maxScale > scale ? maxScale : scale;
  }
  if (maxScale == 0) return;
  const d: f32 = maxScale / <f32>31;
  storeF16(out, d * IQ2_S_SCALE_FUDGE);
  const id: f32 = <f32>1 / d;
  for (let ib = 0; ib < 16; ib++) {
    const at = 74 + (ib >> 1);
    stu8(out, at, ldu8(out, at) | (subScaleCode(id, ldScale(ib)) << (4 * (ib & 1))));
  }
}

const GROUP_MAX_EPS_IQ3_XXS: f32 = 1e-8;
const TWO_TENTHS: f32 = 0.2;
const IQ3_XXS_SCALE_FUDGE: f32 = 1.0125;
const IQ3_S_SCALE_FUDGE: f32 = 1.033;

export function encodeBlockIq3Xxs(x: usize, qw: usize, out: usize): void {
  useGrid(GRID_IQ3XXS);
  memory.fill(out, 0, IQ3_XXS_BYTES);
  let maxScale: f32 = 0;
  const sigma2: f32 = (<f32>2 * sumOfSquares(x, IQ_QK)) / <f32>IQ_QK;
  for (let ib = 0; ib < 8; ib++) {
    const xb = x + <usize>(128 * ib);
    fillWeights(xb, 32, qw ? qw + <usize>(128 * ib) : 0, sigma2, FALLBACK_SQUARE, 0);
    for (let k = 0; k < 4; k++) stu8(groupSigns, k, splitSigns(xb, k, true));
    const mx = maxOfXval(32);
    stf(scales, ib, 0);
    if (mx < GROUP_MAX_EPS_IQ3_XXS) continue;
    let scale = searchScale(32, 8, 15, TWO_TENTHS, true, false, mx);
    if (scale < 0) {
      scale = -scale;
      for (let k = 0; k < 4; k++) stu8(groupSigns, k, ~ldu8(groupSigns, k) & 127);
    }
    for (let k = 0; k < 8; k++) stu8(out, 2 + 8 * ib + k, gridIndexOf(4 * k));
    store<u32>(out + <usize>(66 + 4 * ib), <u32>(ldu8(groupSigns, 0) | (ldu8(groupSigns, 1) << 7) | (ldu8(groupSigns, 2) << 14) | (ldu8(groupSigns, 3) << 21)));
    stf(scales, ib, scale);
    maxScale = maxScale > scale ? maxScale : scale;
  }
  if (maxScale == 0) {
    memory.fill(out, 0, IQ3_XXS_BYTES);
    return;
  }
  const d: f32 = maxScale / <f32>31;
  storeF16(out, d * IQ3_XXS_SCALE_FUDGE);
  const id: f32 = <f32>1 / d;
  for (let ib = 0; ib < 8; ib++) {
    const at = 66 + 4 * ib + 3;
    stu8(out, at, ldu8(out, at) | (subScaleCode(id, ldScale(ib)) << 4));
  }
}

export function encodeBlockIq3S(x: usize, qw: usize, out: usize): void {
  useGrid(GRID_IQ3S);
  memory.fill(out, 0, IQ3_S_BYTES);
  let maxScale: f32 = 0;
  const sigma2: f32 = (<f32>2 * sumOfSquares(x, IQ_QK)) / <f32>IQ_QK;
  // ggml advances qs and signs only past quantized sub-blocks (iq3.ts: `slot`).
  let slot = 0;
  for (let ib = 0; ib < 8; ib++) {
    const xb = x + <usize>(128 * ib);
    fillWeights(xb, 32, qw ? qw + <usize>(128 * ib) : 0, sigma2, FALLBACK_SQUARE, 0);
    for (let k = 0; k < 4; k++) stu8(groupSigns, k, splitSigns(xb, k, false));
    const mx = maxOfXval(32);
    stf(scales, ib, 0);
    if (mx == 0) continue;
    let scale = searchScale(32, 8, 9, TWO_TENTHS, false, true, mx);
    if (scale < 0) {
      scale = -scale;
      for (let k = 0; k < 4; k++) stu8(groupSigns, k, ~ldu8(groupSigns, k) & 255);
    }
    for (let k = 0; k < 8; k++) {
      const index = gridIndexOf(4 * k);
      stu8(out, 2 + 8 * slot + k, index & 255);
      stu8(out, 66 + ib, ldu8(out, 66 + ib) | ((index >> 8) << k));
    }
    for (let k = 0; k < 4; k++) stu8(out, 74 + 4 * slot + k, ldu8(groupSigns, k));
    slot++;
    stf(scales, ib, scale);
    maxScale = maxScale > scale ? maxScale : scale;
  }
  if (maxScale == 0) return;
  const d: f32 = maxScale / <f32>31;
  storeF16(out, d * IQ3_S_SCALE_FUDGE);
  const id: f32 = <f32>1 / d;
  for (let ib = 0; ib < 8; ib += 2) stu8(out, 106 + ib / 2, subScaleCode(id, ldScale(ib)) | (subScaleCode(id, ldScale(ib + 1)) << 4));
}
