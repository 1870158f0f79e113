// Causal grouped-query attention of the chunk's n queries (positions start..start+n-1)
// over the resident KV cache (positions 0..start+i; the last `window` when windowed),
// scores scaled and optionally soft-capped (cap * tanh(s / cap)), softmax, times V.
// One workgroup per (head, query). The scores go through the `scores` scratch buffer
// (n * n_head * ctx floats), so the context is not bounded by workgroup memory; all
// reductions are fixed trees (deterministic).
// Bindings and AttnParams: forward/attention_io.wgsl (composed before this file).

var<workgroup> at_red: array<f32, WG_SIZE>;

fn at_reduce_max(v: f32, lid: u32) -> f32 {
  workgroupBarrier();
  at_red[lid] = v;
  for (var h = WG_SIZE / 2u; h > 0u; h = h >> 1u) {
    workgroupBarrier();
    if (lid < h) {
      at_red[lid] = max(at_red[lid], at_red[lid + h]);
    }
  }
  workgroupBarrier();
  return at_red[0];
}

fn at_reduce_sum(v: f32, lid: u32) -> f32 {
  workgroupBarrier();
  at_red[lid] = v;
  for (var h = WG_SIZE / 2u; h > 0u; h = h >> 1u) {
    workgroupBarrier();
    if (lid < h) {
      at_red[lid] = at_red[lid] + at_red[lid + h];
    }
  }
  workgroupBarrier();
  return at_red[0];
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let h = wid.x;
  let i = wid.y;
  let hd = at_p.head_dim;
  let pos = at_p.start + i;
  var first = 0u;
  if (at_p.window > 0u && pos + 1u > at_p.window) {
    first = pos + 1u - at_p.window;
  }
  let qo = i * at_p.q_dim + h * hd;
  let kvo = (h / at_p.group) * hd;
  let so = (i * at_p.n_head + h) * at_p.ctx;
  var m = -3.4028234663852886e38;
  for (var p = first + lid; p <= pos; p = p + WG_SIZE) {
    let ko = p * at_p.kv_dim + kvo;
    var dot = 0.0;
    for (var j = 0u; j < hd; j = j + 1u) {
      dot = dot + at_q[qo + j] * at_k[ko + j];
    }
    var sc = dot * at_p.scale;
    if (at_p.softcap > 0.0) {
      sc = tanh_acc(sc / at_p.softcap) * at_p.softcap;
    }
    at_s[so + p] = sc;
    m = max(m, sc);
  }
  m = at_reduce_max(m, lid);
  var sum = 0.0;
  for (var p = first + lid; p <= pos; p = p + WG_SIZE) {
    let e = exp(at_s[so + p] - m);
    at_s[so + p] = e;
    sum = sum + e;
  }
  sum = at_reduce_sum(sum, lid);
  storageBarrier();
  workgroupBarrier();
  for (var j = lid; j < hd; j = j + WG_SIZE) {
    var acc = 0.0;
    for (var p = first; p <= pos; p = p + 1u) {
      acc = acc + (at_s[so + p] / sum) * at_v[p * at_p.kv_dim + kvo + j];
    }
    at_out[qo + j] = acc;
  }
}
