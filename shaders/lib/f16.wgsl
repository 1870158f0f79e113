// f32 <-> IEEE binary16 bits with integer operations only, bit-exact with
// src/formats/float16.ts and ggml's ggml_compute_fp32_to_fp16 / _fp16_to_fp32:
// round to nearest even, subnormals kept, overflow -> inf, NaN -> 0x7e00 (sign kept).
// Not pack2x16float/unpack2x16float: those may flush subnormal f16 scales, which real
// tensors produce (ggml-webgpu uses pack2x16float, and needs shader-f16 for reads).

fn f32_to_f16_bits(x: f32) -> u32 {
  let w = bitcast<u32>(x);
  let sign = (w >> 16u) & 0x8000u;
  let a = w & 0x7fffffffu;
  if (a > 0x7f800000u) {
    return sign | 0x7e00u;
  }
  if (a >= 0x47800000u) {
    return sign | 0x7c00u; // >= 65536 and inf
  }
  if (a >= 0x38800000u) {
    // Normal f16: rebias the exponent (127 -> 15), drop 13 bits with ties to even.
    // A carry out of the mantissa bumps the exponent, up to inf for [65520, 65536).
    let m = a - 0x38000000u;
    return sign | ((m + 0xfffu + ((m >> 13u) & 1u)) >> 13u);
  }
  if (a < 0x33000000u) {
    return sign; // < 2^-25: rounds to zero
  }
  // Subnormal f16: value = mant * 2^(e - 150), unit 2^-24, so shift right by 126 - e.
  let e = a >> 23u; // 102..112
  let mant = (a & 0x7fffffu) | 0x800000u;
  let sh = 126u - e; // 14..24
  let q = mant >> sh;
  let rem = mant & ((1u << sh) - 1u);
  let half = 1u << (sh - 1u);
  let up = rem > half || (rem == half && (q & 1u) == 1u);
  return sign | (q + select(0u, 1u, up)); // 0x400 after a carry is the smallest normal
}

// f16 bits -> f32 bits, exact (ggml: NaN payload kept, made quiet).
fn f16_bits_to_f32_bits(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0u) {
    if (m == 0u) {
      return sign;
    }
    let p = firstLeadingBit(m); // value = m * 2^-24 = 1.f * 2^(p - 24)
    return sign | ((p + 103u) << 23u) | ((m << (23u - p)) & 0x7fffffu);
  }
  if (e == 31u) {
    return sign | 0x7f800000u | (m << 13u) | select(0u, 0x400000u, m != 0u);
  }
  return sign | ((e + 112u) << 23u) | (m << 13u);
}

fn f16_bits_to_f32(h: u32) -> f32 {
  return bitcast<f32>(f16_bits_to_f32_bits(h));
}
