// AssemblyScript: f32 -> F16 and f32 -> BF16 rows, four lanes at a time, the same bits as
// the reference src/quant/codecs/float.ts (f16FromF32Bits, bf16FromF32Bits), which follow
// ggml-org/ggml src/ggml-impl.h ggml_compute_fp32_to_fp16 (the software path, no F16C) and
// ggml_compute_fp32_to_bf16. Every input is handled here, NaN included: both conversions
// decide a NaN's output from its bits (f16: 0x7e00 with the sign; bf16: the top half, quiet),
// never from a float operation on it, so nothing is left to the reference.
import { f32ToF16Bits } from './common';

/**
 * ggml_compute_fp32_to_fp16 on four lanes of f32 bits: the magnitude scaled by 2^112 * 2^-110
 * (overflow to Inf, subnormal rounding done by the FPU), then added to 2^(e+...) so that the
 * f32 add rounds to f16's precision (nearest even); NaN lanes (2w > 0xff000000) give 0x7e00.
 * Lanes hold the f16 bits in their low 16 bits.
 */
@inline function f16x4(w: v128): v128 {
  const shl1 = i32x4.shl(w, 1);
  const sign = v128.and(i32x4.shr_u(w, 16), i32x4.splat(0x8000));
  let base = f32x4.mul(f32x4.mul(f32x4.abs(w), f32x4.splat(reinterpret<f32>(0x77800000))), f32x4.splat(reinterpret<f32>(0x08800000)));
  // bias = max(2w & 0xff000000, 0x71000000), unsigned as in the C.
  const bias = i32x4.max_u(v128.and(shl1, i32x4.splat(0xff000000)), i32x4.splat(0x71000000));
  base = f32x4.add(i32x4.add(i32x4.shr_u(bias, 1), i32x4.splat(0x07800000)), base);
  const nonsign = i32x4.add(v128.and(i32x4.shr_u(base, 13), i32x4.splat(0x7c00)), v128.and(base, i32x4.splat(0x0fff)));
  const isNaN = i32x4.gt_u(shl1, i32x4.splat(0xff000000));
  return v128.or(sign, v128.bitselect(i32x4.splat(0x7e00), nonsign, isNaN));
}

/**
 * ggml_compute_fp32_to_bf16 on four lanes of f32 bits, left in the lanes' top halves: a
 * NaN with the quiet bit set (0x40 of the top half), else the bits rounded to nearest even
 * at bit 16.
 */
@inline function bf16x4High(u: v128): v128 {
  const rounded = i32x4.add(i32x4.add(u, i32x4.splat(0x7fff)), v128.and(i32x4.shr_u(u, 16), i32x4.splat(1)));
  const isNaN = i32x4.gt_s(v128.and(u, i32x4.splat(0x7fffffff)), i32x4.splat(0x7f800000));
  return v128.bitselect(v128.or(u, i32x4.splat(0x00400000)), rounded, isNaN);
}

/** The top halves of the eight lanes of a and b, in order. */
@inline function highHalves(a: v128, b: v128): v128 {
  return i8x16.shuffle(a, b, 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
}

/** bf16FromF32Bits for one value (the tail of a row). */
@inline function bf16One(u: u32): u32 {
  if ((u & 0x7fffffff) > 0x7f800000) return (u >> 16) | 0x40;
  return ((u + 0x7fff + ((u >> 16) & 1)) >> 16) & 0xffff;
}

/** n f32 at src -> n F16 (u16) at out. */
export function encodeF16(src: usize, n: i32, out: usize): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const p = src + ((<usize>i) << 2);
    // Lanes are 0..0xffff: the unsigned narrow keeps them as they are.
    v128.store(out + ((<usize>i) << 1), i16x8.narrow_i32x4_u(f16x4(v128.load(p)), f16x4(v128.load(p, 16))));
  }
  for (; i < n; i++) store<u16>(out + ((<usize>i) << 1), <u16>f32ToF16Bits(load<f32>(src + ((<usize>i) << 2))));
}

/** n f32 at src -> n BF16 (u16) at out. */
export function encodeBF16(src: usize, n: i32, out: usize): void {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const p = src + ((<usize>i) << 2);
    const o = out + ((<usize>i) << 1);
    v128.store(o, highHalves(bf16x4High(v128.load(p)), bf16x4High(v128.load(p, 16))));
    v128.store(o, highHalves(bf16x4High(v128.load(p, 32)), bf16x4High(v128.load(p, 48))), 16);
  }
  for (; i < n; i++) store<u16>(out + ((<usize>i) << 1), <u16>bf16One(load<u32>(src + ((<usize>i) << 2))));
}
