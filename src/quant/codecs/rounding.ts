// C float helpers shared by the reference codecs, so every codec rounds the way ggml's C
// does (ggml-org/ggml src/ggml-quants.c, built with gcc -O3 and no FMA):
// - every float op rounds to IEEE single: wrap each op result in `f32` (Math.fround);
//   a*b+c is two roundings, never fused;
// - `nearestInt` is ggml's nearest_int (round half to even), `roundf` is C's roundf
//   (half away from zero), `truncInt` is C's (int) cast: the three differ at .5 and
//   codecs must use the one the C code uses.
// Inputs are assumed to already be f32 values (results of `f32`/Float32Array reads).

/** Round to IEEE single precision: the result of one C float operation. */
export const f32 = Math.fround;

/** 1.5 * 2^23: adding it to |x| <= 2^22 leaves round-half-even(x) in the low mantissa bits. */
const NEAREST_INT_MAGIC = 12582912;

/**
 * ggml's nearest_int(fval): `fval + 12582912.f` in float, then read the integer back from
 * the mantissa bits; i.e. round half to even. Valid for |x| <= 4194303 (ggml asserts it).
 * The double sum is exact for f32 inputs that matter, so one fround gives the float sum.
 */
export function nearestInt(x: number): number {
  return Math.fround(x + NEAREST_INT_MAGIC) - NEAREST_INT_MAGIC;
}

/** C roundf: round half away from zero (Math.round goes half toward +Infinity). */
export function roundf(x: number): number {
  return x >= 0 ? Math.round(x) : -Math.round(-x);
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
