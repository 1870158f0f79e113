// Causal grouped-query attention from position 0: for query head h at position i, the
// softmax of scale·q·k over positions j <= i (kv head h / (n_head / n_head_kv)), and the
// weighted sum of v. Writes the weights (probs[h][i][j]) for the backward. One invocation per (h, i).
struct Params { n: u32, n_head: u32, n_head_kv: u32, head_dim: u32, scale: f32, _p0: f32, _p1: f32, _p2: f32 }

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> probs: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let id = flat_id(wid, nwg, lid);
  if (id >= p.n_head * p.n) { return; }
  let h = id / p.n;
  let i = id % p.n;
  let hd = p.head_dim;
  let q_dim = p.n_head * hd;
  let kv_dim = p.n_head_kv * hd;
  let kvo = (h / (p.n_head / p.n_head_kv)) * hd;
  let qo = i * q_dim + h * hd;
  let po = (h * p.n + i) * p.n;
  var mx = -3.4e38;
  for (var j = 0u; j <= i; j++) {
    var dot = 0.0;
    for (var e = 0u; e < hd; e++) { dot += q[qo + e] * k[j * kv_dim + kvo + e]; }
    let s = dot * p.scale;
    probs[po + j] = s;
    mx = max(mx, s);
  }
  var sum = 0.0;
  for (var j = 0u; j <= i; j++) {
    let ex = exp(probs[po + j] - mx);
    probs[po + j] = ex;
    sum += ex;
  }
  for (var j = 0u; j <= i; j++) { probs[po + j] = probs[po + j] / sum; }
  for (var e = 0u; e < hd; e++) {
    var acc = 0.0;
    for (var j = 0u; j <= i; j++) { acc += probs[po + j] * v[j * kv_dim + kvo + e]; }
    out[qo + e] = acc;
  }
}
