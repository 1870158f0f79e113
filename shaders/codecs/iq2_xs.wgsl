// IQ2_XS: super-blocks of 256, 16 sub-blocks of 16, groups of 8 on the 512-point iq2xs grid
// (src/quant/codecs/iq2.ts; ggml dequantize_row_iq2_xs). Decode only (no quantize_block):
// the encoder's neighbour search runs on the CPU (src/gpu/quantize.ts).
// Byte map (74 bytes): [0..2) d f16 | [2..66) u16 per group: grid index (9 bits) | 7 sign
// bits << 9 | [66..74) scales: byte ib, low nibble for groups 0-1, high for 2-3.
const BLOCK_SIZE: u32 = 256u;
const BLOCK_BYTES: u32 = 74u;

fn dequantize_block(base: u32) {
  let h = ld_u16(base);
  let d = iq_scale(h);
  for (var ib = 0u; ib < 8u; ib = ib + 1u) {
    let sc = ld_u8(base + 66u + ib);
    let db0 = (d * (0.5 + f32(sc & 0xfu))) * 0.25;
    let db1 = (d * (0.5 + f32(sc >> 4u))) * 0.25;
    for (var l = 0u; l < 4u; l = l + 1u) {
      let q = ld_u16(base + 2u + 2u * (4u * ib + l));
      iq_put8(32u * ib + 8u * l, iq2xs_point(q & 511u), select(db1, db0, l < 2u), iq_ksigns(q >> 9u));
    }
  }
  if (iq_is_nan_f16(h)) {
    iq_nan_with_signs(h);
  }
}
