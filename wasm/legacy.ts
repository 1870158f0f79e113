// AssemblyScript: the legacy block encoders (q4_0, q4_1, q5_0, q5_1, q8_0), ported from
// the reference src/quant/codecs/legacy.ts, which follows ggml-org/ggml
// src/ggml-quants.c quantize_row_*_ref and quantize_row_*_impl. Byte maps: see the reference.
import {
  FLT_MAX, f32ToF16Bits, fillImportanceWeights, flagRow, groupWeights, ldf, ldu8, makeQkxQuants, makeQxQuants, storeF16, stu8,
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

// ---------------------------------------------------------------------------------------
// Whole rows of quantize_row_q{4,5}_{0,1}_ref (no importance): the block loop inlined, each
// block's 32 values loaded once into eight v128 locals. A block the fast path does not
// cover (an Inf or NaN, a zero min or max, a tie of +amax and -amax, an overflowing 1/d) is
// handed to encodeSymmetricRef / encodeAffineRef above, which decide it the C's way.
//
// Quants are made in f32 to the end: q = trunc(v) (q4_0, q5_0: trunc(min(v, top))) is an
// integral f32 in [0, 256), and adding 2^23 puts it in the low mantissa bits (lowBytes4),
// which the narrowing packs into bytes; i32x4.trunc_sat (seven instructions on x64 for its
// NaN and overflow cases, which cannot occur here) is not needed. Equal to the C's
// MIN(top, (int8_t)v) and (uint8_t)v because every v is in [0, 2*nmax + 1) (x's range
// scaled by 1/d, plus a bias). The vector float pipes are what these loops wait on (in
// V8 on x64): the blocks' scalars stay scalar, and no clamp is made that cannot change a q.

/** 2^23: an integral f32 t in [0, 2^22) plus this has t in the low bits of its mantissa. */
const MAGIC: f32 = 8388608.0;

/** The four integral f32 lanes t (0 <= t < 256) as i32 lanes, from the bits of t + 2^23. */
@inline function lowBytes4(t: v128): v128 {
  return v128.and(f32x4.add(t, f32x4.splat(MAGIC)), i32x4.splat(0xff));
}

/** The 16 low bytes of four i32 lanes each holding 0..255. */
@inline function narrowBytes(a: v128, b: v128, c: v128, d: v128): v128 {
  return i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(a, b), i16x8.narrow_i32x4_u(c, d));
}

/**
 * A q4_x block's 16 bytes (byte j = q[j] | q[j+16] << 4) from its quants as integral f32
 * lanes 0..15 (t0..t3: values 0..15, t4..t7: 16..31): the pair combined in f32, exactly.
 */
@inline function packNibblesF(t0: v128, t1: v128, t2: v128, t3: v128, t4: v128, t5: v128, t6: v128, t7: v128, out: usize): void {
  const k16 = f32x4.splat(16);
  v128.store(out, narrowBytes(
    lowBytes4(f32x4.add(f32x4.mul(t4, k16), t0)),
    lowBytes4(f32x4.add(f32x4.mul(t5, k16), t1)),
    lowBytes4(f32x4.add(f32x4.mul(t6, k16), t2)),
    lowBytes4(f32x4.add(f32x4.mul(t7, k16), t3)),
  ));
}

/** A q5_x block's qh (at qhAt: bit j = bit 4 of q[j]) and nibble bytes (at out), from the quants as bytes (lo: 0..15, hi: 16..31). */
@inline function packFiveBitBytes(lo: v128, hi: v128, out: usize, qhAt: usize): void {
  // Shifting 16-bit lanes: each byte's bit 4 lands on its own bit 7 (what bitmask reads),
  // and a nibble shifted by 4 stays within its byte.
  store<u32>(qhAt, <u32>i8x16.bitmask(i16x8.shl(lo, 3)) | (<u32>i8x16.bitmask(i16x8.shl(hi, 3)) << 16));
  const m4 = i8x16.splat(0x0f);
  v128.store(out, v128.or(v128.and(lo, m4), i16x8.shl(v128.and(hi, m4), 4)));
}

/**
 * quantize_row_q4_0_ref (fiveBit false) or quantize_row_q5_0_ref over `blocks` blocks of x
 * into out. False (the row goes to the reference) where encodeSymmetricRef says so.
 */
export function encodeSymmetricRowRef(x: usize, blocks: i32, fiveBit: bool, out: usize): bool {
  return fiveBit ? symmetricRow(x, blocks, 16, true, out) : symmetricRow(x, blocks, 8, false, out);
}

@inline function symmetricRow(x: usize, blocks: i32, nmax: i32, fiveBit: bool, out: usize): bool {
  const bytes: usize = fiveBit ? 22 : 18;
  for (let b = 0; b < blocks; b++) {
    const p = x + ((<usize>b) << 7);
    const o = out + bytes * <usize>b;
    const x0 = v128.load(p), x1 = v128.load(p, 16), x2 = v128.load(p, 32), x3 = v128.load(p, 48);
    const x4 = v128.load(p, 64), x5 = v128.load(p, 80), x6 = v128.load(p, 96), x7 = v128.load(p, 112);
    // The C's amax loop keeps the first value of largest magnitude. As signed ints, the
    // largest bits are the largest value (negative: no value >= +0); as unsigned, the
    // most negative value (when >= 0x80000000). An Inf or NaN has magnitude bits >= 0x7f800000.
    let s = i32x4.max_s(i32x4.max_s(i32x4.max_s(x0, x1), i32x4.max_s(x2, x3)), i32x4.max_s(i32x4.max_s(x4, x5), i32x4.max_s(x6, x7)));
    let u = i32x4.max_u(i32x4.max_u(i32x4.max_u(x0, x1), i32x4.max_u(x2, x3)), i32x4.max_u(i32x4.max_u(x4, x5), i32x4.max_u(x6, x7)));
    s = i32x4.max_s(s, i32x4.shuffle(s, s, 2, 3, 0, 1));
    u = i32x4.max_u(u, i32x4.shuffle(u, u, 2, 3, 0, 1));
    s = i32x4.max_s(s, i32x4.shuffle(s, s, 1, 0, 3, 2));
    u = i32x4.max_u(u, i32x4.shuffle(u, u, 1, 0, 3, 2));
    const pos = i32x4.extract_lane(s, 0);
    const negBits = i32x4.extract_lane(u, 0);
    const neg = negBits < 0 ? negBits & 0x7fffffff : -1; // magnitude of the most negative value; -1: none
    const amaxBits = max<i32>(pos, neg);
    // A tie of +amax and -amax needs the first of them: the slow path's.
    if ((amaxBits >= 0x7f800000) | ((pos == neg) & (amaxBits != 0))) {
      if (!encodeSymmetricRef(p, nmax, fiveBit, o)) return false;
      continue;
    }
    // max: +amax, or -amax when only a negative value has it; all zero (even all -0): +0, as the C's.
    const mx = reinterpret<f32>((pos == amaxBits) | (amaxBits == 0) ? amaxBits : amaxBits | 0x80000000);
    const d: f32 = mx / <f32>(-nmax);
    const id: f32 = d != 0 ? <f32>1.0 / d : 0;
    if (!(abs<f32>(id) <= FLT_MAX)) {
      if (!encodeSymmetricRef(p, nmax, fiveBit, o)) return false;
      continue;
    }
    store<u16>(o, <u16>f32ToF16Bits(d));
    const id4 = f32x4.splat(id);
    const bias = f32x4.splat(<f32>nmax + <f32>0.5);
    const top = f32x4.splat(<f32>nmax * <f32>2 - <f32>1);
    // MIN(top, (int8_t)(x*id + nmax + 0.5f)): x*id is within [-nmax, nmax] (to a few ulp).
    const t0 = f32x4.trunc(f32x4.pmin(f32x4.add(f32x4.mul(x0, id4), bias), top));
    const t1 = f32x4.trunc(f32x4.pmin(f32x4.add(f32x4.mul(x1, id4), bias), top));
    const t2 = f32x4.trunc(f32x4.pmin(f32x4.add(f32x4.mul(x2, id4), bias), top));
    const t3 = f32x4.trunc(f32x4.pmin(f32x4.add(f32x4.mul(x3, id4), bias), top));
    const t4 = f32x4.trunc(f32x4.pmin(f32x4.add(f32x4.mul(x4, id4), bias), top));
    const t5 = f32x4.trunc(f32x4.pmin(f32x4.add(f32x4.mul(x5, id4), bias), top));
    const t6 = f32x4.trunc(f32x4.pmin(f32x4.add(f32x4.mul(x6, id4), bias), top));
    const t7 = f32x4.trunc(f32x4.pmin(f32x4.add(f32x4.mul(x7, id4), bias), top));
    if (fiveBit) {
      packFiveBitBytes(
        narrowBytes(lowBytes4(t0), lowBytes4(t1), lowBytes4(t2), lowBytes4(t3)),
        narrowBytes(lowBytes4(t4), lowBytes4(t5), lowBytes4(t6), lowBytes4(t7)),
        o + 6, o + 2,
      );
    } else {
      packNibblesF(t0, t1, t2, t3, t4, t5, t6, t7, o + 2);
    }
  }
  return true;
}

/**
 * quantize_row_q4_1_ref (fiveBit false) or quantize_row_q5_1_ref over `blocks` blocks of x
 * into out. False (the row goes to the reference) where encodeAffineRef says so.
 */
export function encodeAffineRowRef(x: usize, blocks: i32, fiveBit: bool, out: usize): bool {
  return fiveBit ? affineRow(x, blocks, 31, true, out) : affineRow(x, blocks, 15, false, out);
}

@inline function affineRow(x: usize, blocks: i32, nmax: i32, fiveBit: bool, out: usize): bool {
  const bytes: usize = fiveBit ? 24 : 20;
  for (let b = 0; b < blocks; b++) {
    const p = x + ((<usize>b) << 7);
    const o = out + bytes * <usize>b;
    const x0 = v128.load(p), x1 = v128.load(p, 16), x2 = v128.load(p, 32), x3 = v128.load(p, 48);
    const x4 = v128.load(p, 64), x5 = v128.load(p, 80), x6 = v128.load(p, 96), x7 = v128.load(p, 112);
    // min and max are order-free but for the sign of a zero (a zero min or max goes the slow
    // way) and for a NaN, which pmin/pmax may drop: it is found in the quants below.
    let lo = f32x4.pmin(f32x4.pmin(f32x4.pmin(x0, x1), f32x4.pmin(x2, x3)), f32x4.pmin(f32x4.pmin(x4, x5), f32x4.pmin(x6, x7)));
    let hi = f32x4.pmax(f32x4.pmax(f32x4.pmax(x0, x1), f32x4.pmax(x2, x3)), f32x4.pmax(f32x4.pmax(x4, x5), f32x4.pmax(x6, x7)));
    lo = f32x4.pmin(lo, i32x4.shuffle(lo, lo, 2, 3, 0, 1));
    hi = f32x4.pmax(hi, i32x4.shuffle(hi, hi, 2, 3, 0, 1));
    lo = f32x4.pmin(lo, i32x4.shuffle(lo, lo, 1, 0, 3, 2));
    hi = f32x4.pmax(hi, i32x4.shuffle(hi, hi, 1, 0, 3, 2));
    const mn = f32x4.extract_lane(lo, 0);
    const mx = f32x4.extract_lane(hi, 0);
    const range: f32 = mx - mn;
    // range <= FLT_MAX: mn and mx finite (an Inf or a NaN among them makes it Inf or NaN), and
    // every x - mn finite. The C's d and id:
    const d: f32 = range / <f32>nmax;
    const id: f32 = d != 0 ? <f32>1.0 / d : 0;
    if (!(range <= FLT_MAX) | (mn == 0) | (mx == 0) | !(id <= FLT_MAX)) {
      if (!encodeAffineRef(p, nmax, fiveBit, o)) return false;
      continue;
    }
    const mn4 = f32x4.splat(mn);
    const id4 = f32x4.splat(id);
    const half = f32x4.splat(0.5);
    // v = (x - min)*id + 0.5f: x - min <= max - min (rounding is monotonic) and (max - min)*id
    // is nmax to a few ulp, so v is in [0.5, nmax + 1): q4_1's MIN(15, (int8_t)v) and q5_1's
    // (uint8_t)v are both trunc(v) (no clamp: the float pipes are the busy ones).
    const t0 = f32x4.trunc(f32x4.add(f32x4.mul(f32x4.sub(x0, mn4), id4), half));
    const t1 = f32x4.trunc(f32x4.add(f32x4.mul(f32x4.sub(x1, mn4), id4), half));
    const t2 = f32x4.trunc(f32x4.add(f32x4.mul(f32x4.sub(x2, mn4), id4), half));
    const t3 = f32x4.trunc(f32x4.add(f32x4.mul(f32x4.sub(x3, mn4), id4), half));
    const t4 = f32x4.trunc(f32x4.add(f32x4.mul(f32x4.sub(x4, mn4), id4), half));
    const t5 = f32x4.trunc(f32x4.add(f32x4.mul(f32x4.sub(x5, mn4), id4), half));
    const t6 = f32x4.trunc(f32x4.add(f32x4.mul(f32x4.sub(x6, mn4), id4), half));
    const t7 = f32x4.trunc(f32x4.add(f32x4.mul(f32x4.sub(x7, mn4), id4), half));
    // An input NaN (pmin/pmax may have dropped it) makes its quant lane a NaN: arithmetic on
    // NaN gives an arithmetic NaN (WebAssembly's rule), whose quiet bit 0x00400000 no t + 2^23
    // below 256 + 2^23 has.
    const magic = f32x4.splat(MAGIC);
    let m0: v128, m1: v128, m2: v128, m3: v128, m4: v128, m5: v128, m6: v128, m7: v128;
    let any: v128;
    if (fiveBit) {
      m0 = f32x4.add(t0, magic); m1 = f32x4.add(t1, magic); m2 = f32x4.add(t2, magic); m3 = f32x4.add(t3, magic);
      m4 = f32x4.add(t4, magic); m5 = f32x4.add(t5, magic); m6 = f32x4.add(t6, magic); m7 = f32x4.add(t7, magic);
      any = v128.or(v128.or(v128.or(m0, m1), v128.or(m2, m3)), v128.or(v128.or(m4, m5), v128.or(m6, m7)));
    } else {
      const k16 = f32x4.splat(16);
      m0 = f32x4.add(f32x4.add(f32x4.mul(t4, k16), t0), magic);
      m1 = f32x4.add(f32x4.add(f32x4.mul(t5, k16), t1), magic);
      m2 = f32x4.add(f32x4.add(f32x4.mul(t6, k16), t2), magic);
      m3 = f32x4.add(f32x4.add(f32x4.mul(t7, k16), t3), magic);
      m4 = m5 = m6 = m7 = m0;
      any = v128.or(v128.or(m0, m1), v128.or(m2, m3));
    }
    if (v128.any_true(v128.and(any, i32x4.splat(0x00400000)))) {
      if (!encodeAffineRef(p, nmax, fiveBit, o)) return false;
      continue;
    }
    store<u16>(o, <u16>f32ToF16Bits(d));
    store<u16>(o, <u16>f32ToF16Bits(mn), 2);
    const ff = i32x4.splat(0xff);
    if (fiveBit) {
      packFiveBitBytes(
        narrowBytes(v128.and(m0, ff), v128.and(m1, ff), v128.and(m2, ff), v128.and(m3, ff)),
        narrowBytes(v128.and(m4, ff), v128.and(m5, ff), v128.and(m6, ff), v128.and(m7, ff)),
        o + 8, o + 4,
      );
    } else {
      v128.store(o + 4, narrowBytes(v128.and(m0, ff), v128.and(m1, ff), v128.and(m2, ff), v128.and(m3, ff)));
    }
  }
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
    // amax: the largest magnitude's bits, an integer max (f32x4.max is eight instructions on
    // x64); an Inf or NaN, which flags the row, has bits above FLT_MAX's.
    const m = i32x4.splat(0x7fffffff);
    let a = i32x4.max_u(
      i32x4.max_u(i32x4.max_u(v128.and(v128.load(s), m), v128.and(v128.load(s, 16), m)), i32x4.max_u(v128.and(v128.load(s, 32), m), v128.and(v128.load(s, 48), m))),
      i32x4.max_u(i32x4.max_u(v128.and(v128.load(s, 64), m), v128.and(v128.load(s, 80), m)), i32x4.max_u(v128.and(v128.load(s, 96), m), v128.and(v128.load(s, 112), m))),
    );
    a = i32x4.max_u(a, i32x4.shuffle(a, a, 2, 3, 0, 1));
    a = i32x4.max_u(a, i32x4.shuffle(a, a, 1, 0, 3, 2));
    const amaxBits = <u32>i32x4.extract_lane(a, 0);
    if (amaxBits > 0x7f7fffff) {
      flagRow();
      return true;
    }
    const amax = reinterpret<f32>(amaxBits);
    const d: f32 = amax / <f32>127.0;
    const id: f32 = d != 0 ? <f32>1.0 / d : 0;
    if (!(id <= FLT_MAX)) {
      flagRow();
      return true;
    }
    store<u16>(o, <u16>f32ToF16Bits(d)); // d is finite
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
  // The integer r = t + step (|r| <= 128) from the bits of r + 1.5*2^23, 0x4b400000 + r
  // (i32x4.trunc_sat is seven instructions on x64).
  return i32x4.sub(f32x4.add(f32x4.add(t, step), f32x4.splat(12582912.0)), i32x4.splat(0x4b400000));
}
