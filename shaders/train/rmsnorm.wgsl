// y = x / sqrt(mean(x²) + eps) · w per row, and the row's 1/rms for the backward: one invocation per row.
struct Params { d: u32, n: u32, _u0: u32, _u1: u32, eps: f32, _p0: f32, _p1: f32, _p2: f32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> inv: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = flat_id(wid, nwg, lid);
  if (t >= p.n) { return; }
  let o = t * p.d;
  var s = 0.0;
  for (var j = 0u; j < p.d; j++) { s += x[o + j] * x[o + j]; }
  let r = 1.0 / sqrt(s / f32(p.d) + p.eps);
  inv[t] = r;
  for (var j = 0u; j < p.d; j++) { y[o + j] = x[o + j] * r * w[j]; }
}
