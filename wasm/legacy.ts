// AssemblyScript: the legacy block encoders (q4_0, q4_1, q5_0, q5_1, q8_0), ported from
// the reference src/quant/codecs/legacy.ts, which follows ggml-org/ggml
// src/ggml-quants.c quantize_row_*_ref and quantize_row_*_impl. Byte maps: see the reference.
import {
  FLT_MAX, cvtInt, fillImportanceWeights, flagRow, groupWeights, ldf, ldu8, makeQkxQuants, makeQxQuants,
  maxByMagnitude, storeF16, stu8,
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

/** q4_0/q5_0's MIN(2*nmax - 1, (int8_t)(x*id + nmax + 0.5f)). */
@inline function symmetricQuant(x: f32, id: f32, nmax: i32): i32 {
  const v: f32 = x * id + (<f32>nmax + <f32>0.5);
  return min<i32>(2 * nmax - 1, sext8(cvtInt(v)));
}

/** quantize_row_q4_0_ref / q5_0_ref block. */
export function encodeSymmetricRef(x: usize, nmax: i32, fiveBit: bool, out: usize): void {
  const d: f32 = maxByMagnitude(x, QK) / <f32>(-nmax);
  const id: f32 = d != 0 ? <f32>1.0 / d : 0;
  storeF16(out, d);
  if (fiveBit) {
    let qh: u32 = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = symmetricQuant(ldf(x, j), id, nmax);
      qh |= fiveBitPair(q0, symmetricQuant(ldf(x, 16 + j), id, nmax), j, out + 6 + <usize>j);
    }
    store<u32>(out + 2, qh);
  } else {
    for (let j = 0; j < 16; j++) {
      stu8(out, 2 + j, symmetricQuant(ldf(x, j), id, nmax) | (symmetricQuant(ldf(x, 16 + j), id, nmax) << 4));
    }
  }
}

@inline function affineQuant(x: f32, mn: f32, id: f32): f32 {
  return (x - mn) * id + <f32>0.5;
}

/** quantize_row_q4_1_ref / q5_1_ref block. */
export function encodeAffineRef(x: usize, nmax: i32, fiveBit: bool, out: usize): void {
  let mn: f32 = FLT_MAX;
  let mx: f32 = -FLT_MAX;
  for (let j = 0; j < QK; j++) {
    const v = ldf(x, j);
    if (v < mn) mn = v;
    if (v > mx) mx = v;
  }
  const d: f32 = (mx - mn) / <f32>nmax;
  const id: f32 = d != 0 ? <f32>1.0 / d : 0;
  storeF16(out, d);
  storeF16(out + 2, mn);
  if (fiveBit) {
    let qh: u32 = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = cvtInt(affineQuant(ldf(x, j), mn, id)) & 0xff;
      qh |= fiveBitPair(q0, cvtInt(affineQuant(ldf(x, 16 + j), mn, id)) & 0xff, j, out + 8 + <usize>j);
    }
    store<u32>(out + 4, qh);
  } else {
    for (let j = 0; j < 16; j++) {
      const q0 = min<i32>(15, sext8(cvtInt(affineQuant(ldf(x, j), mn, id))));
      stu8(out, 4 + j, q0 | (min<i32>(15, sext8(cvtInt(affineQuant(ldf(x, 16 + j), mn, id)))) << 4));
    }
  }
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
