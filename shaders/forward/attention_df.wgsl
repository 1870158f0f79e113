// forward/attention.wgsl as the CPU reference rounds it (gemma, whose GeGLU rounds to f16):
// q.k from exact products, the scale, soft-cap (tanh), softmax and the weighted sum of V
// in double-f32 (forward/df.wgsl), each output rounded to f32 once, as the CPU's f64.
// One workgroup per (head, query); the scores (hi, lo) go through the scratch buffer
// (2 * ctx floats per query and head); every reduction is a fixed tree (deterministic).
// Bindings and AttnParams: forward/attention_io.wgsl (composed before this file).

var<workgroup> at_red: array<vec2<f32>, WG_SIZE>;

fn at_reduce_max(v: f32, lid: u32) -> f32 {
  workgroupBarrier();
  at_red[lid] = vec2<f32>(v, 0.0);
  for (var h = WG_SIZE / 2u; h > 0u; h = h >> 1u) {
    workgroupBarrier();
    if (lid < h) {
      at_red[lid].x = max(at_red[lid].x, at_red[lid + h].x);
    }
  }
  workgroupBarrier();
  return at_red[0].x;
}

fn at_reduce_sum(v: vec2<f32>, lid: u32) -> vec2<f32> {
  workgroupBarrier();
  at_red[lid] = v;
  for (var h = WG_SIZE / 2u; h > 0u; h = h >> 1u) {
    workgroupBarrier();
    if (lid < h) {
      at_red[lid] = df_add(at_red[lid], at_red[lid + h]);
    }
  }
  workgroupBarrier();
  return at_red[0];
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  fp_barrier = at_p.zero;
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
  let so = (i * at_p.n_head + h) * at_p.ctx * 2u; // hi at so + p, lo at so + ctx + p
  let lo = so + at_p.ctx;
  var m = -3.4028234663852886e38;
  for (var p = first + lid; p <= pos; p = p + WG_SIZE) {
    let ko = p * at_p.kv_dim + kvo;
    var dot = vec2<f32>(0.0, 0.0);
    for (var j = 0u; j < hd; j = j + 1u) {
      dot = df_add(dot, df_two_prod(at_q[qo + j], at_k[ko + j]));
    }
    var sc = df_mul_f(dot, at_p.scale);
    if (at_p.softcap > 0.0) {
      sc = df_mul_f(df_tanh(df_div(sc, vec2<f32>(at_p.softcap, 0.0))), at_p.softcap);
    }
    at_s[so + p] = sc.x;
    at_s[lo + p] = sc.y;
    m = max(m, sc.x);
  }
  m = at_reduce_max(m, lid);
  var sum = vec2<f32>(0.0, 0.0);
  for (var p = first + lid; p <= pos; p = p + WG_SIZE) {
    let e = df_exp(df_add(vec2<f32>(at_s[so + p], at_s[lo + p]), vec2<f32>(-m, 0.0)));
    at_s[so + p] = e.x;
    at_s[lo + p] = e.y;
    sum = df_add(sum, e);
  }
  sum = at_reduce_sum(sum, lid);
  storageBarrier();
  workgroupBarrier();
  for (var p = first + lid; p <= pos; p = p + WG_SIZE) {
    let w = df_div(vec2<f32>(at_s[so + p], at_s[lo + p]), sum);
    at_s[so + p] = w.x;
    at_s[lo + p] = w.y;
  }
  storageBarrier();
  workgroupBarrier();
  for (var j = lid; j < hd; j = j + WG_SIZE) {
    var acc = vec2<f32>(0.0, 0.0);
    for (var p = first; p <= pos; p = p + 1u) {
      acc = df_add(acc, df_mul_f(vec2<f32>(at_s[so + p], at_s[lo + p]), at_v[p * at_p.kv_dim + kvo + j]));
    }
    at_out[qo + j] = df_round(acc);
  }
}
