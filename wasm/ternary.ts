// AssemblyScript: TQ1_0 and TQ2_0 rows, ported from the reference src/quant/codecs/ternary.ts
// (ggml-org/ggml src/ggml-quants.c quantize_row_tq1_0_ref, quantize_row_tq2_0_ref,
// dequantize_row_tq1_0, dequantize_row_tq2_0; byte maps there). Four weights per SIMD
// vector: the trit of x is 1 + (x*id >= 0.5) - (x*id <= -0.5), the reference's lroundf.
// A row holding Inf or NaN is left to the reference (its scale would be NaN or Inf).
import { f16ToF32, f32ToF16Bits } from './common';

export const QK_TQ = 256;
export const TQ1_0_BYTES = 54;
export const TQ2_0_BYTES = 66;

/**
 * The bits of the block's absmax (an integer max of the magnitudes' bits: for non-negative
 * floats the same order, and cheaper than f32x4.max on x64); 0x7f800000 or more when the
 * block holds an Inf or a NaN.
 */
@inline function absMaxBits256(x: usize): u32 {
  const magnitude = i32x4.splat(0x7fffffff);
  let m0 = i32x4.splat(0), m1 = m0, m2 = m0, m3 = m0;
  for (let i = 0; i < QK_TQ; i += 16) {
    const p = x + ((<usize>i) << 2);
    m0 = i32x4.max_u(m0, v128.and(v128.load(p), magnitude));
    m1 = i32x4.max_u(m1, v128.and(v128.load(p, 16), magnitude));
    m2 = i32x4.max_u(m2, v128.and(v128.load(p, 32), magnitude));
    m3 = i32x4.max_u(m3, v128.and(v128.load(p, 48), magnitude));
  }
  const m = i32x4.max_u(i32x4.max_u(m0, m1), i32x4.max_u(m2, m3));
  return max<u32>(max<u32>(i32x4.extract_lane(m, 0), i32x4.extract_lane(m, 1)), max<u32>(i32x4.extract_lane(m, 2), i32x4.extract_lane(m, 3)));
}

/** The C's `d ? 1.0f/d : 0.0f`, 0 where that is Inf (subnormal d: see the reference's inverseScale). */
@inline function inverseScale(d: f32): f32 {
  const id: f32 = d != 0 ? <f32>1.0 / d : 0;
  return id == Infinity ? 0 : id;
}

/** The trits (0, 1, 2) of the four weights at p: 1 + (v >= 0.5) - (v <= -0.5), v = x * id in f32. */
@inline function trits4(p: usize, id: v128): v128 {
  const v = f32x4.mul(v128.load(p), id);
  // Compare masks are -1 where true.
  return i32x4.add(i32x4.sub(i32x4.splat(1), f32x4.ge(v, f32x4.splat(0.5))), f32x4.le(v, f32x4.splat(-0.5)));
}

/** Sixteen i32 lanes of 0..255 as bytes at out. */
@inline function storeBytes16(a: v128, b: v128, c: v128, d: v128, out: usize): void {
  v128.store(out, i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(a, b), i16x8.narrow_i32x4_u(c, d)));
}

/** 3q, by a shift and an add. */
@inline function times3(q: v128): v128 {
  return i32x4.add(i32x4.shl(q, 1), q);
}

/**
 * Five trits of the weights at p, p + stride, ..., most significant first, as tq1_0 stores
 * them: q (base 3) -> ceil(q * 256 / 243) = (q*256 + 242) / 243. The division in f32 is
 * exact where the quotient is an integer and otherwise at least 1/243 from one, far more
 * than its rounding error (256 * 2^-24), so truncation gives the integer quotient.
 */
@inline function packFive4(p: usize, stride: usize, id: v128): v128 {
  let q = trits4(p, id);
  q = i32x4.add(times3(q), trits4(p + stride, id));
  q = i32x4.add(times3(q), trits4(p + 2 * stride, id));
  q = i32x4.add(times3(q), trits4(p + 3 * stride, id));
  q = i32x4.add(times3(q), trits4(p + 4 * stride, id));
  return byteFraction(q);
}

@inline function byteFraction(q: v128): v128 {
  const y = f32x4.convert_i32x4_s(i32x4.add(i32x4.shl(q, 8), i32x4.splat(242)));
  return i32x4.trunc_sat_f32x4_s(f32x4.div(y, f32x4.splat(243)));
}

/** quantize_row_tq1_0_ref over `blocks` blocks at x; false when the row holds Inf or NaN. */
export function encodeTq1Row(x: usize, blocks: i32, out: usize): bool {
  for (let b = 0; b < blocks; b++) {
    const xb = x + ((<usize>b) << 10);
    const o = out + <usize>(b * TQ1_0_BYTES);
    const bits = absMaxBits256(xb);
    if (bits >= 0x7f800000) return false;
    const d = reinterpret<f32>(bits);
    const id = f32x4.splat(inverseScale(d));
    // qs[0..32): byte m from weights m + 32n (n = 0..4).
    for (let m = 0; m < 32; m += 16) {
      const p = xb + ((<usize>m) << 2);
      storeBytes16(packFive4(p, 128, id), packFive4(p + 16, 128, id), packFive4(p + 32, 128, id), packFive4(p + 48, 128, id), o + <usize>m);
    }
    // qs[32..48): byte m from weights 160 + m + 16n.
    const p = xb + 160 * 4;
    storeBytes16(packFive4(p, 64, id), packFive4(p + 16, 64, id), packFive4(p + 32, 64, id), packFive4(p + 48, 64, id), o + 32);
    // qh[0..4): byte j from weights 240 + j + 4n (n = 0..3), then a 0 trit.
    const h = xb + 240 * 4;
    let q = trits4(h, id);
    q = i32x4.add(times3(q), trits4(h + 16, id));
    q = i32x4.add(times3(q), trits4(h + 32, id));
    q = i32x4.add(times3(q), trits4(h + 48, id));
    const qh = byteFraction(times3(q));
    v128.store32_lane(o + 48, i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(qh, qh), i16x8.narrow_i32x4_u(qh, qh)), 0);
    store<u16>(o + 52, <u16>f32ToF16Bits(d));
  }
  return true;
}

/** quantize_row_tq2_0_ref over `blocks` blocks at x; false when the row holds Inf or NaN. */
export function encodeTq2Row(x: usize, blocks: i32, out: usize): bool {
  for (let b = 0; b < blocks; b++) {
    const xb = x + ((<usize>b) << 10);
    const o = out + <usize>(b * TQ2_0_BYTES);
    const bits = absMaxBits256(xb);
    if (bits >= 0x7f800000) return false;
    const d = reinterpret<f32>(bits);
    const id = f32x4.splat(inverseScale(d));
    // Byte 32h + m: weights 128h + m + 32n in bits 2n..2n+1.
    for (let k = 0; k < 64; k += 16) {
      const p = xb + ((<usize>((k >> 5) * 128 + (k & 31))) << 2);
      storeBytes16(twoBit4(p, id), twoBit4(p + 16, id), twoBit4(p + 32, id), twoBit4(p + 48, id), o + <usize>k);
    }
    store<u16>(o + 64, <u16>f32ToF16Bits(d));
  }
  return true;
}

/** Four tq2_0 bytes: the trits of weights p + 32n (n = 0..3) at bits 2n. */
@inline function twoBit4(p: usize, id: v128): v128 {
  let q = trits4(p, id);
  q = v128.or(q, i32x4.shl(trits4(p + 128, id), 2));
  q = v128.or(q, i32x4.shl(trits4(p + 256, id), 4));
  return v128.or(q, i32x4.shl(trits4(p + 384, id), 6));
}

/** Trit n (0 = most significant) of a tq1_0 byte, as -1, 0 or 1. */
@inline function unpackTrit(byte: i32, pow3: i32): f32 {
  return <f32>(((((byte * pow3) & 0xff) * 3) >> 8) - 1);
}

const POW3 = memory.data<i32>([1, 3, 9, 27, 81]);

/** dequantize_row_tq1_0 block at p into y; false (left to the reference) for an Inf or NaN scale. */
export function decodeTq1Block(p: usize, y: usize): bool {
  const h = <i32>load<u16>(p + 52);
  if ((h & 0x7c00) == 0x7c00) return false;
  const d = f16ToF32(h);
  for (let n = 0; n < 5; n++) {
    const pow3 = load<i32>(POW3 + ((<usize>n) << 2));
    for (let m = 0; m < 32; m++) store<f32>(y + ((<usize>(32 * n + m)) << 2), unpackTrit(<i32>load<u8>(p + <usize>m), pow3) * d);
    for (let m = 0; m < 16; m++) store<f32>(y + ((<usize>(160 + 16 * n + m)) << 2), unpackTrit(<i32>load<u8>(p + 32 + <usize>m), pow3) * d);
  }
  for (let n = 0; n < 4; n++) {
    const pow3 = load<i32>(POW3 + ((<usize>n) << 2));
    for (let j = 0; j < 4; j++) store<f32>(y + ((<usize>(240 + 4 * n + j)) << 2), unpackTrit(<i32>load<u8>(p + 48 + <usize>j), pow3) * d);
  }
  return true;
}

/** dequantize_row_tq2_0 block at p into y; false (left to the reference) for an Inf or NaN scale. */
export function decodeTq2Block(p: usize, y: usize): bool {
  const h = <i32>load<u16>(p + 64);
  if ((h & 0x7c00) == 0x7c00) return false;
  const d = f16ToF32(h);
  for (let half = 0; half < 2; half++) {
    for (let n = 0; n < 4; n++) {
      for (let m = 0; m < 32; m++) {
        const q = (<i32>load<u8>(p + <usize>(32 * half + m)) >> (2 * n)) & 3;
        store<f32>(y + ((<usize>(128 * half + 32 * n + m)) << 2), <f32>(q - 1) * d);
      }
    }
  }
  return true;
}
