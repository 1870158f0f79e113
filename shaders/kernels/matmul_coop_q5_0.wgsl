// Q5_0 lanes of kernels/matmul_coop.wgsl: 4 lanes per 22-byte block (starts on an even
// byte), lane l reads qs bytes 4l..4l+3 and the block's qh word (funnel-shifted where
// unaligned): values 4l + i (bit 4 from qh bit 4l + i) and 16 + 4l + i (qh bit 16 + 4l + i).
// Values as codecs/q5_0.wgsl: (q - 16) * d, exact.
// BLOCK_SIZE, the lanes and their x values: matmul_coop_nibbles.wgsl.
const BLOCK_BYTES: u32 = 22u;

fn mc_lane_dot(off: u32, lane: u32) -> f32 {
  let d = f16_bits_to_f32(mc_u16(off));
  let qh = mc_word(off + 2u);
  let q = mc_word(off + 6u + 4u * lane);
  var s = 0.0;
  for (var i = 0u; i < 4u; i = i + 1u) {
    let j = 4u * lane + i;
    let b = mc_byte(q, i);
    let h0 = ((qh >> j) << 4u) & 0x10u;
    let h1 = (qh >> (j + 12u)) & 0x10u;
    s = s + (f32(i32((b & 0xfu) | h0) - 16) * d) * mc_x[i];
    s = s + (f32(i32((b >> 4u) | h1) - 16) * d) * mc_x[i + 4u];
  }
  return s;
}
