// NF4 (bitsandbytes NormalFloat4): blocks of 64, 4-bit codes into NF4's 16 values times the
// block absmax (src/quant/codecs/nf4.ts NF4; lib/bnb4.wgsl).
// Byte map (36 bytes): [0..4) f32 absmax | [4..36) byte i = code[2i] << 4 | code[2i + 1];
// x = NF4_VALUES[code] * absmax.
const BLOCK_SIZE: u32 = 64u;
const BLOCK_BYTES: u32 = 36u;

fn quantize_block(base: u32) {
  bnb4_quantize_block(base, false);
}

fn dequantize_block(base: u32) {
  bnb4_dequantize_block(base, false);
}
