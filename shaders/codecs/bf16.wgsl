// BF16: the top half of an f32, round to nearest even (ggml_fp32_to_bf16_row_ref, which is
// what ggml_quantize_chunk calls; GGML_BF16_TO_FP32 back).
// Byte map (2 bytes): [0..2) bf16 little-endian.
const BLOCK_SIZE: u32 = 1u;
const BLOCK_BYTES: u32 = 2u;

fn quantize_block(base: u32) {
  st_u16(base, f32_to_bf16_bits(val(0u)));
}

fn dequantize_block(base: u32) {
  vals[0] = bf16_bits_to_f32_bits(ld_u16(base));
}
