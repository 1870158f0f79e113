// Per position of the chunk, what eval needs of the logits, reduced on the GPU so that
// only four numbers per position come back: argmax (the first of equal maxima),
// log-sum-exp, the NLL of the next token (logsumexp - l[target]) and, given the F32
// pass's logits (resident, `base`, row start + t), KL(p_base || p) in nats. With
// d_j = b_j - l_j (exact-ish in f32: a difference of close values) and p_j = exp(b_j - lse_b),
//   KL = sum_j p_j d_j + log(sum_j p_j exp(-d_j))
//      = sum_j p_j g(d_j) + h(S),  g(d) = d + expm1(-d) >= 0,  S = sum_j p_j expm1(-d_j),
//        h(S) = log1p(S) - S,
// so the sum has no cancellation and no log-sum-exp of magnitude ~10 enters (in f32 its
// rounding alone would be ~1e-6 nats, 1e-1 of a small KL). One workgroup per position;
// every reduction a fixed tree (deterministic).

struct ScoreParams {
  n: u32,
  vocab: u32,
  start: u32,      // the chunk's first position (row of base)
  has_base: u32,
}

override WG_SIZE: u32 = 256u;

@group(0) @binding(0) var<storage, read> sc_l: array<f32>;
@group(0) @binding(1) var<storage, read> sc_base: array<f32>;
@group(0) @binding(2) var<storage, read> sc_target: array<u32>;
@group(0) @binding(3) var<storage, read_write> sc_out: array<u32>;
@group(0) @binding(4) var<uniform> sc_p: ScoreParams;

var<workgroup> sc_red: array<f32, WG_SIZE>;
var<workgroup> sc_idx: array<u32, WG_SIZE>;

fn sc_sum(v: f32, lid: u32) -> f32 {
  workgroupBarrier();
  sc_red[lid] = v;
  for (var h = WG_SIZE / 2u; h > 0u; h = h >> 1u) {
    workgroupBarrier();
    if (lid < h) {
      sc_red[lid] = sc_red[lid] + sc_red[lid + h];
    }
  }
  workgroupBarrier();
  return sc_red[0];
}

fn sc_max(v: f32, lid: u32) -> f32 {
  workgroupBarrier();
  sc_red[lid] = v;
  for (var h = WG_SIZE / 2u; h > 0u; h = h >> 1u) {
    workgroupBarrier();
    if (lid < h) {
      sc_red[lid] = max(sc_red[lid], sc_red[lid + h]);
    }
  }
  workgroupBarrier();
  return sc_red[0];
}

// d + expm1(-d) = d^2/2 - d^3/6 + ...: the series for |d| < 1 (to d^15), else directly
// (there exp(-d) - 1 and d no longer cancel much).
fn sc_g(d: f32) -> f32 {
  if (abs(d) < 1.0) {
    var p = -1.0 / 1307674368000.0;
    p = p * d + 1.0 / 87178291200.0;
    p = p * d - 1.0 / 6227020800.0;
    p = p * d + 1.0 / 479001600.0;
    p = p * d - 1.0 / 39916800.0;
    p = p * d + 1.0 / 3628800.0;
    p = p * d - 1.0 / 362880.0;
    p = p * d + 1.0 / 40320.0;
    p = p * d - 1.0 / 5040.0;
    p = p * d + 1.0 / 720.0;
    p = p * d - 1.0 / 120.0;
    p = p * d + 1.0 / 24.0;
    p = p * d - 1.0 / 6.0;
    p = p * d + 0.5;
    return d * d * p;
  }
  return d + (exp(-d) - 1.0);
}

// log1p(s) - s without WGSL's log (2^-21 absolute error: 1e-4 of a small KL): with
// u = s / (2 + s), log1p(s) = 2 atanh(u) = 2(u + u^3/3 + u^5/5 + ...), and 2u - s = -s^2 / (2 + s),
// so h = -s^2 / (2 + s) + 2(u^3/3 + ... + u^21/21) for |u| < 0.35; else directly.
fn sc_h(s: f32) -> f32 {
  let u = s / (2.0 + s);
  if (abs(u) < 0.35) {
    let u2 = u * u;
    var p = 1.0 / 21.0;
    p = p * u2 + 1.0 / 19.0;
    p = p * u2 + 1.0 / 17.0;
    p = p * u2 + 1.0 / 15.0;
    p = p * u2 + 1.0 / 13.0;
    p = p * u2 + 1.0 / 11.0;
    p = p * u2 + 1.0 / 9.0;
    p = p * u2 + 1.0 / 7.0;
    p = p * u2 + 1.0 / 5.0;
    p = p * u2 + 1.0 / 3.0;
    return -(s * s) / (2.0 + s) + 2.0 * u * u2 * p;
  }
  return log(1.0 + s) - s;
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wid.x;
  let V = sc_p.vocab;
  let lo = t * V;
  // Max with its first index.
  var m = -3.4028234663852886e38;
  var mi = 0xffffffffu;
  for (var j = lid; j < V; j = j + WG_SIZE) {
    let v = sc_l[lo + j];
    if (v > m) {
      m = v;
      mi = j;
    }
  }
  sc_red[lid] = m;
  sc_idx[lid] = mi;
  for (var h = WG_SIZE / 2u; h > 0u; h = h >> 1u) {
    workgroupBarrier();
    if (lid < h) {
      let a = sc_red[lid];
      let b = sc_red[lid + h];
      if (b > a || (b == a && sc_idx[lid + h] < sc_idx[lid])) {
        sc_red[lid] = b;
        sc_idx[lid] = sc_idx[lid + h];
      }
    }
  }
  workgroupBarrier();
  let mx = sc_red[0];
  let amax = sc_idx[0];
  var s = 0.0;
  for (var j = lid; j < V; j = j + WG_SIZE) {
    s = s + exp(sc_l[lo + j] - mx);
  }
  let lse = mx + log(sc_sum(s, lid));
  var kl = 0.0;
  if (sc_p.has_base != 0u) {
    let bo = (sc_p.start + t) * V;
    var bm = -3.4028234663852886e38;
    for (var j = lid; j < V; j = j + WG_SIZE) {
      bm = max(bm, sc_base[bo + j]);
    }
    bm = sc_max(bm, lid);
    var bs = 0.0;
    for (var j = lid; j < V; j = j + WG_SIZE) {
      bs = bs + exp(sc_base[bo + j] - bm);
    }
    let lse_b = bm + log(sc_sum(bs, lid));
    var k = 0.0;
    var e = 0.0;
    for (var j = lid; j < V; j = j + WG_SIZE) {
      let b = sc_base[bo + j];
      let p = exp(b - lse_b);
      let d = b - sc_l[lo + j];
      let g = sc_g(d);
      k = k + p * g;
      e = e + p * (g - d); // p * expm1(-d)
    }
    let kg = sc_sum(k, lid);
    kl = kg + sc_h(sc_sum(e, lid));
  }
  if (lid == 0u) {
    let o = 4u * t;
    sc_out[o] = amax;
    sc_out[o + 1u] = bitcast<u32>(lse);
    sc_out[o + 2u] = bitcast<u32>(lse - sc_l[lo + sc_target[t]]);
    sc_out[o + 3u] = bitcast<u32>(kl);
  }
}
