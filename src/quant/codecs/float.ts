// Float codecs: F32, F16, BF16 (GGUF types, as ggml_quantize_chunk writes them) and FP8
// E4M3 / E5M2 with one per-tensor scale (not in GGUF).
//
// Byte maps (all little-endian; a tensor is its rows concatenated, no padding):
//   f32       4 bytes per element: IEEE binary32, copied as is (NaN payloads kept).
//   f16       2 bytes per element: IEEE binary16, round to nearest even
//             (ggml-impl.h ggml_compute_fp32_to_fp16; NaN -> 0x7e00 with the sign).
//   bf16      2 bytes per element: the top half of binary32, round to nearest even
//             (ggml_compute_fp32_to_bf16; NaN kept, forced quiet).
//   fp8_e4m3  [0..3] f32 scale | [4..4+n) one code per element, row-major.
//             Code: s eeee mmm, bias 7, no infinities ("fn" variant, as PyTorch's
//             float8_e4m3fn): 0x7f/0xff are NaN, largest finite 0x7e = 448.
//   fp8_e5m2  [0..3] f32 scale | [4..4+n) codes: s eeeee mm, bias 15, IEEE-like:
//             0x7c = Inf, 0x7d..0x7f NaN, largest finite 0x7b = 57344.
// FP8 value = decode(code) * scale, with scale = (max |x| over finite x) / largest finite
// in f32 (1 when that max is 0; at least 2^-149, never 0). Encoding rounds x / scale to nearest even on the FP8 grid and
// saturates: finite overflow and +-Inf go to +-largest finite (OCP "satfinite"); NaN
// stays NaN (0x7f for E4M3, 0x7e for E5M2).
import { checkRows, type Codec } from '../codec.ts';
import * as float16 from '../../formats/float16.ts';
import { fp8Bytes } from '../sizes.ts';

// Local copies: transpiled modules (tsx, vitest) reach imports through getters, which V8
// does not inline in hot loops.
const f16BitsToF32 = float16.f16BitsToF32;

// Typed arrays use the host's byte order; every platform this runs on (x86, ARM, the
// browsers on them) is little-endian, which is what the byte maps above require.

function checkLength(data: Uint8Array, expected: number, what: string): void {
  if (data.length !== expected) {
    throw new RangeError(`${what}: expected ${expected} bytes, got ${data.length}`);
  }
}

// ---------------------------------------------------------------- f32

export const F32: Codec = {
  encode(src, rowLength) {
    checkRows(src, rowLength, 1, 'f32');
    return new Uint8Array(src.buffer, src.byteOffset, src.byteLength).slice();
  },
  decode(data, rows, rowLength) {
    checkLength(data, rows * rowLength * 4, 'f32');
    // Copy through bytes so NaN payloads survive (a JS number read would canonicalise them).
    const out = new Float32Array(rows * rowLength);
    new Uint8Array(out.buffer).set(data);
    return out;
  },
};

// ---------------------------------------------------------------- f16

let f16ToF32BitsTable: Uint32Array | undefined;

/**
 * f16 bits -> f32 bits for all 65536 codes, as ggml_compute_fp16_to_fp32 gives them:
 * exact values, and NaNs keep sign and payload but come out quiet (the C code multiplies
 * the NaN by 2^-112, which sets the quiet bit).
 */
function f16Table(): Uint32Array {
  if (f16ToF32BitsTable) return f16ToF32BitsTable;
  const bits = new Uint32Array(65536);
  const value = new Float32Array(bits.buffer);
  for (let h = 0; h < 65536; h++) {
    const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x03ff) !== 0;
    if (isNaN) bits[h] = (((h & 0x8000) << 16) | 0x7fc00000 | ((h & 0x03ff) << 13)) >>> 0;
    else value[h] = f16BitsToF32(h);
  }
  return (f16ToF32BitsTable = bits);
}

/**
 * ggml_compute_fp32_to_fp16 on raw f32 bits, in integer arithmetic (float16.ts's
 * f32ToF16Bits does it with ggml's float trick; a test holds the two equal): round to
 * nearest even, overflow to Inf, subnormals kept, NaN -> 0x7e00 with the sign.
 */
export function f16FromF32Bits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const a = u & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00;
  if (a >= 0x477ff000) return sign | 0x7c00; // >= 65520 rounds to Inf
  if (a >= 0x38800000) {
    // Normal f16 (>= 2^-14): rebias the exponent from 127 to 15 and round off 13 bits;
    // a carry out of the mantissa bumps the exponent, as it should.
    return sign | ((a - 0x38000000 + 0x0fff + ((a >>> 13) & 1)) >>> 13);
  }
  if (a <= 0x33000000) return sign; // <= 2^-25 rounds to zero (2^-25 is a tie, to even 0)
  // Subnormal f16: the value in units of 2^-24 is the 24-bit significand >> (126 - exponent).
  const shift = 126 - (a >>> 23);
  const significand = (a & 0x7fffff) | 0x800000;
  return sign | ((significand + (1 << (shift - 1)) - 1 + ((significand >>> shift) & 1)) >>> shift);
}

export const F16: Codec = {
  encode(src, rowLength) {
    checkRows(src, rowLength, 1, 'f16');
    const out = new Uint16Array(src.length);
    // Bits, not numbers: a NaN's sign must reach the converter untouched.
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
    for (let i = 0; i < src.length; i++) out[i] = f16FromF32Bits(bits[i]);
    return new Uint8Array(out.buffer);
  },
  decode(data, rows, rowLength) {
    const n = rows * rowLength;
    checkLength(data, n * 2, 'f16');
    const table = f16Table();
    const out = new Uint32Array(n);
    for (let i = 0, b = 0; i < n; i++, b += 2) out[i] = table[data[b] | (data[b + 1] << 8)];
    return new Float32Array(out.buffer);
  },
};

// ---------------------------------------------------------------- bf16

export const BF16: Codec = {
  encode(src, rowLength) {
    checkRows(src, rowLength, 1, 'bf16');
    const out = new Uint16Array(src.length);
    // Read bits, not numbers, so NaN payloads reach the converter (ggml_fp32_to_bf16_row_ref).
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
    for (let i = 0; i < src.length; i++) out[i] = bf16FromF32Bits(bits[i]);
    return new Uint8Array(out.buffer);
  },
  decode(data, rows, rowLength) {
    const n = rows * rowLength;
    checkLength(data, n * 2, 'bf16');
    const out = new Uint32Array(n);
    for (let i = 0, b = 0; i < n; i++, b += 2) out[i] = ((data[b] << 16) | (data[b + 1] << 24)) >>> 0;
    return new Float32Array(out.buffer);
  },
};

/**
 * ggml_compute_fp32_to_bf16 on raw f32 bits: NaN forced quiet, else round to nearest even.
 * float16.ts's f32ToBf16Bits does the same from a number; bits keep NaN payloads exact.
 */
function bf16FromF32Bits(u: number): number {
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 64;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

// ---------------------------------------------------------------- fp8

/** One FP8 format: sign, `expBits` exponent bits with `bias`, `mantBits` mantissa bits. */
interface Fp8Format {
  readonly name: string;
  readonly mantBits: number;
  readonly bias: number;
  /** Largest finite value and its (positive) code. */
  readonly maxFinite: number;
  readonly maxCode: number;
  /** The code written for NaN. */
  readonly nanCode: number;
  /** f32 value of each of the 256 codes. */
  readonly values: Float32Array;
}

function fp8Format(name: string, expBits: number, mantBits: number, ieeeSpecials: boolean): Fp8Format {
  const bias = (1 << (expBits - 1)) - 1;
  const expMax = (1 << expBits) - 1;
  const values = new Float32Array(256);
  for (let code = 0; code < 256; code++) {
    const sign = code & 0x80 ? -1 : 1;
    const e = (code >> mantBits) & expMax;
    const m = code & ((1 << mantBits) - 1);
    let v: number;
    if (e === 0) v = m * 2 ** (1 - bias - mantBits);
    else v = (2 ** mantBits + m) * 2 ** (e - bias - mantBits);
    if (ieeeSpecials && e === expMax) v = m === 0 ? Infinity : NaN;
    // The "fn" variant spends only the all-ones code on NaN and keeps the rest finite.
    if (!ieeeSpecials && (code & 0x7f) === 0x7f) v = NaN;
    values[code] = sign * v;
  }
  const maxCode = ieeeSpecials ? (expMax << mantBits) - 1 : 0x7e;
  const nanCode = ieeeSpecials ? (expMax << mantBits) | (1 << (mantBits - 1)) : 0x7f;
  return { name, mantBits, bias, maxFinite: values[maxCode], maxCode, nanCode, values };
}

const E4M3 = fp8Format('fp8_e4m3', 4, 3, false);
const E5M2 = fp8Format('fp8_e5m2', 5, 2, true);

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);
const ROUND_DOUBLE_MAGIC = 2 ** 52; // (t + 2^52) - 2^52 rounds t >= 0 half to even

/**
 * The FP8 code nearest to `v` (ties to even), saturating to the largest finite code.
 * `v` is rounded to f32 first (it is x / scale computed in single precision).
 */
function encodeFp8(v: number, f: Fp8Format): number {
  scratchF32[0] = v;
  const u = scratchU32[0];
  const sign = (u >>> 24) & 0x80;
  const a = Math.abs(scratchF32[0]);
  if (a !== a) return f.nanCode;
  if (a >= f.maxFinite) return sign | f.maxCode;
  const exponent = ((u >>> 23) & 0xff) - 127;
  const minNormalExponent = 1 - f.bias;
  if (exponent >= minNormalExponent) {
    // Round the f32 mantissa to mantBits (to nearest even) on the bits, then rebias;
    // a carry out of the mantissa correctly bumps the exponent.
    const drop = 23 - f.mantBits;
    const magnitude = u & 0x7fffffff;
    const rounded = (magnitude + ((1 << (drop - 1)) - 1) + ((magnitude >>> drop) & 1)) >>> drop;
    return sign | (rounded - ((127 - f.bias) << f.mantBits));
  }
  // Subnormal range: count quanta of the smallest subnormal (exact power-of-two scaling).
  const quanta = a * 2 ** (f.mantBits - minNormalExponent);
  return sign | ((quanta + ROUND_DOUBLE_MAGIC) - ROUND_DOUBLE_MAGIC);
}

/** The smallest positive f32: a scale never underflows to 0 (x / 0 would be Inf or NaN). */
const MIN_SCALE = 2 ** -149;

/** Per-tensor scale: max |x| over finite x mapped onto the largest finite FP8 value. */
function fp8Scale(src: Float32Array, f: Fp8Format): number {
  let absmax = 0;
  for (let i = 0; i < src.length; i++) {
    const a = Math.abs(src[i]);
    if (a > absmax && a !== Infinity) absmax = a;
  }
  return absmax === 0 ? 1 : Math.max(MIN_SCALE, Math.fround(absmax / f.maxFinite));
}

function fp8Codec(f: Fp8Format): Codec {
  return {
    encode(src, rowLength) {
      checkRows(src, rowLength, 1, f.name);
      const out = new Uint8Array(4 + src.length);
      const scale = fp8Scale(src, f);
      new DataView(out.buffer).setFloat32(0, scale, true);
      for (let i = 0; i < src.length; i++) out[4 + i] = encodeFp8(src[i] / scale, f);
      return out;
    },
    decode(data, rows, rowLength) {
      const n = rows * rowLength;
      checkLength(data, fp8Bytes(rows, rowLength), f.name);
      const scale = new DataView(data.buffer, data.byteOffset, 4).getFloat32(0, true);
      const out = new Float32Array(n);
      // value * scale in double is rounded once by the Float32Array store, as one f32 multiply.
      for (let i = 0; i < n; i++) out[i] = f.values[data[4 + i]] * scale;
      return out;
    },
  };
}

export const FP8_E4M3 = fp8Codec(E4M3);
export const FP8_E5M2 = fp8Codec(E5M2);

// Storage of an FP8 tensor: quant/sizes.ts (the type table reads it too).
export { fp8Bytes };
