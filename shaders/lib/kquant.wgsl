// K-quant support (shaders/codecs/q2_k .. q8_k, and other codecs' exact float ops): ggml's
// scale searches (ggml-quants.c make_qkx2_quants, make_qx_quants, make_q3_quants) as
// src/quant/codecs/kquants.ts has them. Uses lib/rounding.wgsl and lib/bytes.wgsl.
//
// WGSL's f32 +, -, * are correctly rounded, except that a device may flush subnormal
// operands and results to zero (SwiftShader does) and may contract a*b+c into an fma.
// Exact software operations (lib/softfloat.wgsl's sf_*) make big code, and SwiftShader's
// compile time grows faster than the code, so the searches use guarded operations instead:
//  - kg_mul / kg_add / kg_sub / kg_div / kg_sqrt: the hardware result (products
//    through no_fuse, division and square root exact on integers), and a guard that sets
//    `kq_inexact` unless the result is normal (at least 2^-125, finite) or a zero that C
//    gets too. While no guard fires every operation is C's; a block whose guard fired
//    (tiny inputs, or x^6-sized products of small ones) is handed to the CPU codec
//    (lib/bytes.wgsl's block_to_cpu). The K searches use these: small code, fast compile.

const KQ_EXP: u32 = 0x7f800000u;
const KQ_MIN_NORMAL: u32 = 0x00800000u;
/** Smallest magnitude (bits) a guarded result may have: 2^-125, twice the least normal. */
const KQ_SAFE_MIN: u32 = 0x01000000u;
/** ggml's GROUP_MAX_EPS, 1e-15f. */
const KQ_GROUP_MAX_EPS: f32 = bitcast<f32>(0x26901d7du);
/** 0.1f, -0.9f and 0.05f: the C literals of the search grids, as float. */
const KQ_ONE_TENTH: f32 = bitcast<f32>(0x3dcccccdu);
const KQ_NEG_0_9: f32 = bitcast<f32>(0xbf666666u);
const KQ_0_05: f32 = bitcast<f32>(0x3d4ccccdu);

// C's `x == 0` (false for NaN, true for -0).
fn kq_is_zero(x: f32) -> bool {
  return (bitcast<u32>(x) & F32_ABS) == 0u;
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

// ---- guarded f32 arithmetic -----------------------------------------------------------

/** Set when an operation of this block left the range where the GPU is exactly C. */
var<private> kq_inexact: bool;

// A result is trusted when it is normal (at least 2^-125, finite), or zero where C's is.
fn kg_guard(r: f32, exact_zero: bool) {
  let a = bitcast<u32>(r) & F32_ABS;
  // Non-short-circuit | and &: no branches (SwiftShader compiles branches slowly).
  kq_inexact = kq_inexact | (a >= F32_INF) | ((a < KQ_SAFE_MIN) & !((a == 0u) & exact_zero));
}

// C's a * b in float (a, b zero or normal).
fn kg_mul(a: f32, b: f32) -> f32 {
  let p = no_fuse(a * b);
  kg_guard(p, kq_is_zero(a) | kq_is_zero(b));
  return p;
}

// C's a + b and a - b in float: a zero sum is exact only when b == -a.
fn kg_add(a: f32, b: f32) -> f32 {
  let s = no_fuse(a + b);
  let ua = bitcast<u32>(a);
  let ub = bitcast<u32>(b);
  kg_guard(s, ((ua ^ ub) == F32_SIGN) | (((ua | ub) & F32_ABS) == 0u));
  return s;
}

fn kg_sub(a: f32, b: f32) -> f32 {
  return kg_add(a, -b);
}

// C's a / b in float, correctly rounded by lib/rounding.wgsl's long division on the
// significands (WGSL's division is only within 2.5 ULP). a, b zero or normal; a zero b or
// a result outside the normal range sets kq_inexact.
fn kg_div(a: f32, b: f32) -> f32 {
  let ua = bitcast<u32>(a);
  let ub = bitcast<u32>(b);
  let sign = (ua ^ ub) & F32_SIGN;
  let aa = ua & F32_ABS;
  let ab = ub & F32_ABS;
  kq_inexact = kq_inexact | (ab == 0u) | (aa >= F32_INF) | (ab >= F32_INF);
  if ((aa == 0u) | (ab == 0u)) {
    return bitcast<f32>(sign); // 0 / b = +-0
  }
  // lib/rounding.wgsl's long division: q = floor(ma / mb * 2^24), 25 bits, the top one set.
  let d = div_significands((aa & 0x7fffffu) | 0x800000u, (ab & 0x7fffffu) | 0x800000u);
  let q = d.x;
  let e = i32(aa >> 23u) - i32(ab >> 23u) + 127 - i32(d.z);
  var mant = q >> 1u;
  // Round half to even (a nonzero remainder d.y: above the half); a carry to 2^24 moves
  // into the exponent below.
  mant = mant + (q & 1u & (select(mant, 1u, d.y != 0u)));
  let bits = (u32(max(e, 1)) << 23u) + mant - 0x800000u;
  kq_inexact = kq_inexact | (e < 2) | (e > 253);
  return bitcast<f32>(sign | bits);
}

// sqrtf, correctly rounded (fdlibm e_sqrtf.c, bit by bit), for x zero or normal, >= 0.
fn kg_sqrt(x: f32) -> f32 {
  var ix = i32(bitcast<u32>(x));
  if (((ix & 0x7fffffff) < 0x00800000) | (ix >= 0x7f800000)) {
    kq_inexact = kq_inexact | (ix != 0);
    return x;
  }
  var m = (ix >> 23u) - 127;
  ix = (ix & 0x007fffff) | 0x00800000;
  if ((m & 1) != 0) {
    ix = ix + ix;
  }
  m = m >> 1u;
  ix = ix + ix;
  var q = 0;
  var s = 0;
  var r = 0x01000000;
  for (var i = 0; i < 25; i = i + 1) {
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

fn kq_clamp(v: i32, lo: i32, hi: i32) -> i32 {
  return select(select(v, lo, v < lo), hi, v > hi);
}

// Zero, normal and finite: a block input the guarded arithmetic can take.
fn kq_check_input(x: f32) {
  let a = bitcast<u32>(x) & F32_ABS;
  kq_inexact = kq_inexact | (a >= F32_INF) | ((a != 0u) & (a < KQ_MIN_NORMAL));
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
var<private> kq_sw: array<f32, 16>;   // the *_impl functions' per-sub-block weight sums

// make_qkx2_quants / make_qkx3_quants (kquants.ts makeQkxQuants): L in 0..nmax of
// x = scale*L - the_min over nstep+1 trial inverse scales; returns scale, sets kq_the_min.
// Pass is = -1 is C's first guess (scale 1/iscale, min as found). Trials skip quants equal
// to the previous trial's and stop an error sum once it reaches the best (non-negative
// weights): neither changes the outcome. Written with one copy of each operation, since
// SwiftShader's compile time grows faster than the code.
fn make_qkx_quants(n: u32, nmax: i32, rmin: f32, rdelta: f32, nstep: i32, use_mad: bool) -> f32 {
  var mn = kq_x[0];
  var mx = kq_x[0];
  var sum_w = kq_w[0];
  var sum_x = kg_mul(sum_w, kq_x[0]);
  var w_non_neg = kq_w[0] >= 0.0;
  for (var i = 1u; i < n; i = i + 1u) {
    let xi = kq_x[i];
    mn = select(mn, xi, xi < mn);
    mx = select(mx, xi, xi > mx);
    let w = kq_w[i];
    w_non_neg = w_non_neg & (w >= 0.0);
    sum_w = kg_add(sum_w, w);
    sum_x = kg_add(sum_x, kg_mul(w, xi));
  }
  if (mn > 0.0) {
    mn = 0.0;
  }
  if (mx == mn) {
    for (var i = 0u; i < n; i = i + 1u) {
      kq_l[i] = 0;
    }
    kq_the_min = -mn;
    return 0.0;
  }
  let fmax = f32(nmax);
  var range = 0.0;
  var moved = true; // min changed: refresh range and x - min
  var scale = 0.0;
  var best_error = 0.0;
  for (var is = -1; is <= nstep; is = is + 1) {
    if (moved) {
      range = kg_sub(mx, mn);
      for (var i = 0u; i < n; i = i + 1u) {
        kq_xs[i] = kg_sub(kq_x[i], mn);
      }
      moved = false;
    }
    let first = is < 0;
    let grid = kg_add(kg_add(rmin, kg_mul(rdelta, f32(is))), fmax);
    let iscale = kg_div(select(grid, fmax, first), range);
    var same = is > 0;
    for (var i = 0u; i < n; i = i + 1u) {
      let l = kq_clamp(kq_nearest_int(kg_mul(iscale, kq_xs[i])), 0, nmax);
      if (l != kq_laux[i]) {
        same = false;
        kq_laux[i] = l;
      }
    }
    if (same) {
      continue; // same sums, fit and error as the previous trial: it cannot win now
    }
    // The fit: first guess 1/iscale with the min as found, else weighted least squares.
    var num = 1.0;
    var den = iscale;
    var this_min = mn;
    if (!first) {
      var sum_l = 0.0;
      var sum_l2 = 0.0;
      var sum_xl = 0.0;
      for (var i = 0u; i < n; i = i + 1u) {
        let fl = f32(kq_laux[i]);
        let wl = kg_mul(kq_w[i], fl);
        sum_l = kg_add(sum_l, wl);
        sum_l2 = kg_add(sum_l2, kg_mul(wl, fl));
        sum_xl = kg_add(sum_xl, kg_mul(wl, kq_x[i]));
      }
      let D = kg_sub(kg_mul(sum_w, sum_l2), kg_mul(sum_l, sum_l));
      if (!(D > 0.0)) {
        continue;
      }
      this_min = kg_div(kg_sub(kg_mul(sum_l2, sum_x), kg_mul(sum_l, sum_xl)), D);
      num = kg_sub(kg_mul(sum_w, sum_xl), kg_mul(sum_x, sum_l));
      den = D;
      if (this_min > 0.0) {
        this_min = 0.0;
        num = sum_xl;
        den = sum_l2;
      }
    }
    let this_scale = kg_div(num, den);
    var err = 0.0;
    for (var i = 0u; i < n; i = i + 1u) {
      var diff = kg_sub(kg_add(kg_mul(this_scale, f32(kq_laux[i])), this_min), kq_x[i]);
      if (use_mad) {
        diff = abs(diff);
      } else {
        diff = kg_mul(diff, diff);
      }
      err = kg_add(err, kg_mul(kq_w[i], diff));
      if (!first & w_non_neg & (err >= best_error)) {
        break; // non-negative terms: the float sum cannot come back below the best
      }
    }
    if (first | (err < best_error)) {
      for (var i = 0u; i < n; i = i + 1u) {
        kq_l[i] = kq_laux[i];
      }
      best_error = err;
      scale = this_scale;
      moved = !first;
      mn = this_min;
    }
  }
  kq_the_min = -mn;
  return scale;
}

// The x of largest magnitude (the first one on ties) and that magnitude.
fn kq_signed_absmax(n: u32) -> vec2<f32> {
  var mx = 0.0;
  var amax = 0.0;
  for (var i = 0u; i < n; i = i + 1u) {
    let ax = abs(kq_x[i]);
    if (ax > amax) {
      amax = ax;
      mx = kq_x[i];
    }
  }
  return vec2<f32>(mx, amax);
}

// make_qx_quants with rmse_type 1 (kquants.ts makeQxQuants): L + nmax in 0..2*nmax-1 with
// weights kq_w (the caller fills x^2 where C has no weights); returns the scale. Pass
// is = -10 is C's first guess, then the trials is = -9..9 but 0.
fn make_qx_quants(n: u32, nmax: i32) -> f32 {
  let ma = kq_signed_absmax(n);
  if (ma.y < KQ_GROUP_MAX_EPS) {
    for (var i = 0u; i < n; i = i + 1u) {
      kq_l[i] = 0;
    }
    return 0.0;
  }
  for (var i = 0u; i < n; i = i + 1u) {
    kq_xs[i] = kg_mul(kq_w[i], kq_x[i]);
  }
  let fmax = f32(nmax);
  var scale = 0.0;
  var best = 0.0;
  for (var is = -10; is <= 9; is = is + 1) {
    if (is == 0) {
      continue;
    }
    let first = is == -10;
    let num = select(-kg_add(fmax, kg_mul(KQ_ONE_TENTH, f32(is))), -fmax, first);
    let iscale = kg_div(num, ma.x);
    var sumlx = 0.0;
    var suml2 = 0.0;
    for (var i = 0u; i < n; i = i + 1u) {
      let l = kq_clamp(kq_nearest_int(kg_mul(iscale, kq_x[i])), -nmax, nmax - 1);
      kq_laux[i] = l;
      let fl = f32(l);
      sumlx = kg_add(sumlx, kg_mul(kq_xs[i], fl));
      suml2 = kg_add(suml2, kg_mul(kg_mul(kq_w[i], fl), fl));
    }
    var better = first;
    if (suml2 > 0.0) {
      better = better | (kg_mul(sumlx, sumlx) > kg_mul(best, suml2));
    }
    if (better) {
      for (var i = 0u; i < n; i = i + 1u) {
        kq_l[i] = kq_laux[i] + nmax;
      }
      scale = 0.0;
      if (suml2 != 0.0) {
        scale = kg_div(sumlx, suml2);
      }
      best = kg_mul(scale, sumlx);
    }
  }
  return scale;
}

// make_q3_quants with do_rmse (kquants.ts makeQ3Quants): x^2 weights, quants refined one at
// a time; L + nmax in 0..2*nmax-1; returns the scale.
fn make_q3_quants(n: u32, nmax: i32) -> f32 {
  let ma = kq_signed_absmax(n);
  if (ma.y < KQ_GROUP_MAX_EPS) {
    for (var i = 0u; i < n; i = i + 1u) {
      kq_l[i] = 0;
    }
    return 0.0;
  }
  let iscale = kg_div(-f32(nmax), ma.x);
  var sumlx = 0.0;
  var suml2 = 0.0;
  for (var i = 0u; i < n; i = i + 1u) {
    let w = kg_mul(kq_x[i], kq_x[i]);
    kq_w[i] = w;
    kq_xs[i] = kg_mul(w, kq_x[i]);
    let l = kq_clamp(kq_nearest_int(kg_mul(iscale, kq_x[i])), -nmax, nmax - 1);
    kq_l[i] = l;
    let fl = f32(l);
    sumlx = kg_add(sumlx, kg_mul(kq_xs[i], fl));
    suml2 = kg_add(suml2, kg_mul(kg_mul(w, fl), fl));
  }
  for (var itry = 0; itry < 5; itry = itry + 1) {
    var changed = false;
    for (var i = 0u; i < n; i = i + 1u) {
      // Take value i out of the sums, try its best quant alone, keep it if the fit improves.
      let li = kq_l[i];
      var slx = sumlx;
      var sl2 = suml2;
      var l = li;
      for (var step = 0; step < 2; step = step + 1) {
        let fl = f32(l);
        let sign = select(-1.0, 1.0, step == 1);
        slx = kg_add(slx, sign * kg_mul(kq_xs[i], fl));
        sl2 = kg_add(sl2, sign * kg_mul(kg_mul(kq_w[i], fl), fl));
        if (step == 0) {
          if (!(slx > 0.0)) {
            break;
          }
          l = kq_clamp(kq_nearest_int(kg_div(kg_mul(kq_x[i], sl2), slx)), -nmax, nmax - 1);
          if (l == li) {
            break;
          }
        } else if (sl2 > 0.0) {
          if (kg_mul(kg_mul(slx, slx), suml2) > kg_mul(kg_mul(sumlx, sumlx), sl2)) {
            kq_l[i] = l;
            sumlx = slx;
            suml2 = sl2;
            changed = true;
          }
        }
      }
    }
    if (!changed) {
      break;
    }
  }
  for (var i = 0u; i < n; i = i + 1u) {
    kq_l[i] = kq_l[i] + nmax;
  }
  if (suml2 > 0.0) {
    return kg_div(sumlx, suml2);
  }
  return 0.0;
}

// make_qp_quants (kquants.ts makeQpQuants): levels L in 0..nmax (C's uint8_t: a negative
// int wraps) of the non-negative sub-block scales or mins in kq_x[0..n) under weights
// kq_w; returns the super-block scale. Pass is = -5 is C's first guess, then -4..4 but 0.
fn make_qp_quants(n: u32, nmax: i32) -> f32 {
  var mx = 0.0;
  for (var i = 0u; i < n; i = i + 1u) {
    mx = select(kq_x[i], mx, mx > kq_x[i]);
  }
  if (mx < KQ_GROUP_MAX_EPS) {
    for (var i = 0u; i < n; i = i + 1u) {
      kq_l[i] = 0;
    }
    return 0.0;
  }
  let fmax = f32(nmax);
  var iscale = 0.0;
  var best_mse = 0.0;
  for (var is = -5; is <= 4; is = is + 1) {
    if (is == 0) {
      continue;
    }
    let first = is == -5;
    let isc = kg_div(select(kg_add(kg_mul(KQ_ONE_TENTH, f32(is)), fmax), fmax, first), mx);
    let sc = kg_div(1.0, isc);
    var mse = 0.0;
    for (var i = 0u; i < n; i = i + 1u) {
      let l = kq_nearest_int(kg_mul(isc, kq_x[i]));
      // The first guess keeps C's uint8_t L; the trials the int min(nmax, l).
      let lv = select(f32(min(nmax, l)), f32(u32(l) & 0xffu), first);
      let diff = kg_sub(kq_x[i], kg_mul(sc, lv));
      mse = kg_add(mse, kg_mul(kg_mul(kq_w[i], diff), diff));
    }
    if (first | (mse < best_mse)) {
      best_mse = mse;
      iscale = isc;
    }
  }
  var sumlx = 0.0;
  var suml2 = 0.0;
  for (var i = 0u; i < n; i = i + 1u) {
    let l = min(nmax, kq_nearest_int(kg_mul(iscale, kq_x[i])));
    kq_l[i] = i32(u32(l) & 0xffu);
    let fl = f32(l); // the int l, not the stored uint8_t
    sumlx = kg_add(sumlx, kg_mul(kg_mul(kq_w[i], kq_x[i]), fl));
    suml2 = kg_add(suml2, kg_mul(kg_mul(kq_w[i], fl), fl));
  }
  for (var itry = 0; itry < 5; itry = itry + 1) {
    var changed = false;
    for (var i = 0u; i < n; i = i + 1u) {
      let w = kq_w[i];
      let li = kq_l[i];
      let fli = f32(li);
      let wx = kg_mul(w, kq_x[i]);
      var slx = kg_sub(sumlx, kg_mul(wx, fli));
      var sl2 = kg_sub(suml2, kg_mul(kg_mul(w, fli), fli));
      if ((slx > 0.0) & (sl2 > 0.0)) {
        let new_l = min(nmax, kq_nearest_int(kg_div(kg_mul(kq_x[i], sl2), slx)));
        if (new_l != li) {
          let fnl = f32(new_l);
          slx = kg_add(slx, kg_mul(wx, fnl));
          sl2 = kg_add(sl2, kg_mul(kg_mul(w, fnl), fnl));
          if (kg_mul(kg_mul(slx, slx), suml2) > kg_mul(kg_mul(sumlx, sumlx), sl2)) {
            kq_l[i] = i32(u32(new_l) & 0xffu);
            sumlx = slx;
            suml2 = sl2;
            changed = true;
          }
        }
      }
    }
    if (!changed) {
      break;
    }
  }
  if (suml2 > 0.0) {
    return kg_div(sumlx, suml2);
  }
  return 0.0;
}

// The *_impl functions' weights qw * sqrt(sigma2 + x^2) of values [at, at + n) into kq_w,
// the values into kq_x; returns the weights' sum (the K types' sw).
fn kq_fill_importance(at: u32, n: u32, sigma2: f32) -> f32 {
  var sum = 0.0;
  for (var l = 0u; l < n; l = l + 1u) {
    let x = val(at + l);
    kq_x[l] = x;
    let w = kg_mul(qw[at + l], kg_sqrt(kg_add(sigma2, kg_mul(x, x))));
    kq_w[l] = w;
    sum = kg_add(sum, w);
  }
  return sum;
}

// Sum of x^2 over values [at, at + n) of the block, in C order.
fn kq_sum_squares(at: u32, n: u32) -> f32 {
  var sum = 0.0;
  for (var i = 0u; i < n; i = i + 1u) {
    let x = val(at + i);
    sum = kg_add(sum, kg_mul(x, x));
  }
  return sum;
}

// Final quants with the stored scale d and min dm: L = clamp(nearest((x + dm) / d), 0, nmax)
// for values [at, at + n); a sub-block with d == 0 keeps the search's quants.
fn kq_requantize_with_min(at: u32, n: u32, nmax: i32, d: f32, dm: f32) {
  if (d == 0.0) {
    return;
  }
  for (var i = at; i < at + n; i = i + 1u) {
    kq_L[i] = kq_clamp(kq_nearest_int(kg_div(kg_add(val(i), dm), d)), 0, nmax);
  }
}

// Symmetric final quants for 16 values: L = clamp(nearest(x / d), nmin, nmax) - nmin.
fn kq_requantize_symmetric(at: u32, nmin: i32, nmax: i32, d: f32) {
  if (d == 0.0) {
    return;
  }
  for (var i = at; i < at + 16u; i = i + 1u) {
    kq_L[i] = kq_clamp(kq_nearest_int(kg_div(val(i), d)), nmin, nmax) - nmin;
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

// Start a super-block: clear the guard, check the inputs.
fn kq_begin_block() {
  kq_inexact = false;
  for (var i = 0u; i < BLOCK_SIZE; i = i + 1u) {
    kq_check_input(val(i));
  }
}

// Bytes [at, at + n) of the group = 0.
fn kq_zero_bytes(at: u32, n: u32) {
  for (var i = at; i < at + n; i = i + 1u) {
    st_u8(i, 0u);
  }
}

// get_scale_min_k4: sub-block j's 6-bit scale and min from Q4_K/Q5_K's 12 bytes at `at`.
fn kq_scale_min_k4(j: u32, at: u32) -> vec2<u32> {
  if (j < 4u) {
    return vec2<u32>(ld_u8(at + j) & 63u, ld_u8(at + j + 4u) & 63u);
  }
  let b = ld_u8(at + j + 4u);
  return vec2<u32>((b & 0xfu) | ((ld_u8(at + j - 4u) >> 6u) << 4u), (b >> 4u) | ((ld_u8(at + j) >> 6u) << 4u));
}

// Q4_K / Q5_K (quantize_row_q{4,5}_K_ref, or _impl with importance weights): 8 sub-blocks
// of 32 searched with make_qkx2_quants under weights sqrt(mean x^2) + |x| (ref), or
// make_qkx3_quants under qw * sqrt(sigma2 + x^2) (impl); 6-bit scale and min levels from
// the maxima (ref) or make_qp_quants (impl, `weighted`: the codec passes has_qw; clamped
// to 63 for Q5_K only, `clamp_impl`);
// d and dmin f16 at `base`, `base + 2`, the 12 scale bytes at `base + 4`; quants in kq_L.
fn kq_scales_mins_k4(base: u32, nmax: i32, rmin: f32, rdelta: f32, nstep: i32, clamp_impl: bool, weighted: bool) {
  var sigma2 = 0.0;
  if (weighted) {
    sigma2 = kg_mul(kg_mul(2.0, kq_sum_squares(0u, 256u)), 0.00390625);
  }
  var max_scale = 0.0;
  var max_min = 0.0;
  for (var j = 0u; j < 8u; j = j + 1u) {
    if (weighted) {
      kq_sw[j] = kq_fill_importance(32u * j, 32u, sigma2);
    } else {
      let av_x = kg_sqrt(kg_mul(kq_sum_squares(32u * j, 32u), 0.03125));
      for (var l = 0u; l < 32u; l = l + 1u) {
        let x = val(32u * j + l);
        kq_x[l] = x;
        kq_w[l] = kg_add(av_x, abs(x));
      }
    }
    let scale = make_qkx_quants(32u, nmax, select(rmin, KQ_NEG_0_9, weighted), select(rdelta, KQ_0_05, weighted),
                                select(nstep, 36, weighted), false);
    for (var l = 0u; l < 32u; l = l + 1u) {
      kq_L[32u * j + l] = kq_l[l];
    }
    kq_scales[j] = scale;
    kq_mins[j] = kq_the_min;
    max_scale = select(max_scale, scale, scale > max_scale);
    max_min = select(max_min, kq_the_min, kq_the_min > max_min);
  }
  // Levels: ls (k = 0) from the scales, lm (k = 1) from the mins, as C's uint8_t.
  var lv: array<u32, 16>;
  for (var k = 0u; k < 2u; k = k + 1u) {
    var d = 0.0;
    if (weighted) {
      for (var j = 0u; j < 8u; j = j + 1u) {
        kq_x[j] = select(kq_scales[j], kq_mins[j], k == 1u);
        kq_w[j] = kq_sw[j];
      }
      d = make_qp_quants(8u, 63);
      for (var j = 0u; j < 8u; j = j + 1u) {
        lv[8u * k + j] = select(u32(kq_l[j]), min(63u, u32(kq_l[j])), clamp_impl);
      }
    } else {
      let mx = select(max_scale, max_min, k == 1u);
      var inv = 0.0;
      if (mx > 0.0) {
        inv = kg_div(63.0, mx);
      }
      for (var j = 0u; j < 8u; j = j + 1u) {
        let v = select(kq_scales[j], kq_mins[j], k == 1u);
        lv[8u * k + j] = min(63u, u32(kq_nearest_int(kg_mul(inv, v))) & 0xffu);
      }
      d = kg_div(mx, 63.0);
    }
    st_u16(base + 2u * k, f32_to_f16_bits(d));
  }
  // The 12 scale bytes (kquants.ts packScalesMinsK4, uint8_t stores: levels above 63 from
  // make_qp_quants spill as C's do).
  for (var j = 0u; j < 4u; j = j + 1u) {
    st_u8(base + 4u + j, (lv[j] | ((lv[j + 4u] >> 4u) << 6u)) & 0xffu);
    st_u8(base + 8u + j, (lv[8u + j] | ((lv[j + 12u] >> 4u) << 6u)) & 0xffu);
    st_u8(base + 12u + j, ((lv[j + 4u] & 0xfu) | ((lv[j + 12u] & 0xfu) << 4u)) & 0xffu);
  }
  let d_all = f16_bits_to_f32(ld_u16(base));
  let m_all = f16_bits_to_f32(ld_u16(base + 2u));
  for (var j = 0u; j < 8u; j = j + 1u) {
    let sm = kq_scale_min_k4(j, base + 4u);
    kq_requantize_with_min(32u * j, 32u, nmax, kg_mul(d_all, f32(sm.x)), kg_mul(m_all, f32(sm.y)));
  }
}

// Q4_K / Q5_K dequantization of sub-block j: d * sc * q - dmin * m for its 32 quants.
// d * sc and dmin * m are exact (f16 times 6-bit ints), so are their products with q.
fn kq_dequantize_k4(base: u32, j: u32, q: ptr<function, array<u32, 32>>) {
  let sm = kq_scale_min_k4(j, base + 4u);
  let dl = f16_bits_to_f32(ld_u16(base)) * f32(sm.x);
  let ml = f16_bits_to_f32(ld_u16(base + 2u)) * f32(sm.y);
  for (var l = 0u; l < 32u; l = l + 1u) {
    set_val(32u * j + l, no_fuse(dl * f32((*q)[l])) - ml);
  }
}
