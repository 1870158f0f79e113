// Register-tiled prefill matmul (many tokens), composed after kernels/matmul.wgsl (its
// params, bindings, mm_load_block and mm_acc) and the type's codec. A workgroup computes
// a tile of ROWS_PER_WG rows x TOKENS_PER_WG tokens; it walks K in steps of STEP_BLOCKS
// blocks: the W tile of the step is decoded once (dequantize_block, one block per
// invocation) into workgroup memory, the X tile copied next to it, and each invocation
// multiplies its REG_ROWS x REG_TOKENS outputs from registers (rows tr, tr + TR, ...;
// tokens tt, tt + TT, ...; TR = ROWS_PER_WG / REG_ROWS, TT = TOKENS_PER_WG / REG_TOKENS,
// WG_SIZE = TR * TT). f32 throughout (f16 would miss the CPU reference's agreement).
//
// Summation order, for one output: per step, the products of its STEP_BLOCKS * BLOCK_SIZE
// columns in order into a partial sum; the steps' partial sums in order. Fixed by the
// configuration alone (not by the chunking of rows or tokens).

override STEP_BLOCKS: u32 = 2u;
override REG_ROWS: u32 = 2u;
override REG_TOKENS: u32 = 2u;

var<workgroup> mt_w: array<f32, ROWS_PER_WG * STEP_BLOCKS * BLOCK_SIZE>;
var<workgroup> mt_x: array<f32, TOKENS_PER_WG * STEP_BLOCKS * BLOCK_SIZE>;
// This invocation's partial sums of the current step, [i * REG_TOKENS + j].
var<private> mt_part: array<f32, MM_MAX_ACC>;

// Decode the step's W tile (ROWS_PER_WG rows x STEP_BLOCKS blocks from block k0). Rows
// past the last are decoded from the last row (their outputs are not stored): no branch
// that zero-fills, which would double the unrolled code. STEP_BLOCKS divides the blocks
// of a row (src/gpu/matmul.ts), so no step runs past the end of a row.
fn mt_load_w(row0: u32, k0: u32, lid: u32) {
  let bk = STEP_BLOCKS * BLOCK_SIZE;
  for (var j = lid; j < ROWS_PER_WG * STEP_BLOCKS; j = j + WG_SIZE) {
    let r = j / STEP_BLOCKS;
    let b = j % STEP_BLOCKS;
    let row = min(row0 + r, mm_p.rows - 1u);
    mm_load_block(row * mm_p.row_bytes + (k0 + b) * BLOCK_BYTES);
    dequantize_block(0u);
    let dst = r * bk + b * BLOCK_SIZE;
    for (var i = 0u; i < BLOCK_SIZE; i = i + 1u) {
      mt_w[dst + i] = bitcast<f32>(vals[i]);
    }
  }
}

// Copy the step's X tile (TOKENS_PER_WG tokens x the step's columns), zeros past the end.
fn mt_load_x(tok0: u32, k0: u32, lid: u32) {
  let bk = STEP_BLOCKS * BLOCK_SIZE;
  let c0 = k0 * BLOCK_SIZE;
  for (var j = lid; j < TOKENS_PER_WG * bk; j = j + WG_SIZE) {
    let t = tok0 + j / bk;
    let c = c0 + j % bk;
    var v = 0.0;
    if (t < mm_p.n && c < mm_p.cols) {
      v = mm_x[t * mm_p.cols + c];
    }
    mt_x[j] = v;
  }
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  fp_barrier = mm_p.zero;
  let row0 = wid.x * ROWS_PER_WG;
  let tok0 = wid.y * TOKENS_PER_WG;
  let tr_n = ROWS_PER_WG / REG_ROWS;
  let tt_n = TOKENS_PER_WG / REG_TOKENS;
  let tr = lid % tr_n;
  let tt = lid / tr_n;
  let bk = STEP_BLOCKS * BLOCK_SIZE;
  let nq = REG_ROWS * REG_TOKENS;
  for (var q = 0u; q < nq; q = q + 1u) {
    mm_acc[q] = 0.0;
  }
  var wr: array<f32, MM_MAX_ACC>;
  var xr: array<f32, MM_MAX_ACC>;
  let steps = (mm_p.blocks + STEP_BLOCKS - 1u) / STEP_BLOCKS;
  for (var s = 0u; s < steps; s = s + 1u) {
    mt_load_w(row0, s * STEP_BLOCKS, lid);
    mt_load_x(tok0, s * STEP_BLOCKS, lid);
    workgroupBarrier();
    for (var q = 0u; q < nq; q = q + 1u) {
      mt_part[q] = 0.0;
    }
    for (var c = 0u; c < bk; c = c + 1u) {
      for (var i = 0u; i < REG_ROWS; i = i + 1u) {
        wr[i] = mt_w[(tr + i * tr_n) * bk + c];
      }
      for (var j = 0u; j < REG_TOKENS; j = j + 1u) {
        xr[j] = mt_x[(tt + j * tt_n) * bk + c];
      }
      for (var i = 0u; i < REG_ROWS; i = i + 1u) {
        for (var j = 0u; j < REG_TOKENS; j = j + 1u) {
          mt_part[i * REG_TOKENS + j] = mt_part[i * REG_TOKENS + j] + wr[i] * xr[j];
        }
      }
    }
    for (var q = 0u; q < nq; q = q + 1u) {
      mm_acc[q] = mm_acc[q] + mt_part[q];
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < REG_ROWS; i = i + 1u) {
    for (var j = 0u; j < REG_TOKENS; j = j + 1u) {
      let row = row0 + tr + i * tr_n;
      let tok = tok0 + tt + j * tt_n;
      if (row < mm_p.rows && tok < mm_p.n) {
        mm_y[tok * mm_p.y_stride + row] = mm_acc[i * REG_TOKENS + j];
      }
    }
  }
}
