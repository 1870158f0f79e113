// Quantized matrix product Y = W X, W read in its packed blocks (the codec's byte map) as
// u32 words and decoded with the codec's own dequantize_block (lib/bytes.wgsl contract),
// so every type with a codec gets a matmul. f32 accumulation. Used for the decode case
// (matvec: one token) and the prefill case (many tokens); src/gpu/matmul.ts plans it.
//
// Work split: a workgroup computes ROWS_PER_WG rows x TOKENS_PER_WG tokens. Its invocations
// stride over the blocks of those rows (invocation i takes blocks i, i + WG_SIZE, ...):
// each W block is decoded once into `vals` and used for every token of the tile (register
// blocking over tokens, no shared-memory tiles: software adapters punish barriers).
// Summation order, for one output: each invocation adds, per block, the block's f32 dot
// product (values in order) to its accumulator; the WG_SIZE accumulators are then reduced
// by matmul_wg.wgsl (a tree over workgroup memory) or matmul_sg.wgsl (subgroupAdd, then
// the subgroups' sums in subgroup order).
//
// Layouts: W is `rows` rows of `blocks` blocks, rows back to back (row r starts at byte
// r * row_bytes, which need not be word-aligned: blocks of 18, 22, 34... bytes). X is n
// vectors of `cols` f32 (token t at t * cols), Y is n vectors of `y_stride` f32 (token t,
// row r at t * y_stride + r): token-major, as ggml and PyTorch's x @ W^T have them.

struct MatmulParams {
  rows: u32,       // rows of W in this chunk
  blocks: u32,     // blocks per row = cols / BLOCK_SIZE
  row_bytes: u32,  // blocks * BLOCK_BYTES
  n: u32,          // tokens in this chunk
  cols: u32,       // values per row = stride of the X vectors
  y_stride: u32,   // stride of the Y vectors (rows of this chunk)
  zero: u32,       // always 0: feeds fp_barrier (lib/rounding.wgsl)
  _pad: u32,
}

override WG_SIZE: u32 = 64u;      // a power of two (the tree reduction halves it)
override ROWS_PER_WG: u32 = 1u;
override TOKENS_PER_WG: u32 = 1u; // ROWS_PER_WG * TOKENS_PER_WG <= MM_MAX_ACC

const MM_MAX_ACC: u32 = 16u;
// Words one block spans once realigned to byte 0 of grp (grp holds GROUP_WORDS >= these).
const MM_BLOCK_WORDS: u32 = (BLOCK_BYTES + 3u) / 4u;

@group(0) @binding(0) var<storage, read> mm_w: array<u32>;  // the blocks, padded by one word
@group(0) @binding(1) var<storage, read> mm_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> mm_y: array<f32>;
@group(0) @binding(3) var<uniform> mm_p: MatmulParams;

// This invocation's partial sums, [row in tile][token in tile].
var<private> mm_acc: array<f32, MM_MAX_ACC>;

// Copy the block at byte `off` of w to byte 0 of grp, funnel-shifting when `off` is not
// word-aligned (the word after the block exists: the host pads w by one word).
fn mm_load_block(off: u32) {
  let i0 = off >> 2u;
  let sh = (off & 3u) * 8u;
  if (sh == 0u) {
    for (var i = 0u; i < MM_BLOCK_WORDS; i = i + 1u) {
      grp[i] = mm_w[i0 + i];
    }
  } else {
    for (var i = 0u; i < MM_BLOCK_WORDS; i = i + 1u) {
      grp[i] = (mm_w[i0 + i] >> sh) | (mm_w[i0 + i + 1u] << (32u - sh));
    }
  }
}

fn mm_accumulate(row0: u32, tok0: u32, lid: u32) {
  for (var q = 0u; q < MM_MAX_ACC; q = q + 1u) {
    mm_acc[q] = 0.0;
  }
  let n_rows = min(ROWS_PER_WG, mm_p.rows - min(row0, mm_p.rows));
  let n_tok = min(TOKENS_PER_WG, mm_p.n - min(tok0, mm_p.n));
  for (var k = lid; k < mm_p.blocks; k = k + WG_SIZE) {
    for (var r = 0u; r < n_rows; r = r + 1u) {
      mm_load_block((row0 + r) * mm_p.row_bytes + k * BLOCK_BYTES);
      dequantize_block(0u);
      for (var t = 0u; t < n_tok; t = t + 1u) {
        let xo = (tok0 + t) * mm_p.cols + k * BLOCK_SIZE;
        var s = 0.0;
        for (var i = 0u; i < BLOCK_SIZE; i = i + 1u) {
          s = s + bitcast<f32>(vals[i]) * mm_x[xo + i];
        }
        mm_acc[r * TOKENS_PER_WG + t] = mm_acc[r * TOKENS_PER_WG + t] + s;
      }
    }
  }
}

// Write output q (= row in tile * TOKENS_PER_WG + token in tile) of the tile.
fn mm_store(row0: u32, tok0: u32, q: u32, v: f32) {
  let row = row0 + q / TOKENS_PER_WG;
  let tok = tok0 + q % TOKENS_PER_WG;
  if (row < mm_p.rows && tok < mm_p.n) {
    mm_y[tok * mm_p.y_stride + row] = v;
  }
}
