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

/** True when every value of x[0..n) is finite. */
export function allFinite(x: usize, n: i32): bool {
  let m: f32 = 0;
  for (let i = 0; i < n; i++) m = max<f32>(m, abs<f32>(ldf(x, i)));
  return m <= FLT_MAX;
}

/** The value of largest magnitude (the first of equal ones), as ggml's amax loops. */
export function maxByMagnitude(x: usize, n: i32): f32 {
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
 * when it is 0. A trial whose quants equal the previous trial's is skipped: it has the
 * same fit, so it cannot change the outcome.
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
  let iscale: f32 = <f32>(-nmax) / mx;
  let sumlx: f32 = 0;
  let suml2: f32 = 0;
  for (let i = 0; i < n; i++) {
    const l = clampInt(nearestInt(iscale * ldf(x, i)), -nmax, nmax - 1);
    stu8(L, i, l + nmax);
    const fl = <f32>l;
    sumlx += ldf(wTimesX, i) * fl;
    suml2 += ldf(w, i) * fl * fl;
  }
  let scale: f32 = suml2 != 0 ? sumlx / suml2 : 0;
  let best: f32 = scale * sumlx;
  const Laux = candidateLSigned;
  store<i8>(Laux, 127); // no previous trial
  for (let is = -9; is <= 9; is++) {
    if (is == 0) continue;
    iscale = -(<f32>nmax + ONE_TENTH * <f32>is) / mx;
    let changes = 0;
    for (let i = 0; i < n; i++) {
      const l = clampInt(nearestInt(iscale * ldf(x, i)), -nmax, nmax - 1);
      changes |= ldi8(Laux, i) ^ l;
      store<i8>(Laux + <usize>i, <i8>l);
    }
    if (changes == 0) continue;
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const fl = <f32>ldi8(Laux, i);
      sumlx += ldf(wTimesX, i) * fl;
      suml2 += ldf(w, i) * fl * fl;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (let i = 0; i < n; i++) stu8(L, i, ldi8(Laux, i) + nmax);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

/** make_qx_quants with the L buffer's first trial marker reset (see makeQxQuants). */

/** make_q3_quants with do_rmse: L stored + nmax. */
export function makeQ3Quants(n: i32, nmax: i32, x: usize, L: usize): f32 {
  const mx = maxByMagnitude(x, n);
  if (abs<f32>(mx) < GROUP_MAX_EPS) {
    memory.fill(L, 0, n);
    return 0;
  }
  const w = symWeights;
  for (let i = 0; i < n; i++) {
    const xi = ldf(x, i);
    const wi: f32 = xi * xi;
    stf(w, i, wi);
    stf(wTimesX, i, wi * xi);
  }
  const iscale: f32 = <f32>(-nmax) / mx;
  let sumlx: f32 = 0;
  let suml2: f32 = 0;
  for (let i = 0; i < n; i++) {
    const l = clampInt(nearestInt(iscale * ldf(x, i)), -nmax, nmax - 1);
    store<i8>(L + <usize>i, <i8>l);
    const fl = <f32>l;
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

/**
 * make_qkx2_quants / make_qkx3_quants with weights: L (u8) in 0..nmax, the min into
 * mins[minIndex] (as -min); returns the scale. Two skips that cannot change the outcome:
 * a trial with the previous trial's quants (same fit), and, with non-negative weights,
 * the rest of a trial's error sum once it reaches the best (float sums of non-negative
 * terms never decrease).
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
  for (let i = 0; i < n; i++) stf(xShifted, i, ldf(x, i) - mn);
  let iscale: f32 = <f32>nmax / range;
  let scale: f32 = <f32>1.0 / iscale;
  let bestError: f32 = 0;
  for (let i = 0; i < n; i++) {
    const l = clampInt(nearestInt(iscale * ldf(xShifted, i)), 0, nmax);
    stu8(L, i, l);
    let diff: f32 = scale * <f32>l + mn - ldf(x, i);
    diff = useMad ? abs<f32>(diff) : diff * diff;
    bestError += ldf(weights, i) * diff;
  }
  const Laux = candidateL;
  let fresh = true; // the previous trial's quants mean nothing (start, or after an improvement)
  for (let is = 0; is <= nstep; is++) {
    iscale = (rmin + rdelta * <f32>is + <f32>nmax) / range;
    let changes = 0;
    for (let i = 0; i < n; i++) {
      const l = clampInt(nearestInt(iscale * ldf(xShifted, i)), 0, nmax);
      changes |= ldu8(Laux, i) ^ l;
      stu8(Laux, i, l);
    }
    if (changes == 0 && !fresh) continue;
    fresh = false;
    let sumL: f32 = 0;
    let sumL2: f32 = 0;
    let sumXL: f32 = 0;
    for (let i = 0; i < n; i++) {
      const fl = <f32>ldu8(Laux, i);
      const wl: f32 = ldf(weights, i) * fl;
      sumL += wl;
      sumL2 += wl * fl;
      sumXL += wl * ldf(x, i);
    }
    const D: f32 = sumW * sumL2 - sumL * sumL;
    if (!(D > 0)) continue;
    let thisScale: f32 = (sumW * sumXL - sumX * sumL) / D;
    let thisMin: f32 = (sumL2 * sumX - sumL * sumXL) / D;
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = sumXL / sumL2;
    }
    let error: f32 = 0;
    let i = 0;
    for (; i < n; i++) {
      let diff: f32 = thisScale * <f32>ldu8(Laux, i) + thisMin - ldf(x, i);
      diff = useMad ? abs<f32>(diff) : diff * diff;
      error += ldf(weights, i) * diff;
      if (weightsNonNegative && error >= bestError) break;
    }
    if (error < bestError) {
      memory.copy(L, Laux, n);
      bestError = error;
      scale = thisScale;
      mn = thisMin;
      range = mx - mn;
      for (let k = 0; k < n; k++) stf(xShifted, k, ldf(x, k) - mn);
      fresh = true;
    }
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
