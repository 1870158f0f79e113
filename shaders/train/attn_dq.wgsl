// dq[i][h][e] += Σ_{j<=i} dS[h][i][j]·k[j][kv(h)][e]: one invocation per value of q.
struct Params { n: u32, n_head: u32, n_head_kv: u32, head_dim: u32 }

@group(0) @binding(0) var<storage, read> k: array<f32>;
@group(0) @binding(1) var<storage, read> ds: array<f32>;
@group(0) @binding(2) var<storage, read_write> dq: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let id = flat_id(wid, nwg, lid);
  let hd = p.head_dim;
  let q_dim = p.n_head * hd;
  if (id >= p.n * q_dim) { return; }
  let i = id / q_dim;
  let h = (id % q_dim) / hd;
  let e = id % hd;
  let kv_dim = p.n_head_kv * hd;
  let kvo = (h / (p.n_head / p.n_head_kv)) * hd;
  let po = (h * p.n + i) * p.n;
  var s = 0.0;
  for (var j = 0u; j <= i; j++) { s += ds[po + j] * k[j * kv_dim + kvo + e]; }
  dq[id] += s;
}
