// The attention backward's score gradients: dS[h][i][j] = P·(dP − Σ_j P·dP)·scale with
// dP[j] = dOut[i]·v[j], for j <= i. One invocation per (h, i).
struct Params { n: u32, n_head: u32, n_head_kv: u32, head_dim: u32, scale: f32, _p0: f32, _p1: f32, _p2: f32 }

@group(0) @binding(0) var<storage, read> v: array<f32>;
@group(0) @binding(1) var<storage, read> probs: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> ds: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let id = flat_id(wid, nwg, lid);
  if (id >= p.n_head * p.n) { return; }
  let h = id / p.n;
  let i = id % p.n;
  let hd = p.head_dim;
  let kv_dim = p.n_head_kv * hd;
  let kvo = (h / (p.n_head / p.n_head_kv)) * hd;
  let qo = i * p.n_head * hd + h * hd;
  let po = (h * p.n + i) * p.n;
  var dot = 0.0;
  for (var j = 0u; j <= i; j++) {
    var s = 0.0;
    for (var e = 0u; e < hd; e++) { s += dout[qo + e] * v[j * kv_dim + kvo + e]; }
    ds[po + j] = s;
    dot += probs[po + j] * s;
  }
  for (var j = 0u; j <= i; j++) { ds[po + j] = probs[po + j] * (ds[po + j] - dot) * p.scale; }
}
