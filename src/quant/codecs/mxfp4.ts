// MXFP4 (OCP Microscaling FP4): E2M1 values with one power-of-two E8M0 scale per 32 weights,
// byte for byte as ggml makes them (ggml-org/ggml d99724f, src/ggml-quants.c:
// quantize_row_mxfp4_ref, best_index_mxfp4, dequantize_row_mxfp4, which ggml_quantize_chunk
// calls with the importance weights ignored; src/ggml-common.h: block_mxfp4, kvalues_mxfp4;
// src/ggml-impl.h: ggml_e8m0_to_fp32_half).
//
// block_mxfp4, 17 bytes per 32 weights:
//   0       e        E8M0 exponent: scale 2^(e - 127)
//   1..16   qs[16]   byte j: low nibble = E2M1 code of weight j, high nibble = weight j+16
//   ggml's code table holds doubled E2M1 values (0, 1, 2, 3, 4, 6, 8, 12 and negatives), so
//   it multiplies by half the scale.
import { checkRows, type Codec } from '../codec.ts';
import { f32FromBits } from '../../formats/float16.ts';
import { f32, fabsf } from './rounding.ts';

export const MXFP4_BLOCK = 32;
export const MXFP4_BYTES = 1 + MXFP4_BLOCK / 2;

/** kvalues_mxfp4: E2M1 codes 0..15 as doubled values (code 8 is -0, stored as 0). */
export const KVALUES_MXFP4 = Int8Array.of(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
/** E2M1's largest magnitude is 6 = 1.5 * 2^2: the exponent of the absmax minus 2. */
const E2M1_MAX_EXPONENT = 2;
const E8M0_BIAS = 127;

/**
 * ggml_e8m0_to_fp32_half: 2^(e - 128) from the bits, subnormal for e < 2
 * (0 -> 2^-128, 1 -> 2^-127).
 */
export function e8m0ToF32Half(e: number): number {
  return f32FromBits(e < 2 ? 0x00200000 << e : (e - 1) << 23);
}

/**
 * The E8M0 exponent of a block: floor(log2f(amax)) - 2 + 127, or 0 for an all-zero block.
 * log2f is rounded to f32 before the floor, as in C: just below a power of two it rounds up.
 * `(uint8_t)` of a float outside 0..255 is undefined in C; x86 truncates to int32 and keeps
 * the low byte, which `& 0xff` reproduces.
 */
function sharedExponent(amax: number): number {
  if (!(amax > 0)) return 0;
  return (Math.floor(f32(Math.log2(amax))) - E2M1_MAX_EXPONENT + E8M0_BIAS) & 0xff;
}

/** best_index_mxfp4, as written in C: the first code with the smallest f32 |value * halfScale - x|. */
export function bestIndexMxfp4(x: number, halfScale: number): number {
  let best = 0;
  let bestErr = fabsf(f32(f32(KVALUES_MXFP4[0] * halfScale) - x));
  for (let i = 1; i < 16; i++) {
    const err = fabsf(f32(f32(KVALUES_MXFP4[i] * halfScale) - x));
    if (err < bestErr) {
      best = i;
      bestErr = err;
    }
  }
  return best;
}

// The search above is 16 unpredictable branches a weight. Within a block |x| < 16 * halfScale,
// and codes are at least halfScale apart, so only the two codes around x can win: every other
// one is at least halfScale farther, far more than f32 rounding of distances below 28 *
// halfScale can hide. Per bucket [k, k + 1) of x / halfScale (k = -16..15, at k + 16), the
// codes just below and above (value 0 is code 0, which precedes its twin code 8), and
// whether the one above wins ties (the C scan keeps the first, lower, code).
const CODE_BUCKETS = 32;
const { codeBelow, codeAbove, tieTakesAbove } = buildCodeBuckets();

function buildCodeBuckets() {
  const codeBelow = new Uint8Array(CODE_BUCKETS);
  const codeAbove = new Uint8Array(CODE_BUCKETS);
  const tieTakesAbove = new Uint8Array(CODE_BUCKETS);
  const values = [...new Set(KVALUES_MXFP4)].sort((a, b) => a - b);
  const codeOf = (v: number) => KVALUES_MXFP4.indexOf(v);
  for (let bucket = 0; bucket < CODE_BUCKETS; bucket++) {
    const k = bucket - CODE_BUCKETS / 2;
    const below = codeOf(values.findLast((v) => v <= k) ?? values[0]);
    const above = codeOf(values.find((v) => v > k) ?? values[values.length - 1]);
    codeBelow[bucket] = below;
    codeAbove[bucket] = above;
    tieTakesAbove[bucket] = +(above < below);
  }
  return { codeBelow, codeAbove, tieTakesAbove };
}

/**
 * bestIndexMxfp4(x, halfScale), comparing only the two codes around x; branch-free.
 * `inverseHalfScale` = 1 / halfScale, exact: both are powers of two, and x times it is exact
 * in double, so the bucket is exact.
 */
export function nearestCode(x: number, halfScale: number, inverseHalfScale: number): number {
  const bucket = Math.floor(x * inverseHalfScale) + CODE_BUCKETS / 2;
  if (!(bucket >= 0 && bucket < CODE_BUCKETS)) return bestIndexMxfp4(x, halfScale);
  const below = codeBelow[bucket];
  const above = codeAbove[bucket];
  const errBelow = fabsf(f32(f32(KVALUES_MXFP4[below] * halfScale) - x));
  const errAbove = fabsf(f32(f32(KVALUES_MXFP4[above] * halfScale) - x));
  const takeAbove = +(errAbove < errBelow) | (+(errAbove === errBelow) & tieTakesAbove[bucket]);
  return below + takeAbove * (above - below);
}

function encodeBlock(src: Float32Array, off: number, out: Uint8Array, at: number): void {
  let amax = 0;
  for (let j = 0; j < MXFP4_BLOCK; j++) {
    if (amax < fabsf(src[off + j])) amax = fabsf(src[off + j]);
  }
  const e = sharedExponent(amax);
  const halfScale = e8m0ToF32Half(e);
  const inverseHalfScale = 1 / halfScale;
  out[at] = e;
  for (let j = 0; j < MXFP4_BLOCK / 2; j++) {
    const lo = nearestCode(src[off + j], halfScale, inverseHalfScale);
    const hi = nearestCode(src[off + j + MXFP4_BLOCK / 2], halfScale, inverseHalfScale);
    out[at + 1 + j] = lo | (hi << 4);
  }
}

function decodeBlock(data: Uint8Array, at: number, out: Float32Array, to: number): void {
  const halfScale = e8m0ToF32Half(data[at]);
  for (let j = 0; j < MXFP4_BLOCK / 2; j++) {
    const byte = data[at + 1 + j];
    // Float32Array stores round each product once, as C's float multiply.
    out[to + j] = KVALUES_MXFP4[byte & 0xf] * halfScale;
    out[to + j + MXFP4_BLOCK / 2] = KVALUES_MXFP4[byte >> 4] * halfScale;
  }
}

/** MXFP4: 4.25 bits per weight; ggml ignores importance weights for it. */
export const MXFP4: Codec = {
  encode(src, rowLength) {
    const rows = checkRows(src, rowLength, MXFP4_BLOCK, 'mxfp4');
    const blocks = (rows * rowLength) / MXFP4_BLOCK;
    const out = new Uint8Array(blocks * MXFP4_BYTES);
    for (let b = 0; b < blocks; b++) encodeBlock(src, b * MXFP4_BLOCK, out, b * MXFP4_BYTES);
    return out;
  },
  decode(data, rows, rowLength) {
    const blocks = (rows * rowLength) / MXFP4_BLOCK;
    if (rowLength % MXFP4_BLOCK !== 0 || data.length < blocks * MXFP4_BYTES) {
      throw new RangeError(`mxfp4: ${data.length} bytes do not hold ${rows} rows of ${rowLength}`);
    }
    const out = new Float32Array(rows * rowLength);
    for (let b = 0; b < blocks; b++) decodeBlock(data, b * MXFP4_BYTES, out, b * MXFP4_BLOCK);
    return out;
  },
};
