// INT4_G32_ASYM: groups of 32, asymmetric (scale and zero-point), GPTQ-style
// (src/quant/codecs/intn.ts int4Codec(32, 'asym'); lib/int4.wgsl).
// Byte map (20 bytes): [0..2) f16 scale | [2] u8 zero-point | [3] 0 | [4..20) codes:
// element 2i in the low nibble of byte i, 2i+1 in the high one; x = scale * (code - zero).
const BLOCK_SIZE: u32 = 32u;
const BLOCK_BYTES: u32 = 20u;

fn quantize_block(base: u32) {
  int4_quantize_block(base, BLOCK_SIZE, true);
}

fn dequantize_block(base: u32) {
  int4_dequantize_block(base, BLOCK_SIZE, true);
}
