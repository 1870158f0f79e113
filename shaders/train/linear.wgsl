// y[t][r] = alpha·Σ_c w[r][c]·x[t][c] (+ y[t][r] when accumulate): one invocation per (t, r).
struct Params { rows: u32, cols: u32, n: u32, accumulate: u32, alpha: f32, _p0: f32, _p1: f32, _p2: f32 }

@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat_id(wid, nwg, lid);
  if (i >= p.n * p.rows) { return; }
  let t = i / p.rows;
  let r = i % p.rows;
  var s = 0.0;
  for (var c = 0u; c < p.cols; c++) { s += w[r * p.cols + c] * x[t * p.cols + c]; }
  if (p.accumulate != 0u) { y[i] += p.alpha * s; } else { y[i] = p.alpha * s; }
}
