// IQ3_XXS: super-blocks of 256, 8 sub-blocks of 32, groups of 4 on the 256-point iq3xxs grid
// (src/quant/codecs/iq3.ts; ggml dequantize_row_iq3_xxs). Decode only (no quantize_block):
// the encoder's neighbour search runs on the CPU (src/gpu/quantize.ts).
// Byte map (98 bytes): [0..2) d f16 | [2..66) grid indices, a byte per 4 values | [66..98)
// u32 per sub-block: 4 x 7 sign bits (8 values each, at bit 7l), scale s at bits 28..31.
// x = d * (0.5 + s) * 0.5 * grid * sign.
const BLOCK_SIZE: u32 = 256u;
const BLOCK_BYTES: u32 = 98u;

fn dequantize_block(base: u32) {
  let h = ld_u16(base);
  let d = iq_scale(h);
  for (var ib = 0u; ib < 8u; ib = ib + 1u) {
    let aux = ld_u32(base + 66u + 4u * ib);
    let db = (d * (0.5 + f32(aux >> 28u))) * 0.5;
    for (var l = 0u; l < 4u; l = l + 1u) {
      let signs = iq_ksigns((aux >> (7u * l)) & 127u);
      let o = 32u * ib + 8u * l;
      let q = base + 2u + 8u * ib + 2u * l;
      iq_put4(o, iq3xxs_point(ld_u8(q)), db, signs, 0u);
      iq_put4(o + 4u, iq3xxs_point(ld_u8(q + 1u)), db, signs, 4u);
    }
  }
  if (iq_is_nan_f16(h)) {
    iq_nan_with_signs(h);
  }
}
