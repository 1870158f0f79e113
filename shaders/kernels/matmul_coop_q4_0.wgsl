// Q4_0 lanes of kernels/matmul_coop.wgsl: 4 lanes per 18-byte block, lane l reads qs
// bytes 4l..4l+3 (one word; blocks start on even bytes, so it may need the funnel shift):
// low nibbles are values 4l..4l+3, high nibbles values 16 + 4l..16 + 4l + 3.
// Values as codecs/q4_0.wgsl: (q - 8) * d, exact.
const BLOCK_SIZE: u32 = 32u;
const BLOCK_BYTES: u32 = 18u;
const MC_LANES: u32 = 4u;
const MC_VALS: u32 = 8u;

fn mc_load_x(xo: u32, lane: u32) {
  for (var i = 0u; i < 4u; i = i + 1u) {
    mc_x[i] = mm_x[xo + 4u * lane + i];
    mc_x[i + 4u] = mm_x[xo + 16u + 4u * lane + i];
  }
}

fn mc_lane_dot(off: u32, lane: u32) -> f32 {
  let d = f16_bits_to_f32(mc_u16(off));
  let q = mc_word(off + 2u + 4u * lane);
  var s = 0.0;
  for (var i = 0u; i < 4u; i = i + 1u) {
    let b = mc_byte(q, i);
    s = s + (f32(i32(b & 0xfu) - 8) * d) * mc_x[i];
    s = s + (f32(i32(b >> 4u) - 8) * d) * mc_x[i + 4u];
  }
  return s;
}
