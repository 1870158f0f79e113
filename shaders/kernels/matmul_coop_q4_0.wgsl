// Q4_0 lanes of kernels/matmul_coop.wgsl: 4 lanes per 18-byte block, lane l reads qs
// bytes 4l..4l+3 (one word; blocks start on even bytes, so it may need the funnel shift):
// low nibbles are values 4l..4l+3, high nibbles values 16 + 4l..16 + 4l + 3.
// Values as codecs/q4_0.wgsl: (q - 8) * d, exact.
// BLOCK_SIZE, the lanes and their x values: matmul_coop_nibbles.wgsl.
const BLOCK_BYTES: u32 = 18u;

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
