// Q1_0: blocks of 128 signs with an f16 scale d = mean |x| (src/quant/codecs/lowbit.ts;
// ggml dequantize_row_q1_0). Byte map (18 bytes): [0..2) d f16 | [2..18) bit j % 8 of byte
// j / 8: 1 -> +d, 0 -> -d (a sign flip of d's bits, NaN included, as the CPU has it).
const BLOCK_SIZE: u32 = 128u;
const BLOCK_BYTES: u32 = 18u;

fn dequantize_block(base: u32) {
  let d = f16_bits_to_f32_bits(ld_u16(base));
  for (var j = 0u; j < 128u; j = j + 1u) {
    let bit = (ld_u8(base + 2u + (j >> 3u)) >> (j & 7u)) & 1u;
    vals[j] = d ^ select(0x80000000u, 0u, bit != 0u);
  }
}
