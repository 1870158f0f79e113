// FP4 (bitsandbytes, E2M1 normalized by 12): blocks of 64, 4-bit codes times the block absmax
// (src/quant/codecs/nf4.ts FP4; lib/bnb4.wgsl).
// Byte map (36 bytes): [0..4) f32 absmax | [4..36) byte i = code[2i] << 4 | code[2i + 1];
// x = FP4_VALUES[code] * absmax.
const BLOCK_SIZE: u32 = 64u;
const BLOCK_BYTES: u32 = 36u;

fn quantize_block(base: u32) {
  bnb4_quantize_block(base, true);
}

fn dequantize_block(base: u32) {
  bnb4_dequantize_block(base, true);
}
