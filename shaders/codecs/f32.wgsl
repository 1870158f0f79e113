// F32: one IEEE single per block, copied bit for bit (ggml_quantize_chunk memcpy's it).
// Byte map (4 bytes): [0..4) f32 little-endian.
const BLOCK_SIZE: u32 = 1u;
const BLOCK_BYTES: u32 = 4u;

fn quantize_block(base: u32) {
  st_u32(base, vals[0]);
}

fn dequantize_block(base: u32) {
  vals[0] = ld_u32(base);
}
