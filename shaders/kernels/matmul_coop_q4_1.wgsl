// Q4_1 lanes of kernels/matmul_coop.wgsl: 4 lanes per 20-byte block (blocks and rows are
// word-aligned), lane l reads qs bytes 4l..4l+3: low nibbles values 4l + i, high nibbles
// 16 + 4l + i. Values as codecs/q4_1.wgsl: q * d + m (q * d exact, so fused or not alike).
// BLOCK_SIZE, the lanes and their x values: matmul_coop_nibbles.wgsl.
const BLOCK_BYTES: u32 = 20u;

fn mc_lane_dot(off: u32, lane: u32) -> f32 {
  let dm = mm_w[off >> 2u];
  let d = f16_bits_to_f32(dm & 0xffffu);
  let m = f16_bits_to_f32(dm >> 16u);
  let q = mm_w[(off >> 2u) + 1u + lane];
  var s = 0.0;
  for (var i = 0u; i < 4u; i = i + 1u) {
    let b = mc_byte(q, i);
    s = s + (f32(b & 0xfu) * d + m) * mc_x[i];
    s = s + (f32(b >> 4u) * d + m) * mc_x[i + 4u];
  }
  return s;
}
