// AssemblyScript: NVFP4, Q1_0 and Q2_0 rows, ported from the reference
// src/quant/codecs/lowbit.ts (ggml-quants.c quantize_row_nvfp4_ref, _q1_0_ref, _q2_0_ref;
// ggml-impl.h ggml_fp32_to_ue4m3). The caller sends rows holding Inf or NaN to the
// reference (their NaN scales' bits are its job).
import { ldf, stu8, storeF16 } from './common';

export const NVFP4_VALUES = 64;
export const NVFP4_BYTES = 36;
export const Q1_0_VALUES = 128;
export const Q1_0_BYTES = 18;
export const Q2_0_VALUES = 64;
export const Q2_0_BYTES = 18;

/** kvalues_mxfp4 (doubled E2M1 values). */
const KVALUES = memory.data<i8>([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]);

/** ggml_fp32_to_ue4m3 (lowbit.ts f32ToUe4m3). */
function f32ToUe4m3(value: f32): i32 {
  if (!(value > 0)) return 0;
  const x: f32 = value > <f32>448 ? <f32>448 : value;
  const bits = reinterpret<u32>(x);
  let exp = <i32>((bits >> 23) & 0xff) - 127 + 7;
  if (exp <= 0) {
    const man = <i32>(x * <f32>512 + <f32>0.5);
    if (man > 7) return 7;
    return man < 1 ? 0 : man;
  }
  if (exp >= 15) return 0x7e;
  let man = <i32>(((bits >> 20) & 7) + ((bits >> 19) & 1));
  if (man > 7) {
    man = 0;
    exp++;
    if (exp >= 15) return 0x7e;
  }
  return (exp << 3) | man;
}

/** ggml_ue4m3_to_fp32 times 1/2 (exact in f32). */
function ue4m3ToF32Half(x: i32): f32 {
  if (x == 0 || x == 0x7f) return 0;
  const exp = (x >> 3) & 0xf;
  const man = x & 7;
  const raw: f64 = exp == 0 ? <f64>man * 0.001953125 : (1 + <f64>man / 8) * reinterpret<f64>(<u64>(exp - 7 + 1023) << 52);
  return <f32>(raw * 0.5);
}

/**
 * best_index_mxfp4 of four weights: the first code of least |f32(kvalue*d) - x|, as the
 * reference's scan (strict <), lane by lane.
 */
@inline function bestCodes4(x: v128, d: f32): v128 {
  let bestErr = f32x4.abs(f32x4.sub(f32x4.splat(<f32>0 * d), x));
  let best = i32x4.splat(0);
  for (let i = 1; i < 16; i++) {
    const e = f32x4.abs(f32x4.sub(f32x4.splat(<f32>load<i8>(KVALUES + <usize>i) * d), x));
    const m = f32x4.lt(e, bestErr);
    bestErr = v128.bitselect(e, bestErr, m);
    best = v128.bitselect(i32x4.splat(i), best, m);
  }
  return best;
}

export function encodeNvfp4Row(x: usize, blocks: i32, out: usize): void {
  for (let b = 0; b < blocks; b++) {
    const y = out + <usize>(b * NVFP4_BYTES);
    for (let s = 0; s < 4; s++) {
      const xb = x + <usize>((b * NVFP4_VALUES + s * 16) * 4);
      let amax: f32 = 0;
      for (let j = 0; j < 16; j++) {
        const a = abs<f32>(ldf(xb, j));
        if (amax < a) amax = a;
      }
      const ue = f32ToUe4m3(amax / <f32>6);
      stu8(y, s, ue);
      const d = ue4m3ToF32Half(ue);
      const lo = v128.or(
        i16x8.narrow_i32x4_u(bestCodes4(v128.load(xb), d), bestCodes4(v128.load(xb, 16), d)),
        i16x8.shl(i16x8.narrow_i32x4_u(bestCodes4(v128.load(xb, 32), d), bestCodes4(v128.load(xb, 48), d)), 4),
      );
      // lo: 8 u16 lanes, code of weight j | code of weight j+8 << 4.
      store<u64>(y + <usize>(4 + 8 * s), i64x2.extract_lane(i8x16.narrow_i16x8_u(lo, lo), 0));
    }
  }
}

export function encodeQ1_0Row(x: usize, blocks: i32, out: usize): void {
  for (let b = 0; b < blocks; b++) {
    const xb = x + <usize>(b * Q1_0_VALUES * 4);
    const y = out + <usize>(b * Q1_0_BYTES);
    let sumAbs: f32 = 0;
    for (let j = 0; j < Q1_0_VALUES; j++) sumAbs += abs<f32>(ldf(xb, j));
    storeF16(y, sumAbs / <f32>Q1_0_VALUES);
    for (let j = 0; j < 16; j++) {
      // Bit i of byte j: x[8j + i] >= 0 (so -0 too): the sign bits, inverted, of eight weights.
      const p = xb + <usize>(32 * j);
      const a = f32x4.ge(v128.load(p), f32x4.splat(0));
      const c = f32x4.ge(v128.load(p, 16), f32x4.splat(0));
      stu8(y, 2 + j, i32x4.bitmask(a) | (i32x4.bitmask(c) << 4));
    }
  }
}

/**
 * Q2_0's 64 levels roundf(x*id) + 1, clamped to 0..3, packed four to a byte, for a finite
 * id (then every x*id is finite): roundf as trunc plus one away from zero where the exact
 * fraction x*id - trunc(x*id) is at least a half.
 */
function encodeQ2_0Levels(xb: usize, id: f32, out: usize): void {
  const id4 = f32x4.splat(id);
  const half = f32x4.splat(0.5);
  const weights = i32x4(1, 4, 16, 64);
  for (let j = 0; j < 16; j++) {
    const v = f32x4.mul(v128.load(xb + <usize>(16 * j)), id4);
    const t = f32x4.trunc(v);
    const away = f32x4.ge(f32x4.abs(f32x4.sub(v, t)), half);
    // away & (v < 0 ? -1 : +1): -1 lanes from the sign mask, +1 otherwise.
    const step = v128.and(away, v128.or(f32x4.lt(v, f32x4.splat(0)), i32x4.splat(1)));
    let q = i32x4.add(i32x4.add(i32x4.trunc_sat_f32x4_s(t), step), i32x4.splat(1));
    q = i32x4.min_s(i32x4.max_s(q, i32x4.splat(0)), i32x4.splat(3));
    const p = i32x4.mul(q, weights);
    stu8(out, j, i32x4.extract_lane(p, 0) | i32x4.extract_lane(p, 1) | i32x4.extract_lane(p, 2) | i32x4.extract_lane(p, 3));
  }
}

export function encodeQ2_0Row(x: usize, blocks: i32, out: usize): void {
  for (let b = 0; b < blocks; b++) {
    const xb = x + <usize>(b * Q2_0_VALUES * 4);
    const y = out + <usize>(b * Q2_0_BYTES);
    let amax: f32 = 0;
    for (let j = 0; j < Q2_0_VALUES; j++) {
      const a = abs<f32>(ldf(xb, j));
      if (a > amax) amax = a;
    }
    const id: f32 = amax > 0 ? <f32>1 / amax : 0;
    storeF16(y, amax);
    if (isFinite<f32>(id)) {
      encodeQ2_0Levels(xb, id, y + 2);
      continue;
    }
    for (let j = 0; j < 16; j++) {
      let byte = 0;
      for (let i = 0; i < 4; i++) {
        const v: f32 = ldf(xb, 4 * j + i) * id;
        // roundf, then + 1 and clamped; (int)roundf of Inf or NaN is INT_MIN on x86: q = 0.
        let q = 0;
        if (isFinite<f32>(v)) {
          const r = <i32>(<f64>v + (v < 0 ? -0.5 : 0.5));
          q = r + 1;
          q = q < 0 ? 0 : q > 3 ? 3 : q;
        }
        byte |= q << (2 * i);
      }
      stu8(y, 2 + j, byte);
    }
  }
}
