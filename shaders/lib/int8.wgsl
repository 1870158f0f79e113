// INT8 per row (codecs/int8.wgsl, int8_outlier.wgsl; src/quant/codecs/intn.ts
// writeInt8Sections / readInt8Sections, after bitsandbytes' int8_vectorwise_quant and
// _dequant): code = clamp(round(x * f32(127 / absmax)), -127, 127), half to even, in f32;
// value = f32(f32(code * absmax) * f32(1 / 127)). The layout functions of
// kernels/segment_params.wgsl and kernels/bytes_{quantize,dequantize}.wgsl.

const INT8_INV_127: f32 = bitcast<f32>(0x3c010204u); // f32(1 / 127), bitsandbytes' constant

// The row's factor 127 / absmax (0 for an all-zero row, whose codes stay 0).
fn layout_seg_param(absmax: u32) -> u32 {
  if (absmax == 0u) {
    return 0u;
  }
  return bitcast<u32>(div_rn(127.0, bitcast<f32>(absmax)));
}

fn layout_encode(x: u32, to_code: u32) -> u32 {
  let v = sf_mul(bitcast<f32>(x), bitcast<f32>(to_code));
  if (is_nan_bits(bitcast<u32>(v))) {
    return 0u; // NaN (x NaN, or 0 * inf): an Int8Array stores 0
  }
  return u32(round_even_clamp(v, -127, 127)) & 0xffu;
}

fn layout_decode(code: u32, absmax: u32) -> u32 {
  let q = f32((i32(code) << 24u) >> 24u);
  return bitcast<u32>(sf_mul(sf_mul(q, bitcast<f32>(absmax)), INT8_INV_127));
}
