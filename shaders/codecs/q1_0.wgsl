// Q1_0: blocks of 128 signs with an f16 scale d = mean |x| (src/quant/codecs/lowbit.ts;
// ggml quantize_row_q1_0_ref, dequantize_row_q1_0). Byte map (18 bytes): [0..2) d f16 | [2..18) bit j % 8 of byte
// j / 8: 1 -> +d, 0 -> -d (a sign flip of d's bits, NaN included, as the CPU has it).
const BLOCK_SIZE: u32 = 128u;
const BLOCK_BYTES: u32 = 18u;

// C's x >= 0.0f on the bits: +-0 and positive non-NaN values (subnormals included).
fn q1_nonnegative(b: u32) -> bool {
  return ((b & F32_SIGN) == 0u && !is_nan_bits(b)) || (b & F32_ABS) == 0u;
}

fn quantize_block(base: u32) {
  // The sum of |x| in order, each step rounded to f32 (softfloat: subnormals kept).
  var sum = 0.0;
  for (var j = 0u; j < 128u; j = j + 1u) {
    sum = sf_add(sum, bitcast<f32>(vals[j] & F32_ABS));
  }
  st_u16(base, f32_to_f16_bits(div_rn(sum, 128.0)));
  for (var j = 0u; j < 16u; j = j + 1u) {
    var byte = 0u;
    for (var i = 0u; i < 8u; i = i + 1u) {
      byte = byte | select(0u, 1u << i, q1_nonnegative(vals[8u * j + i]));
    }
    st_u8(base + 2u + j, byte);
  }
}

fn dequantize_block(base: u32) {
  let d = f16_bits_to_f32_bits(ld_u16(base));
  for (var j = 0u; j < 128u; j = j + 1u) {
    let bit = (ld_u8(base + 2u + (j >> 3u)) >> (j & 7u)) & 1u;
    vals[j] = d ^ select(0x80000000u, 0u, bit != 0u);
  }
}
