// IQ4_NL lanes of kernels/matmul_coop.wgsl (composed with the codec libraries, for
// lib/iq4.wgsl's grid): 4 lanes per 18-byte block, as matmul_coop_q4_0.wgsl's lanes, the
// nibble an index into the non-linear grid. Values as codecs/iq4_nl.wgsl: d * grid[q], exact.
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
    s = s + (d * iq4_grid(b & 0xfu)) * mc_x[i];
    s = s + (d * iq4_grid(b >> 4u)) * mc_x[i + 4u];
  }
  return s;
}
