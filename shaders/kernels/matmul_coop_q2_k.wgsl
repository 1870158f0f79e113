// Q2_K lanes of kernels/matmul_coop.wgsl: 16 lanes per 84-byte super-block (word-aligned),
// lane t = 8h + m takes l = 4m..4m+3 of half h: one qs word at 16 + 32h + l, bits 2s..2s+1
// of its bytes the q of values 128h + 32s + l (s = 0..3); sub-block 8h + 2s + (l >= 16).
// Values as codecs/q2_k.wgsl: no_fuse(d * sc * q) - dmin * m.
const BLOCK_SIZE: u32 = 256u;
const BLOCK_BYTES: u32 = 84u;
const MC_LANES: u32 = 16u;
const MC_VALS: u32 = 16u;

fn mc_load_x(xo: u32, lane: u32) {
  let base = xo + 128u * (lane >> 3u) + 4u * (lane & 7u);
  for (var s = 0u; s < 4u; s = s + 1u) {
    for (var i = 0u; i < 4u; i = i + 1u) {
      mc_x[4u * s + i] = mm_x[base + 32u * s + i];
    }
  }
}

fn mc_lane_dot(off: u32, lane: u32) -> f32 {
  let w0 = off >> 2u;
  let h = lane >> 3u;
  let l = 4u * (lane & 7u);
  let dm = mm_w[w0 + 20u]; // d, dmin at byte 80
  let d = f16_bits_to_f32(dm & 0xffffu);
  let dmin = f16_bits_to_f32(dm >> 16u);
  let q = mm_w[w0 + 4u + 8u * h + (l >> 2u)];
  let j0 = 8u * h + select(0u, 1u, l >= 16u);
  var acc = 0.0;
  for (var s = 0u; s < 4u; s = s + 1u) {
    let j = j0 + 2u * s;
    let sc = mc_byte(mm_w[w0 + (j >> 2u)], j & 3u);
    let dl = d * f32(sc & 0xfu);
    let ml = dmin * f32(sc >> 4u);
    for (var i = 0u; i < 4u; i = i + 1u) {
      let v = no_fuse(dl * f32((mc_byte(q, i) >> (2u * s)) & 3u)) - ml;
      acc = acc + v * mc_x[4u * s + i];
    }
  }
  return acc;
}
