// dw[r][c] += alpha·Σ_t dy[t][r]·x[t][c]: one invocation per (r, c).
struct Params { rows: u32, cols: u32, n: u32, _u: u32, alpha: f32, _p0: f32, _p1: f32, _p2: f32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dw: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat_id(wid, nwg, lid);
  if (i >= p.rows * p.cols) { return; }
  let r = i / p.cols;
  let c = i % p.cols;
  var s = 0.0;
  for (var t = 0u; t < p.n; t++) { s += dy[t * p.rows + r] * x[t * p.cols + c]; }
  dw[i] += p.alpha * s;
}
