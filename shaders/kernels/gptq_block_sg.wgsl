// GPTQ's column walk with a subgroup per row (src/calibrate/gptq-gpu.ts picks it where the
// device has subgroups and WGSL's subgroup_id; gptq_block.wgsl, one invocation per row, is
// the fallback and states the algorithm). Composed after kernels/matmul_enable_subgroups.wgsl,
// lib/rounding.wgsl, lib/f16.wgsl and kernels/gptq_grid_int_q4_0.wgsl (grid_code,
// grid_value: GPTQ's INT grids and Q4_0; Q4_K keeps gptq_block.wgsl).
//
// The row's block of columns lives in the lanes' registers: lane l of L holds columns
// col0 + l + i·L. Per column: its owner's value goes to every lane (subgroupShuffle), every
// lane computes the same code and error (the same f32 operations as gptq_block.wgsl), the
// owner stores them, and each lane updates its own later columns: w[j] -= e · U[col, j],
// each column still updated once per earlier column in column order, so the values are
// gptq_block.wgsl's. A group's params: each lane's part of the group (its register columns,
// and columns past the block from storage), then subgroupMin/Max (the INT range, exact in any
// order) or, for Q4_0's value of largest magnitude, the largest |v| and the first column that
// holds it (the scalar loop's strict '>' keeps the first).
// Rows: subgroup s of workgroup g takes rows g·S + s, then strides by every subgroup of the
// dispatch (num_workgroups · S), so any subgroup size and count covers every row. Assumes
// full subgroups (the lanes are subgroup_invocation_id 0..L-1), as a 1-D workgroup of a
// multiple of the subgroup size has; L >= 4 (WebGPU's minimum) keeps a 128-column block in
// 32 registers per lane.

struct BlockParams {
  rows: u32,
  cols: u32,
  col0: u32,
  col1: u32,
  group: u32,
  kind: u32,
  maxq: u32,
  u_stride: u32,
  zero: u32,
  sub: u32,
  _pad1: u32,
  _pad2: u32,
}

override WG_SIZE: u32 = 32u;
const PER_LANE: u32 = 32u; // block columns per lane: 128 / 4

@group(0) @binding(0) var<storage, read_write> w: array<f32>;
@group(0) @binding(1) var<storage, read_write> q: array<f32>;
@group(0) @binding(2) var<storage, read_write> err: array<f32>;
@group(0) @binding(3) var<storage, read> u: array<f32>;
@group(0) @binding(4) var<storage, read_write> grid: array<vec2<f32>>;
@group(0) @binding(5) var<uniform> p: BlockParams;

var<private> wl: array<f32, PER_LANE>;

// The params of the group opening at `col` for row r, from the lanes' current values.
fn sg_group_params(r: u32, col: u32, lane: u32, lanes: u32) -> vec2<f32> {
  let end = min(col + p.group, p.cols);
  let in_block = min(end, p.col1);
  let k0 = col - p.col0;
  if (p.kind == GRID_Q4_0) {
    var amax = 0.0;
    var vmax = 0.0;
    var first = 0xffffffffu;
    for (var i = 0u; i < PER_LANE; i++) {
      let c = p.col0 + lane + i * lanes;
      if (c >= col && c < in_block) {
        let v = wl[i];
        if (abs(v) > amax) {
          amax = abs(v);
          vmax = v;
          first = c;
        }
      }
    }
    for (var c = p.col1 + lane; c < end; c += lanes) {
      let v = w[c * p.rows + r];
      if (abs(v) > amax) {
        amax = abs(v);
        vmax = v;
        first = c;
      }
    }
    let top = subgroupMax(amax);
    let at = subgroupMin(select(0xffffffffu, first, amax == top && top > 0.0));
    // One lane holds column `at`; the others add 0.
    let v = subgroupAdd(select(0.0, vmax, first == at && top > 0.0));
    return vec2<f32>(v / -8.0, 8.0);
  }
  var lo = 0.0;
  var hi = 0.0;
  for (var i = 0u; i < PER_LANE; i++) {
    let c = p.col0 + lane + i * lanes;
    if (c >= col && c < in_block) {
      lo = min(lo, wl[i]);
      hi = max(hi, wl[i]);
    }
  }
  for (var c = p.col1 + lane; c < end; c += lanes) {
    let v = w[c * p.rows + r];
    lo = min(lo, v);
    hi = max(hi, v);
  }
  lo = subgroupMin(lo);
  hi = subgroupMax(hi);
  if (lo == 0.0 && hi == 0.0) {
    lo = -1.0;
    hi = 1.0;
  }
  let scale = div_rn(hi - lo, f32(p.maxq));
  return vec2<f32>(scale, round(div_rn(-lo, scale)));
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_id) sg: u32,
        @builtin(num_subgroups) n_sg: u32,
        @builtin(subgroup_invocation_id) lane: u32,
        @builtin(subgroup_size) lanes: u32) {
  fp_barrier = p.zero;
  let nb = p.col1 - p.col0;
  for (var r = wid.x * n_sg + sg; r < p.rows; r += nwg.x * n_sg) {
    for (var i = 0u; i < PER_LANE; i++) {
      let kk = lane + i * lanes;
      wl[i] = select(0.0, w[(p.col0 + kk) * p.rows + r], kk < nb);
    }
    var g = vec2<f32>(0.0, 0.0);
    if (p.col0 % p.sub != 0u) {
      g = grid[(p.col0 / p.sub) * p.rows + r];
    }
    for (var col = p.col0; col < p.col1; col++) {
      let k = col - p.col0;
      if (col % p.group == 0u) {
        g = sg_group_params(r, col, lane, lanes);
        if (lane == 0u) {
          grid[(col / p.group) * p.rows + r] = g;
        }
      }
      let owner = k % lanes;
      let x = subgroupShuffle(wl[k / lanes], owner);
      let urow = k * p.u_stride;
      let code = grid_code(x, g);
      let qx = grid_value(code, g);
      let e = (x - qx) / u[urow + k];
      if (lane == owner) {
        q[col * p.rows + r] = code;
        err[k * p.rows + r] = e;
      }
      for (var i = 0u; i < PER_LANE; i++) {
        let kk = lane + i * lanes;
        if (kk > k && kk < nb) {
          wl[i] -= e * u[urow + kk];
        }
      }
    }
  }
}
