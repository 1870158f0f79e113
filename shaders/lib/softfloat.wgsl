// C float products and sums that stay exact where devices are not: IEEE f32, round to
// nearest even, subnormal operands and results included (gcc's C on x86 without FMA).
// Uses lib/rounding.wgsl (no_fuse, F32_* constants).
//
// WGSL's f32 * and + are correctly rounded, but a device may flush subnormal operands and
// results to zero (SwiftShader does). sf_mul / sf_add take the hardware result when it is
// provably C's (operands zero, normal, inf or NaN; result at least twice the least normal
// or exactly zero where C's is) and otherwise compute it from the bits. Each function
// holds its bit-level path once: SwiftShader inlines every call, so codecs call these from
// few places (in loops), never from unrolled code.

const SF_MIN_NORMAL: u32 = 0x00800000u;

// Round (m + s) * 2^e to f32 bits, m with bit 31 set, s in [0, 1) non-zero iff `sticky`;
// `sign` the sign bit. Subnormal results and overflow included.
fn sf_round_pack(sign: u32, m: u32, e: i32, sticky: bool) -> u32 {
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
    st = true;
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
  // (k + 149) << 23 plus a 24-bit mantissa: biased exponent and fraction at once, for
  // normal and subnormal results, a carry into the next binade included.
  return sign | ((u32(k + 149) << 23u) + mant);
}

// |x| = m * 2^(e - 150) with m's leading bit at 23, for a finite non-zero magnitude a.
fn sf_unpack(a: u32) -> vec2<i32> {
  let e = i32(a >> 23u);
  let m = a & 0x7fffffu;
  if (e == 0) {
    let p = firstLeadingBit(m);
    return vec2<i32>(i32(m << (23u - p)), i32(p) - 22);
  }
  return vec2<i32>(i32(m | 0x800000u), e);
}

// C's a * b in float.
fn sf_mul(a: f32, b: f32) -> f32 {
  let p = no_fuse(a * b);
  let ua = bitcast<u32>(a);
  let ub = bitcast<u32>(b);
  let aa = ua & F32_ABS;
  let ab = ub & F32_ABS;
  let ap = bitcast<u32>(p) & F32_ABS;
  if (aa > F32_INF || ab > F32_INF || aa == 0u || ab == 0u ||
      (aa >= SF_MIN_NORMAL && ab >= SF_MIN_NORMAL && ap >= 2u * SF_MIN_NORMAL)) {
    return p; // NaN, a zero (0 * inf is NaN there too), or normal operands and result
  }
  if (aa == F32_INF || ab == F32_INF) {
    return bitcast<f32>(((ua ^ ub) & F32_SIGN) | F32_INF); // inf * subnormal is inf, not NaN
  }
  // The 48-bit product of the significands, hi * 2^32 + lo, from 16-bit halves.
  let pa = sf_unpack(aa);
  let pb = sf_unpack(ab);
  let ma = u32(pa.x);
  let mb = u32(pb.x);
  let ll = (ma & 0xffffu) * (mb & 0xffffu);
  let mid = (ma & 0xffffu) * (mb >> 16u) + (ma >> 16u) * (mb & 0xffffu); // < 2^25
  let lo = ll + (mid << 16u);
  let hi = (ma >> 16u) * (mb >> 16u) + (mid >> 16u) + select(0u, 1u, lo < ll);
  let lz = countLeadingZeros(hi); // the product is in [2^46, 2^48): hi has 15 or 16 bits
  let m = (hi << lz) | (lo >> (32u - lz));
  return bitcast<f32>(sf_round_pack((ua ^ ub) & F32_SIGN, m, pa.y + pb.y - 268 - i32(lz), (lo << lz) != 0u));
}

// C's a + b in float.
fn sf_add(a: f32, b: f32) -> f32 {
  let s = no_fuse(a + b);
  let ua = bitcast<u32>(a);
  let ub = bitcast<u32>(b);
  let aa = ua & F32_ABS;
  let ab = ub & F32_ABS;
  let as_ = bitcast<u32>(s) & F32_ABS;
  let normal_ops = (aa == 0u || aa >= SF_MIN_NORMAL) && (ab == 0u || ab >= SF_MIN_NORMAL);
  // A zero sum of normal operands is exact only for b == -a (or two zeros).
  if (aa >= F32_INF || ab >= F32_INF ||
      (normal_ops && (as_ >= 2u * SF_MIN_NORMAL || (aa == ab && (as_ == 0u || aa == 0u))))) {
    return s;
  }
  if (aa == 0u) {
    return b; // a subnormal b (0 + b)
  }
  if (ab == 0u) {
    return a;
  }
  // x the larger magnitude; significands with 7 guard bits: value = m * 2^(e - 157).
  let swap = ab > aa;
  let x = select(ua, ub, swap);
  let y = select(ub, ua, swap);
  let ax = x & F32_ABS;
  let ay = y & F32_ABS;
  let ex = max(i32(ax >> 23u), 1);
  let ey = max(i32(ay >> 23u), 1);
  let mx = ((ax & 0x7fffffu) | select(0u, 0x800000u, ax >= SF_MIN_NORMAL)) << 7u;
  var my = ((ay & 0x7fffffu) | select(0u, 0x800000u, ay >= SF_MIN_NORMAL)) << 7u;
  let d = u32(ex - ey);
  if (d >= 31u) {
    my = select(0u, 1u, my != 0u);
  } else if (d > 0u) {
    my = (my >> d) | select(0u, 1u, (my & ((1u << d) - 1u)) != 0u); // sticky below the guard bits
  }
  let sum = select(mx - my, mx + my, ((x ^ y) & F32_SIGN) == 0u);
  if (sum == 0u) {
    return 0.0; // exact cancellation: +0
  }
  let lz = countLeadingZeros(sum);
  return bitcast<f32>(sf_round_pack(x & F32_SIGN, sum << lz, ex - 157 - i32(lz), false));
}

// C's a - b in float.
fn sf_sub(a: f32, b: f32) -> f32 {
  return sf_add(a, sf_neg(b));
}

// -x and fabsf(x) on the bits (arithmetic may flush a subnormal).
fn sf_neg(x: f32) -> f32 {
  return bitcast<f32>(bitcast<u32>(x) ^ F32_SIGN);
}

fn sf_abs(x: f32) -> f32 {
  return bitcast<f32>(bitcast<u32>(x) & F32_ABS);
}

// C's a < b on floats (false with NaN; -0 == +0; exact on subnormals).
fn sf_lt(a: f32, b: f32) -> bool {
  return flt_lt(bitcast<u32>(a), bitcast<u32>(b));
}

// clamp(round half to even(v), lo, hi) (torch.round, then clamp) for non-NaN v, any size;
// lo <= 0 <= hi, |lo|, |hi| < 2^22. Callers test NaN first.
fn round_even_clamp(v: f32, lo: i32, hi: i32) -> i32 {
  let b = bitcast<u32>(v);
  if (flt_lt(b, bitcast<u32>(f32(lo)))) {
    return lo;
  }
  if (flt_lt(bitcast<u32>(f32(hi)), b)) {
    return hi;
  }
  return clamp(nearest_int(v), lo, hi);
}
