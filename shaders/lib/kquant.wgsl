// K-quant support (shaders/codecs/q2_k .. q8_k): C float arithmetic that stays exact where
// GPUs are not, and ggml's scale searches (ggml-quants.c make_qkx2_quants, make_qx_quants,
// make_q3_quants, make_qp_quants) as src/quant/codecs/kquants.ts has them.
// Uses lib/rounding.wgsl (no_fuse, div_rn, flt_lt, nearest_int).
//
// Why not plain f32 operators: the searches run long chains of products and sums whose
// every bit decides a byte, and
//  - devices may flush subnormal inputs and results to zero (SwiftShader does: tiny rows,
//    x^2 weights and error sums underflow into subnormals, where C keeps them);
//  - a*b+c may be contracted into an fma, which rounds once where C rounds twice.
// So kq_mul / kq_add take the hardware result when it is provably the C result (operands
// zero or normal, result normal) and otherwise compute it exactly on the bits; products
// pass through no_fuse. Comparisons work on bit patterns (flt_lt), division is div_rn,
// square root is bit by bit. Everything is rounded to nearest even, as gcc's C on x86.

const KQ_EXP: u32 = 0x7f800000u;
const KQ_MIN_NORMAL: u32 = 0x00800000u;
/** ggml's GROUP_MAX_EPS, 1e-15f. */
const KQ_GROUP_MAX_EPS: f32 = bitcast<f32>(0x26901d7du);
/** 0.1f, -0.9f and 0.05f: the C literals of the search grids, as float. */
const KQ_ONE_TENTH: f32 = bitcast<f32>(0x3dcccccdu);
const KQ_NEG_0_9: f32 = bitcast<f32>(0xbf666666u);
const KQ_0_05: f32 = bitcast<f32>(0x3d4ccccdu);

// ---- exact f32 arithmetic ------------------------------------------------------------

// Round (m + s) * 2^e to f32 bits, where m has bit 31 set and s in [0, 1) is non-zero iff
// `sticky`; `sign` is the result's sign bit. Handles subnormal results and overflow.
fn kq_round_pack(sign: u32, m: u32, e: i32, sticky: bool) -> u32 {
  // Exponent of the result's last mantissa bit: 24 significant bits, at least 2^-149.
  let k = max(e + 8, -149);
  if (k > 104) {
    return sign | F32_INF;
  }
  let s = u32(k - e); // >= 8
  var mant = 0u;
  var guard = false;
  var st = sticky;
  if (s >= 33u) {
    st = true; // below half of the last place
  } else if (s == 32u) {
    guard = true;
    st = st || (m & 0x7fffffffu) != 0u;
  } else {
    mant = m >> s;
    guard = ((m >> (s - 1u)) & 1u) == 1u;
    st = st || (m & ((1u << (s - 1u)) - 1u)) != 0u;
  }
  if (guard && (st || (mant & 1u) == 1u)) {
    mant = mant + 1u;
  }
  // (k + 149) << 23 plus a 24-bit mantissa gives the biased exponent and fraction at once,
  // for normal and subnormal results, a carry to the next binade included.
  return sign | ((u32(k + 149) << 23u) + mant);
}

// Significand (with its leading bit at 23) and exponent e with |x| = m * 2^(e - 150), for a
// finite non-zero magnitude a; subnormals are normalized.
fn kq_unpack(a: u32) -> vec2<i32> {
  let e = i32(a >> 23u);
  let m = a & 0x7fffffu;
  if (e == 0) {
    let p = firstLeadingBit(m);
    return vec2<i32>(i32(m << (23u - p)), i32(p) - 22);
  }
  return vec2<i32>(i32(m | 0x800000u), e);
}

// a * b correctly rounded, for finite non-zero a, b (any of them subnormal, any result).
fn kq_mul_bits(ua: u32, ub: u32) -> u32 {
  let sign = (ua ^ ub) & F32_SIGN;
  let pa = kq_unpack(ua & F32_ABS);
  let pb = kq_unpack(ub & F32_ABS);
  let ma = u32(pa.x);
  let mb = u32(pb.x);
  // The 48-bit product hi * 2^32 + lo from 16-bit halves.
  let al = ma & 0xffffu;
  let ah = ma >> 16u;
  let bl = mb & 0xffffu;
  let bh = mb >> 16u;
  let ll = al * bl;
  let mid = al * bh + ah * bl; // < 2^25
  let lo = ll + (mid << 16u);
  let hi = ah * bh + (mid >> 16u) + select(0u, 1u, lo < ll);
  // 2^46 <= product < 2^48: hi has 15 or 16 bits. Shift the top 32 bits into m.
  let lz = countLeadingZeros(hi);
  let m = (hi << lz) | (lo >> (32u - lz));
  return kq_round_pack(sign, m, pa.y + pb.y - 268 - i32(lz), (lo << lz) != 0u);
}

// a + b correctly rounded, for finite a, b.
fn kq_add_bits(ua: u32, ub: u32) -> u32 {
  let aa = ua & F32_ABS;
  let ab = ub & F32_ABS;
  if (aa == 0u) {
    return select(ub, ua & ub, ab == 0u); // -0 + -0 = -0, otherwise +0 for zeros
  }
  if (ab == 0u) {
    return ua;
  }
  // x the larger magnitude. Significands with 7 extra low bits; value = m * 2^(e - 157).
  let swap = ab > aa;
  let x = select(ua, ub, swap);
  let y = select(ub, ua, swap);
  let ax = x & F32_ABS;
  let ay = y & F32_ABS;
  let ex = max(i32(ax >> 23u), 1);
  let ey = max(i32(ay >> 23u), 1);
  let mx = ((ax & 0x7fffffu) | select(0u, 0x800000u, ax >= KQ_MIN_NORMAL)) << 7u;
  var my = ((ay & 0x7fffffu) | select(0u, 0x800000u, ay >= KQ_MIN_NORMAL)) << 7u;
  let d = u32(ex - ey);
  if (d >= 31u) {
    my = select(0u, 1u, my != 0u);
  } else if (d > 0u) {
    // Shift right, keeping a sticky bit for what falls off (below the 7 guard bits).
    my = (my >> d) | select(0u, 1u, (my & ((1u << d) - 1u)) != 0u);
  }
  var s: u32;
  if (((x ^ y) & F32_SIGN) == 0u) {
    s = mx + my; // < 2^32
  } else {
    s = mx - my;
  }
  if (s == 0u) {
    return 0u; // exact cancellation: +0
  }
  let lz = countLeadingZeros(s);
  return kq_round_pack(x & F32_SIGN, s << lz, ex - 157 - i32(lz), false);
}

// C's a * b in float.
fn kq_mul(a: f32, b: f32) -> f32 {
  let p = no_fuse(a * b);
  let aa = bitcast<u32>(a) & F32_ABS;
  let ab = bitcast<u32>(b) & F32_ABS;
  if (aa == 0u || ab == 0u || aa >= F32_INF || ab >= F32_INF) {
    return p;
  }
  // Hardware is exact for normal operands and a result at least twice the least normal.
  if (aa < KQ_MIN_NORMAL || ab < KQ_MIN_NORMAL || (bitcast<u32>(p) & F32_ABS) < 2u * KQ_MIN_NORMAL) {
    return bitcast<f32>(kq_mul_bits(bitcast<u32>(a), bitcast<u32>(b)));
  }
  return p;
}

// C's a + b in float.
fn kq_add(a: f32, b: f32) -> f32 {
  let s = no_fuse(a + b);
  let ua = bitcast<u32>(a);
  let ub = bitcast<u32>(b);
  let aa = ua & F32_ABS;
  let ab = ub & F32_ABS;
  let sub_a = aa != 0u && aa < KQ_MIN_NORMAL;
  let sub_b = ab != 0u && ab < KQ_MIN_NORMAL;
  let as_ = bitcast<u32>(s) & F32_ABS;
  if (!sub_a && !sub_b && (as_ >= 2u * KQ_MIN_NORMAL || (aa | ab) == 0u)) {
    return s; // normal operands, normal result (inf and NaN included), or 0 + 0
  }
  if (aa >= F32_INF || ab >= F32_INF) {
    return s;
  }
  return bitcast<f32>(kq_add_bits(ua, ub));
}

// C's a - b in float.
fn kq_sub(a: f32, b: f32) -> f32 {
  return kq_add(a, kq_neg(b));
}

// -x and fabsf(x) on the bits (an arithmetic negation may flush a subnormal).
fn kq_neg(x: f32) -> f32 {
  return bitcast<f32>(bitcast<u32>(x) ^ F32_SIGN);
}

fn kq_abs(x: f32) -> f32 {
  return bitcast<f32>(bitcast<u32>(x) & F32_ABS);
}

// C's a < b and a == b on floats (false with NaN; -0 == +0; exact on subnormals).
fn kq_lt(a: f32, b: f32) -> bool {
  return flt_lt(bitcast<u32>(a), bitcast<u32>(b));
}

fn kq_eq(a: f32, b: f32) -> bool {
  let ua = bitcast<u32>(a);
  let ub = bitcast<u32>(b);
  return !is_nan_bits(ua) && !is_nan_bits(ub) && flt_key(ua) == flt_key(ub);
}

// C's `x == 0` (false for NaN, true for -0).
fn kq_is_zero(x: f32) -> bool {
  return (bitcast<u32>(x) & F32_ABS) == 0u;
}

// sqrtf, correctly rounded (fdlibm's e_sqrtf.c, bit by bit), for x >= 0 or NaN.
fn kq_sqrt(x: f32) -> f32 {
  var ix = i32(bitcast<u32>(x));
  if ((ix & 0x7f800000) == 0x7f800000 || (ix & 0x7fffffff) == 0) {
    return x; // inf, NaN, +-0
  }
  if (ix < 0) {
    return bitcast<f32>(F32_DEFAULT_NAN ^ fp_barrier); // not a constant: WGSL has no NaN constants
  }
  var m = ix >> 23u;
  if (m == 0) {
    // subnormal: normalize
    var i = 0;
    loop {
      if ((ix & 0x00800000) != 0) {
        break;
      }
      ix = ix << 1u;
      i = i + 1;
    }
    m = m - (i - 1);
  }
  m = m - 127;
  ix = (ix & 0x007fffff) | 0x00800000;
  if ((m & 1) != 0) {
    ix = ix + ix;
  }
  m = m >> 1u;
  ix = ix + ix;
  var q = 0;
  var s = 0;
  var r = 0x01000000;
  loop {
    if (r == 0) {
      break;
    }
    let t = s + r;
    if (t <= ix) {
      s = t + r;
      ix = ix - t;
      q = q + r;
    }
    ix = ix + ix;
    r = r >> 1u;
  }
  if (ix != 0) {
    q = q + (q & 1); // round to nearest even
  }
  return bitcast<f32>(u32((q >> 1u) + 0x3f000000 + (m << 23u)));
}

// ggml's nearest_int(x) for every x, as src/quant/codecs/kquants.ts's nearestIntC: the
// integer read from the mantissa of x + 1.5*2^23 in float. Within |x| <= 4194303 that is
// round half to even; beyond it the C formula's odd values; NaN gives 0.
fn kq_nearest_int(x: f32) -> i32 {
  let b = bitcast<u32>(x);
  let a = b & F32_ABS;
  if (a <= 0x4a7ffffcu) {
    return nearest_int(x);
  }
  if (a > F32_INF) {
    return 0;
  }
  // |x| > 4194303 or inf: the hardware sum is exact C here (normal operands and result).
  let v = bitcast<u32>(no_fuse(x + 12582912.0));
  return i32(v & 0x7fffffu) - 0x400000;
}

// ---- scale searches --------------------------------------------------------------------
// Inputs in kq_x[0..n) and kq_w[0..n) (n <= 32); quants out in kq_l[0..n).

var<private> kq_x: array<f32, 32>;
var<private> kq_w: array<f32, 32>;
var<private> kq_xs: array<f32, 32>;   // x - min (qkx) or w * x (qx, q3)
var<private> kq_l: array<i32, 32>;
var<private> kq_laux: array<i32, 32>;
/** make_qkx_quants' second result: -min of the chosen fit. */
var<private> kq_the_min: f32;

// Per super-block: quants of all 256 values, sub-block scales and mins.
var<private> kq_L: array<i32, 256>;
var<private> kq_scales: array<f32, 16>;
var<private> kq_mins: array<f32, 16>;

fn kq_clamp(v: i32, lo: i32, hi: i32) -> i32 {
  return select(select(v, lo, v < lo), hi, v > hi);
}

// make_qkx2_quants / make_qkx3_quants (kquants.ts makeQkxQuants): L in 0..nmax of
// x = scale*L - the_min over nstep+1 trial inverse scales; returns scale, sets kq_the_min.
// Skips a trial whose quants equal the previous trial's, and stops an error sum once it
// reaches the best (weights are non-negative there): neither changes the outcome.
fn make_qkx_quants(n: u32, nmax: i32, rmin: f32, rdelta: f32, nstep: i32, use_mad: bool) -> f32 {
  var mn = kq_x[0];
  var mx = kq_x[0];
  var sum_w = kq_w[0];
  var sum_x = kq_mul(sum_w, kq_x[0]);
  var w_non_neg = !kq_lt(kq_w[0], 0.0) && !is_nan_bits(bitcast<u32>(kq_w[0]));
  for (var i = 1u; i < n; i = i + 1u) {
    let xi = kq_x[i];
    if (kq_lt(xi, mn)) {
      mn = xi;
    }
    if (kq_lt(mx, xi)) {
      mx = xi;
    }
    let w = kq_w[i];
    if (kq_lt(w, 0.0) || is_nan_bits(bitcast<u32>(w))) {
      w_non_neg = false;
    }
    sum_w = kq_add(sum_w, w);
    sum_x = kq_add(sum_x, kq_mul(w, xi));
  }
  if (kq_lt(0.0, mn)) {
    mn = 0.0;
  }
  if (kq_eq(mx, mn)) {
    for (var i = 0u; i < n; i = i + 1u) {
      kq_l[i] = 0;
    }
    kq_the_min = kq_neg(mn);
    return 0.0;
  }
  let fmax = f32(nmax);
  var range = kq_sub(mx, mn);
  for (var i = 0u; i < n; i = i + 1u) {
    kq_xs[i] = kq_sub(kq_x[i], mn);
  }
  var iscale = div_rn(fmax, range);
  var scale = div_rn(1.0, iscale);
  var best_error = 0.0;
  for (var i = 0u; i < n; i = i + 1u) {
    let l = kq_clamp(kq_nearest_int(kq_mul(iscale, kq_xs[i])), 0, nmax);
    kq_l[i] = l;
    var diff = kq_sub(kq_add(kq_mul(scale, f32(l)), mn), kq_x[i]);
    diff = select(kq_mul(diff, diff), kq_abs(diff), use_mad);
    best_error = kq_add(best_error, kq_mul(kq_w[i], diff));
  }
  kq_laux[0] = -1; // no previous trial
  for (var is = 0; is <= nstep; is = is + 1) {
    iscale = div_rn(kq_add(kq_add(rmin, kq_mul(rdelta, f32(is))), fmax), range);
    var same = true;
    for (var i = 0u; i < n; i = i + 1u) {
      let l = kq_clamp(kq_nearest_int(kq_mul(iscale, kq_xs[i])), 0, nmax);
      if (l != kq_laux[i]) {
        same = false;
        kq_laux[i] = l;
      }
    }
    if (same) {
      continue; // same sums, fit and error as the previous trial: it cannot win now
    }
    var sum_l = 0.0;
    var sum_l2 = 0.0;
    var sum_xl = 0.0;
    for (var i = 0u; i < n; i = i + 1u) {
      let fl = f32(kq_laux[i]);
      let wl = kq_mul(kq_w[i], fl);
      sum_l = kq_add(sum_l, wl);
      sum_l2 = kq_add(sum_l2, kq_mul(wl, fl));
      sum_xl = kq_add(sum_xl, kq_mul(wl, kq_x[i]));
    }
    let D = kq_sub(kq_mul(sum_w, sum_l2), kq_mul(sum_l, sum_l));
    if (!kq_lt(0.0, D)) {
      continue;
    }
    var this_scale = div_rn(kq_sub(kq_mul(sum_w, sum_xl), kq_mul(sum_x, sum_l)), D);
    var this_min = div_rn(kq_sub(kq_mul(sum_l2, sum_x), kq_mul(sum_l, sum_xl)), D);
    if (kq_lt(0.0, this_min)) {
      this_min = 0.0;
      this_scale = div_rn(sum_xl, sum_l2);
    }
    var err = 0.0;
    for (var i = 0u; i < n; i = i + 1u) {
      var diff = kq_sub(kq_add(kq_mul(this_scale, f32(kq_laux[i])), this_min), kq_x[i]);
      diff = select(kq_mul(diff, diff), kq_abs(diff), use_mad);
      err = kq_add(err, kq_mul(kq_w[i], diff));
      if (w_non_neg && !kq_lt(err, best_error)) {
        break; // non-negative terms: the float sum cannot come back below the best
      }
    }
    if (kq_lt(err, best_error)) {
      for (var i = 0u; i < n; i = i + 1u) {
        kq_l[i] = kq_laux[i];
      }
      best_error = err;
      scale = this_scale;
      mn = this_min;
      range = kq_sub(mx, mn);
      for (var i = 0u; i < n; i = i + 1u) {
        kq_xs[i] = kq_sub(kq_x[i], mn);
      }
    }
  }
  kq_the_min = kq_neg(mn);
  return scale;
}

// The x of largest magnitude (the first one on ties) and that magnitude.
fn kq_signed_absmax(n: u32) -> vec2<f32> {
  var mx = 0.0;
  var amax = 0.0;
  for (var i = 0u; i < n; i = i + 1u) {
    let ax = kq_abs(kq_x[i]);
    if (kq_lt(amax, ax)) {
      amax = ax;
      mx = kq_x[i];
    }
  }
  return vec2<f32>(mx, amax);
}

// make_qx_quants with rmse_type 1 (kquants.ts makeQxQuants): L + nmax in 0..2*nmax-1 with
// weights kq_w (the caller fills x^2 when C has no weights); returns the scale.
fn make_qx_quants(n: u32, nmax: i32) -> f32 {
  let ma = kq_signed_absmax(n);
  let mx = ma.x;
  if (kq_lt(ma.y, KQ_GROUP_MAX_EPS)) {
    for (var i = 0u; i < n; i = i + 1u) {
      kq_l[i] = 0;
    }
    return 0.0;
  }
  for (var i = 0u; i < n; i = i + 1u) {
    kq_xs[i] = kq_mul(kq_w[i], kq_x[i]);
  }
  let fmax = f32(nmax);
  var iscale = div_rn(-fmax, mx);
  var sumlx = 0.0;
  var suml2 = 0.0;
  for (var i = 0u; i < n; i = i + 1u) {
    let l = kq_clamp(kq_nearest_int(kq_mul(iscale, kq_x[i])), -nmax, nmax - 1);
    kq_l[i] = l + nmax;
    let fl = f32(l);
    sumlx = kq_add(sumlx, kq_mul(kq_xs[i], fl));
    suml2 = kq_add(suml2, kq_mul(kq_mul(kq_w[i], fl), fl));
  }
  var scale = 0.0;
  if (!kq_is_zero(suml2)) {
    scale = div_rn(sumlx, suml2);
  }
  var best = kq_mul(scale, sumlx);
  for (var is = -9; is <= 9; is = is + 1) {
    if (is == 0) {
      continue;
    }
    iscale = div_rn(kq_neg(kq_add(fmax, kq_mul(KQ_ONE_TENTH, f32(is)))), mx);
    sumlx = 0.0;
    suml2 = 0.0;
    for (var i = 0u; i < n; i = i + 1u) {
      let l = kq_clamp(kq_nearest_int(kq_mul(iscale, kq_x[i])), -nmax, nmax - 1);
      kq_laux[i] = l;
      let fl = f32(l);
      sumlx = kq_add(sumlx, kq_mul(kq_xs[i], fl));
      suml2 = kq_add(suml2, kq_mul(kq_mul(kq_w[i], fl), fl));
    }
    if (kq_lt(0.0, suml2) && kq_lt(kq_mul(best, suml2), kq_mul(sumlx, sumlx))) {
      for (var i = 0u; i < n; i = i + 1u) {
        kq_l[i] = kq_laux[i] + nmax;
      }
      scale = div_rn(sumlx, suml2);
      best = kq_mul(scale, sumlx);
    }
  }
  return scale;
}

// make_q3_quants with do_rmse (kquants.ts makeQ3Quants): x^2 weights, quants refined one at
// a time; L + nmax in 0..2*nmax-1; returns the scale.
fn make_q3_quants(n: u32, nmax: i32) -> f32 {
  let ma = kq_signed_absmax(n);
  let mx = ma.x;
  if (kq_lt(ma.y, KQ_GROUP_MAX_EPS)) {
    for (var i = 0u; i < n; i = i + 1u) {
      kq_l[i] = 0;
    }
    return 0.0;
  }
  for (var i = 0u; i < n; i = i + 1u) {
    let w = kq_mul(kq_x[i], kq_x[i]);
    kq_w[i] = w;
    kq_xs[i] = kq_mul(w, kq_x[i]);
  }
  let iscale = div_rn(-f32(nmax), mx);
  var sumlx = 0.0;
  var suml2 = 0.0;
  for (var i = 0u; i < n; i = i + 1u) {
    let l = kq_clamp(kq_nearest_int(kq_mul(iscale, kq_x[i])), -nmax, nmax - 1);
    kq_l[i] = l;
    let fl = f32(l);
    sumlx = kq_add(sumlx, kq_mul(kq_xs[i], fl));
    suml2 = kq_add(suml2, kq_mul(kq_mul(kq_w[i], fl), fl));
  }
  for (var itry = 0; itry < 5; itry = itry + 1) {
    var changed = 0;
    for (var i = 0u; i < n; i = i + 1u) {
      let li = kq_l[i];
      let fli = f32(li);
      var slx = kq_sub(sumlx, kq_mul(kq_xs[i], fli));
      if (kq_lt(0.0, slx)) {
        var sl2 = kq_sub(suml2, kq_mul(kq_mul(kq_w[i], fli), fli));
        let new_l = kq_clamp(kq_nearest_int(div_rn(kq_mul(kq_x[i], sl2), slx)), -nmax, nmax - 1);
        if (new_l != li) {
          let fnl = f32(new_l);
          slx = kq_add(slx, kq_mul(kq_xs[i], fnl));
          sl2 = kq_add(sl2, kq_mul(kq_mul(kq_w[i], fnl), fnl));
          if (kq_lt(0.0, sl2) && kq_lt(kq_mul(kq_mul(sumlx, sumlx), sl2), kq_mul(kq_mul(slx, slx), suml2))) {
            kq_l[i] = new_l;
            sumlx = slx;
            suml2 = sl2;
            changed = changed + 1;
          }
        }
      }
    }
    if (changed == 0) {
      break;
    }
  }
  for (var i = 0u; i < n; i = i + 1u) {
    kq_l[i] = kq_l[i] + nmax;
  }
  if (kq_lt(0.0, suml2)) {
    return div_rn(sumlx, suml2);
  }
  return 0.0;
}

// Sum of x^2 over values [at, at + n) of the block, in C order.
fn kq_sum_squares(at: u32, n: u32) -> f32 {
  var sum = 0.0;
  for (var i = 0u; i < n; i = i + 1u) {
    let x = val(at + i);
    sum = kq_add(sum, kq_mul(x, x));
  }
  return sum;
}

// Final quants with stored scale d and min dm: L = clamp(nearest((x + dm) / d), 0, nmax)
// for values [at, at + n); a sub-block with d == 0 keeps the search's quants.
fn kq_requantize_with_min(at: u32, n: u32, nmax: i32, d: f32, dm: f32) {
  if (kq_is_zero(d)) {
    return;
  }
  for (var i = at; i < at + n; i = i + 1u) {
    kq_L[i] = kq_clamp(kq_nearest_int(div_rn(kq_add(val(i), dm), d)), 0, nmax);
  }
}

// Symmetric final quants for 16 values: L = clamp(nearest(x / d), nmin, nmax) - nmin.
fn kq_requantize_symmetric(at: u32, nmin: i32, nmax: i32, d: f32) {
  if (kq_is_zero(d)) {
    return;
  }
  for (var i = at; i < at + 16u; i = i + 1u) {
    kq_L[i] = kq_clamp(kq_nearest_int(div_rn(val(i), d)), nmin, nmax) - nmin;
  }
}

// Q2_K / Q3_K's 2-bit quants: byte 32h + l holds L[128h + 32s + l] at bits 2s..2s+1.
fn kq_pack_2bit(at: u32) {
  for (var h = 0u; h < 2u; h = h + 1u) {
    for (var l = 0u; l < 32u; l = l + 1u) {
      let v = 128u * h + l;
      let b = u32(kq_L[v]) | (u32(kq_L[v + 32u]) << 2u) | (u32(kq_L[v + 64u]) << 4u) | (u32(kq_L[v + 96u]) << 6u);
      st_u8(at + 32u * h + l, b);
    }
  }
}
