// Q6_K lanes of kernels/matmul_coop.wgsl: 16 lanes per 210-byte super-block (starts on an
// even byte), lane t = 8h + m takes l = 4m..4m+3 of half h: one word each of ql at
// 64h + l (s = 0 low nibbles, s = 2 high), ql at 64h + 32 + l (s = 1, 3) and qh at
// 128 + 32h + l (bits 2s, 2s + 1): values 128h + 32s + l for s = 0..3.
// Values as codecs/q6_k.wgsl: (d * sc) * (q - 32), one rounding.
const BLOCK_SIZE: u32 = 256u;
const BLOCK_BYTES: u32 = 210u;
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
  let h = lane >> 3u;
  let l = 4u * (lane & 7u);
  let d = f16_bits_to_f32(mc_u16(off + 208u));
  let ql0 = mc_word(off + 64u * h + l);
  let ql1 = mc_word(off + 64u * h + 32u + l);
  let qh = mc_word(off + 128u + 32u * h + l);
  // Sub-block 8h + 2s + (l >= 16): the int8 scale of values 128h + 32s + l.
  let j0 = off + 192u + 8u * h + select(0u, 1u, l >= 16u);
  var acc = 0.0;
  for (var s = 0u; s < 4u; s = s + 1u) {
    let dl = d * f32((i32(mc_u8(j0 + 2u * s)) << 24u) >> 24u);
    let ql = select(ql0, ql1, (s & 1u) == 1u) >> (4u * (s >> 1u));
    for (var i = 0u; i < 4u; i = i + 1u) {
      let q = i32((mc_byte(ql, i) & 0xfu) | (((mc_byte(qh, i) >> (2u * s)) & 3u) << 4u)) - 32;
      acc = acc + (dl * f32(q)) * mc_x[4u * s + i];
    }
  }
  return acc;
}
