// GPTQ, one block of columns [col0, col1) of a chunk of rows (src/calibrate/gptq-gpu.ts;
// the CPU reference is src/calibrate/gptq.ts, after IST-DASLab/gptq gptq.py fasterquant).
// One invocation per row: rows are independent given U, and within a row the columns
// must go left to right (each column's error moves the later ones). Per column:
//   - when it opens a group: the group's params from the row's current values (open_group);
//   - q = its grid value, err = (w - q) / U[col, col];
//   - the rest of the block: w[j] -= err * U[col, j] (the lazy update of the columns after
//     the block is gptq_update.wgsl).
// f32 throughout, as PyTorch's GPTQ runs. The grid comes from a second file, composed
// before this one (src/calibrate/gptq-gpu.ts): gptq_grid_int_q4_0.wgsl (GPTQ's INT grids,
// Q4_0) or gptq_grid_q4_k.wgsl (Q4_K's super-blocks). It defines
//   fn open_group(r, col)         the params of the group that column col opens, for row r,
//                                 into grid[] (one entry per p.sub columns);
//   fn grid_code(x, g) -> f32     x's code with the entry g;
//   fn grid_value(code, g) -> f32 the code's value.
//
// Layouts: W and Q (the codes) are column-major within the chunk, w[c * rows + r], so that the
// invocations of a workgroup read neighbouring words at every step; err[k * rows + r] with
// k = col - col0; the U slab holds U's rows col0..col1-1 from column col0 on:
// u[k * u_stride + (j - col0)] = U[col0 + k, j].

struct BlockParams {
  rows: u32,     // rows in the chunk (a multiple of 4; padding rows are 0)
  cols: u32,
  col0: u32,
  col1: u32,
  group: u32,    // columns per group (open_group's)
  kind: u32,     // GRID_INT or GRID_Q4_0 (gptq_grid_int_q4_0.wgsl)
  maxq: u32,     // GRID_INT: 2^bits - 1
  u_stride: u32, // row stride of the U slab
  zero: u32,     // always 0: feeds fp_barrier (lib/rounding.wgsl)
  sub: u32,      // columns per grid[] entry: the group, or Q4_K's sub-block of 32
  _pad1: u32,
  _pad2: u32,
}

override WG_SIZE: u32 = 64u;

@group(0) @binding(0) var<storage, read_write> w: array<f32>;
@group(0) @binding(1) var<storage, read_write> q: array<f32>; // each weight's code (an integer)
@group(0) @binding(2) var<storage, read_write> err: array<f32>;
@group(0) @binding(3) var<storage, read> u: array<f32>;
// Each group's (or Q4_K sub-block's) entry per row: grid[(col / sub) * rows + r], as the grid
// file has it: (scale, zero) or (dl, dm). Written when a column opens the group, read back
// as the walk reaches each entry's first column (or a block starts within it).
@group(0) @binding(4) var<storage, read_write> grid: array<vec2<f32>>;
@group(0) @binding(5) var<uniform> p: BlockParams;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  fp_barrier = p.zero;
  let r = gid.x;
  if (r >= p.rows) {
    return;
  }
  var g = vec2<f32>(0.0, 0.0);
  if (p.col0 % p.sub != 0u) {
    g = grid[(p.col0 / p.sub) * p.rows + r]; // an entry opened in an earlier block
  }
  for (var col = p.col0; col < p.col1; col++) {
    if (col % p.group == 0u) {
      open_group(r, col);
    }
    if (col % p.sub == 0u) {
      g = grid[(col / p.sub) * p.rows + r];
    }
    let k = col - p.col0;
    let urow = k * p.u_stride;
    let x = w[col * p.rows + r];
    let code = grid_code(x, g);
    let qx = grid_value(code, g);
    q[col * p.rows + r] = code; // codes, not values: the blocks need them (an f16 d of 0 hides them)
    let e = (x - qx) / u[urow + k];
    err[k * p.rows + r] = e;
    // In storage, not a private array: with dynamic indices that was 1.5-3x slower on
    // SwiftShader; W is column-major, so the workgroup's rows are neighbouring words.
    for (var j = col + 1u; j < p.col1; j++) {
      w[j * p.rows + r] -= e * u[urow + (j - p.col0)];
    }
  }
}
