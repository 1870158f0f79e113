// AssemblyScript: the fast codecs' shared C float helpers and ggml's scale searches
// (ggml-org/ggml src/ggml-quants.c: nearest_int, make_qx_quants, make_q3_quants,
// make_qkx2_quants / make_qkx3_quants, make_qp_quants; ggml-impl.h: the fp32 <-> fp16
// conversions without F16C). Ported from the TypeScript reference codecs
// (src/quant/codecs/{rounding,search}.ts), which stay the oracle: WebAssembly's f32
// arithmetic is IEEE single precision, one rounding per operation and never fused, as
// gcc -O3 compiles ggml's scalar C, so each `f32(...)` of the reference is simply an f32
// operation here.
//
// What the fast path does not reproduce, it reports instead: NaN bits. A row whose input
// or importance holds Inf or NaN, or that would store a NaN scale, sets `rowNeedsReference`
// and the JavaScript side encodes that row with the reference codec (src/quant/fast/).

/** Set by a codec when the current row must be redone by the reference codec. */
export let rowNeedsReference = false;

export function clearRowFlag(): void {
  rowNeedsReference = false;
}

export function flagRow(): void {
  rowNeedsReference = true;
}

/** ggml's GROUP_MAX_EPS. */
export const GROUP_MAX_EPS: f32 = 1e-15;
export const ONE_TENTH: f32 = 0.1;
export const FLT_MAX: f32 = 3.4028234663852886e38;

// ---------------------------------------------------------------------------------------
// Scratch (the C code's stack arrays); the largest group is 32 values.

export const xShifted = memory.data(32 * 4, 16); // f32: x - min of the current qkx group
export const wTimesX = memory.data(32 * 4, 16); // f32: w*x
export const symWeights = memory.data(32 * 4, 16); // f32
export const candidateL = memory.data(32, 16); // u8: Laux
export const candidateLSigned = memory.data(32, 16); // i8
export const groupWeights = memory.data(32 * 4, 16); // f32: per-value weights of a group
const candidateQ3 = memory.data(32 * 4, 16); // f32: make_q3_quants' first quants

@inline export function ldf(p: usize, i: i32): f32 {
  return load<f32>(p + ((<usize>i) << 2));
}
@inline export function stf(p: usize, i: i32, v: f32): void {
  store<f32>(p + ((<usize>i) << 2), v);
}
@inline export function ldu8(p: usize, i: i32): i32 {
  return <i32>load<u8>(p + <usize>i);
}
@inline export function stu8(p: usize, i: i32, v: i32): void {
  store<u8>(p + <usize>i, <u8>v);
}
@inline export function ldi8(p: usize, i: i32): i32 {
  return <i32>load<i8>(p + <usize>i);
}

/** ggml's nearest_int, literally: the integer in the mantissa of fval + 1.5*2^23. */
@inline export function nearestInt(fval: f32): i32 {
  const val: f32 = fval + <f32>12582912.0;
  return (reinterpret<i32>(val) & 0x007fffff) - 0x00400000;
}

@inline export function clampInt(v: i32, lo: i32, hi: i32): i32 {
  return v > hi ? hi : v < lo ? lo : v;
}

/** x86's cvttss2si (C's (int)x): truncation, 0x80000000 for NaN and out of range. */
@inline export function cvtInt(x: f32): i32 {
  return abs<f32>(x) < <f32>2147483648.0 ? <i32>x : 0x80000000;
}

/** ggml_compute_fp32_to_fp16 (no F16C), as src/formats/float16.ts; a NaN flags the row. */
export function f32ToF16(x: f32): i32 {
  if (isNaN<f32>(x)) rowNeedsReference = true;
  return f32ToF16Bits(x);
}

/** f32ToF16 without the NaN check (inlined where the caller knows x is not a NaN). */
@inline export function f32ToF16Bits(x: f32): i32 {
  const w = reinterpret<u32>(x);
  const shl1 = w << 1;
  const sign = (w >> 16) & 0x8000;
  let base: f32 = abs<f32>(x) * reinterpret<f32>(0x77800000) * reinterpret<f32>(0x08800000); // * 2^112 * 2^-110
  let bias = shl1 & 0xff000000;
  if (bias < 0x71000000) bias = 0x71000000;
  base = reinterpret<f32>((bias >> 1) + 0x07800000) + base;
  const bits = reinterpret<u32>(base);
  const nonsign = ((bits >> 13) & 0x7c00) + (bits & 0x0fff);
  return <i32>(sign | (shl1 > 0xff000000 ? 0x7e00 : nonsign));
}

/** Exact f16 bits -> f32 (for finite values; callers check the exponent first). */
export function f16ToF32(h: i32): f32 {
  const sign: u32 = (<u32>h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp == 0) {
    const v: f32 = <f32>mant * reinterpret<f32>(0x33800000); // * 2^-24, exact
    return sign ? -v : v;
  }
  if (exp == 31) return reinterpret<f32>(sign | 0x7f800000 | (<u32>mant << 13));
  return reinterpret<f32>(sign | (<u32>(exp + 112) << 23) | (<u32>mant << 13));
}

@inline export function storeF16(p: usize, x: f32): void {
  store<u16>(p, <u16>f32ToF16(x));
}

@inline export function loadF16(p: usize): f32 {
  return f16ToF32(<i32>load<u16>(p));
}

/** True when every value of x[0..n) is finite (n a multiple of 16; NaN propagates through max). */
export function allFinite(x: usize, n: i32): bool {
  let m0 = f32x4.splat(0);
  let m1 = m0;
  for (let i = 0; i < n; i += 16) {
    const p = x + ((<usize>i) << 2);
    m0 = f32x4.max(m0, f32x4.max(f32x4.abs(v128.load(p)), f32x4.abs(v128.load(p, 16))));
    m1 = f32x4.max(m1, f32x4.max(f32x4.abs(v128.load(p, 32)), f32x4.abs(v128.load(p, 48))));
  }
  return i32x4.all_true(f32x4.le(f32x4.max(m0, m1), f32x4.splat(FLT_MAX)));
}

/**
 * The value of largest magnitude (the first of equal ones; 0 when all are zero), as ggml's
 * amax loops, for n a multiple of 4: the magnitude four lanes at a time, then its first
 * value by bitmask (no data-dependent branch per value). A NaN (skipped by the C's `>`)
 * sends it to the C's loop.
 */
@inline export function maxByMagnitude(x: usize, n: i32): f32 {
  let a = f32x4.abs(v128.load(x));
  for (let j = 4; j < n; j += 4) a = f32x4.max(a, f32x4.abs(v128.load(x + ((<usize>j) << 2))));
  const amax = max<f32>(max<f32>(f32x4.extract_lane(a, 0), f32x4.extract_lane(a, 1)), max<f32>(f32x4.extract_lane(a, 2), f32x4.extract_lane(a, 3)));
  if (amax == 0) return 0;
  if (isNaN<f32>(amax)) return maxByMagnitudeC(x, n);
  const a4 = f32x4.splat(amax);
  for (let j = 0; j < n; j += 4) {
    const hit = i32x4.bitmask(f32x4.eq(f32x4.abs(v128.load(x + ((<usize>j) << 2))), a4));
    if (hit) return ldf(x, j + ctz<i32>(hit));
  }
  return 0; // not reached
}

/** The C's loop: `if (ax > amax) { amax = ax; max = x[i]; }`. */
function maxByMagnitudeC(x: usize, n: i32): f32 {
  let mx: f32 = 0;
  let amax: f32 = 0;
  for (let i = 0; i < n; i++) {
    const v = ldf(x, i);
    const ax = abs<f32>(v);
    if (ax > amax) {
      amax = ax;
      mx = v;
    }
  }
  return mx;
}

/** Sum of x^2 in C order. */
export function sumOfSquares(x: usize, n: i32): f32 {
  let sum: f32 = 0;
  for (let i = 0; i < n; i++) {
    const v = ldf(x, i);
    sum += v * v;
  }
  return sum;
}

/** The _impl functions' weights qw * sqrtf(sigma2 + x^2) into out; returns their sum. */
export function fillImportanceWeights(out: usize, n: i32, x: usize, qw: usize, sigma2: f32): f32 {
  let sum: f32 = 0;
  for (let l = 0; l < n; l++) {
    const xl = ldf(x, l);
    const w: f32 = ldf(qw, l) * sqrt<f32>(sigma2 + xl * xl);
    stf(out, l, w);
    sum += w;
  }
  return sum;
}

/**
 * make_qx_quants (rmse_type 1): L (int8, stored + nmax); weights at `weights`, or x^2
 * when it is 0. Its 18 trials do not depend on each other (only the choice among them
 * does), so they run four at a time, one per SIMD lane, each lane's sums in the C's order;
 * then the lanes are judged in the C's order.
 */
export function makeQxQuants(n: i32, nmax: i32, x: usize, L: usize, weights: usize): f32 {
  const mx = maxByMagnitude(x, n);
  if (abs<f32>(mx) < GROUP_MAX_EPS) {
    memory.fill(L, 0, n);
    return 0;
  }
  const w = symWeights;
  for (let i = 0; i < n; i++) {
    const xi = ldf(x, i);
    const wi: f32 = weights ? ldf(weights, i) : xi * xi;
    stf(w, i, wi);
    stf(wTimesX, i, wi * xi);
  }
  let scale: f32 = 0;
  let best: f32 = 0;
  const lo = i32x4.splat(-nmax);
  const hi = i32x4.splat(nmax - 1);
  const zero4 = f32x4.splat(0);
  const q = laneQuants;
  const fnmax = <f32>nmax;
  // Lane t = 0 is the first guess, -nmax/max; t = 1..18 are the trials is = -9..-1, 1..9.
  for (let t = 0; t < 19; t += 4) {
    const lanes = min<i32>(4, 19 - t);
    let iscale = f32x4.splat(t == 0 ? <f32>(-nmax) / mx : -(fnmax + ONE_TENTH * <f32>trialIs(t)) / mx);
    iscale = f32x4.replace_lane(iscale, 1, -(fnmax + ONE_TENTH * <f32>trialIs(t + 1)) / mx);
    iscale = f32x4.replace_lane(iscale, 2, -(fnmax + ONE_TENTH * <f32>trialIs(t + 2)) / mx);
    iscale = f32x4.replace_lane(iscale, 3, -(fnmax + ONE_TENTH * <f32>trialIs(t + 3)) / mx);
    let slx = zero4;
    let sl2 = zero4;
    for (let i = 0; i < n; i += 2) {
      // Two values a turn (n is even): less loop overhead, same order.
      const fl0 = f32x4.convert_i32x4_s(nearestClamp4(f32x4.mul(iscale, f32x4.splat(ldf(x, i))), lo, hi));
      const fl1 = f32x4.convert_i32x4_s(nearestClamp4(f32x4.mul(iscale, f32x4.splat(ldf(x, i + 1))), lo, hi));
      v128.store(q + ((<usize>i) << 4), fl0);
      v128.store(q + ((<usize>i) << 4), fl1, 16);
      slx = f32x4.add(f32x4.add(slx, f32x4.mul(f32x4.splat(ldf(wTimesX, i)), fl0)), f32x4.mul(f32x4.splat(ldf(wTimesX, i + 1)), fl1));
      sl2 = f32x4.add(
        f32x4.add(sl2, f32x4.mul(f32x4.mul(f32x4.splat(ldf(w, i)), fl0), fl0)),
        f32x4.mul(f32x4.mul(f32x4.splat(ldf(w, i + 1)), fl1), fl1),
      );
    }
    v128.store(laneScratch, slx);
    v128.store(laneScratch + 16, sl2);
    for (let k = 0; k < lanes; k++) {
      const kOff = (<usize>k) << 2;
      const lx = load<f32>(laneScratch + kOff);
      const l2 = load<f32>(laneScratch + 16 + kOff);
      if (t + k == 0) {
        // The first guess: its quants stand, and its fit is the one to beat.
        for (let i = 0; i < n; i++) stu8(L, i, <i32>load<f32>(q + ((<usize>i) << 4)) + nmax);
        scale = l2 != 0 ? lx / l2 : 0;
        best = scale * lx;
      } else if (l2 > 0 && lx * lx > best * l2) {
        for (let i = 0; i < n; i++) stu8(L, i, <i32>load<f32>(q + ((<usize>i) << 4) + kOff) + nmax);
        scale = lx / l2;
        best = scale * lx;
      }
    }
  }
  return scale;
}

/** make_qx_quants' trial lane t (1..18) is is = -9..-1, 1..9 (past 18: anything, unused). */
@inline function trialIs(t: i32): i32 {
  return t < 10 ? t - 10 : t - 9;
}


/** make_q3_quants with do_rmse: L stored + nmax. */
export function makeQ3Quants(n: i32, nmax: i32, x: usize, L: usize): f32 {
  const mx = maxByMagnitude(x, n);
  if (abs<f32>(mx) < GROUP_MAX_EPS) {
    memory.fill(L, 0, n);
    return 0;
  }
  const w = symWeights;
  const iscale: f32 = <f32>(-nmax) / mx;
  // Weights x^2, w*x and the first quants: elementwise, four lanes at a time (n a multiple of 4).
  const is4 = f32x4.splat(iscale);
  const lo = i32x4.splat(-nmax);
  const hi = i32x4.splat(nmax - 1);
  const fq = candidateQ3;
  for (let i = 0; i < n; i += 4) {
    const off = (<usize>i) << 2;
    const xi = v128.load(x + off);
    const wi = f32x4.mul(xi, xi);
    v128.store(w + off, wi);
    v128.store(wTimesX + off, f32x4.mul(wi, xi));
    v128.store(fq + off, f32x4.convert_i32x4_s(nearestClamp4(f32x4.mul(is4, xi), lo, hi)));
  }
  let sumlx: f32 = 0;
  let suml2: f32 = 0;
  for (let i = 0; i < n; i++) {
    const fl = ldf(fq, i);
    store<i8>(L + <usize>i, <i8>(<i32>fl));
    sumlx += ldf(wTimesX, i) * fl;
    suml2 += ldf(w, i) * fl * fl;
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const li = ldi8(L, i);
      const fli = <f32>li;
      let slx: f32 = sumlx - ldf(wTimesX, i) * fli;
      if (slx > 0) {
        let sl2: f32 = suml2 - ldf(w, i) * fli * fli;
        const newL = clampInt(nearestInt((ldf(x, i) * sl2) / slx), -nmax, nmax - 1);
        if (newL != li) {
          const fnl = <f32>newL;
          slx = slx + ldf(wTimesX, i) * fnl;
          sl2 = sl2 + ldf(w, i) * fnl * fnl;
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            store<i8>(L + <usize>i, <i8>newL);
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (changed == 0) break;
  }
  for (let i = 0; i < n; i++) stu8(L, i, ldi8(L, i) + nmax);
  return suml2 > 0 ? sumlx / suml2 : 0;
}

/** A trial lane's residual (scale*l + min) - x for value i, l read from the lane quants at q. */
@inline function residual4(q: usize, i: i32, scale: v128, mn: v128, x: usize): v128 {
  return f32x4.sub(f32x4.add(f32x4.mul(scale, v128.load(q + ((<usize>i) << 4))), mn), f32x4.splat(ldf(x, i)));
}

/** xShifted[i] = x[i] - mn (n a multiple of 4), four lanes at a time. */
@inline function shiftValues(x: usize, n: i32, mn: f32): void {
  const m4 = f32x4.splat(mn);
  for (let i = 0; i < n; i += 4) v128.store(xShifted + ((<usize>i) << 2), f32x4.sub(v128.load(x + ((<usize>i) << 2)), m4));
}

// Scratch of the four-trial searches: a trial's quants (f32) per value, lane = trial.
const laneQuants = memory.data(32 * 16, 16);
const laneScratch = memory.data(64, 16); // four v128 spilled to read lanes by index

/** ggml's nearest_int on four lanes, clamped to [lo, hi]: as nearestInt and clampInt. */
@inline export function nearestClamp4(v: v128, lo: v128, hi: v128): v128 {
  const bits = v128.and(f32x4.add(v, f32x4.splat(12582912.0)), i32x4.splat(0x007fffff));
  return i32x4.min_s(i32x4.max_s(i32x4.sub(bits, i32x4.splat(0x00400000)), lo), hi);
}

/**
 * make_qkx2_quants / make_qkx3_quants with weights: L (u8) in 0..nmax, the min into
 * mins[minIndex] (as -min); returns the scale.
 *
 * The C runs nstep+1 trials in turn; a trial depends on the ones before only through the
 * min, which changes only when a trial wins. So four trials run at once, one per SIMD
 * lane, each lane's sums in the C's order (IEEE f32 per lane, as the scalar C): then the
 * lanes are judged in order, and after a winning lane the next trials start again from
 * the new min. A batch stops summing errors early when every lane has reached the best
 * error and the weights are non-negative (float sums of non-negative terms never
 * decrease, so such lanes cannot win).
 */
export function makeQkxQuants(
  n: i32, nmax: i32, x: usize, weights: usize, L: usize, mins: usize, minIndex: i32,
  rmin: f32, rdelta: f32, nstep: i32, useMad: bool,
): f32 {
  let mn = ldf(x, 0);
  let mx = ldf(x, 0);
  let sumW = ldf(weights, 0);
  let sumX: f32 = sumW * ldf(x, 0);
  let weightsNonNegative = sumW >= 0;
  for (let i = 1; i < n; i++) {
    const xi = ldf(x, i);
    const w = ldf(weights, i);
    if (xi < mn) mn = xi;
    if (xi > mx) mx = xi;
    sumW += w;
    sumX += w * xi;
    if (!(w >= 0)) weightsNonNegative = false;
  }
  if (mn > 0) mn = 0;
  if (mx == mn) {
    memory.fill(L, 0, n);
    stf(mins, minIndex, -mn);
    return 0;
  }
  let range: f32 = mx - mn;
  shiftValues(x, n, mn);
  const iscale0: f32 = <f32>nmax / range;
  const scale0: f32 = <f32>1.0 / iscale0;
  let scale: f32 = scale0;
  let bestError: f32 = Infinity; // set by the first guess, lane 0 of the first batch
  const fnmax = <f32>nmax;
  const lo = i32x4.splat(0);
  const hi = i32x4.splat(nmax);
  const sumW4 = f32x4.splat(sumW);
  const sumX4 = f32x4.splat(sumX);
  const zero4 = f32x4.splat(0);
  const q = laneQuants;
  // Lane t: t = 0 is the first guess (iscale nmax/(max - min), scale its inverse, min the
  // data's: no fit), t = 1..nstep+1 is the trial is = t - 1.
  let t = 0;
  while (t <= nstep + 1) {
    const lanes = min<i32>(4, nstep + 2 - t);
    const is = t - 1;
    let iscale = f32x4.splat(t == 0 ? iscale0 : (rmin + rdelta * <f32>is + fnmax) / range);
    iscale = f32x4.replace_lane(iscale, 1, (rmin + rdelta * <f32>(is + 1) + fnmax) / range);
    iscale = f32x4.replace_lane(iscale, 2, (rmin + rdelta * <f32>(is + 2) + fnmax) / range);
    iscale = f32x4.replace_lane(iscale, 3, (rmin + rdelta * <f32>(is + 3) + fnmax) / range);
    let sL = zero4;
    let sL2 = zero4;
    let sXL = zero4;
    for (let i = 0; i < n; i += 2) {
      // Two values a turn (n is even): less loop overhead, same order.
      const fl0 = f32x4.convert_i32x4_s(nearestClamp4(f32x4.mul(iscale, f32x4.splat(ldf(xShifted, i))), lo, hi));
      const fl1 = f32x4.convert_i32x4_s(nearestClamp4(f32x4.mul(iscale, f32x4.splat(ldf(xShifted, i + 1))), lo, hi));
      v128.store(q + ((<usize>i) << 4), fl0);
      v128.store(q + ((<usize>i) << 4), fl1, 16);
      const wl0 = f32x4.mul(f32x4.splat(ldf(weights, i)), fl0);
      const wl1 = f32x4.mul(f32x4.splat(ldf(weights, i + 1)), fl1);
      sL = f32x4.add(f32x4.add(sL, wl0), wl1);
      sL2 = f32x4.add(f32x4.add(sL2, f32x4.mul(wl0, fl0)), f32x4.mul(wl1, fl1));
      sXL = f32x4.add(f32x4.add(sXL, f32x4.mul(wl0, f32x4.splat(ldf(x, i)))), f32x4.mul(wl1, f32x4.splat(ldf(x, i + 1))));
    }
    const D = f32x4.sub(f32x4.mul(sumW4, sL2), f32x4.mul(sL, sL));
    const fitScale = f32x4.div(f32x4.sub(f32x4.mul(sumW4, sXL), f32x4.mul(sumX4, sL)), D);
    const fitMin = f32x4.div(f32x4.sub(f32x4.mul(sL2, sumX4), f32x4.mul(sL, sXL)), D);
    const positive = f32x4.gt(fitMin, zero4);
    let thisMin = v128.bitselect(zero4, fitMin, positive);
    let thisScale = v128.bitselect(f32x4.div(sXL, sL2), fitScale, positive);
    if (t == 0) {
      thisScale = f32x4.replace_lane(thisScale, 0, scale0);
      thisMin = f32x4.replace_lane(thisMin, 0, mn);
    }
    // The first batch never stops early: lane 0's error is used, not just compared.
    const best4 = f32x4.splat(t == 0 ? NaN : bestError);
    // The lanes' errors, four values a turn (n is a multiple of 4), in the C's order; one
    // loop each for the absolute and the squared error.
    let err = zero4;
    if (useMad) {
      for (let i = 0; i < n; i += 4) {
        err = f32x4.add(err, f32x4.mul(f32x4.splat(ldf(weights, i)), f32x4.abs(residual4(q, i, thisScale, thisMin, x))));
        err = f32x4.add(err, f32x4.mul(f32x4.splat(ldf(weights, i + 1)), f32x4.abs(residual4(q, i + 1, thisScale, thisMin, x))));
        err = f32x4.add(err, f32x4.mul(f32x4.splat(ldf(weights, i + 2)), f32x4.abs(residual4(q, i + 2, thisScale, thisMin, x))));
        err = f32x4.add(err, f32x4.mul(f32x4.splat(ldf(weights, i + 3)), f32x4.abs(residual4(q, i + 3, thisScale, thisMin, x))));
        if (weightsNonNegative) {
          if (i32x4.all_true(f32x4.ge(err, best4))) break;
        }
      }
    } else {
      for (let i = 0; i < n; i += 4) {
        let d0 = residual4(q, i, thisScale, thisMin, x);
        let d1 = residual4(q, i + 1, thisScale, thisMin, x);
        let d2 = residual4(q, i + 2, thisScale, thisMin, x);
        let d3 = residual4(q, i + 3, thisScale, thisMin, x);
        err = f32x4.add(err, f32x4.mul(f32x4.splat(ldf(weights, i)), f32x4.mul(d0, d0)));
        err = f32x4.add(err, f32x4.mul(f32x4.splat(ldf(weights, i + 1)), f32x4.mul(d1, d1)));
        err = f32x4.add(err, f32x4.mul(f32x4.splat(ldf(weights, i + 2)), f32x4.mul(d2, d2)));
        err = f32x4.add(err, f32x4.mul(f32x4.splat(ldf(weights, i + 3)), f32x4.mul(d3, d3)));
        if (weightsNonNegative) {
          if (i32x4.all_true(f32x4.ge(err, best4))) break;
        }
      }
    }
    v128.store(laneScratch, D);
    v128.store(laneScratch + 16, err);
    v128.store(laneScratch + 32, thisScale);
    v128.store(laneScratch + 48, thisMin);
    let winner = -1;
    let k = 0;
    if (t == 0) {
      // The first guess: its quants stand, and its error is the one to beat.
      for (let i = 0; i < n; i++) stu8(L, i, <i32>load<f32>(q + ((<usize>i) << 4)));
      bestError = load<f32>(laneScratch + 16);
      k = 1;
    }
    for (; k < lanes; k++) {
      // C: `if (D <= 0) continue;` (NaN D goes on, as in the scalar code: !(D > 0) skips)
      if (!(load<f32>(laneScratch + ((<usize>k) << 2)) > 0)) continue;
      if (load<f32>(laneScratch + 16 + ((<usize>k) << 2)) < bestError) {
        winner = k;
        break;
      }
    }
    if (winner < 0) {
      t += 4;
      continue;
    }
    const kOff = (<usize>winner) << 2;
    for (let i = 0; i < n; i++) stu8(L, i, <i32>load<f32>(q + ((<usize>i) << 4) + kOff));
    bestError = load<f32>(laneScratch + 16 + kOff);
    scale = load<f32>(laneScratch + 32 + kOff);
    mn = load<f32>(laneScratch + 48 + kOff);
    range = mx - mn;
    shiftValues(x, n, mn);
    t += winner + 1;
  }
  stf(mins, minIndex, -mn);
  return scale;
}

/**
 * make_qp_quants: levels L (u8; out-of-range ints wrap as C's uint8_t stores) in 0..nmax
 * for the sub-block scales x with weights; returns the super-block scale.
 */
export function makeQpQuants(n: i32, nmax: i32, x: usize, L: usize, weights: usize): f32 {
  let mx: f32 = 0;
  for (let i = 0; i < n; i++) {
    const v = ldf(x, i);
    mx = mx > v ? mx : v;
  }
  if (mx < GROUP_MAX_EPS) {
    memory.fill(L, 0, n);
    return 0;
  }
  let iscale: f32 = <f32>nmax / mx;
  for (let i = 0; i < n; i++) stu8(L, i, nearestInt(iscale * ldf(x, i)));
  const scale: f32 = <f32>1.0 / iscale;
  let bestMse: f32 = 0;
  for (let i = 0; i < n; i++) {
    const diff: f32 = ldf(x, i) - scale * <f32>ldu8(L, i);
    bestMse += ldf(weights, i) * diff * diff;
  }
  for (let is = -4; is <= 4; is++) {
    if (is == 0) continue;
    const iscaleIs: f32 = (ONE_TENTH * <f32>is + <f32>nmax) / mx;
    const scaleIs: f32 = <f32>1.0 / iscaleIs;
    let mse: f32 = 0;
    for (let i = 0; i < n; i++) {
      const l = min<i32>(nmax, nearestInt(iscaleIs * ldf(x, i)));
      const diff: f32 = ldf(x, i) - scaleIs * <f32>l;
      mse += ldf(weights, i) * diff * diff;
    }
    if (mse < bestMse) {
      bestMse = mse;
      iscale = iscaleIs;
    }
  }
  let sumlx: f32 = 0;
  let suml2: f32 = 0;
  for (let i = 0; i < n; i++) {
    const l = min<i32>(nmax, nearestInt(iscale * ldf(x, i)));
    stu8(L, i, l);
    const w = ldf(weights, i);
    const fl = <f32>l; // the int l, not the wrapped L[i]
    sumlx += w * ldf(x, i) * fl;
    suml2 += w * fl * fl;
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const w = ldf(weights, i);
      const li = ldu8(L, i);
      const fli = <f32>li;
      let slx: f32 = sumlx - w * ldf(x, i) * fli;
      let sl2: f32 = suml2 - w * fli * fli;
      if (slx > 0 && sl2 > 0) {
        const newL = min<i32>(nmax, nearestInt((ldf(x, i) * sl2) / slx));
        if (newL != li) {
          const fnl = <f32>newL;
          slx = slx + w * ldf(x, i) * fnl;
          sl2 = sl2 + w * fnl * fnl;
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            stu8(L, i, newL);
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (changed == 0) break;
  }
  return suml2 > 0 ? sumlx / suml2 : 0;
}
