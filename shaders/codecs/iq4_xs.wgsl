// IQ4_XS: super-blocks of 256 = 8 sub-blocks of 32 with 6-bit scales, 4-bit indices into
// kvalues_iq4nl (ggml quantize_iq4_xs without importance weights, dequantize_row_iq4_xs;
// src/quant/codecs/iquants.ts). The sub-block search is lib/iq4.wgsl.
// Byte map (136 bytes): [0..2) d f16 | [2..4) scales_h u16: bits 2ib..2ib+1 = high 2 bits of
// ls[ib] | [4..8) scales_l: nibble ib (byte ib >> 1, low nibble first) = low 4 bits of ls[ib] |
// [8..136) qs: 16 bytes per sub-block as iq4_nl; x = d * (ls - 32) * kvalues_iq4nl[idx].
const BLOCK_SIZE: u32 = 256u;
const BLOCK_BYTES: u32 = 136u;

var<private> iq4xs_scales: array<f32, 8>;

fn quantize_block(base: u32) {
  var max_scale = 0.0;
  var amax_scale = 0u;
  for (var ib = 0u; ib < 8u; ib = ib + 1u) {
    let s = iq4_best_scale(32u * ib);
    iq4xs_scales[ib] = s;
    if (flt_lt(amax_scale, bitcast<u32>(s) & F32_ABS)) {
      amax_scale = bitcast<u32>(s) & F32_ABS;
      max_scale = s;
    }
  }
  // The largest sub-block scale maps to -32: d = -max_scale / 32, exactly a product by 2^-5.
  let d = sf_mul(sf_neg(max_scale), 0.03125);
  st_u16(base, f32_to_f16_bits(d));
  let id = select(0.0, div_rn(1.0, d), is_nonzero(d));
  var scales_h = 0u;
  var scales_l = 0u;
  for (var ib = 0u; ib < 8u; ib = ib + 1u) {
    let l = clamp(nearest_int(sf_mul(id, iq4xs_scales[ib])), -32, 31);
    let dl = sf_mul(d, f32(l));
    iq4_pack(32u * ib, select(0.0, div_rn(1.0, dl), is_nonzero(dl)), base + 8u + 16u * ib);
    let biased = u32(l + 32);
    scales_l = scales_l | ((biased & 0xfu) << (4u * ib));
    scales_h = scales_h | ((biased >> 4u) << (2u * ib));
  }
  st_u16(base + 2u, scales_h);
  st_u32(base + 4u, scales_l);
}

fn dequantize_block(base: u32) {
  let d = f16_bits_to_f32(ld_u16(base));
  let scales_h = ld_u16(base + 2u);
  let scales_l = ld_u32(base + 4u);
  for (var ib = 0u; ib < 8u; ib = ib + 1u) {
    let ls = ((scales_l >> (4u * ib)) & 0xfu) | (((scales_h >> (2u * ib)) & 3u) << 4u);
    // d * (ls - 32): an 11-bit by 6-bit product, exact.
    iq4_unpack(base + 8u + 16u * ib, d * f32(i32(ls) - 32), 32u * ib);
  }
}
