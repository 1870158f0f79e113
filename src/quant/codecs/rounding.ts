// C float helpers shared by the reference codecs, so every codec rounds the way ggml's C
// does (ggml-org/ggml src/ggml-quants.c, built with gcc -O3 and no FMA):
// - every float op rounds to IEEE single: wrap each op result in `f32` (Math.fround);
//   a*b+c is two roundings, never fused;
// - `nearestInt` is ggml's nearest_int (round half to even; `nearestIntC` also past its
//   asserted range, as the release build computes it), `roundf`/`roundfToInt` are C's
//   roundf (half away from zero), `truncInt` is C's (int) cast: they differ at .5 and
//   codecs must use the one the C code uses.
// - Modules that import these should copy them into module-level consts (`const f32 =
//   rounding.f32`): transpilers (tsx, vitest) turn imports into getters that V8 does not
//   inline, which costs up to 100x in hot loops.
// - The `sse*` helpers at the end compute on f32 bit patterns, for results that may be NaN
//   (JS cannot choose a NaN's bits).
// Inputs are assumed to already be f32 values (results of `f32`/Float32Array reads).
import * as float16 from '../../formats/float16.ts';

const f16BitsToF32 = float16.f16BitsToF32;
const f32Bits = float16.f32Bits;
const f32FromBits = float16.f32FromBits;

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

/**
 * ggml's nearest_int for every f32 input, even past the |x| <= 4194303 its assert assumes
 * (the release build does not check): round half to even while x + 1.5*2^23 stays in
 * [2^23, 2^24), else the literal bit trick (Inf -> -4194304, NaN -> 0, ...). The `* 1`
 * keeps the result a plain number for V8, so the rare branch does not box the hot one.
 */
export function nearestIntC(x: number): number {
  return x > -4194304.5 && x < 4194303.5 ? nearestInt(x) : nearestIntFromBits(x) * 1;
}

const bitsF32 = new Float32Array(1);
const bitsI32 = new Int32Array(bitsF32.buffer);
/** The literal C: read the integer from the mantissa of x + 1.5*2^23 (NaN -> 0, etc.). */
function nearestIntFromBits(x: number): number {
  bitsF32[0] = x + 12582912;
  return (bitsI32[0] & 0x007fffff) - 0x00400000;
}

/** C's MAX(lo, MIN(hi, v)) on ints. */
export function clampInt(v: number, lo: number, hi: number): number {
  return v > hi ? hi : v < lo ? lo : v;
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

// ---------------------------------------------------------------------------------------
// Inf and NaN scales: blocks whose scale is Inf or NaN decode to NaNs whose bits JS cannot
// choose, so the codecs compute them on bits with SSE's rules, as ggml's x86 build does: a
// NaN operand passes through quieted (the first one if both are NaN), and 0 * Inf or
// Inf - Inf give the default NaN 0xffc00000.

export const DEFAULT_NAN_BITS = 0xffc00000;

/** The f32 with these bits is finite (exponent not all ones). */
export function isFiniteBits(bits: number): boolean {
  return (bits & 0x7f800000) !== 0x7f800000;
}

/** The f32 with these bits is a NaN. */
export function isNaNBits(bits: number): boolean {
  return (bits & 0x7fffffff) > 0x7f800000;
}

/** ggml's f16 -> f32 as bits: NaNs keep sign and payload and come out quiet. */
export function f16ToF32Bits(h: number): number {
  if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) return (((h & 0x8000) << 16) | 0x7fc00000 | ((h & 0x3ff) << 13)) >>> 0;
  return f32Bits(f16BitsToF32(h));
}

/** SSE's a * (float)q as bits, for an integer q. */
export function sseMulInt(aBits: number, q: number): number {
  if (isNaNBits(aBits)) return (aBits | 0x00400000) >>> 0;
  const a = f32FromBits(aBits);
  if (q === 0 && !Number.isFinite(a)) return DEFAULT_NAN_BITS;
  return f32Bits(a * q);
}

/** SSE's a + b as bits. */
export function sseAdd(aBits: number, bBits: number): number {
  if (isNaNBits(aBits)) return (aBits | 0x00400000) >>> 0;
  if (isNaNBits(bBits)) return (bBits | 0x00400000) >>> 0;
  const a = f32FromBits(aBits);
  const b = f32FromBits(bBits);
  if (a === -b && !Number.isFinite(a)) return DEFAULT_NAN_BITS;
  return f32Bits(a + b);
}

/** SSE's a - b as bits: a + (-b), but a NaN b passes through with its own sign. */
export function sseSub(aBits: number, bBits: number): number {
  if (isNaNBits(bBits) && !isNaNBits(aBits)) return (bBits | 0x00400000) >>> 0;
  return sseAdd(aBits, (bBits ^ 0x80000000) >>> 0);
}
