// Cooperative matvec (the decode case, a few tokens): MC_LANES invocations share each W
// block, each lane decoding its own aligned word(s) of it (matmul_coop_<type>.wgsl gives
// mc_load_x and mc_lane_dot), with the lane's x values held in registers across the
// ROWS_PER_WG rows of the workgroup. A workgroup computes ROWS_PER_WG rows of one token
// (TOKENS_PER_WG is 1; the dispatch's y is the token). Defines what matmul_sg.wgsl and
// matmul_wg.wgsl's entry points use (mm_p, mm_acc, mm_accumulate, mm_store), so the two
// reductions are the current kernel's, unchanged.
//
// Summation order, for one output: each invocation adds, per block it visits (blocks
// lid / MC_LANES, + WG_SIZE / MC_LANES, ...), its lane's f32 partial dot product (values in
// order) to its accumulator; then the reduction. Fixed by the configuration alone.
// Decoded values are the codec's (same operations, no_fuse where the codec has it).
//
// Layouts, params and bindings: as kernels/matmul.wgsl (W padded by one word: mc_word
// reads the word after an unaligned one).

struct MatmulParams {
  rows: u32,
  blocks: u32,
  row_bytes: u32,
  n: u32,
  cols: u32,
  y_stride: u32,
  zero: u32,
  _pad: u32,
}

override WG_SIZE: u32 = 64u;      // a power of two, a multiple of MC_LANES
override ROWS_PER_WG: u32 = 4u;   // <= MM_MAX_ACC
override TOKENS_PER_WG: u32 = 1u; // always 1 here

const MM_MAX_ACC: u32 = 16u;

@group(0) @binding(0) var<storage, read> mm_w: array<u32>;
@group(0) @binding(1) var<storage, read> mm_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> mm_y: array<f32>;
@group(0) @binding(3) var<uniform> mm_p: MatmulParams;

var<private> mm_acc: array<f32, MM_MAX_ACC>;
// The lane's x values for the current block (mc_load_x fills, mc_lane_dot reads).
var<private> mc_x: array<f32, MC_VALS>;

// The 4 bytes at byte `off` of W, any alignment: branch-free funnel shift of two words.
fn mc_word(off: u32) -> u32 {
  let i = off >> 2u;
  let sh = (off & 3u) * 8u;
  let lo = mm_w[i];
  let hi = mm_w[i + 1u];
  return select((lo >> sh) | (hi << (32u - sh)), lo, sh == 0u);
}

// The u16 at an even byte offset (never straddles a word).
fn mc_u16(off: u32) -> u32 {
  return (mm_w[off >> 2u] >> ((off & 2u) * 8u)) & 0xffffu;
}

fn mc_u8(off: u32) -> u32 {
  return (mm_w[off >> 2u] >> ((off & 3u) * 8u)) & 0xffu;
}

// Byte b of word w.
fn mc_byte(w: u32, b: u32) -> u32 {
  return (w >> (8u * b)) & 0xffu;
}

// Q4_K / Q5_K: get_scale_min_k4 of sub-block j from the 12 scale bytes (words s).
fn mc_scale_min_k4(j: u32, s: vec3<u32>) -> vec2<u32> {
  if (j < 4u) {
    return vec2<u32>(mc_byte(s[j >> 2u], j & 3u) & 63u, mc_byte(s[(j + 4u) >> 2u], (j + 4u) & 3u) & 63u);
  }
  let b = mc_byte(s[(j + 4u) >> 2u], (j + 4u) & 3u);
  let lo = mc_byte(s[(j - 4u) >> 2u], (j - 4u) & 3u);
  let hi = mc_byte(s[j >> 2u], j & 3u);
  return vec2<u32>((b & 0xfu) | ((lo >> 6u) << 4u), (b >> 4u) | ((hi >> 6u) << 4u));
}

fn mm_accumulate(row0: u32, tok0: u32, lid: u32) {
  for (var q = 0u; q < MM_MAX_ACC; q = q + 1u) {
    mm_acc[q] = 0.0;
  }
  if (tok0 >= mm_p.n) {
    return;
  }
  let n_rows = min(ROWS_PER_WG, mm_p.rows - min(row0, mm_p.rows));
  let lane = lid % MC_LANES;
  let slots = WG_SIZE / MC_LANES;
  for (var k = lid / MC_LANES; k < mm_p.blocks; k = k + slots) {
    mc_load_x(tok0 * mm_p.cols + k * BLOCK_SIZE, lane);
    for (var r = 0u; r < n_rows; r = r + 1u) {
      mm_acc[r] = mm_acc[r] + mc_lane_dot((row0 + r) * mm_p.row_bytes + k * BLOCK_BYTES, lane);
    }
  }
}

fn mm_store(row0: u32, tok0: u32, q: u32, v: f32) {
  let row = row0 + q / TOKENS_PER_WG;
  let tok = tok0 + q % TOKENS_PER_WG;
  if (row < mm_p.rows && tok < mm_p.n) {
    mm_y[tok * mm_p.y_stride + row] = v;
  }
}
