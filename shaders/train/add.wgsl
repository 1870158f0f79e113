// out = a + b (accumulate = 0), or out += a (accumulate = 1, b unused): residuals and their gradients.
struct Params { len: u32, accumulate: u32, _u1: u32, _u2: u32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat_id(wid, nwg, lid);
  if (i >= p.len) { return; }
  if (p.accumulate != 0u) { out[i] += a[i]; } else { out[i] = a[i] + b[i]; }
}
