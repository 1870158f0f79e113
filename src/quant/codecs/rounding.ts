// C float helpers shared by the reference codecs, so every codec rounds the way ggml's C
// does (ggml-org/ggml src/ggml-quants.c, built with gcc -O3 and no FMA):
// - every float op rounds to IEEE single: wrap each op result in `f32` (Math.fround);
//   a*b+c is two roundings, never fused;
// - `nearestInt` is ggml's nearest_int (round half to even), `roundf`/`roundfToInt` are
//   C's roundf (half away from zero), `truncInt` is C's (int) cast: they differ at .5 and
//   codecs must use the one the C code uses.
// - Modules that import these should copy them into module-level consts (`const f32 =
//   rounding.f32`): transpilers (tsx, vitest) turn imports into getters that V8 does not
//   inline, which costs up to 100x in hot loops.
// Inputs are assumed to already be f32 values (results of `f32`/Float32Array reads).

/** Round to IEEE single precision: the result of one C float operation. */
export const f32 = Math.fround;

/** 1.5 * 2^52: adding it to |x| <= 2^51 leaves round-half-even(x) as the double's integer. */
const RNE_MAGIC = 6755399441055744;

/**
 * ggml's nearest_int(fval): `fval + 12582912.f` in float, then the integer read back from
 * the mantissa bits, i.e. fval rounded half to even, for |fval| <= 4194303 (ggml asserts
 * it). The same rounding is done here in double with a 2^52 magic: one add and one
 * subtract, no f32 conversions (a hot path in every search loop). `x` must be an f32 value.
 */
export function nearestInt(x: number): number {
  return x + RNE_MAGIC - RNE_MAGIC;
}

/** C roundf: round half away from zero (Math.round goes half toward +Infinity). */
export function roundf(x: number): number {
  return x >= 0 ? Math.round(x) : -Math.round(-x);
}

/**
 * C `(int)roundf(x)` for |x| < 2^31, branch-free: x +- 0.5, then truncation. The sum of an
 * f32 value and 0.5 is exact in double, or too small to reach an integer, so truncating
 * it is roundf. NaN gives 0, as x86's float-to-int conversion leaves in the low byte.
 */
export function roundfToInt(x: number): number {
  return (x + (0.5 - +(x < 0))) | 0;
}

/** C `(int)x` for finite x in int range: truncation toward zero. */
export function truncInt(x: number): number {
  return Math.trunc(x);
}

/** C fabsf (exact on f32 values, no rounding needed). */
export const fabsf = Math.abs;

/**
 * C fmaxf: the larger value; if one argument is NaN, the other. (Math.max would return NaN.)
 */
export function fmaxf(a: number, b: number): number {
  if (a !== a) return b;
  if (b !== b) return a;
  return a > b ? a : b;
}

/** C fminf: the smaller value; if one argument is NaN, the other. */
export function fminf(a: number, b: number): number {
  if (a !== a) return b;
  if (b !== b) return a;
  return a < b ? a : b;
}
