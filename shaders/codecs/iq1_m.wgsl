// IQ1_M: super-blocks of 256, 16 sub-blocks of 16, groups of 8 on the iq1s grid, each with
// its own delta sign (src/quant/codecs/iq1.ts; ggml dequantize_row_iq1_m). Decode only (no
// quantize_block): the encoder's search runs on the CPU (src/gpu/quantize.ts).
// Byte map (56 bytes): [0..32) low 8 bits of each group's index | [32..48) byte per
// sub-block: bits 0..2 / 4..6 = index bits 8-10 of its group 0 / 1, bit 3 / 7 = their delta
// signs | [48..56) four u16: 3-bit scales at bits 3i of sub-blocks 4j..4j+3, and bits
// 12..15 of u16 j = bits 4j..4j+3 of the f16 d. x = d * (2s + 1) * (grid + delta).
const BLOCK_SIZE: u32 = 256u;
const BLOCK_BYTES: u32 = 56u;

fn dequantize_block(base: u32) {
  let sc = base + 48u;
  let h = (ld_u16(sc) >> 12u) | ((ld_u16(sc + 2u) >> 8u) & 0x00f0u) | ((ld_u16(sc + 4u) >> 4u) & 0x0f00u) | (ld_u16(sc + 6u) & 0xf000u);
  if (iq_is_nan_f16(h)) {
    let nan = f16_bits_to_f32_bits(h);
    for (var i = 0u; i < BLOCK_SIZE; i = i + 1u) {
      vals[i] = nan;
    }
    return;
  }
  let d = f16_bits_to_f32(h);
  for (var ib = 0u; ib < 8u; ib = ib + 1u) {
    let s = ld_u16(sc + 2u * (ib >> 1u));
    let shift = 6u * (ib % 2u);
    let dl1 = d * f32(2u * ((s >> shift) & 7u) + 1u);
    let dl2 = d * f32(2u * ((s >> (shift + 3u)) & 7u) + 1u);
    for (var l = 0u; l < 4u; l = l + 1u) {
      let qh = ld_u8(base + 32u + 2u * ib + (l >> 1u));
      let high = select(qh << 8u, qh << 4u, (l & 1u) != 0u);
      let index = ld_u8(base + 4u * ib + l) | (high & 0x700u);
      let delta = select(0.125, -0.125, (qh & select(0x08u, 0x80u, (l & 1u) != 0u)) != 0u);
      iq1_put8(32u * ib + 8u * l, iq1s_point(index), select(dl2, dl1, l < 2u), delta);
    }
  }
}
