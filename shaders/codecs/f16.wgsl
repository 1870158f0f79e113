// F16: IEEE half, round to nearest even (ggml_fp32_to_fp16_row; GGML_FP16_TO_FP32 back).
// Byte map (2 bytes): [0..2) f16 little-endian.
const BLOCK_SIZE: u32 = 1u;
const BLOCK_BYTES: u32 = 2u;

fn quantize_block(base: u32) {
  st_u16(base, f32_to_f16_bits(val(0u)));
}

fn dequantize_block(base: u32) {
  vals[0] = f16_bits_to_f32_bits(ld_u16(base));
}
