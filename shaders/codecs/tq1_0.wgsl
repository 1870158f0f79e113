// TQ1_0: super-blocks of 256 ternary weights, 5 trits per byte, f16 scale = the absmax
// (ggml quantize_row_tq1_0_ref, dequantize_row_tq1_0; src/quant/codecs/ternary.ts).
// Trit t = lroundf(x / d) + 1 in {0, 1, 2}; x = (t - 1) * d.
// Byte map (54 bytes): [0..32) byte m: trits of weights m, m+32, .., m+128, first the most
// significant | [32..48) byte m: weights 160+m, 160+m+16, .., 160+m+64 | [48..52) byte j:
// weights 240+j, 244+j, 248+j, 252+j, then a 0 trit | [52..54) d f16. A byte holding the
// base-3 number q stores ceil(q * 256 / 243); trit n reads back as ((b * 3^n) & 255) * 3 >> 8.
const BLOCK_SIZE: u32 = 256u;
const BLOCK_BYTES: u32 = 54u;

// `count` trits of weights off, off+stride, .. as a byte (lib/ternary.wgsl tq_trit).
fn tq1_pack(off: u32, stride: u32, count: u32, id: f32) -> u32 {
  var q = 0u;
  for (var n = 0u; n < 5u; n = n + 1u) {
    q = q * 3u;
    if (n < count) {
      q = q + tq_trit(off + n * stride, id);
    }
  }
  return (q * 256u + 242u) / 243u;
}

fn tq1_trit(b: u32, n: u32) -> f32 {
  let pow3 = array<u32, 5>(1u, 3u, 9u, 27u, 81u);
  return f32(i32((((b * pow3[n]) & 0xffu) * 3u) >> 8u) - 1);
}

fn quantize_block(base: u32) {
  let amax = tq_absmax();
  let id = tq_inverse(bitcast<f32>(amax));
  st_u16(base + 52u, f32_to_f16_bits(bitcast<f32>(amax)));
  for (var m = 0u; m < 32u; m = m + 1u) {
    st_u8(base + m, tq1_pack(m, 32u, 5u, id));
  }
  for (var m = 0u; m < 16u; m = m + 1u) {
    st_u8(base + 32u + m, tq1_pack(160u + m, 16u, 5u, id));
  }
  for (var j = 0u; j < 4u; j = j + 1u) {
    st_u8(base + 48u + j, tq1_pack(240u + j, 4u, 4u, id));
  }
}

fn dequantize_block(base: u32) {
  let d = f16_bits_to_f32(ld_u16(base + 52u));
  for (var n = 0u; n < 5u; n = n + 1u) {
    for (var m = 0u; m < 32u; m = m + 1u) {
      set_val(32u * n + m, tq1_trit(ld_u8(base + m), n) * d);
    }
    for (var m = 0u; m < 16u; m = m + 1u) {
      set_val(160u + 16u * n + m, tq1_trit(ld_u8(base + 32u + m), n) * d);
    }
  }
  for (var n = 0u; n < 4u; n = n + 1u) {
    for (var j = 0u; j < 4u; j = j + 1u) {
      set_val(240u + 4u * n + j, tq1_trit(ld_u8(base + 48u + j), n) * d);
    }
  }
}
