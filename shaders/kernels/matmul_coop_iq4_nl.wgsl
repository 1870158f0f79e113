// IQ4_NL lanes of kernels/matmul_coop.wgsl (composed with the codec libraries, for
// lib/iq4.wgsl's grid): 4 lanes per 18-byte block, as matmul_coop_q4_0.wgsl's lanes, the
// nibble an index into the non-linear grid. Values as codecs/iq4_nl.wgsl: d * grid[q], exact.
// BLOCK_SIZE, the lanes and their x values: matmul_coop_nibbles.wgsl.
const BLOCK_BYTES: u32 = 18u;

fn mc_lane_dot(off: u32, lane: u32) -> f32 {
  let d = f16_bits_to_f32(mc_u16(off));
  let q = mc_word(off + 2u + 4u * lane);
  var s = 0.0;
  for (var i = 0u; i < 4u; i = i + 1u) {
    let b = mc_byte(q, i);
    s = s + (d * iq4_grid(b & 0xfu)) * mc_x[i];
    s = s + (d * iq4_grid(b >> 4u)) * mc_x[i + 4u];
  }
  return s;
}
