// IQ3_S: super-blocks of 256, 8 sub-blocks of 32, groups of 4 on the 512-point iq3s grid
// with all signs stored (src/quant/codecs/iq3.ts; ggml dequantize_row_iq3_s). Decode only
// (no quantize_block): the encoder's neighbour search runs on the CPU (src/gpu/quantize.ts).
// Byte map (110 bytes): [0..2) d f16 | [2..66) low 8 bits of each grid index | [66..74) qh:
// byte ib, bit k = index bit 8 of quad k | [74..106) signs, a byte per 8 values |
// [106..110) scales: nibble ib (low first). x = d * (1 + 2s) * grid * sign.
const BLOCK_SIZE: u32 = 256u;
const BLOCK_BYTES: u32 = 110u;

fn dequantize_block(base: u32) {
  let h = ld_u16(base);
  let d = iq_scale(h);
  for (var ib = 0u; ib < 8u; ib = ib + 1u) {
    let sc = ld_u8(base + 106u + (ib >> 1u));
    let db = d * f32(1u + 2u * select(sc & 0xfu, sc >> 4u, (ib & 1u) != 0u));
    let qh = ld_u8(base + 66u + ib);
    for (var l = 0u; l < 4u; l = l + 1u) {
      let qs = base + 2u + 8u * ib + 2u * l;
      let signs = ld_u8(base + 74u + 4u * ib + l);
      let o = 32u * ib + 8u * l;
      iq_put4(o, iq3s_point(ld_u8(qs) | ((qh << (8u - 2u * l)) & 256u)), db, signs, 0u);
      iq_put4(o + 4u, iq3s_point(ld_u8(qs + 1u) | ((qh << (7u - 2u * l)) & 256u)), db, signs, 4u);
    }
  }
  if (iq_is_nan_f16(h)) {
    iq_nan_with_signs(h);
  }
}
