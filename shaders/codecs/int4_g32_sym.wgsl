// INT4_G32_SYM: groups of 32, symmetric (scale only), GPTQ-style
// (src/quant/codecs/intn.ts int4Codec(32, 'sym'); lib/int4.wgsl).
// Byte map (18 bytes): [0..2) f16 scale | [2..18) codes: element 2i in the low nibble of byte i,
// 2i+1 in the high one; x = scale * (code - zero), zero = 8.
const BLOCK_SIZE: u32 = 32u;
const BLOCK_BYTES: u32 = 18u;

fn quantize_block(base: u32) {
  int4_quantize_block(base, BLOCK_SIZE, false);
}

fn dequantize_block(base: u32) {
  int4_dequantize_block(base, BLOCK_SIZE, false);
}
