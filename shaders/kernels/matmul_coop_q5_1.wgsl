// Q5_1 lanes of kernels/matmul_coop.wgsl: 4 lanes per 24-byte block (word-aligned), lane l
// reads qs bytes 4l..4l+3 and the block's qh word: values 4l + i and 16 + 4l + i, as in
// matmul_coop_q5_0.wgsl. Values as codecs/q5_1.wgsl: q * d + m (q * d exact).
// BLOCK_SIZE, the lanes and their x values: matmul_coop_nibbles.wgsl.
const BLOCK_BYTES: u32 = 24u;

fn mc_lane_dot(off: u32, lane: u32) -> f32 {
  let w0 = off >> 2u;
  let dm = mm_w[w0];
  let d = f16_bits_to_f32(dm & 0xffffu);
  let m = f16_bits_to_f32(dm >> 16u);
  let qh = mm_w[w0 + 1u];
  let q = mm_w[w0 + 2u + lane];
  var s = 0.0;
  for (var i = 0u; i < 4u; i = i + 1u) {
    let j = 4u * lane + i;
    let b = mc_byte(q, i);
    let h0 = ((qh >> j) << 4u) & 0x10u;
    let h1 = (qh >> (j + 12u)) & 0x10u;
    s = s + (f32((b & 0xfu) | h0) * d + m) * mc_x[i];
    s = s + (f32((b >> 4u) | h1) * d + m) * mc_x[i + 4u];
  }
  return s;
}
