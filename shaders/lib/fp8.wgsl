// FP8 with one per-tensor f32 scale (codecs/fp8_e4m3.wgsl, fp8_e5m2.wgsl; src/quant/codecs/
// float.ts fp8Codec): scale = absmax over finite |x| / the largest finite FP8 (1 when the
// absmax is 0, at least 2^-149);
// code = x / scale (f32) rounded to nearest even on the FP8 grid, saturating to the largest
// finite, NaN to FP8_NAN_CODE; value = FP8 value * scale (f32). The codec file defines the
// format: FP8_MANT_BITS, FP8_BIAS, FP8_MAX_CODE, FP8_MAX_FINITE (f32 bits), FP8_NAN_CODE and
// FP8_IEEE (E5M2's infinities and NaNs at the top exponent; E4M3 "fn" has one NaN code).
// The layout functions of kernels/segment_params.wgsl and kernels/bytes_*.wgsl.

fn layout_seg_param(absmax: u32) -> u32 {
  if (absmax == 0u) {
    return 0x3f800000u; // 1.0
  }
  // Never 0: at least 2^-149 (bits 1), so that x / scale stays defined.
  return max(bitcast<u32>(div_rn(bitcast<f32>(absmax), bitcast<f32>(FP8_MAX_FINITE))), 1u);
}

fn layout_encode(x: u32, scale: u32) -> u32 {
  let u = bitcast<u32>(div_rn(bitcast<f32>(x), bitcast<f32>(scale)));
  let sign = (u >> 24u) & 0x80u;
  let a = u & F32_ABS;
  if (a > F32_INF) {
    return FP8_NAN_CODE;
  }
  if (a >= FP8_MAX_FINITE) {
    return sign | FP8_MAX_CODE;
  }
  let min_normal_exp = 1 - FP8_BIAS;
  if (i32(a >> 23u) - 127 >= min_normal_exp) {
    // Round the mantissa to FP8_MANT_BITS on the bits (ties to even), then rebias; a carry
    // out of the mantissa bumps the exponent.
    let drop = 23u - FP8_MANT_BITS;
    let rounded = (a + ((1u << (drop - 1u)) - 1u) + ((a >> drop) & 1u)) >> drop;
    return sign | (rounded - (u32(127 - FP8_BIAS) << FP8_MANT_BITS));
  }
  // Subnormal FP8: quanta of 2^(min_normal_exp - mant bits), half to even; a below f32's
  // normal range is far below half a quantum.
  if (a < 0x00800000u) {
    return sign;
  }
  let scaled = a + (u32(i32(FP8_MANT_BITS) - min_normal_exp) << 23u);
  return sign | round_mag_bits(scaled, true);
}

// The f32 bits of an FP8 code's value, exactly.
fn fp8_value_bits(code: u32) -> u32 {
  let sign = (code & 0x80u) << 24u;
  let exp_max = (0x7fu >> FP8_MANT_BITS);
  let e = (code >> FP8_MANT_BITS) & exp_max;
  let m = code & ((1u << FP8_MANT_BITS) - 1u);
  if ((FP8_IEEE && e == exp_max) || (!FP8_IEEE && (code & 0x7fu) == 0x7fu)) {
    return select(0x7fc00000u, sign | F32_INF, FP8_IEEE && m == 0u);
  }
  if (e == 0u) {
    if (m == 0u) {
      return sign;
    }
    // m * 2^(1 - bias - mant bits), normal in f32.
    let p = firstLeadingBit(m);
    let exp = i32(p) + 1 - FP8_BIAS - i32(FP8_MANT_BITS);
    return sign | (u32(exp + 127) << 23u) | ((m << (23u - p)) & 0x7fffffu);
  }
  return sign | (u32(i32(e) - FP8_BIAS + 127) << 23u) | (m << (23u - FP8_MANT_BITS));
}

fn layout_decode(code: u32, scale: u32) -> u32 {
  let v = bitcast<u32>(sf_mul(bitcast<f32>(fp8_value_bits(code)), bitcast<f32>(scale)));
  return select(v, 0x7fc00000u, is_nan_bits(v));
}
