// TQ2_0: super-blocks of 256 ternary weights, 2 bits each, f16 scale = the absmax
// (ggml quantize_row_tq2_0_ref, dequantize_row_tq2_0; src/quant/codecs/ternary.ts).
// Trit t = lroundf(x / d) + 1 in {0, 1, 2}; x = (t - 1) * d.
// Byte map (66 bytes): [0..64) two halves of 32 bytes: in half h, byte m holds weight
// 128h + m + 32n in bits 2n..2n+1 (n = 0..3) | [64..66) d f16.
const BLOCK_SIZE: u32 = 256u;
const BLOCK_BYTES: u32 = 66u;

fn quantize_block(base: u32) {
  let amax = tq_absmax();
  let id = tq_inverse(bitcast<f32>(amax));
  st_u16(base + 64u, f32_to_f16_bits(bitcast<f32>(amax)));
  for (var i = 0u; i < 64u; i = i + 1u) {
    let first = 128u * (i >> 5u) + (i & 31u);
    var q = 0u;
    for (var n = 0u; n < 4u; n = n + 1u) {
      q = q | (tq_trit(first + 32u * n, id) << (2u * n));
    }
    st_u8(base + i, q);
  }
}

fn dequantize_block(base: u32) {
  let d = f16_bits_to_f32(ld_u16(base + 64u));
  for (var i = 0u; i < 64u; i = i + 1u) {
    let b = ld_u8(base + i);
    let first = 128u * (i >> 5u) + (i & 31u);
    for (var n = 0u; n < 4u; n = n + 1u) {
      set_val(first + 32u * n, f32(i32((b >> (2u * n)) & 3u) - 1) * d);
    }
  }
}
