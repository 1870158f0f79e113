// ggml's scale searches (src/ggml-quants.c make_qx_quants, make_q3_quants,
// make_qkx2_quants, make_qkx3_quants, make_qp_quants), shared as ggml shares them:
// make_qx_quants by q4_0/q5_0's imatrix path, Q3_K and Q6_K; make_qkx3_quants by
// q4_1/q5_1's imatrix path and the Q2_K/Q4_K/Q5_K ones (make_qkx2_quants, identical with
// weights, by their _ref paths); make_q3_quants by Q3_K; make_qp_quants by Q2_K..Q5_K.
// C float semantics as in the codecs (rounding.ts): every float op rounded with f32, sums
// in the C order; the scratch below is the C code's stack arrays, one set per module.
import * as rounding from './rounding.ts';

// Module-level copies: transpiled imports are getters that V8 does not inline (rounding.ts).
const f32 = rounding.f32;
const nearestIntC = rounding.nearestIntC;
const clampInt = rounding.clampInt;

/** ggml's GROUP_MAX_EPS (1e-15f): below this absmax a group counts as all zero. */
export const GROUP_MAX_EPS = f32(1e-15);
export const ONE_TENTH = f32(0.1);
// Search grids of the qkx quantizers (rmin, rdelta, nstep), as the C literals in float.
export const RMIN_NEG_0_5 = -0.5;
export const RMIN_NEG_0_9 = f32(-0.9);
export const RDELTA_0_05 = f32(0.05);
/** Unit roundoff of IEEE single precision. */
const F32_UNIT_ROUNDOFF = 2 ** -24;
/** Inputs and weights up to 2^30 keep every float in lossBoundExceeds' proof finite. */
const BOUND_MAX_INPUT = 2 ** 30;
/** The largest group the searches take (n): legacy blocks and Q4_K/Q5_K sub-blocks. */
const MAX_GROUP = 32;

/**
 * The searches skip trials whose outcome is already certain (see makeQkxQuants and
 * makeQxQuants). Tests turn this off to check that the skips change no byte.
 */
let searchShortcuts = true;
export function setSearchShortcuts(enabled: boolean): void {
  searchShortcuts = enabled;
}

// Scratch: no search allocates.
const xShifted = new Float32Array(MAX_GROUP); // x - min of the current qkx group
const wTimesX = new Float32Array(MAX_GROUP); // w*x of the current group (same value each use)
const symWeights = new Float32Array(MAX_GROUP); // the weights make_qx_quants/make_q3_quants use
const candidateL = new Uint8Array(MAX_GROUP); // Laux
const quantGrowthThresholds = new Float64Array(MAX_GROUP);
const candidateLSigned = new Int8Array(MAX_GROUP);

/**
 * The value of largest magnitude in x[x0..x0+n) (the first of equal ones, NaNs skipped),
 * as the C's `if (ax > amax) { amax = ax; max = x[i]; }`; its amax is Math.abs of it.
 */
export function maxByMagnitude(x: Float32Array, x0: number, n: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[x0 + i]);
    if (ax > amax) { amax = ax; max = x[x0 + i]; }
  }
  return max;
}

/**
 * make_qx_quants' and make_q3_quants' weights: `weights[w0+i]`, or x^2 when `weights` is
 * null, into symWeights, and w*x into wTimesX. Returns whether every weight is >= 0.
 */
function fillSymmetricWeights(n: number, x: Float32Array, x0: number, weights: Float32Array | null, w0: number): boolean {
  const w = symWeights;
  let nonNegative = true;
  for (let i = 0; i < n; i++) {
    const xi = x[x0 + i];
    w[i] = weights ? weights[w0 + i] : f32(xi * xi);
    wTimesX[i] = f32(w[i] * xi);
    if (!(w[i] >= 0)) nonNegative = false;
  }
  return nonNegative;
}

/**
 * make_qx_quants with rmse_type 1: symmetric quants L in 0..2*nmax-1 (stored + nmax), the
 * scale from a weighted least-squares fit over 18 trial inverse scales. Weights are
 * `weights[w0+i]`, or x^2 when `weights` is null.
 *
 * A trial wins when sumlx^2 > best * suml2 in float. With non-negative weights every term
 * of sumlx has the sign of the inverse scale, so double sums pin the float ones to within
 * a relative (n+2)u and most trials are rejected without the float sums (qxTrialLoses);
 * a trial with the previous trial's quants is skipped, as it cannot change the outcome.
 */
export function makeQxQuants(
  n: number, nmax: number, x: Float32Array, x0: number, L: Int8Array, l0: number,
  weights: Float32Array | null, w0: number,
): number {
  const max = maxByMagnitude(x, x0, n);
  if (Math.abs(max) < GROUP_MAX_EPS) {
    L.fill(0, l0, l0 + n);
    return 0;
  }
  const weightsNonNegative = fillSymmetricWeights(n, x, x0, weights, w0);
  const w = symWeights;
  let iscale = f32(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const l = clampInt(nearestIntC(f32(iscale * x[x0 + i])), -nmax, nmax - 1);
    L[l0 + i] = l + nmax;
    sumlx = f32(sumlx + f32(wTimesX[i] * l));
    suml2 = f32(suml2 + f32(f32(w[i] * l) * l));
  }
  let scale = suml2 !== 0 ? f32(sumlx / suml2) : 0;
  let best = f32(scale * sumlx);
  const Laux = candidateLSigned;
  Laux[0] = 127; // no previous trial: never equal to a quant in -nmax..nmax-1
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = f32(-f32(nmax + f32(ONE_TENTH * is)) / max);
    let changes = 0;
    let sxl = 0; // double sums of the float terms' exact values
    let sl2 = 0;
    for (let i = 0; i < n; i++) {
      const l = clampInt(nearestIntC(f32(iscale * x[x0 + i])), -nmax, nmax - 1) | 0;
      changes |= Laux[i] ^ l;
      Laux[i] = l;
      sxl += wTimesX[i] * l;
      sl2 += w[i] * l * l;
    }
    if (searchShortcuts && (changes === 0 || (weightsNonNegative && qxTrialLoses(n, sxl, sl2, best)))) continue;
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const l = Laux[i];
      sumlx = f32(sumlx + f32(wTimesX[i] * l));
      suml2 = f32(suml2 + f32(f32(w[i] * l) * l));
    }
    if (suml2 > 0 && f32(sumlx * sumlx) > f32(best * suml2)) {
      for (let i = 0; i < n; i++) L[l0 + i] = Laux[i] + nmax;
      scale = f32(sumlx / suml2);
      best = f32(scale * sumlx);
    }
  }
  return scale;
}

/**
 * True when make_qx_quants surely rejects a trial: fl(sumlx^2) > fl(best*suml2) cannot
 * hold. The float sums of n same-signed terms (two roundings each) are within a relative
 * gamma = (n+2)u of the double sums sxl and sl2, and each side's product rounds once
 * more; kept clear of overflow and underflow, where relative bounds fail.
 */
function qxTrialLoses(n: number, sxl: number, sl2: number, best: number): boolean {
  const u = F32_UNIT_ROUNDOFF;
  const gamma = 1.01 * (n + 2) * u;
  const lhs = sxl * sxl * (1 + gamma) ** 2 * (1 + u);
  const rhs = best * sl2 * (1 - gamma) * (1 - u);
  return lhs < rhs && rhs > 2 ** -100 && rhs < 2 ** 100 && sl2 > 2 ** -60;
}

/**
 * make_q3_quants with do_rmse: symmetric quants refined one value at a time (up to 5
 * sweeps) under x^2 weights; L stored + nmax.
 */
export function makeQ3Quants(n: number, nmax: number, x: Float32Array, x0: number, L: Int8Array, l0: number): number {
  const max = maxByMagnitude(x, x0, n);
  if (Math.abs(max) < GROUP_MAX_EPS) {
    L.fill(0, l0, l0 + n);
    return 0;
  }
  fillSymmetricWeights(n, x, x0, null, 0);
  const w = symWeights;
  const iscale = f32(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const l = clampInt(nearestIntC(f32(iscale * x[x0 + i])), -nmax, nmax - 1);
    L[l0 + i] = l;
    sumlx = f32(sumlx + f32(wTimesX[i] * l));
    suml2 = f32(suml2 + f32(f32(w[i] * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const li = L[l0 + i];
      let slx = f32(sumlx - f32(wTimesX[i] * li));
      if (slx > 0) {
        let sl2 = f32(suml2 - f32(f32(w[i] * li) * li));
        const newL = clampInt(nearestIntC(f32(f32(x[x0 + i] * sl2) / slx)), -nmax, nmax - 1);
        if (newL !== li) {
          slx = f32(slx + f32(wTimesX[i] * newL));
          sl2 = f32(sl2 + f32(f32(w[i] * newL) * newL));
          if (sl2 > 0 && f32(f32(slx * slx) * suml2) > f32(f32(sumlx * sumlx) * sl2)) {
            L[l0 + i] = newL;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (changed === 0) break;
  }
  for (let i = 0; i < n; i++) L[l0 + i] += nmax;
  return suml2 > 0 ? f32(sumlx / suml2) : 0;
}

/**
 * make_qkx2_quants / make_qkx3_quants (identical when given weights, as every caller does:
 * their `max == min` vs `max <= min` tests agree since max >= min): asymmetric
 * quants L in 0..nmax of x = scale*L - theMin, searching nstep+1 inverse scales around
 * nmax/(max-min) and keeping the weighted least-squares fit with the least error
 * (absolute with useMad, squared otherwise). Writes L[l0..], mins[minIndex]; returns scale.
 *
 * Most trials lose, and the C spends its time proving it with float sums. Three
 * shortcuts skip trials whose outcome is already certain, so the result stays exact:
 * - a trial whose quants equal the previous trial's has the same fit and cannot win again;
 * - a trial whose best possible error is provably above the best so far cannot win
 *   (lossBoundExceeds, squared error only);
 * - with non-negative weights the float error sum never decreases, so a trial stops as
 *   soon as it reaches the best error.
 */
export function makeQkxQuants(
  n: number, nmax: number, x: Float32Array, x0: number, weights: Float32Array,
  L: Uint8Array, l0: number, mins: Float32Array, minIndex: number,
  rmin: number, rdelta: number, nstep: number, useMad: boolean,
): number {
  let min = x[x0];
  let max = x[x0];
  let sumW = weights[0];
  let sumX = f32(sumW * x[x0]);
  let weightsNonNegative = true;
  let allFinite = true;
  let boundUsable = !useMad;
  // Exact-enough double sums for the bound: sum w, w*x, w*x^2, w*|x|.
  let sw = 0, swx = 0, swxx = 0, swAbsX = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[x0 + i];
    const w = weights[i];
    if (i > 0) {
      if (xi < min) min = xi;
      if (xi > max) max = xi;
      sumW = f32(sumW + w);
      sumX = f32(sumX + f32(w * xi));
    }
    if (!(w >= 0)) weightsNonNegative = false;
    if (!Number.isFinite(xi)) allFinite = false;
    if (!(w <= BOUND_MAX_INPUT && Math.abs(xi) <= BOUND_MAX_INPUT)) boundUsable = false;
    sw += w;
    swx += w * xi;
    swxx += w * xi * xi;
    swAbsX += w * Math.abs(xi);
  }
  boundUsable &&= weightsNonNegative && searchShortcuts;
  const stopEarly = weightsNonNegative && searchShortcuts;
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, l0, l0 + n);
    mins[minIndex] = -min;
    return 0;
  }
  // C recomputes x - min and max - min from the current best min, which moves as the
  // search improves: cache them and refresh on each improvement.
  let range = f32(max - min);
  for (let i = 0; i < n; i++) xShifted[i] = f32(x[x0 + i] - min);
  let iscale = f32(nmax / range);
  let scale = f32(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = clampInt(nearestIntC(f32(iscale * xShifted[i])), 0, nmax);
    L[l0 + i] = l;
    let diff = f32(f32(f32(scale * l) + min) - x[x0 + i]);
    diff = useMad ? Math.abs(diff) : f32(diff * diff);
    bestError = f32(bestError + f32(weights[i] * diff));
  }
  const Laux = candidateL;
  // Between improvements x - min is fixed and the trials' inverse scale only grows, so
  // each quant only grows: a value keeps its quant while the inverse scale stays below
  // growAt[i], and a trial re-rounds only the values past theirs.
  const growAt = quantGrowthThresholds;
  let thresholdsValid = false;
  for (let is = 0; is <= nstep; is++) {
    iscale = f32(f32(f32(rmin + f32(rdelta * is)) + nmax) / range);
    let changes = 0;
    if (thresholdsValid) {
      for (let i = 0; i < n; i++) {
        if (!(iscale >= growAt[i])) continue;
        const l = quantAtIscale(iscale, xShifted[i], nmax);
        changes |= Laux[i] ^ l;
        Laux[i] = l;
        growAt[i] = nextGrowthIscale(l, xShifted[i], nmax);
      }
    } else {
      changes = 1; // after an improvement the previous trial's quants mean nothing
      for (let i = 0; i < n; i++) {
        const l = quantAtIscale(iscale, xShifted[i], nmax);
        Laux[i] = l;
        growAt[i] = nextGrowthIscale(l, xShifted[i], nmax);
      }
      thresholdsValid = searchShortcuts && allFinite && rdelta >= 0 && range > 0 && range < Infinity;
    }
    if (changes === 0 && searchShortcuts) continue; // same quants as the previous trial
    if (boundUsable) {
      let swl = 0, swll = 0, swlx = 0;
      for (let i = 0; i < n; i++) {
        const wl = weights[i] * Laux[i];
        swl += wl;
        swll += wl * Laux[i];
        swlx += wl * x[x0 + i];
      }
      // sum w*l*|x| <= nmax * sum w*|x|: loose, but only the tiny m bound uses it.
      if (lossBoundExceeds(n, sw, swx, swxx, swAbsX, swl, swll, swlx, nmax * swAbsX, bestError)) continue;
    }
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = Laux[i];
      const wl = f32(weights[i] * l);
      sumL = f32(sumL + wl);
      sumL2 = f32(sumL2 + f32(wl * l));
      sumXL = f32(sumXL + f32(wl * x[x0 + i]));
    }
    const D = f32(f32(sumW * sumL2) - f32(sumL * sumL));
    if (!(D > 0)) continue;
    let thisScale = f32(f32(f32(sumW * sumXL) - f32(sumX * sumL)) / D);
    let thisMin = f32(f32(f32(sumL2 * sumX) - f32(sumL * sumXL)) / D);
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = f32(sumXL / sumL2);
    }
    let error = 0;
    for (let i = 0; i < n; i++) {
      let diff = f32(f32(f32(thisScale * Laux[i]) + thisMin) - x[x0 + i]);
      diff = useMad ? Math.abs(diff) : f32(diff * diff);
      error = f32(error + f32(weights[i] * diff));
      if (stopEarly && error >= bestError) break;
    }
    if (error < bestError) {
      for (let i = 0; i < n; i++) L[l0 + i] = Laux[i];
      bestError = error;
      scale = thisScale;
      min = thisMin;
      range = f32(max - min);
      for (let i = 0; i < n; i++) xShifted[i] = f32(x[x0 + i] - min);
      thresholdsValid = false;
    }
  }
  mins[minIndex] = -min;
  return scale;
}

/** A qkx trial's quant: clamp(nearest_int(iscale * (x - min)), 0, nmax), as an int. */
function quantAtIscale(iscale: number, xShifted: number, nmax: number): number {
  const l = nearestIntC(f32(iscale * xShifted)) | 0;
  return l > nmax ? nmax : l < 0 ? 0 : l;
}

/**
 * An inverse scale below which quant l of xShifted surely stays l: under
 * (l + 0.5)/xShifted the float product stays under l + 0.5 (2^-20 covers its rounding and
 * this division's). Never for a quant at nmax or a value at or below the min.
 */
function nextGrowthIscale(l: number, xShifted: number, nmax: number): number {
  return l < nmax && xShifted > 0 ? ((l + 0.5) / xShifted) * (1 - 2 ** -20) : Infinity;
}

/**
 * True when no float fit of the trial quants l can reach an error below `bestError`, so
 * make_qkx*_quants would reject the trial. It bounds the float error the C would compute
 * from below, using double sums over the group (weights w all in [0, 2^30], |x| <= 2^30):
 *   sw = sum w, swx = sum w x, swxx = sum w x^2, swAbsX = sum w |x|,
 *   swl = sum w l, swll = sum w l^2, swlx = sum w l x, swlAbsX >= sum w l |x|.
 * 1. Any scale s and min m leave a weighted squared error of at least
 *    eMin = swxx - b'A^-1 b (least squares of x on [l, 1]); evaluating it in double errs
 *    by far less than the 1e-10 * swxx taken off.
 * 2. The C's s and m come from float sums of n terms (relative error gamma each, no more
 *    than gamma * sum |term| for the signed ones). With the fit well conditioned
 *    (D >= sw*swll/100) the float D is within 0.2% of D, so |m| <= mBound.
 * 3. Each float residual ((s*l + m) - x) is within 1.01u(2|x| + |m|) of the exact one,
 *    relative (1 + 3.01u), plus 3*2^-150 of underflow; by Minkowski's inequality the
 *    weighted norm of the residuals shrinks by at most c.
 * 4. Squaring, weighting and summing n non-negative terms in float lose at most a factor
 *    (1-u)^(n+2), plus 2^-150 per operation of underflow.
 * Returns false (no claim) whenever a precondition fails; the caller then runs the C.
 */
function lossBoundExceeds(
  n: number, sw: number, swx: number, swxx: number, swAbsX: number,
  swl: number, swll: number, swlx: number, swlAbsX: number, bestError: number,
): boolean {
  const u = F32_UNIT_ROUNDOFF;
  const D = sw * swll - swl * swl;
  if (!(D >= 0.01 * sw * swll && sw * swll >= 2 ** -100)) return false;
  const eMin = swxx - (sw * swlx * swlx - 2 * swl * swx * swlx + swll * swx * swx) / D - 1e-10 * swxx;
  if (!(eMin > 0)) return false;
  const gamma = 1.01 * (n + 2) * u;
  const mNumerator = 1.01 * (swll * (Math.abs(swx) + gamma * swAbsX) + swl * (Math.abs(swlx) + gamma * swlAbsX));
  const mBound = (mNumerator + 2 ** -140 * (1 + n * (swll + swl))) / (0.998 * D);
  if (!(mBound <= 2 ** 31)) return false;
  const c = 2.01 * u * (2 * Math.sqrt(swxx) + mBound * Math.sqrt(sw)) + 2 ** -146 * Math.sqrt(sw);
  const root = Math.sqrt(eMin) - c;
  if (!(root > 0)) return false;
  const lower = (root * root * (1 - (n + 8) * u)) / (1 + 4.01 * u) ** 2 - (sw + 3 * n) * 2 ** -140;
  return lower > bestError;
}

/**
 * make_qp_quants: non-negative levels L in 0..nmax for the sub-block scales (or mins) x,
 * weighted by `weights` (the sub-blocks' weight sums); returns the super-block scale.
 * L is uint8_t in C: out-of-range ints wrap exactly as the Uint8Array store does.
 */
export function makeQpQuants(n: number, nmax: number, x: Float32Array, L: Uint8Array, weights: Float32Array): number {
  let max = 0;
  for (let i = 0; i < n; i++) max = max > x[i] ? max : x[i]; // C MAX, NaN included
  if (max < GROUP_MAX_EPS) {
    L.fill(0, 0, n);
    return 0;
  }
  let iscale = f32(nmax / max);
  for (let i = 0; i < n; i++) L[i] = nearestIntC(f32(iscale * x[i]));
  const scale = f32(1 / iscale);
  let bestMse = 0;
  for (let i = 0; i < n; i++) {
    const diff = f32(x[i] - f32(scale * L[i]));
    bestMse = f32(bestMse + f32(f32(weights[i] * diff) * diff));
  }
  for (let is = -4; is <= 4; is++) {
    if (is === 0) continue;
    const iscaleIs = f32(f32(f32(ONE_TENTH * is) + nmax) / max);
    const scaleIs = f32(1 / iscaleIs);
    let mse = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.min(nmax, nearestIntC(f32(iscaleIs * x[i])));
      const diff = f32(x[i] - f32(scaleIs * l));
      mse = f32(mse + f32(f32(weights[i] * diff) * diff));
    }
    if (mse < bestMse) {
      bestMse = mse;
      iscale = iscaleIs;
    }
  }
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.min(nmax, nearestIntC(f32(iscale * x[i])));
    L[i] = l;
    const w = weights[i];
    sumlx = f32(sumlx + f32(f32(w * x[i]) * l)); // the int l, not the wrapped L[i]
    suml2 = f32(suml2 + f32(f32(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const w = weights[i];
      const li = L[i];
      let slx = f32(sumlx - f32(f32(w * x[i]) * li));
      let sl2 = f32(suml2 - f32(f32(w * li) * li));
      if (slx > 0 && sl2 > 0) {
        const newL = Math.min(nmax, nearestIntC(f32(f32(x[i] * sl2) / slx)));
        if (newL !== li) {
          slx = f32(slx + f32(f32(w * x[i]) * newL));
          sl2 = f32(sl2 + f32(f32(w * newL) * newL));
          if (f32(f32(slx * slx) * suml2) > f32(f32(sumlx * sumlx) * sl2)) {
            L[i] = newL;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (changed === 0) break;
  }
  return suml2 > 0 ? f32(sumlx / suml2) : 0;
}

/** Sum of x^2 over x[x0..x0+n), in C order (the _impl functions' sigma2). */
export function sumOfSquares(x: Float32Array, x0: number, n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum = f32(sum + f32(x[x0 + i] * x[x0 + i]));
  return sum;
}

/**
 * The _impl functions' per-value weight qw * sqrt(sigma2 + x^2) into out[0..n); returns
 * their sum (the K types' sw).
 */
export function fillImportanceWeights(
  out: Float32Array, n: number, x: Float32Array, x0: number, qw: Float32Array, q0: number, sigma2: number,
): number {
  let sum = 0;
  for (let l = 0; l < n; l++) {
    const xl = x[x0 + l];
    out[l] = f32(qw[q0 + l] * f32(Math.sqrt(f32(sigma2 + f32(xl * xl)))));
    sum = f32(sum + out[l]);
  }
  return sum;
}
