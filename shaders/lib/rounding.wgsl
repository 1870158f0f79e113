// C float semantics on the GPU, for codecs that must match ggml's reference byte for byte.
//
// WGSL guarantees correctly rounded f32 +, -, * (spec: "Floating point accuracy"), but:
//  - division and reciprocal are only accurate to 2.5 ULP: `div_rn` divides with integer
//    long division instead, so d = amax/127 and id = 1/d round exactly as the C code's do;
//  - a driver may contract a*b+c into one fma (SPIR-V without NoContraction, Metal), which
//    rounds once where C (gcc -O3, no FMA) rounds twice: `no_fuse` makes a product opaque
//    before it is added to anything;
//  - subnormals may be flushed by arithmetic and comparisons: comparisons and rounding to
//    integers here work on the bit patterns, which no flushing can touch;
//  - WGSL's round() is half to even, C's roundf is half away from zero: both are spelled
//    out (`roundf_i`, `nearest_int`) on the bits.

// Set by each kernel's main() from a uniform that is always 0. The compiler cannot know
// that, so x ^ fp_barrier is a real operation and a product passed through it is rounded
// to f32 before use: it can no longer be fused into an fma.
var<private> fp_barrier: u32;

fn no_fuse(x: f32) -> f32 {
  return bitcast<f32>(bitcast<u32>(x) ^ fp_barrier);
}

const F32_SIGN: u32 = 0x80000000u;
const F32_ABS: u32 = 0x7fffffffu;
const F32_INF: u32 = 0x7f800000u;
// x86's default NaN (0/0, inf/inf): what gcc-built ggml produces for invalid operations.
const F32_DEFAULT_NAN: u32 = 0xffc00000u;

fn is_nan_bits(b: u32) -> bool {
  return (b & F32_ABS) > F32_INF;
}

// Order-preserving key of a non-NaN f32, with -0 == +0 (as float comparison has it).
fn flt_key(b: u32) -> i32 {
  let mag = i32(b & F32_ABS);
  return select(mag, -mag, (b & F32_SIGN) != 0u);
}

// C's a < b on f32 bit patterns: false when either is NaN; exact on subnormals.
fn flt_lt(a: u32, b: u32) -> bool {
  if (is_nan_bits(a) || is_nan_bits(b)) {
    return false;
  }
  return flt_key(a) < flt_key(b);
}

// C's fabsf(a) < fabsf(b) on bit patterns (false on NaN).
fn fabs_lt(a: u32, b: u32) -> bool {
  return flt_lt(a & F32_ABS, b & F32_ABS);
}

// C's `x != 0.0f` on the bits (true for NaN, as in C; subnormals are non-zero).
fn is_nonzero(x: f32) -> bool {
  return (bitcast<u32>(x) & F32_ABS) != 0u;
}

// The long division of every exact f32 division here and in lib/kquant.wgsl (kg_div):
// significands ma, mb in [2^23, 2^24). When ma < mb it is doubled first (z = 1: the
// quotient's exponent is one less), then restoring division gives x = q = floor(ma / mb *
// 2^24), 25 bits with the top one set, and y = the remainder, zero iff the quotient is exact.
fn div_significands(ma: u32, mb: u32) -> vec3<u32> {
  let doubled = select(0u, 1u, ma < mb);
  var r = ma << doubled;
  var q = 0u;
  for (var i = 0u; i < 25u; i = i + 1u) {
    q = q << 1u;
    if (r >= mb) {
      r = r - mb;
      q = q | 1u;
    }
    r = r << 1u;
  }
  return vec3<u32>(q, r, doubled);
}

// Correctly rounded f32 division a / b (IEEE round to nearest even, subnormal results
// included), by restoring long division on the 24-bit significands: integer ops only.
fn div_rn(a: f32, b: f32) -> f32 {
  return bitcast<f32>(div_rn_bits(bitcast<u32>(a), bitcast<u32>(b)));
}

fn div_rn_bits(ua: u32, ub: u32) -> u32 {
  let sign = (ua ^ ub) & F32_SIGN;
  let aa = ua & F32_ABS;
  let ab = ub & F32_ABS;
  if (aa > F32_INF) {
    return ua | 0x00400000u; // quiet NaN, payload kept (x86)
  }
  if (ab > F32_INF) {
    return ub | 0x00400000u;
  }
  if (aa == F32_INF) {
    return select(sign | F32_INF, F32_DEFAULT_NAN, ab == F32_INF);
  }
  if (ab == F32_INF) {
    return sign;
  }
  if (ab == 0u) {
    return select(sign | F32_INF, F32_DEFAULT_NAN, aa == 0u);
  }
  if (aa == 0u) {
    return sign;
  }
  // Unpack to m * 2^(e - 150) with m in [2^23, 2^24); subnormals are normalized.
  var ea = i32(aa >> 23u);
  var ma = aa & 0x7fffffu;
  if (ea == 0) {
    let p = firstLeadingBit(ma);
    ma = ma << (23u - p);
    ea = i32(p) - 22;
  } else {
    ma = ma | 0x800000u;
  }
  var eb = i32(ab >> 23u);
  var mb = ab & 0x7fffffu;
  if (eb == 0) {
    let p = firstLeadingBit(mb);
    mb = mb << (23u - p);
    eb = i32(p) - 22;
  } else {
    mb = mb | 0x800000u;
  }
  // q = floor(ma / mb * 2^24) once ma / mb is in [1, 2); e: the quotient's biased exponent.
  let d = div_significands(ma, mb);
  let q = d.x;
  var e = ea - eb + 127 - i32(d.z);
  if (e >= 255) {
    return sign | F32_INF;
  }
  var sticky = d.y != 0u;
  var mant: u32;
  var guard: u32;
  if (e >= 1) {
    mant = q >> 1u;
    guard = q & 1u;
  } else {
    // Subnormal result: value = q * 2^(e - 151) = (q >> (2 - e)) * 2^-149.
    let s = u32(2 - e);
    if (s >= 26u) {
      mant = 0u;
      guard = 0u;
      sticky = true;
    } else {
      mant = q >> s;
      guard = (q >> (s - 1u)) & 1u;
      sticky = sticky || (q & ((1u << (s - 1u)) - 1u)) != 0u;
    }
  }
  if (guard == 1u && (sticky || (mant & 1u) == 1u)) {
    mant = mant + 1u;
  }
  if (e >= 1) {
    if (mant == 0x1000000u) {
      mant = 0x800000u;
      e = e + 1;
      if (e >= 255) {
        return sign | F32_INF;
      }
    }
    return sign | (u32(e) << 23u) | (mant & 0x7fffffu);
  }
  return sign | mant; // a carry to 0x800000 is the smallest normal, as it should be
}

// Round |x| (bits, finite, |x| < 2^31) to an integer magnitude at a binary point; `even`
// picks ties to even (ggml's nearest_int), else ties away from zero (C roundf).
fn round_mag_bits(a: u32, even: bool) -> u32 {
  if (a < 0x3f000000u) {
    return 0u; // |x| < 0.5
  }
  let e = i32(a >> 23u) - 127; // >= -1
  let mant = (a & 0x7fffffu) | 0x800000u;
  if (e >= 23) {
    return mant << u32(min(e - 23, 8)); // already an integer
  }
  let sh = u32(23 - e); // 1..24
  let q = mant >> sh;
  let rem = mant & ((1u << sh) - 1u);
  let half = 1u << (sh - 1u);
  if (rem > half || (rem == half && (!even || (q & 1u) == 1u))) {
    return q + 1u;
  }
  return q;
}

// ggml's nearest_int(x): x + 1.5*2^23 in f32, i.e. round half to even (|x| <= 2^22).
fn nearest_int(x: f32) -> i32 {
  let b = bitcast<u32>(x);
  let m = i32(round_mag_bits(b & F32_ABS, true));
  return select(m, -m, (b & F32_SIGN) != 0u);
}

// (int)roundf(x): round half away from zero (|x| < 2^31).
fn roundf_i(x: f32) -> i32 {
  let b = bitcast<u32>(x);
  let m = i32(round_mag_bits(b & F32_ABS, false));
  return select(m, -m, (b & F32_SIGN) != 0u);
}

// C's (int8_t)(x) as gcc on x86 does it for |x| < 2^31: truncate to int32, keep the low
// byte, sign-extended.
fn c_int8(x: f32) -> i32 {
  return (i32(x) << 24u) >> 24u;
}

// C's (uint8_t)(x) likewise: truncate, keep the low byte.
fn c_uint8(x: f32) -> u32 {
  return u32(i32(x)) & 0xffu;
}
