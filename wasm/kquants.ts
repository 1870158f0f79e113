// AssemblyScript: K-quant block encoders (Q2_K..Q6_K), ported from the reference
// src/quant/codecs/kquants.ts, which follows ggml-org/ggml src/ggml-quants.c
// quantize_row_qN_K_ref (no importance) and quantize_row_qN_K_impl (with it). Byte maps:
// see the reference. Every float op is an f32 op (one rounding, never fused), in C order.
import {
  GROUP_MAX_EPS, ONE_TENTH, clampInt, nearestClamp4, fillImportanceWeights, f16ToF32, groupWeights, ldf, ldi8, ldu8,
  makeQ3Quants, makeQkxQuants, makeQpQuants, makeQxQuants, maxByMagnitude, nearestInt, storeF16, stf, stu8,
  sumOfSquares, f32ToF16,
} from './common';

export const QK_K = 256;

const quantsU = memory.data(256, 16); // u8 L
const quantsS = memory.data(256, 16); // i8 L
const subScales = memory.data(16 * 4, 16);
const subMins = memory.data(16 * 4, 16);
const subWeightSums = memory.data(16 * 4, 16);
const scaleLevels = memory.data(16, 16);
const minLevels = memory.data(16, 16);
const scaleLevelsSigned = memory.data(16, 16);
const packedScales = memory.data(12, 16);

const RMIN_NEG_0_9: f32 = -0.9;
const RDELTA_0_05: f32 = 0.05;

@inline function f4(x: usize, i: i32): usize {
  return x + ((<usize>i) << 2);
}

/** Q2_K/Q3_K qs: 2-bit L[0..255] into 64 bytes. */
function pack2Bit(L: usize, out: usize): void {
  for (let j = 0; j < QK_K; j += 128) {
    for (let l = 0; l < 32; l++) {
      stu8(out, (j >> 2) + l, ldu8(L, j + l) | (ldu8(L, j + l + 32) << 2) | (ldu8(L, j + l + 64) << 4) | (ldu8(L, j + l + 96) << 6));
    }
  }
}

function packScalesMinsK4(ls: usize, lm: usize, s: usize): void {
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      stu8(s, j, ldu8(ls, j));
      stu8(s, j + 4, ldu8(lm, j));
    } else {
      stu8(s, j + 4, (ldu8(ls, j) & 0xf) | ((ldu8(lm, j) & 0xf) << 4));
      stu8(s, j - 4, ldu8(s, j - 4) | ((ldu8(ls, j) >> 4) << 6));
      stu8(s, j, ldu8(s, j) | ((ldu8(lm, j) >> 4) << 6));
    }
  }
}

/** get_scale_min_k4: scale in the low 8 bits, min in the next 8. */
function scaleMinK4(j: i32, q: usize): i32 {
  if (j < 4) return (ldu8(q, j) & 63) | ((ldu8(q, j + 4) & 63) << 8);
  const sc = (ldu8(q, j + 4) & 0xf) | ((ldu8(q, j - 4) >> 6) << 4);
  const m = (ldu8(q, j + 4) >> 4) | ((ldu8(q, j) >> 6) << 4);
  return sc | (m << 8);
}

function scaleQ3K(j: i32, s: usize): i32 {
  const low = j < 8 ? ldu8(s, j) & 0xf : ldu8(s, j - 8) >> 4;
  return low | (((ldu8(s, 8 + (j & 3)) >> (2 * (j >> 2))) & 3) << 4);
}

/** Q3_K's 12 scale bytes from 16 int8 levels; s must start zeroed. */
function packScalesQ3K(levels: usize, s: usize): void {
  for (let j = 0; j < 16; j++) {
    let l = ldi8(levels, j);
    if (j < 8) stu8(s, j, l & 0xf);
    else stu8(s, j - 8, ldu8(s, j - 8) | ((l & 0xf) << 4));
    l >>= 4;
    stu8(s, 8 + (j & 3), ldu8(s, 8 + (j & 3)) | (l << (2 * (j >> 2))));
  }
}

/**
 * Final quants of a sub-block with the stored scale and min: L = clamp(nearest_int((x + dm)/d),
 * 0, nmax) for its groupSize (16 or 32) values, 16 at a time in SIMD lanes (each lane the
 * C's two f32 operations); a sub-block with d == 0 keeps its L.
 */
function requantizeWithMins(x: usize, L: usize, j: i32, groupSize: i32, nmax: i32, d: f32, dm: f32): void {
  if (d == 0) return;
  const d4 = f32x4.splat(d);
  const dm4 = f32x4.splat(dm);
  const lo = i32x4.splat(0);
  const hi = i32x4.splat(nmax);
  for (let v = groupSize * j, end = v + groupSize; v < end; v += 16) {
    const p = f4(x, v);
    const a = nearestClamp4(f32x4.div(f32x4.add(v128.load(p), dm4), d4), lo, hi);
    const b = nearestClamp4(f32x4.div(f32x4.add(v128.load(p, 16), dm4), d4), lo, hi);
    const c = nearestClamp4(f32x4.div(f32x4.add(v128.load(p, 32), dm4), d4), lo, hi);
    const e = nearestClamp4(f32x4.div(f32x4.add(v128.load(p, 48), dm4), d4), lo, hi);
    v128.store(L + <usize>v, i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(a, b), i16x8.narrow_i32x4_s(c, e)));
  }
}

/** Symmetric final quants: L = clamp(nearest_int(x/d), nmin, nmax) - nmin for 16 values; d == 0 keeps L. */
function requantizeSymmetric(x: usize, L: usize, j: i32, nmin: i32, nmax: i32, d: f32): void {
  if (d == 0) return;
  const d4 = f32x4.splat(d);
  const lo = i32x4.splat(nmin);
  const hi = i32x4.splat(nmax);
  const bias = i32x4.splat(nmin);
  const p = f4(x, 16 * j);
  const a = i32x4.sub(nearestClamp4(f32x4.div(v128.load(p), d4), lo, hi), bias);
  const b = i32x4.sub(nearestClamp4(f32x4.div(v128.load(p, 16), d4), lo, hi), bias);
  const c = i32x4.sub(nearestClamp4(f32x4.div(v128.load(p, 32), d4), lo, hi), bias);
  const e = i32x4.sub(nearestClamp4(f32x4.div(v128.load(p, 48), d4), lo, hi), bias);
  v128.store(L + <usize>(16 * j), i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, b), i16x8.narrow_i32x4_s(c, e)));
}

// ---------------------------------------------------------------------------------------

export function encodeBlockQ2K(x: usize, qw: usize, out: usize): void {
  const L = quantsU;
  let dmBits: i32;
  let mmBits: i32;
  if (!qw) {
    let maxScale: f32 = 0;
    let maxMin: f32 = 0;
    for (let j = 0; j < 16; j++) {
      for (let l = 0; l < 16; l++) stf(groupWeights, l, abs<f32>(ldf(x, 16 * j + l)));
      const scale = makeQkxQuants(16, 3, f4(x, 16 * j), groupWeights, L + <usize>(16 * j), subMins, j, -0.5, ONE_TENTH, 15, true);
      stf(subScales, j, scale);
      if (scale > maxScale) maxScale = scale;
      const m = ldf(subMins, j);
      if (m > maxMin) maxMin = m;
    }
    if (maxScale > 0) {
      const iscale: f32 = <f32>15.0 / maxScale;
      for (let j = 0; j < 16; j++) stu8(out, j, nearestInt(iscale * ldf(subScales, j)));
      dmBits = f32ToF16(maxScale / <f32>15.0);
    } else {
      memory.fill(out, 0, 16);
      dmBits = 0;
    }
    if (maxMin > 0) {
      const iscale: f32 = <f32>15.0 / maxMin;
      for (let j = 0; j < 16; j++) stu8(out, j, ldu8(out, j) | (nearestInt(iscale * ldf(subMins, j)) << 4));
      mmBits = f32ToF16(maxMin / <f32>15.0);
    } else {
      mmBits = 0;
    }
  } else {
    const sigma2: f32 = sumOfSquares(x, QK_K) / <f32>QK_K;
    for (let j = 0; j < 16; j++) {
      stf(subWeightSums, j, fillImportanceWeights(groupWeights, 16, f4(x, 16 * j), f4(qw, 16 * j), sigma2));
      stf(subScales, j, makeQkxQuants(16, 3, f4(x, 16 * j), groupWeights, L + <usize>(16 * j), subMins, j, RMIN_NEG_0_9, RDELTA_0_05, 36, false));
    }
    dmBits = f32ToF16(makeQpQuants(16, 15, subScales, scaleLevels, subWeightSums));
    mmBits = f32ToF16(makeQpQuants(16, 15, subMins, minLevels, subWeightSums));
    for (let j = 0; j < 16; j++) stu8(out, j, ldu8(scaleLevels, j) | (ldu8(minLevels, j) << 4));
  }
  store<u16>(out + 80, <u16>dmBits);
  store<u16>(out + 82, <u16>mmBits);
  const dAll = f16ToF32(dmBits);
  const mAll = f16ToF32(mmBits);
  for (let j = 0; j < 16; j++) {
    const sc = ldu8(out, j);
    requantizeWithMins(x, L, j, 16, 3, dAll * <f32>(sc & 0xf), mAll * <f32>(sc >> 4));
  }
  pack2Bit(L, out + 16);
}

export function encodeBlockQ3K(x: usize, qw: usize, out: usize): void {
  const L = quantsS;
  const s = packedScales;
  memory.fill(s, 0, 12);
  let dBits: i32;
  if (!qw) {
    for (let j = 0; j < 16; j++) stf(subScales, j, makeQ3Quants(16, 4, f4(x, 16 * j), L + <usize>(16 * j)));
    const maxScale = maxByMagnitude(subScales, 16);
    if (maxScale != 0) {
      const iscale: f32 = <f32>-32.0 / maxScale;
      for (let j = 0; j < 16; j++) {
        const l = (nearestInt(iscale * ldf(subScales, j)) << 24) >> 24;
        store<i8>(scaleLevelsSigned + <usize>j, <i8>(clampInt(l, -32, 31) + 32));
      }
      packScalesQ3K(scaleLevelsSigned, s);
      dBits = f32ToF16(<f32>1.0 / iscale);
    } else {
      dBits = 0;
    }
  } else {
    const sigma2: f32 = (<f32>2.0 * sumOfSquares(x, QK_K)) / <f32>QK_K;
    for (let j = 0; j < 16; j++) {
      stf(subWeightSums, j, fillImportanceWeights(groupWeights, 16, f4(x, 16 * j), f4(qw, 16 * j), sigma2));
      stf(subScales, j, makeQxQuants(16, 4, f4(x, 16 * j), L + <usize>(16 * j), groupWeights));
    }
    const dBlock = makeQxQuants(16, 32, subScales, scaleLevelsSigned, subWeightSums);
    packScalesQ3K(scaleLevelsSigned, s);
    dBits = f32ToF16(dBlock);
  }
  memory.copy(out + 96, s, 12);
  store<u16>(out + 108, <u16>dBits);
  const dAll = f16ToF32(dBits);
  for (let j = 0; j < 16; j++) requantizeSymmetric(x, L, j, -4, 3, dAll * <f32>(scaleQ3K(j, s) - 32));
  memory.fill(out, 0, 32);
  // Branch-free (L is 0..7 here, half the values over 3): the high bit h = L >> 2.
  for (let j = 0; j < QK_K; j++) {
    const l = ldi8(L, j);
    const h = l >> 2;
    stu8(out, j & 31, ldu8(out, j & 31) | (h << (j >> 5)));
    store<i8>(L + <usize>j, <i8>(l - 4 * h));
  }
  pack2Bit(L, out + 32);
}

function chooseScalesMinsK4(x: usize, qw: usize, nmax: i32, rmin: f32, rdelta: f32, nstep: i32, clampImpl: bool, out: usize): void {
  const L = quantsU;
  let dBits: i32;
  let mBits: i32;
  if (!qw) {
    let maxScale: f32 = 0;
    let maxMin: f32 = 0;
    for (let j = 0; j < 8; j++) {
      const xj = f4(x, 32 * j);
      const avX: f32 = sqrt<f32>(sumOfSquares(xj, 32) / <f32>32.0);
      const av4 = f32x4.splat(avX);
      for (let l = 0; l < 32; l += 4) v128.store(f4(groupWeights, l), f32x4.add(av4, f32x4.abs(v128.load(f4(xj, l)))));
      const scale = makeQkxQuants(32, nmax, xj, groupWeights, L + <usize>(32 * j), subMins, j, rmin, rdelta, nstep, false);
      stf(subScales, j, scale);
      if (scale > maxScale) maxScale = scale;
      const m = ldf(subMins, j);
      if (m > maxMin) maxMin = m;
    }
    const invScale: f32 = maxScale > 0 ? <f32>63.0 / maxScale : 0;
    const invMin: f32 = maxMin > 0 ? <f32>63.0 / maxMin : 0;
    for (let j = 0; j < 8; j++) {
      stu8(scaleLevels, j, min<i32>(63, nearestInt(invScale * ldf(subScales, j)) & 0xff));
      stu8(minLevels, j, min<i32>(63, nearestInt(invMin * ldf(subMins, j)) & 0xff));
    }
    dBits = f32ToF16(maxScale / <f32>63.0);
    mBits = f32ToF16(maxMin / <f32>63.0);
  } else {
    const sigma2: f32 = (<f32>2.0 * sumOfSquares(x, QK_K)) / <f32>QK_K;
    for (let j = 0; j < 8; j++) {
      stf(subWeightSums, j, fillImportanceWeights(groupWeights, 32, f4(x, 32 * j), f4(qw, 32 * j), sigma2));
      stf(subScales, j, makeQkxQuants(32, nmax, f4(x, 32 * j), groupWeights, L + <usize>(32 * j), subMins, j, RMIN_NEG_0_9, RDELTA_0_05, 36, false));
    }
    dBits = f32ToF16(makeQpQuants(8, 63, subScales, scaleLevels, subWeightSums));
    mBits = f32ToF16(makeQpQuants(8, 63, subMins, minLevels, subWeightSums));
    if (clampImpl) {
      for (let j = 0; j < 8; j++) {
        stu8(scaleLevels, j, min<i32>(63, ldu8(scaleLevels, j)));
        stu8(minLevels, j, min<i32>(63, ldu8(minLevels, j)));
      }
    }
  }
  packScalesMinsK4(scaleLevels, minLevels, packedScales);
  store<u16>(out, <u16>dBits);
  store<u16>(out + 2, <u16>mBits);
  const dAll = f16ToF32(dBits);
  const mAll = f16ToF32(mBits);
  for (let j = 0; j < 8; j++) {
    const sm = scaleMinK4(j, packedScales);
    requantizeWithMins(x, L, j, 32, nmax, dAll * <f32>(sm & 0xff), mAll * <f32>(sm >> 8));
  }
}

export function encodeBlockQ4K(x: usize, qw: usize, out: usize): void {
  chooseScalesMinsK4(x, qw, 15, -1.0, ONE_TENTH, 20, false, out);
  memory.copy(out + 4, packedScales, 12);
  const L = quantsU;
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) stu8(out, 16 + 32 * c + l, ldu8(L, 64 * c + l) | (ldu8(L, 64 * c + 32 + l) << 4));
  }
}

export function encodeBlockQ5K(x: usize, qw: usize, out: usize): void {
  chooseScalesMinsK4(x, qw, 31, -0.5, ONE_TENTH, 15, true, out);
  memory.copy(out + 4, packedScales, 12);
  const L = quantsU;
  const qh = out + 16;
  const ql = out + 48;
  memory.fill(qh, 0, 32);
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) {
      const lo = ldu8(L, 64 * c + l);
      const hi = ldu8(L, 64 * c + 32 + l);
      stu8(qh, l, ldu8(qh, l) | ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      stu8(ql, 32 * c + l, (lo & 0xf) | ((hi & 0xf) << 4));
    }
  }
}

export function encodeBlockQ6K(x: usize, qw: usize, out: usize): void {
  const L = quantsS;
  for (let j = 0; j < 16; j++) stf(subScales, j, makeQxQuants(16, 32, f4(x, 16 * j), L + <usize>(16 * j), qw ? f4(qw, 16 * j) : 0));
  const maxScale = maxByMagnitude(subScales, 16);
  if (abs<f32>(maxScale) < GROUP_MAX_EPS) {
    memory.fill(out, 0, 210);
    return;
  }
  const iscale: f32 = <f32>-128.0 / maxScale;
  const dBits = f32ToF16(<f32>1.0 / iscale);
  store<u16>(out + 208, <u16>dBits);
  for (let j = 0; j < 16; j++) stu8(out, 192 + j, min<i32>(127, nearestInt(iscale * ldf(subScales, j))));
  const dAll = f16ToF32(dBits);
  for (let j = 0; j < 16; j++) {
    const sc = ldi8(out, 192 + j);
    requantizeSymmetric(x, L, j, -32, 31, dAll * <f32>sc);
  }
  for (let h = 0; h < 2; h++) {
    const ql = out + <usize>(64 * h);
    const qh = out + <usize>(128 + 32 * h);
    const v = 128 * h;
    for (let l = 0; l < 32; l++) {
      const a = ldu8(L, v + l), b = ldu8(L, v + l + 32), c = ldu8(L, v + l + 64), e = ldu8(L, v + l + 96);
      stu8(ql, l, (a & 0xf) | ((c & 0xf) << 4));
      stu8(ql, l + 32, (b & 0xf) | ((e & 0xf) << 4));
      stu8(qh, l, (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6));
    }
  }
}
