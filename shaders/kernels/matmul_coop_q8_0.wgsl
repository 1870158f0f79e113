// Q8_0 lanes of kernels/matmul_coop.wgsl: 4 lanes per 34-byte block, lane l reads qs
// bytes 8l..8l+7 (two words, funnel-shifted where the block starts off a word), values
// 8l..8l+7. Values as codecs/q8_0.wgsl: q * d, exact.
const BLOCK_SIZE: u32 = 32u;
const BLOCK_BYTES: u32 = 34u;
const MC_LANES: u32 = 4u;
const MC_VALS: u32 = 8u;

fn mc_load_x(xo: u32, lane: u32) {
  for (var i = 0u; i < 8u; i = i + 1u) {
    mc_x[i] = mm_x[xo + 8u * lane + i];
  }
}

fn mc_lane_dot(off: u32, lane: u32) -> f32 {
  let d = f16_bits_to_f32(mc_u16(off));
  var s = 0.0;
  for (var w = 0u; w < 2u; w = w + 1u) {
    let q = mc_word(off + 2u + 8u * lane + 4u * w);
    for (var i = 0u; i < 4u; i = i + 1u) {
      let v = f32((i32(mc_byte(q, i)) << 24u) >> 24u) * d;
      s = s + v * mc_x[4u * w + i];
    }
  }
  return s;
}
