// IQ1_S: super-blocks of 256, 8 sub-blocks of 32, groups of 8 on the 2048-point ternary
// iq1s grid shifted by +-1/8 (src/quant/codecs/iq1.ts; ggml dequantize_row_iq1_s). Decode
// only (no quantize_block): the encoder's search runs on the CPU (src/gpu/quantize.ts).
// Byte map (50 bytes): [0..2) d f16 | [2..34) low 8 bits of each group's index | [34..50)
// u16 per sub-block: bits 3l..3l+2 = index bits 8-10 of group l, bits 12..14 = scale s,
// bit 15 = delta sign. x = d * (2s + 1) * (grid + delta). A NaN d: every value is that NaN.
const BLOCK_SIZE: u32 = 256u;
const BLOCK_BYTES: u32 = 50u;

fn dequantize_block(base: u32) {
  let h = ld_u16(base);
  if (iq_is_nan_f16(h)) {
    let nan = f16_bits_to_f32_bits(h);
    for (var i = 0u; i < BLOCK_SIZE; i = i + 1u) {
      vals[i] = nan;
    }
    return;
  }
  let d = f16_bits_to_f32(h);
  for (var ib = 0u; ib < 8u; ib = ib + 1u) {
    let qh = ld_u16(base + 34u + 2u * ib);
    let dl = d * f32(2u * ((qh >> 12u) & 7u) + 1u);
    let delta = select(0.125, -0.125, (qh & 0x8000u) != 0u);
    for (var l = 0u; l < 4u; l = l + 1u) {
      let index = ld_u8(base + 2u + 4u * ib + l) | (((qh >> (3u * l)) & 7u) << 8u);
      iq1_put8(32u * ib + 8u * l, iq1s_point(index), dl, delta);
    }
  }
}
