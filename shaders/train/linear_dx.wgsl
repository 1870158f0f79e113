// dx[t][c] += alpha·Σ_r dy[t][r]·w[r][c]: one invocation per (t, c).
struct Params { rows: u32, cols: u32, n: u32, _u: u32, alpha: f32, _p0: f32, _p1: f32, _p2: f32 }

@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat_id(wid, nwg, lid);
  if (i >= p.n * p.cols) { return; }
  let t = i / p.cols;
  let c = i % p.cols;
  var s = 0.0;
  for (var r = 0u; r < p.rows; r++) { s += dy[t * p.rows + r] * w[r * p.cols + c]; }
  dx[i] += p.alpha * s;
}
