// dw[j] += Σ_t dy[t][j]·x[t][j]·r[t]: one invocation per column.
struct Params { d: u32, n: u32, _u0: u32, _u1: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> inv: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let j = flat_id(wid, nwg, lid);
  if (j >= p.d) { return; }
  var s = 0.0;
  for (var t = 0u; t < p.n; t++) { s += dy[t * p.d + j] * x[t * p.d + j] * inv[t]; }
  dw[j] += s;
}
