// dgate += dh·up·silu'(gate), silu'(g) = σ(g)(1 + g(1 − σ(g))); dup += dh·silu(gate).
struct Params { len: u32, _u0: u32, _u1: u32, _u2: u32 }

@group(0) @binding(0) var<storage, read> gate: array<f32>;
@group(0) @binding(1) var<storage, read> up: array<f32>;
@group(0) @binding(2) var<storage, read> dh: array<f32>;
@group(0) @binding(3) var<storage, read_write> dgate: array<f32>;
@group(0) @binding(4) var<storage, read_write> dup: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat_id(wid, nwg, lid);
  if (i >= p.len) { return; }
  let g = gate[i];
  let sg = sigmoid(g);
  dgate[i] += dh[i] * up[i] * sg * (1.0 + g * (1.0 - sg));
  dup[i] += dh[i] * g * sg;
}
