// dx += r·(dy⊙w) − x·r³·Σ(dy⊙w⊙x)/d: one invocation per row.
struct Params { d: u32, n: u32, _u0: u32, _u1: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> inv: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = flat_id(wid, nwg, lid);
  if (t >= p.n) { return; }
  let o = t * p.d;
  let r = inv[t];
  var s = 0.0;
  for (var j = 0u; j < p.d; j++) { s += dy[o + j] * w[j] * x[o + j]; }
  let k = r * r * r * s / f32(p.d);
  for (var j = 0u; j < p.d; j++) { dx[o + j] += r * dy[o + j] * w[j] - x[o + j] * k; }
}
