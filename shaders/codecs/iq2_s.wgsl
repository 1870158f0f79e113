// IQ2_S: super-blocks of 256, 16 sub-blocks of 16, groups of 8 on the 1024-point iq2s grid
// with all 8 signs stored (src/quant/codecs/iq2.ts; ggml dequantize_row_iq2_s). Decode only
// (no quantize_block): the encoder's neighbour search runs on the CPU (src/gpu/quantize.ts).
// Byte map (82 bytes): [0..2) d f16 | [2..34) low 8 bits of each group's index | [34..66)
// signs, a byte per group | [66..74) qh: byte ib, bits 2l..2l+1 = index bits 8-9 of group
// l | [74..82) scales as iq2_xs.
const BLOCK_SIZE: u32 = 256u;
const BLOCK_BYTES: u32 = 82u;

fn dequantize_block(base: u32) {
  let h = ld_u16(base);
  let d = iq_scale(h);
  for (var ib = 0u; ib < 8u; ib = ib + 1u) {
    let sc = ld_u8(base + 74u + ib);
    let db0 = (d * (0.5 + f32(sc & 0xfu))) * 0.25;
    let db1 = (d * (0.5 + f32(sc >> 4u))) * 0.25;
    let qh = ld_u8(base + 66u + ib);
    for (var l = 0u; l < 4u; l = l + 1u) {
      let index = ld_u8(base + 2u + 4u * ib + l) | ((qh << (8u - 2u * l)) & 0x300u);
      iq_put8(32u * ib + 8u * l, iq2s_point(index), select(db1, db0, l < 2u), ld_u8(base + 34u + 4u * ib + l));
    }
  }
  if (iq_is_nan_f16(h)) {
    iq_nan_with_signs(h);
  }
}
