// AssemblyScript: the legacy block encoders (q4_0, q4_1, q5_0, q5_1, q8_0), ported from
// the reference src/quant/codecs/legacy.ts, which follows ggml-org/ggml
// src/ggml-quants.c quantize_row_*_ref and quantize_row_*_impl. Byte maps: see the reference.
import {
  FLT_MAX, fillImportanceWeights, flagRow, groupWeights, ldf, ldu8, makeQkxQuants, makeQxQuants, storeF16, stu8,
} from './common';

export const QK = 32;
const quants = memory.data(32, 16); // u8 L
const theMin = memory.data(4, 16); // f32
const RMIN_NEG_0_9: f32 = -0.9;
const RDELTA_0_05: f32 = 0.05;

@inline function sext8(v: i32): i32 {
  return (v << 24) >> 24;
}

/** Store q5_x's nibble byte of q0 and q1 at out; returns their qh bits. */
@inline function fiveBitPair(q0: i32, q1: i32, j: i32, out: usize): u32 {
  store<u8>(out, <u8>((q0 & 0x0f) | ((q1 & 0x0f) << 4)));
  return ((<u32>(q0 & 0x10) >> 4) << j) | ((<u32>(q1 & 0x10) >> 4) << (j + 16));
}

function packQuants(L: usize, fiveBit: bool, out: usize): void {
  if (!fiveBit) {
    for (let j = 0; j < 16; j++) stu8(out, j, ldu8(L, j) | (ldu8(L, j + 16) << 4));
    return;
  }
  let qh: u32 = 0;
  for (let j = 0; j < 16; j++) qh |= fiveBitPair(ldu8(L, j), ldu8(L, j + 16), j, out + 4 + <usize>j);
  store<u32>(out, qh);
}

/**
 * The 16 bytes of a q4_x block (byte j = q[j] | q[j+16] << 4) from its quants as i32 lanes
 * (q0..q3: values 0..15, q4..q7: 16..31), stored at out; values are 0..255 (C's uint8_t).
 */
@inline function packNibbles4(q0: v128, q1: v128, q2: v128, q3: v128, q4: v128, q5: v128, q6: v128, q7: v128, out: usize): void {
  const lo = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(q0, q1), i16x8.narrow_i32x4_u(q2, q3));
  const hi = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(q4, q5), i16x8.narrow_i32x4_u(q6, q7));
  v128.store(out, v128.or(v128.and(lo, i8x16.splat(0x0f)), i8x16.shl(hi, 4)));
}

/** q5_x's qh (bit j = bit 4 of q[j]) and nibble bytes from the quants as i32 lanes (0..255). */
@inline function packFiveBit4(q0: v128, q1: v128, q2: v128, q3: v128, q4: v128, q5: v128, q6: v128, q7: v128, out: usize, qhAt: usize): void {
  const lo = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(q0, q1), i16x8.narrow_i32x4_u(q2, q3));
  const hi = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(q4, q5), i16x8.narrow_i32x4_u(q6, q7));
  const qh = <u32>i8x16.bitmask(i8x16.shl(lo, 3)) | (<u32>i8x16.bitmask(i8x16.shl(hi, 3)) << 16);
  store<u32>(qhAt, qh);
  v128.store(out, v128.or(v128.and(lo, i8x16.splat(0x0f)), i8x16.shl(v128.and(hi, i8x16.splat(0x0f)), 4)));
}

/**
 * The first value of largest magnitude in a block of 32 (0 when all are zero), as the C's
 * amax loop; NaN when the block holds an Inf or a NaN (f32x4.max keeps them).
 */
@inline function blockMaxByMagnitude(x: usize): f32 {
  let a = f32x4.max(f32x4.abs(v128.load(x)), f32x4.abs(v128.load(x, 16)));
  a = f32x4.max(a, f32x4.max(f32x4.abs(v128.load(x, 32)), f32x4.abs(v128.load(x, 48))));
  a = f32x4.max(a, f32x4.max(f32x4.abs(v128.load(x, 64)), f32x4.abs(v128.load(x, 80))));
  a = f32x4.max(a, f32x4.max(f32x4.abs(v128.load(x, 96)), f32x4.abs(v128.load(x, 112))));
  const amax = max<f32>(max<f32>(f32x4.extract_lane(a, 0), f32x4.extract_lane(a, 1)), max<f32>(f32x4.extract_lane(a, 2), f32x4.extract_lane(a, 3)));
  if (amax == 0) return 0;
  if (!(amax <= FLT_MAX)) return NaN;
  // The first value whose magnitude is amax, four at a time.
  const a4 = f32x4.splat(amax);
  for (let j = 0; j < 32; j += 4) {
    const hit = i32x4.bitmask(f32x4.eq(f32x4.abs(v128.load(x + ((<usize>j) << 2))), a4));
    if (hit) return ldf(x, j + ctz<i32>(hit));
  }
  return 0; // not reached: finite rows only
}

/** C's (int)x on four lanes where every lane is finite and within int range. */
@inline function cvt4(v: v128): v128 {
  return i32x4.trunc_sat_f32x4_s(v);
}

/**
 * quantize_row_q4_0_ref / q5_0_ref block: q = MIN(2*nmax - 1, (int8_t)(x*id + nmax + 0.5f)),
 * four lanes at a time. False (the row goes to the reference) for an Inf or NaN input, or
 * when 1/d overflows.
 */
export function encodeSymmetricRef(x: usize, nmax: i32, fiveBit: bool, out: usize): bool {
  const mx = blockMaxByMagnitude(x);
  if (isNaN<f32>(mx)) return false; // an Inf or NaN input: the reference's
  const d: f32 = mx / <f32>(-nmax);
  const id: f32 = d != 0 ? <f32>1.0 / d : 0;
  if (!(abs<f32>(id) <= FLT_MAX)) return false;
  storeF16(out, d);
  const id4 = f32x4.splat(id);
  const bias = f32x4.splat(<f32>nmax + <f32>0.5);
  const top = i32x4.splat(2 * nmax - 1);
  const q0 = i32x4.min_s(cvt4(f32x4.add(f32x4.mul(v128.load(x), id4), bias)), top);
  const q1 = i32x4.min_s(cvt4(f32x4.add(f32x4.mul(v128.load(x, 16), id4), bias)), top);
  const q2 = i32x4.min_s(cvt4(f32x4.add(f32x4.mul(v128.load(x, 32), id4), bias)), top);
  const q3 = i32x4.min_s(cvt4(f32x4.add(f32x4.mul(v128.load(x, 48), id4), bias)), top);
  const q4 = i32x4.min_s(cvt4(f32x4.add(f32x4.mul(v128.load(x, 64), id4), bias)), top);
  const q5 = i32x4.min_s(cvt4(f32x4.add(f32x4.mul(v128.load(x, 80), id4), bias)), top);
  const q6 = i32x4.min_s(cvt4(f32x4.add(f32x4.mul(v128.load(x, 96), id4), bias)), top);
  const q7 = i32x4.min_s(cvt4(f32x4.add(f32x4.mul(v128.load(x, 112), id4), bias)), top);
  if (fiveBit) packFiveBit4(q0, q1, q2, q3, q4, q5, q6, q7, out + 6, out + 2);
  else packNibbles4(q0, q1, q2, q3, q4, q5, q6, q7, out + 2);
  return true;
}

/** q4_1's MIN(15, (int8_t)v) or q5_1's (uint8_t)v of v = (x - min)*id + 0.5f, four lanes. */
@inline function affine4(x: v128, mn: v128, id: v128, clamp15: bool): v128 {
  const q = v128.and(cvt4(f32x4.add(f32x4.mul(f32x4.sub(x, mn), id), f32x4.splat(0.5))), i32x4.splat(0xff));
  return clamp15 ? i32x4.min_s(i32x4.shr_s(i32x4.shl(q, 24), 24), i32x4.splat(15)) : q;
}

/**
 * quantize_row_q4_1_ref / q5_1_ref block: d = (max - min)/nmax, m = min. False (the row
 * goes to the reference) for an Inf or NaN input, or when 1/d overflows.
 */
export function encodeAffineRef(x: usize, nmax: i32, fiveBit: bool, out: usize): bool {
  // min and max are order-free but for the sign of a zero: a zero min or max is found the C's way.
  let lo = f32x4.pmin(f32x4.pmin(v128.load(x), v128.load(x, 16)), f32x4.pmin(v128.load(x, 32), v128.load(x, 48)));
  lo = f32x4.pmin(lo, f32x4.pmin(f32x4.pmin(v128.load(x, 64), v128.load(x, 80)), f32x4.pmin(v128.load(x, 96), v128.load(x, 112))));
  let hi = f32x4.pmax(f32x4.pmax(v128.load(x), v128.load(x, 16)), f32x4.pmax(v128.load(x, 32), v128.load(x, 48)));
  hi = f32x4.pmax(hi, f32x4.pmax(f32x4.pmax(v128.load(x, 64), v128.load(x, 80)), f32x4.pmax(v128.load(x, 96), v128.load(x, 112))));
  let mn = min<f32>(min<f32>(f32x4.extract_lane(lo, 0), f32x4.extract_lane(lo, 1)), min<f32>(f32x4.extract_lane(lo, 2), f32x4.extract_lane(lo, 3)));
  let mx = max<f32>(max<f32>(f32x4.extract_lane(hi, 0), f32x4.extract_lane(hi, 1)), max<f32>(f32x4.extract_lane(hi, 2), f32x4.extract_lane(hi, 3)));
  // An Inf or NaN input is the reference's: pmin/pmax keep an Inf; x != x finds a NaN.
  let nan = v128.or(f32x4.ne(v128.load(x), v128.load(x)), f32x4.ne(v128.load(x, 16), v128.load(x, 16)));
  nan = v128.or(nan, v128.or(f32x4.ne(v128.load(x, 32), v128.load(x, 32)), f32x4.ne(v128.load(x, 48), v128.load(x, 48))));
  nan = v128.or(nan, v128.or(f32x4.ne(v128.load(x, 64), v128.load(x, 64)), f32x4.ne(v128.load(x, 80), v128.load(x, 80))));
  nan = v128.or(nan, v128.or(f32x4.ne(v128.load(x, 96), v128.load(x, 96)), f32x4.ne(v128.load(x, 112), v128.load(x, 112))));
  if (v128.any_true(nan) || !(mn >= -FLT_MAX) || !(mx <= FLT_MAX)) return false;
  if (mn == 0 || mx == 0) {
    mn = FLT_MAX;
    mx = -FLT_MAX;
    for (let j = 0; j < QK; j++) {
      const v = ldf(x, j);
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
  }
  const d: f32 = (mx - mn) / <f32>nmax;
  const id: f32 = d != 0 ? <f32>1.0 / d : 0;
  if (!(id <= FLT_MAX)) return false;
  storeF16(out, d);
  storeF16(out + 2, mn);
  const mn4 = f32x4.splat(mn);
  const id4 = f32x4.splat(id);
  const clamp15 = !fiveBit;
  const q0 = affine4(v128.load(x), mn4, id4, clamp15);
  const q1 = affine4(v128.load(x, 16), mn4, id4, clamp15);
  const q2 = affine4(v128.load(x, 32), mn4, id4, clamp15);
  const q3 = affine4(v128.load(x, 48), mn4, id4, clamp15);
  const q4 = affine4(v128.load(x, 64), mn4, id4, clamp15);
  const q5 = affine4(v128.load(x, 80), mn4, id4, clamp15);
  const q6 = affine4(v128.load(x, 96), mn4, id4, clamp15);
  const q7 = affine4(v128.load(x, 112), mn4, id4, clamp15);
  if (fiveBit) packFiveBit4(q0, q1, q2, q3, q4, q5, q6, q7, out + 8, out + 4);
  else packNibbles4(q0, q1, q2, q3, q4, q5, q6, q7, out + 4);
  return true;
}

/** quantize_row_q4_0_impl / q5_0_impl block: weights already in groupWeights. */
export function encodeSymmetricWeighted(x: usize, nmax: i32, fiveBit: bool, out: usize): void {
  storeF16(out, makeQxQuants(QK, nmax, x, quants, groupWeights));
  packQuants(quants, fiveBit, out + 2);
}

/** quantize_row_q4_1_impl / q5_1_impl block: weights already in groupWeights. */
export function encodeAffineWeighted(x: usize, nmax: i32, fiveBit: bool, out: usize): void {
  storeF16(out, makeQkxQuants(QK, nmax, x, groupWeights, quants, theMin, 0, RMIN_NEG_0_9, RDELTA_0_05, 36, false));
  storeF16(out + 2, -load<f32>(theMin));
  packQuants(quants, fiveBit, out + 4);
}

/** The block's weights, as quantize_row_*_impl: qw * sqrtf(sigma2 + x^2). */
export function fillLegacyWeights(x: usize, qw: usize, sigma2: f32): void {
  fillImportanceWeights(groupWeights, QK, x, qw, sigma2);
}

/**
 * quantize_row_q8_0_ref over `blocks` blocks, 4 values a SIMD lane; flags the row (returns
 * true) when a block's amax is not finite (an Inf or NaN input: the reference handles
 * those) or its 1/d overflows (amax below ~1e-36: Inf and NaN quants).
 */
export function encodeQ8_0(x: usize, blocks: i32, out: usize): bool {
  const half4 = f32x4.splat(0.5);
  const one4 = f32x4.splat(1.0);
  for (let b = 0; b < blocks; b++) {
    const s = x + ((<usize>b) << 7);
    const o = out + <usize>(34 * b);
    // amax: max is order-free (NaN aside, which flags the row).
    let a = f32x4.max(f32x4.abs(v128.load(s)), f32x4.abs(v128.load(s, 16)));
    a = f32x4.max(a, f32x4.max(f32x4.abs(v128.load(s, 32)), f32x4.abs(v128.load(s, 48))));
    a = f32x4.max(a, f32x4.max(f32x4.abs(v128.load(s, 64)), f32x4.abs(v128.load(s, 80))));
    a = f32x4.max(a, f32x4.max(f32x4.abs(v128.load(s, 96)), f32x4.abs(v128.load(s, 112))));
    const amax = max<f32>(max<f32>(f32x4.extract_lane(a, 0), f32x4.extract_lane(a, 1)), max<f32>(f32x4.extract_lane(a, 2), f32x4.extract_lane(a, 3)));
    if (!(amax <= FLT_MAX)) {
      flagRow();
      return true;
    }
    const d: f32 = amax / <f32>127.0;
    const id: f32 = d != 0 ? <f32>1.0 / d : 0;
    if (!(id <= FLT_MAX)) {
      flagRow();
      return true;
    }
    storeF16(o, d);
    const id4 = f32x4.splat(id);
    for (let j = 0; j < 32; j += 16) {
      const q0 = roundf4(f32x4.mul(v128.load(s + ((<usize>j) << 2)), id4), half4, one4);
      const q1 = roundf4(f32x4.mul(v128.load(s + ((<usize>j) << 2), 16), id4), half4, one4);
      const q2 = roundf4(f32x4.mul(v128.load(s + ((<usize>j) << 2), 32), id4), half4, one4);
      const q3 = roundf4(f32x4.mul(v128.load(s + ((<usize>j) << 2), 48), id4), half4, one4);
      v128.store(o + 2 + <usize>j, i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3)));
    }
  }
  return false;
}

/**
 * C's (int)roundf(v) on four lanes, |v| <= 128: truncate, then one more away from zero when
 * the (exact) fraction is at least one half.
 */
@inline function roundf4(v: v128, half4: v128, one4: v128): v128 {
  const t = f32x4.trunc(v);
  const up = f32x4.ge(f32x4.abs(f32x4.sub(v, t)), half4);
  // copysign(1, v) where the fraction rounds up, else 0
  const step = v128.and(up, v128.or(v128.and(v, i32x4.splat(0x80000000)), one4));
  return i32x4.trunc_sat_f32x4_s(f32x4.add(t, step));
}
