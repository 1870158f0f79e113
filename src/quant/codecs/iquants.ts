// IQ4_NL and IQ4_XS: 4-bit indices into a fixed non-uniform grid (kvalues_iq4nl), byte for
// byte as ggml_quantize_chunk makes them (ggml-org/ggml d99724f, src/ggml-quants.c:
// quantize_row_iq4_nl_impl, quantize_iq4_nl, quantize_iq4_xs, best_index_int8,
// dequantize_row_iq4_nl/_xs; src/ggml-common.h: block_iq4_nl, block_iq4_xs, kvalues_iq4nl).
//
// block_iq4_nl, 18 bytes per 32 weights:
//   0..1    d          f16 scale, little-endian
//   2..17   qs[16]     byte j: low nibble = grid index of weight j, high nibble = weight j+16
//
// block_iq4_xs, 136 bytes per 256 weights (8 sub-blocks of 32):
//   0..1    d          f16 super-block scale
//   2..3    scales_h   u16 LE: bits 2ib..2ib+1 = high 2 bits of sub-block ib's scale
//   4..7    scales_l   byte ib>>1: low nibble = sub-block 2k, high nibble = 2k+1 (low 4 bits)
//   8..135  qs         16 bytes per sub-block, nibbles as in iq4_nl
//   Sub-block scale = d * (ls - 32), ls the 6-bit value above.
//
// Arithmetic is C float throughout: every op is rounded with f32 (Math.fround), never fused.
import { checkRows, type Codec } from '../codec.ts';
import { f16BitsToF32, f32Bits, f32FromBits, f32ToF16Bits } from '../../formats/float16.ts';
import { f32, fabsf, nearestInt } from './rounding.ts';

export const IQ4_NL_BLOCK = 32;
export const IQ4_NL_BYTES = 2 + IQ4_NL_BLOCK / 2;
export const IQ4_XS_BLOCK = 256;
export const IQ4_XS_BYTES = 2 + 2 + IQ4_XS_BLOCK / 64 + IQ4_XS_BLOCK / 2;

const SUB_BLOCK = 32;
const SUB_BLOCKS_PER_XS = IQ4_XS_BLOCK / SUB_BLOCK;
/** The non-linear grid (kvalues_iq4nl), ascending. */
export const KVALUES_IQ4NL = Int8Array.of(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
const GRID_MIN = KVALUES_IQ4NL[0];
const GRID_MAX = KVALUES_IQ4NL[15];
/** Blocks with a smaller absmax are stored as zero (GROUP_MAX_EPS). */
const GROUP_MAX_EPS = f32(1e-15);
/** Scales tried either side of the absmax one: ggml_quantize_chunk passes 7 (the _ref path -1). */
const NTRY = 7;

// Scratch reused by every block: the codecs are synchronous, so one set suffices.
const weight = new Float32Array(SUB_BLOCK);
const subScales = new Float32Array(SUB_BLOCKS_PER_XS);

/** best_index_int8, as written in C: binary search, then the nearer of the pair in f32. */
export function bestIndexInt8(x: number): number {
  const val = KVALUES_IQ4NL;
  if (x <= val[0]) return 0;
  if (x >= val[15]) return 15;
  let lo = 0;
  let hi = 15;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (x < val[mid]) hi = mid;
    else lo = mid;
  }
  return f32(x - val[hi - 1]) < f32(val[hi] - x) ? hi - 1 : hi;
}

/**
 * bestIndexInt8's answer per half-unit bucket [n/2, n/2 + 1/2) of (-127, 113), at n + 254.
 * It is monotone in x, and for this grid it switches exactly at the midpoints between grid
 * values, all multiples of 1/2: so each bucket has one answer, read at its two ends (checked
 * when the table is built). The C search's branches mispredict half the time, and it runs
 * 16 times per weight: the lookup makes IQ4 encoding about 1.7x faster.
 */
const GRID_BUCKETS = buildGridBuckets();

function buildGridBuckets(): Uint8Array {
  const buckets = new Uint8Array(2 * (GRID_MAX - GRID_MIN));
  for (let n = 0; n < buckets.length; n++) {
    const start = GRID_MIN + n / 2;
    buckets[n] = bestIndexInt8(start);
    if (bestIndexInt8(floatBelow(start + 0.5)) !== buckets[n]) throw new Error(`iq4: grid bucket ${start} has two answers`);
  }
  return buckets;
}

/** The largest f32 below y (a finite f32). */
function floatBelow(y: number): number {
  if (y === 0) return -f32FromBits(1);
  return f32FromBits(f32Bits(y) + (y > 0 ? -1 : 1));
}

/** bestIndexInt8(x), by bucket lookup. */
export function nearestGridIndex(x: number): number {
  if (!(x > GRID_MIN && x < GRID_MAX)) return bestIndexInt8(x);
  // floor(2x) is exact; x + 127 first would round tiny negatives up into bucket [0, 1/2).
  return GRID_BUCKETS[Math.floor(2 * x) - 2 * GRID_MIN];
}

/** sigma2 = 2/n * sum x^2: the spread that imatrix weights are blended with. */
function meanSquareTimesTwo(src: Float32Array, off: number, n: number): number {
  let sum = 0;
  for (let j = 0; j < n; j++) sum = f32(sum + f32(src[off + j] * src[off + j]));
  return f32(sum * f32(2 / n));
}

/** Per-weight error weights: x^2, or imatrix * sqrt(sigma2 + x^2) when given. */
function fillWeights(src: Float32Array, off: number, importance: Float32Array | undefined, col: number, sigma2: number): void {
  for (let j = 0; j < SUB_BLOCK; j++) {
    const x = src[off + j];
    const x2 = f32(x * x);
    weight[j] = importance ? f32(importance[col + j] * f32(Math.sqrt(f32(sigma2 + x2)))) : x2;
  }
}

/** The first guess, then the 2*NTRY+1 tries: 16, fitted four at a time. */
const CANDIDATES = 2 * NTRY + 2;
const candidateIds = new Float32Array(CANDIDATES);
const sumsQX = new Float32Array(CANDIDATES);
const sumsQ2 = new Float32Array(CANDIDATES);

/**
 * The scale ggml picks for 32 weights: start from max/127, then try the 2*NTRY+1 scales that
 * map the signed absmax to each grid end neighbour, keeping the best weighted fit.
 * Returns 0 for an (almost) all-zero block. Reads `weight`.
 */
function bestSubBlockScale(src: Float32Array, off: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < SUB_BLOCK; j++) {
    const ax = fabsf(src[off + j]);
    if (ax > amax) {
      amax = ax;
      max = src[off + j];
    }
  }
  if (amax < GROUP_MAX_EPS) return 0;

  // The fits do not depend on each other, only the choice between them does: fit all first.
  candidateIds[0] = f32(1 / f32(-max / GRID_MIN));
  for (let itry = -NTRY; itry <= NTRY; itry++) candidateIds[itry + NTRY + 1] = f32((itry + GRID_MIN) / max);
  fitCandidates(src, off);

  let d = sumsQ2[0] > 0 ? f32(sumsQX[0] / sumsQ2[0]) : 0;
  let best = f32(d * sumsQX[0]);
  for (let c = 1; c < CANDIDATES; c++) {
    const sumqx = sumsQX[c];
    const sumq2 = sumsQ2[c];
    if (sumq2 > 0 && f32(sumqx * sumqx) > f32(best * sumq2)) {
      d = f32(sumqx / sumq2);
      best = f32(d * sumqx);
    }
  }
  return d;
}

/**
 * For each candidate inverse scale id: the weighted sums of q*x and q^2 when every weight
 * snaps to the grid at id, in C's order. Each sum is a chain of f32 roundings; four
 * candidates at a time let the CPU overlap their chains (1.5x faster than one at a time).
 */
function fitCandidates(src: Float32Array, off: number): void {
  for (let c = 0; c < CANDIDATES; c += 4) {
    const id0 = candidateIds[c];
    const id1 = candidateIds[c + 1];
    const id2 = candidateIds[c + 2];
    const id3 = candidateIds[c + 3];
    let qx0 = 0, q20 = 0, qx1 = 0, q21 = 0, qx2 = 0, q22 = 0, qx3 = 0, q23 = 0;
    for (let j = 0; j < SUB_BLOCK; j++) {
      const x = src[off + j];
      const w = weight[j];
      let q = KVALUES_IQ4NL[nearestGridIndex(f32(id0 * x))];
      let wq = f32(w * q);
      qx0 = f32(qx0 + f32(wq * x));
      q20 = f32(q20 + f32(wq * q));
      q = KVALUES_IQ4NL[nearestGridIndex(f32(id1 * x))];
      wq = f32(w * q);
      qx1 = f32(qx1 + f32(wq * x));
      q21 = f32(q21 + f32(wq * q));
      q = KVALUES_IQ4NL[nearestGridIndex(f32(id2 * x))];
      wq = f32(w * q);
      qx2 = f32(qx2 + f32(wq * x));
      q22 = f32(q22 + f32(wq * q));
      q = KVALUES_IQ4NL[nearestGridIndex(f32(id3 * x))];
      wq = f32(w * q);
      qx3 = f32(qx3 + f32(wq * x));
      q23 = f32(q23 + f32(wq * q));
    }
    sumsQX[c] = qx0;
    sumsQ2[c] = q20;
    sumsQX[c + 1] = qx1;
    sumsQ2[c + 1] = q21;
    sumsQX[c + 2] = qx2;
    sumsQ2[c + 2] = q22;
    sumsQX[c + 3] = qx3;
    sumsQ2[c + 3] = q23;
  }
}

/** 32 weights -> 16 bytes of nibbles: weight j low, weight j+16 high. */
function packNibbles(src: Float32Array, off: number, invScale: number, out: Uint8Array, at: number): void {
  for (let j = 0; j < SUB_BLOCK / 2; j++) {
    const lo = nearestGridIndex(f32(invScale * src[off + j]));
    const hi = nearestGridIndex(f32(invScale * src[off + j + SUB_BLOCK / 2]));
    out[at + j] = lo | (hi << 4);
  }
}

function writeF16(out: Uint8Array, at: number, x: number): void {
  const h = f32ToF16Bits(x);
  out[at] = h & 0xff;
  out[at + 1] = h >>> 8;
}

function readF16(data: Uint8Array, at: number): number {
  return f16BitsToF32(data[at] | (data[at + 1] << 8));
}

function encodeIq4NlBlock(src: Float32Array, off: number, importance: Float32Array | undefined, col: number, out: Uint8Array, at: number): void {
  fillWeights(src, off, importance, col, meanSquareTimesTwo(src, off, IQ4_NL_BLOCK));
  const d = bestSubBlockScale(src, off);
  writeF16(out, at, d);
  // The nibbles use the unrounded f32 scale, not the stored f16 one, as ggml does.
  packNibbles(src, off, d ? f32(1 / d) : 0, out, at + 2);
}

function encodeIq4XsBlock(src: Float32Array, off: number, importance: Float32Array | undefined, col: number, out: Uint8Array, at: number): void {
  const sigma2 = meanSquareTimesTwo(src, off, IQ4_XS_BLOCK);
  let maxScale = 0;
  let amaxScale = 0;
  for (let ib = 0; ib < SUB_BLOCKS_PER_XS; ib++) {
    fillWeights(src, off + ib * SUB_BLOCK, importance, col + ib * SUB_BLOCK, sigma2);
    const scale = bestSubBlockScale(src, off + ib * SUB_BLOCK);
    subScales[ib] = scale;
    if (fabsf(scale) > amaxScale) {
      amaxScale = fabsf(scale);
      maxScale = scale;
    }
  }

  // 6-bit sub-block scales in [-32, 31] times d; the largest maps to -32 (d = -maxScale/32).
  const d = f32(-maxScale / 32);
  writeF16(out, at, d);
  const id = d ? f32(1 / d) : 0;
  let scalesHigh = 0;
  for (let ib = 0; ib < SUB_BLOCKS_PER_XS; ib++) {
    const l = Math.max(-32, Math.min(31, nearestInt(f32(id * subScales[ib]))));
    const dl = f32(d * l);
    packNibbles(src, off + ib * SUB_BLOCK, dl ? f32(1 / dl) : 0, out, at + 8 + 16 * ib);
    const biased = l + 32;
    const lowAt = at + 4 + (ib >> 1);
    out[lowAt] = ib % 2 === 0 ? biased & 0xf : out[lowAt] | ((biased & 0xf) << 4);
    scalesHigh |= (biased >> 4) << (2 * ib);
  }
  out[at + 2] = scalesHigh & 0xff;
  out[at + 3] = scalesHigh >>> 8;
}

type BlockEncoder = typeof encodeIq4NlBlock;

function encodeRows(what: string, blockSize: number, typeSize: number, encodeBlock: BlockEncoder) {
  return (src: Float32Array, rowLength: number, importance?: Float32Array): Uint8Array => {
    const rows = checkRows(src, rowLength, blockSize, what);
    if (importance && importance.length !== rowLength) {
      throw new RangeError(`${what}: ${importance.length} importance weights for rows of ${rowLength}`);
    }
    const blocksPerRow = rowLength / blockSize;
    const out = new Uint8Array(rows * blocksPerRow * typeSize);
    for (let b = 0; b < rows * blocksPerRow; b++) {
      encodeBlock(src, b * blockSize, importance, (b % blocksPerRow) * blockSize, out, b * typeSize);
    }
    return out;
  };
}

/** Blocks in `rows` x `rowLength`, after checking that `data` holds them all. */
function countBlocks(what: string, data: Uint8Array, rows: number, rowLength: number, blockSize: number, typeSize: number): number {
  const blocks = (rows * rowLength) / blockSize;
  if (rowLength % blockSize !== 0 || data.length < blocks * typeSize) {
    throw new RangeError(`${what}: ${data.length} bytes do not hold ${rows} rows of ${rowLength}`);
  }
  return blocks;
}

function decodeIq4Nl(data: Uint8Array, rows: number, rowLength: number): Float32Array {
  const blocks = countBlocks('iq4_nl', data, rows, rowLength, IQ4_NL_BLOCK, IQ4_NL_BYTES);
  const out = new Float32Array(rows * rowLength);
  for (let b = 0; b < blocks; b++) {
    const at = b * IQ4_NL_BYTES;
    unpackNibbles(data, at + 2, readF16(data, at), out, b * IQ4_NL_BLOCK);
  }
  return out;
}

/** 16 bytes of nibbles -> 32 floats (a Float32Array store rounds each product once). */
function unpackNibbles(data: Uint8Array, at: number, scale: number, out: Float32Array, to: number): void {
  for (let j = 0; j < SUB_BLOCK / 2; j++) {
    const byte = data[at + j];
    out[to + j] = scale * KVALUES_IQ4NL[byte & 0xf];
    out[to + j + SUB_BLOCK / 2] = scale * KVALUES_IQ4NL[byte >> 4];
  }
}

function decodeIq4Xs(data: Uint8Array, rows: number, rowLength: number): Float32Array {
  const blocks = countBlocks('iq4_xs', data, rows, rowLength, IQ4_XS_BLOCK, IQ4_XS_BYTES);
  const out = new Float32Array(rows * rowLength);
  for (let b = 0; b < blocks; b++) {
    const at = b * IQ4_XS_BYTES;
    const d = readF16(data, at);
    const scalesHigh = data[at + 2] | (data[at + 3] << 8);
    for (let ib = 0; ib < SUB_BLOCKS_PER_XS; ib++) {
      const low = (data[at + 4 + (ib >> 1)] >> (4 * (ib & 1))) & 0xf;
      const ls = low | (((scalesHigh >> (2 * ib)) & 3) << 4);
      unpackNibbles(data, at + 8 + 16 * ib, f32(d * (ls - 32)), out, b * IQ4_XS_BLOCK + ib * SUB_BLOCK);
    }
  }
  return out;
}

/** IQ4_NL: blocks of 32, f16 scale, 4-bit grid indices; honours importance weights. */
export const IQ4_NL: Codec = {
  encode: encodeRows('iq4_nl', IQ4_NL_BLOCK, IQ4_NL_BYTES, encodeIq4NlBlock),
  decode: decodeIq4Nl,
};

/** IQ4_XS: super-blocks of 256, f16 scale, 6-bit sub-block scales; honours importance weights. */
export const IQ4_XS: Codec = {
  encode: encodeRows('iq4_xs', IQ4_XS_BLOCK, IQ4_XS_BYTES, encodeIq4XsBlock),
  decode: decodeIq4Xs,
};
