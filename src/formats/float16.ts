// Bit-exact f16 and bf16 conversions, as ggml does them on a CPU without F16C
// (ggml-org/ggml src/ggml-impl.h: ggml_compute_fp32_to_fp16, ggml_compute_fp32_to_bf16).
// Node 20 has neither Math.f16round nor Float16Array, and the GPU path must match these.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0];
}

export function f32FromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0];
}

const SCALE_TO_INF = 2 ** 112;
const SCALE_TO_ZERO = 2 ** -110;

/** f32 -> f16 bits, round to nearest even; NaN -> quiet NaN 0x7e00 (with sign). */
export function f32ToF16Bits(x: number): number {
  const w = f32Bits(x);
  const shl1 = (w << 1) >>> 0;
  const sign = (w >>> 16) & 0x8000;
  // Multiplying by 2^112 then 2^-110 rounds the mantissa to f16 precision in f32 arithmetic.
  let base = Math.fround(Math.fround(Math.abs(f32FromBits(w)) * SCALE_TO_INF) * SCALE_TO_ZERO);
  let bias = (shl1 & 0xff000000) >>> 0;
  if (bias < 0x71000000) bias = 0x71000000;
  base = Math.fround(f32FromBits((bias >>> 1) + 0x07800000) + base);
  const bits = f32Bits(base);
  const expBits = (bits >>> 13) & 0x7c00;
  const mantissaBits = bits & 0x0fff;
  const nonsign = expBits + mantissaBits;
  return sign | (shl1 > 0xff000000 ? 0x7e00 : nonsign);
}

/** Exact f16 bits -> f32 (subnormals included). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

/** f32 -> bf16 bits, round to nearest even; NaN kept quiet. */
export function f32ToBf16Bits(x: number): number {
  const u = f32Bits(x);
  if ((u & 0x7fffffff) >>> 0 > 0x7f800000) return (u >>> 16) | 64;
  return ((u + (0x7fff + ((u >>> 16) & 1))) >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  return f32FromBits((h & 0xffff) << 16);
}

/** Round an f32 through f16 and back (Math.f16round where the runtime has it). */
export function roundToF16(x: number): number {
  return f16BitsToF32(f32ToF16Bits(x));
}
