// AdamW (train/optim.ts, torch.optim.AdamW): the gradient scaled by the clip factor
// (stats[2]), moments m and v, bias corrections c1 = 1 − β1^t, c2 = 1 − β2^t, decoupled
// decay on matrices. One invocation per value.
struct Params { len: u32, matrix: u32, _u0: u32, _u1: u32 }
struct Step { lr: f32, weight_decay: f32, beta1: f32, beta2: f32, eps: f32, c1: f32, c2: f32, _p0: f32 }

@group(0) @binding(0) var<storage, read_write> w: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;
@group(0) @binding(6) var<uniform> s: Step;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat_id(wid, nwg, lid);
  if (i >= p.len) { return; }
  let gi = g[i] * stats[2];
  let mi = s.beta1 * m[i] + (1.0 - s.beta1) * gi;
  let vi = s.beta2 * v[i] + (1.0 - s.beta2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  let decay = select(1.0, 1.0 - s.lr * s.weight_decay, p.matrix != 0u);
  w[i] = w[i] * decay - s.lr * ((mi / s.c1) / (sqrt(vi / s.c2) + s.eps));
}
