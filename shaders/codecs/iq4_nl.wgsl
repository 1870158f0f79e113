// IQ4_NL: blocks of 32, 4-bit indices into the non-linear grid kvalues_iq4nl times an f16
// scale (ggml quantize_iq4_nl without importance weights, dequantize_row_iq4_nl;
// src/quant/codecs/iquants.ts). The search is lib/iq4.wgsl.
// Byte map (18 bytes): [0..2) d f16 | [2..18) qs: byte j = idx[j] | idx[j + 16] << 4;
// x = d * kvalues_iq4nl[idx].
const BLOCK_SIZE: u32 = 32u;
const BLOCK_BYTES: u32 = 18u;

fn quantize_block(base: u32) {
  let d = iq4_best_scale(0u);
  st_u16(base, f32_to_f16_bits(d));
  // The indices use the f32 scale, not the stored f16 one, as ggml does.
  iq4_pack(0u, select(0.0, div_rn(1.0, d), is_nonzero(d)), base + 2u);
}

fn dequantize_block(base: u32) {
  iq4_unpack(base + 2u, f16_bits_to_f32(ld_u16(base)), 0u);
}
