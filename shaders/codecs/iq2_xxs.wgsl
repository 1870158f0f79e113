// IQ2_XXS: super-blocks of 256, 8 sub-blocks of 32, groups of 8 on the 256-point iq2xxs grid
// (src/quant/codecs/iq2.ts; ggml dequantize_row_iq2_xxs). Decode only (no quantize_block):
// the encoder's neighbour search runs on the CPU (src/gpu/quantize.ts).
// Byte map (66 bytes): [0..2) d f16 | [2..66) per sub-block two u32: grid indices (byte l =
// group l), then 4 x 7 sign bits (group l at bit 7l) and the 4-bit scale s at bits 28..31.
// x = d * (0.5 + s) * 0.25 * grid * sign.
const BLOCK_SIZE: u32 = 256u;
const BLOCK_BYTES: u32 = 66u;

fn dequantize_block(base: u32) {
  let h = ld_u16(base);
  let d = iq_scale(h);
  for (var ib = 0u; ib < 8u; ib = ib + 1u) {
    let q = base + 2u + 8u * ib;
    let aux = ld_u32(q + 4u);
    let db = (d * (0.5 + f32(aux >> 28u))) * 0.25;
    for (var l = 0u; l < 4u; l = l + 1u) {
      iq_put8(32u * ib + 8u * l, iq2xxs_point(ld_u8(q + l)), db, iq_ksigns((aux >> (7u * l)) & 127u));
    }
  }
  if (iq_is_nan_f16(h)) {
    iq_nan_with_signs(h);
  }
}
