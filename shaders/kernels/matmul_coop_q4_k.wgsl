// Q4_K lanes of kernels/matmul_coop.wgsl: 16 lanes per 144-byte super-block (word-aligned),
// lane l = 4c + p reads qs bytes 32c + 8p .. + 7 (two words): low nibbles are values
// 64c + 8p + i of sub-block 2c, high nibbles values 64c + 32 + 8p + i of sub-block 2c + 1.
// Values as codecs/q4_k.wgsl (kq_dequantize_k4): no_fuse(d * sc * q) - dmin * m.
const BLOCK_SIZE: u32 = 256u;
const BLOCK_BYTES: u32 = 144u;
const MC_LANES: u32 = 16u;
const MC_VALS: u32 = 16u;

fn mc_load_x(xo: u32, lane: u32) {
  let base = xo + 64u * (lane >> 2u) + 8u * (lane & 3u);
  for (var i = 0u; i < 8u; i = i + 1u) {
    mc_x[i] = mm_x[base + i];
    mc_x[i + 8u] = mm_x[base + 32u + i];
  }
}

fn mc_lane_dot(off: u32, lane: u32) -> f32 {
  let dm = mm_w[off >> 2u];
  let d = f16_bits_to_f32(dm & 0xffffu);
  let dmin = f16_bits_to_f32(dm >> 16u);
  let s = vec3<u32>(mm_w[(off >> 2u) + 1u], mm_w[(off >> 2u) + 2u], mm_w[(off >> 2u) + 3u]);
  let c = lane >> 2u;
  let sm0 = mc_scale_min_k4(2u * c, s);
  let sm1 = mc_scale_min_k4(2u * c + 1u, s);
  let dl0 = d * f32(sm0.x);
  let ml0 = dmin * f32(sm0.y);
  let dl1 = d * f32(sm1.x);
  let ml1 = dmin * f32(sm1.y);
  let qo = (off + 16u + 32u * c + 8u * (lane & 3u)) >> 2u;
  var acc = 0.0;
  for (var w = 0u; w < 2u; w = w + 1u) {
    let q = mm_w[qo + w];
    for (var i = 0u; i < 4u; i = i + 1u) {
      let b = mc_byte(q, i);
      let v0 = no_fuse(dl0 * f32(b & 0xfu)) - ml0;
      let v1 = no_fuse(dl1 * f32(b >> 4u)) - ml1;
      acc = acc + v0 * mc_x[4u * w + i];
      acc = acc + v1 * mc_x[8u + 4u * w + i];
    }
  }
  return acc;
}
