// The x side shared by the lanes of the 32-value blocks that store two values a byte,
// value j in the low nibble and 16 + j in the high one (q4_0, q4_1, q5_0, q5_1, iq4_nl):
// 4 lanes a block, lane l holding x[4l..4l+3] and x[16 + 4l..16 + 4l + 3] for the bytes
// 4l..4l+3 it reads. The type's own file gives BLOCK_BYTES and mc_lane_dot.
const BLOCK_SIZE: u32 = 32u;
const MC_LANES: u32 = 4u;
const MC_VALS: u32 = 8u;

fn mc_load_x(xo: u32, lane: u32) {
  for (var i = 0u; i < 4u; i = i + 1u) {
    mc_x[i] = mm_x[xo + 4u * lane + i];
    mc_x[i + 4u] = mm_x[xo + 16u + 4u * lane + i];
  }
}
