// dTable[tokens[t]][j] += dx[t][j]: one invocation per column j, tokens in order (a token
// seen twice adds twice, and no two invocations write the same value).
struct Params { d: u32, n: u32, _u0: u32, _u1: u32 }

@group(0) @binding(0) var<storage, read> dx: array<f32>;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read_write> dtable: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let j = flat_id(wid, nwg, lid);
  if (j >= p.d) { return; }
  for (var t = 0u; t < p.n; t++) { dtable[tokens[t] * p.d + j] += dx[t * p.d + j]; }
}
