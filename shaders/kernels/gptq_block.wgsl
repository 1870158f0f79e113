// GPTQ, one block of columns [col0, col1) of a chunk of rows (src/calibrate/gptq-gpu.ts;
// the CPU reference is src/calibrate/gptq.ts, after IST-DASLab/gptq gptq.py fasterquant).
// One invocation per row: rows are independent given U, and within a row the columns
// must go left to right (each column's error moves the later ones). Per column:
//   - when it opens a group: the group's (scale, zero) from the row's current values;
//   - q = its grid value, err = (w - q) / U[col, col];
//   - the rest of the block: w[j] -= err * U[col, j] (the lazy update of the columns after
//     the block is gptq_update.wgsl).
// f32 throughout, as PyTorch's GPTQ runs. Needs lib/rounding.wgsl (div_rn, no_fuse) and
// lib/f16.wgsl (Q4_0's f16 scale).
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
  group: u32,    // columns per group
  kind: u32,     // GRID_INT or GRID_Q4_0
  maxq: u32,     // GRID_INT: 2^bits - 1
  u_stride: u32, // row stride of the U slab
  zero: u32,     // always 0: feeds fp_barrier (lib/rounding.wgsl)
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

const GRID_INT: u32 = 0u;
const GRID_Q4_0: u32 = 1u;

override WG_SIZE: u32 = 64u;

@group(0) @binding(0) var<storage, read_write> w: array<f32>;
@group(0) @binding(1) var<storage, read_write> q: array<f32>; // each weight's code (an integer)
@group(0) @binding(2) var<storage, read_write> err: array<f32>;
@group(0) @binding(3) var<storage, read> u: array<f32>;
// (scale, zero) of each group and row: grid[g * rows + r]. Written when a column opens the
// group, read back when a group spans two blocks.
@group(0) @binding(4) var<storage, read_write> grid: array<vec2<f32>>;
@group(0) @binding(5) var<uniform> p: BlockParams;

// grid.ts groupParams on the row's current values w[col..end).
fn group_params(r: u32, col: u32) -> vec2<f32> {
  let end = min(col + p.group, p.cols);
  if (p.kind == GRID_Q4_0) {
    // ggml quantize_row_q4_0_ref: d = (the value of largest magnitude) / -8.
    var amax = 0.0;
    var vmax = 0.0;
    for (var c = col; c < end; c++) {
      let v = w[c * p.rows + r];
      if (abs(v) > amax) {
        amax = abs(v);
        vmax = v;
      }
    }
    return vec2<f32>(vmax / -8.0, 8.0); // exact: a power of two
  }
  // GPTQ's Quantizer.find_params (asym): the range includes 0.
  var lo = 0.0;
  var hi = 0.0;
  for (var c = col; c < end; c++) {
    let v = w[c * p.rows + r];
    lo = min(lo, v);
    hi = max(hi, v);
  }
  if (lo == 0.0 && hi == 0.0) {
    lo = -1.0;
    hi = 1.0;
  }
  let scale = div_rn(hi - lo, f32(p.maxq));
  return vec2<f32>(scale, round(div_rn(-lo, scale))); // round: half to even, as torch.round
}

// x's code on the grid (grid.ts q4_0Code, quantizeValue's q).
fn grid_code(x: f32, g: vec2<f32>) -> f32 {
  if (p.kind == GRID_Q4_0) {
    let d = g.x;
    let id = select(0.0, div_rn(1.0, d), d != 0.0);
    return clamp(trunc(no_fuse(x * id) + 8.5), 0.0, 15.0);
  }
  // Plain f32 division per weight: div_rn, exact, cost as much again as the whole walk on
  // SwiftShader, and can only move a value that sits on a rounding tie.
  return clamp(round(x / g.x) + g.y, 0.0, f32(p.maxq));
}

// The code's value (grid.ts quantizeValue); gptq-gpu.ts computes the same f32 from the codes.
fn grid_value(code: f32, g: vec2<f32>) -> f32 {
  if (p.kind == GRID_Q4_0) {
    return (code - 8.0) * f16_bits_to_f32(f32_to_f16_bits(g.x));
  }
  return g.x * (code - g.y);
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  fp_barrier = p.zero;
  let r = gid.x;
  if (r >= p.rows) {
    return;
  }
  // A group opened in an earlier block (a group size that does not divide the block).
  var g = vec2<f32>(0.0, 0.0);
  if (p.col0 % p.group != 0u) {
    g = grid[(p.col0 / p.group) * p.rows + r];
  }
  for (var col = p.col0; col < p.col1; col++) {
    if (col % p.group == 0u) {
      g = group_params(r, col);
      grid[(col / p.group) * p.rows + r] = g;
    }
    let k = col - p.col0;
    let urow = k * p.u_stride;
    let x = w[col * p.rows + r];
    let code = grid_code(x, g);
    let qx = grid_value(code, g);
    q[col * p.rows + r] = code; // codes, not values: Q4_0's blocks need them (an f16 d of 0 hides them)
    let e = (x - qx) / u[urow + k];
    err[k * p.rows + r] = e;
    // In storage, not a private array: with dynamic indices that was 1.5-3x slower on
    // SwiftShader; W is column-major, so the workgroup's rows are neighbouring words.
    for (var j = col + 1u; j < p.col1; j++) {
      w[j * p.rows + r] -= e * u[urow + (j - p.col0)];
    }
  }
}
