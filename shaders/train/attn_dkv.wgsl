// dk[j][g][e] += Σ_{h of kv head g} Σ_{i>=j} dS[h][i][j]·q[i][h][e] and
// dv[j][g][e] += Σ P[h][i][j]·dOut[i][h][e]: one invocation per value of k (and of v).
struct Params { n: u32, n_head: u32, n_head_kv: u32, head_dim: u32 }

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> probs: array<f32>;
@group(0) @binding(2) var<storage, read> ds: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> dk: array<f32>;
@group(0) @binding(5) var<storage, read_write> dv: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let id = flat_id(wid, nwg, lid);
  let hd = p.head_dim;
  let kv_dim = p.n_head_kv * hd;
  if (id >= p.n * kv_dim) { return; }
  let j = id / kv_dim;
  let g = (id % kv_dim) / hd;
  let e = id % hd;
  let q_dim = p.n_head * hd;
  let group = p.n_head / p.n_head_kv;
  var sk = 0.0;
  var sv = 0.0;
  for (var h = g * group; h < (g + 1u) * group; h++) {
    for (var i = j; i < p.n; i++) {
      let at = (h * p.n + i) * p.n + j;
      let qo = i * q_dim + h * hd + e;
      sk += ds[at] * q[qo];
      sv += probs[at] * dout[qo];
    }
  }
  dk[id] += sk;
  dv[id] += sv;
}
