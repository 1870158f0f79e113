// Double-f32 arithmetic (a value is hi + lo, vec2(hi, lo), |lo| <= ulp(hi) / 2: ~48 bits),
// for the steps whose outputs reach gemma's GeGLU, so that they round to f32 once, as the
// CPU reference's f64 does (an f32 ulp there can become an f16 step in the GELU table).
// Needs lib/rounding.wgsl's no_fuse (fp_barrier set by the kernel): every product is made
// of exact partial products of 12-bit halves, so no fma contraction changes a result.

// a + b exactly as (sum, error) (TwoSum; WGSL's + and - are correctly rounded).
fn df_two_sum(a: f32, b: f32) -> vec2<f32> {
  let s = no_fuse(a + b);
  let bb = no_fuse(s - a);
  return vec2<f32>(s, (a - (s - bb)) + (b - bb));
}

// hi + lo renormalized (|hi| >= |lo| or hi == 0).
fn df_norm(hi: f32, lo: f32) -> vec2<f32> {
  let s = no_fuse(hi + lo);
  return vec2<f32>(s, lo - no_fuse(s - hi));
}

// The top 12 significant bits of v; v - df_half(v) is exact.
fn df_half(v: f32) -> f32 {
  return bitcast<f32>(bitcast<u32>(v) & 0xfffff000u);
}

// a * b exactly (to ~2^-48 relative): four exact partial products summed with TwoSum.
fn df_two_prod(a: f32, b: f32) -> vec2<f32> {
  let ah = df_half(a);
  let al = a - ah;
  let bh = df_half(b);
  let bl = b - bh;
  let s1 = df_two_sum(no_fuse(ah * bh), no_fuse(ah * bl));
  let s2 = df_two_sum(s1.x, no_fuse(al * bh));
  let s3 = df_two_sum(s2.x, no_fuse(al * bl));
  return df_norm(s3.x, s1.y + s2.y + s3.y);
}

fn df_add(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let s = df_two_sum(a.x, b.x);
  let t = df_two_sum(a.y, b.y);
  let u = df_norm(s.x, s.y + t.x);
  return df_norm(u.x, u.y + t.y);
}

fn df_mul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let p = df_two_prod(a.x, b.x);
  return df_norm(p.x, p.y + (no_fuse(a.x * b.y) + no_fuse(a.y * b.x)));
}

fn df_mul_f(a: vec2<f32>, b: f32) -> vec2<f32> {
  let p = df_two_prod(a.x, b);
  return df_norm(p.x, p.y + no_fuse(a.y * b));
}

// a / b: the f32 quotient corrected twice by the DF remainder.
fn df_div(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let q1 = a.x / b.x;
  let r1 = df_add(a, -df_mul_f(b, q1));
  let q2 = r1.x / b.x;
  let r2 = df_add(r1, -df_mul_f(b, q2));
  let q3 = r2.x / b.x;
  let q = df_two_sum(q1, q2);
  return df_norm(q.x, q.y + q3);
}

// 1 / sqrt(v), v > 0: f32's estimate, then two Newton steps in DF (r += r (1 - v r^2) / 2).
fn df_rsqrt(v: vec2<f32>) -> vec2<f32> {
  var r = vec2<f32>(inverseSqrt(v.x), 0.0);
  for (var i = 0; i < 2; i = i + 1) {
    let e = df_add(vec2<f32>(1.0, 0.0), -df_mul(v, df_mul(r, r)));
    r = df_add(r, df_mul(r, e) * 0.5);
  }
  return r;
}

// exp(r) - 1 for |r| <= 0.36: Taylor to r^14 in Horner form r (1 + r/2 (1 + r/3 (...))).
fn df_expm1_small(r: vec2<f32>) -> vec2<f32> {
  var p = vec2<f32>(1.0, 0.0);
  for (var k = 14; k >= 2; k = k - 1) {
    p = df_add(vec2<f32>(1.0, 0.0), df_div(df_mul(r, p), vec2<f32>(f32(k), 0.0)));
  }
  return df_mul(r, p);
}

const DF_LN2_HI: f32 = 0.693145751953125; // 15 significant bits: k * DF_LN2_HI is exact
const DF_LN2_LO: f32 = 1.4286068203094173e-06;

// exp(x): x = k ln2 + r, |r| <= ln2 / 2, exp(x) = 2^k (1 + expm1(r)).
fn df_exp(x: vec2<f32>) -> vec2<f32> {
  if (x.x < -80.0) {
    return vec2<f32>(0.0, 0.0);
  }
  let k = round(x.x / 0.6931471805599453);
  let r = df_add(df_add(x, vec2<f32>(-k * DF_LN2_HI, 0.0)), -df_two_prod(k, DF_LN2_LO));
  let e = df_add(vec2<f32>(1.0, 0.0), df_expm1_small(r));
  let s = bitcast<f32>(u32(i32(k) + 127) << 23u); // 2^k, built on the bits (exact)
  return vec2<f32>(e.x * s, e.y * s);
}

fn df_expm1(x: vec2<f32>) -> vec2<f32> {
  if (abs(x.x) <= 0.34) {
    return df_expm1_small(x);
  }
  return df_add(df_exp(x), vec2<f32>(-1.0, 0.0));
}

// tanh(y) = sign(y) e / (e + 2), e = expm1(2|y|): no cancellation near 0.
fn df_tanh(y: vec2<f32>) -> vec2<f32> {
  if (abs(y.x) > 20.0) {
    return vec2<f32>(sign(y.x), 0.0);
  }
  let a = select(y, -y, y.x < 0.0);
  let e = df_expm1(a * 2.0);
  let t = df_div(e, df_add(e, vec2<f32>(2.0, 0.0)));
  return select(t, -t, y.x < 0.0);
}

// The f32 nearest hi + lo (hi is already fl(hi + lo) after df_norm).
fn df_round(a: vec2<f32>) -> f32 {
  return a.x + a.y;
}
