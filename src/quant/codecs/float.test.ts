// F32, F16, BF16 and FP8: layouts pinned, every code of each format checked against a
// small independent decoder written here, and f16/bf16 against ggml itself on inputs the
// golden files do not hold (specials, subnormals, ties).
import { describe, expect, it } from 'vitest';
import { ggmlQuantizeChunk } from '../../testing/llama-peer.ts';
import { quantType } from '../types.ts';
import { f32ToF16Bits } from '../../formats/float16.ts';
import { BF16, F16, F32, FP8_E4M3, FP8_E5M2, f16FromF32Bits, fp8Bytes } from './float.ts';

const bitsOf = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);
const f32FromBits = (bits: number[]) => new Float32Array(Uint32Array.from(bits).buffer);
const u16 = (bytes: Uint8Array) => new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);

/** Every one of the 65536 16-bit codes, as little-endian bytes. */
const ALL_16_BIT_CODES = new Uint8Array(Uint16Array.from({ length: 65536 }, (_, h) => h).buffer);

describe('block layouts (house rule 2)', () => {
  it.each([
    ['f32', 1, 4],
    ['f16', 1, 2],
    ['bf16', 1, 2],
    ['fp8_e4m3', 1, 1],
    ['fp8_e5m2', 1, 1],
  ])('%s: %i element(s) per block, %i byte(s) per block', (id, blockSize, typeSize) => {
    const type = quantType(id)!;
    expect([type.blockSize, type.typeSize]).toEqual([blockSize, typeSize]);
  });

  it('fp8 stores one f32 scale, then one byte per element', () => {
    expect(fp8Bytes(3, 5)).toBe(19);
    expect(FP8_E4M3.encode(new Float32Array(15), 5).length).toBe(19);
    expect(quantType('fp8_e5m2')!.bytesFor(3, 5)).toBe(19);
  });
});

describe('f32', () => {
  it('round-trips every bit pattern given, NaN payloads and -0 included', () => {
    const x = f32FromBits([0x7fc00001, 0xff800001, 0x80000000, 0x00000001, 0x7f7fffff, 0x3f800000]);
    const bytes = F32.encode(x, 3);
    expect(bytes).toEqual(new Uint8Array(x.buffer));
    expect(bitsOf(F32.decode(bytes, 2, 3))).toEqual(bitsOf(x));
  });
});

/** IEEE binary16 code -> value, written from the format's definition. */
function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 31;
  const mantissa = h & 1023;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (exponent ? 1 + mantissa / 1024 : mantissa / 1024) * 2 ** ((exponent || 1) - 15);
}

describe('f16', () => {
  it('decodes every code as IEEE binary16 (NaNs as ggml: quiet, payload kept)', () => {
    const got = F16.decode(ALL_16_BIT_CODES, 256, 256);
    const bits = bitsOf(got);
    const wrong: string[] = [];
    for (let h = 0; h < 65536; h++) {
      const want = f16Value(h);
      const ok = Number.isNaN(want)
        ? bits[h] === (((h & 0x8000) << 16) | 0x7fc00000 | ((h & 1023) << 13)) >>> 0
        : Object.is(got[h], want);
      if (!ok) wrong.push(h.toString(16));
    }
    expect(wrong).toEqual([]);
  });

  it('encodes every decoded non-NaN code back to itself', () => {
    const values = F16.decode(ALL_16_BIT_CODES, 1, 65536);
    const codes = u16(F16.encode(values, 65536));
    const wrong = [...codes.keys()].filter((h) => !Number.isNaN(values[h]) && codes[h] !== h);
    expect(wrong).toEqual([]);
  });

  it("converts like ggml's float trick (float16.ts) on 4M bit patterns over every exponent", () => {
    const value = new Float32Array(1);
    const bits = new Uint32Array(value.buffer);
    const wrong: string[] = [];
    // Every sign, exponent and top 10 mantissa bits (f16's), each with low bits below, on
    // and above the rounding ties of normal and subnormal f16.
    const lows = [0x0000, 0x0001, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x0800, 0x17ff];
    for (let hi = 0; hi < 1 << 19; hi++) {
      for (const low of lows) {
        const u = ((hi << 13) | low) >>> 0;
        if ((u & 0x7fffffff) > 0x7f800000 && low !== 0x0001) continue;
        bits[0] = u;
        if (f16FromF32Bits(u) !== f32ToF16Bits(value[0])) wrong.push(u.toString(16));
      }
    }
    expect(wrong.slice(0, 10)).toEqual([]);
  });

  it('rounds to nearest even, overflows to Inf, keeps subnormals, NaN -> 0x7e00', () => {
    const x = Float32Array.of(
      1 + 2 ** -11, // tie between 1 and 1 + 2^-10: to even, 1
      1 + 3 * 2 ** -11, // tie: to even, 1 + 2^-9
      65504, 65519.99, 65520, Infinity, -Infinity, NaN,
      2 ** -24, 2 ** -25, 3 * 2 ** -25, 2 ** -149, -(2 ** -149), -0,
    );
    expect(Array.from(u16(F16.encode(x, x.length)))).toEqual([
      0x3c00, 0x3c02, 0x7bff, 0x7bff, 0x7c00, 0x7c00, 0xfc00, 0x7e00,
      0x0001, 0x0000, 0x0002, 0x0000, 0x8000, 0x8000,
    ]);
  });

  it('equals ggml on specials, subnormals and ties', () => {
    const x = f32FromBits([
      0x7fc00000, 0xffc00000, 0x7f800001, 0x7f800000, 0xff800000, 0x477fefff, 0x477ff000,
      0x33800000, 0x33000000, 0x33000001, 0x387fc000, 0x387fe000, 0x00000001, 0x80000000,
      ...Array.from({ length: 242 }, (_, i) => (0x33000000 + i * 0x00357000) >>> 0),
    ]);
    expect(F16.encode(x, 256)).toEqual(ggmlQuantizeChunk(1, x, 256));
  });
});

describe('bf16', () => {
  it('decodes every code to its f32 bit pattern shifted up', () => {
    const bits = bitsOf(BF16.decode(ALL_16_BIT_CODES, 1, 65536));
    expect([...bits.keys()].filter((h) => bits[h] !== (h << 16) >>> 0)).toEqual([]);
  });

  it('encodes every decoded non-NaN code back to itself', () => {
    const values = BF16.decode(ALL_16_BIT_CODES, 1, 65536);
    const codes = u16(BF16.encode(values, 65536));
    expect([...codes.keys()].filter((h) => !Number.isNaN(values[h]) && codes[h] !== h)).toEqual([]);
  });

  it('rounds to nearest even, forces NaNs quiet keeping the payload, keeps subnormals', () => {
    const x = f32FromBits([0x3f808000, 0x3f818000, 0x3f808001, 0x7f7fffff, 0x7f800001, 0xff812345, 0x00010000, 0x00008000, 0x80018000]);
    expect(Array.from(u16(BF16.encode(x, x.length)))).toEqual([0x3f80, 0x3f82, 0x3f81, 0x7f80, 0x7fc0, 0xffc1, 0x0001, 0x0000, 0x8002]);
    expect(BF16.encode(x, x.length)).toEqual(ggmlQuantizeChunk(30, Float32Array.from({ length: 256 }, (_, i) => x[i % x.length]), 256).subarray(0, 18));
  });
});

// ---------------------------------------------------------------- fp8

/** OCP FP8 from its definition: E4M3 "fn" (no Inf, only S.1111.111 is NaN) and E5M2 (IEEE-like). */
function fp8Value(code: number, format: 'e4m3' | 'e5m2'): number {
  const [e, m, bias] = format === 'e4m3' ? [4, 3, 7] : [5, 2, 15];
  const sign = code & 0x80 ? -1 : 1;
  const exponent = (code >> m) & ((1 << e) - 1);
  const mantissa = code & ((1 << m) - 1);
  if (format === 'e4m3' && (code & 0x7f) === 0x7f) return NaN;
  if (format === 'e5m2' && exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (exponent ? 1 + mantissa / 2 ** m : mantissa / 2 ** m) * 2 ** ((exponent || 1) - bias);
}

const FP8 = [
  ['fp8_e4m3', FP8_E4M3, 'e4m3', 448, 0x7f] as const,
  ['fp8_e5m2', FP8_E5M2, 'e5m2', 57344, 0x7e] as const,
];

/** A tensor's bytes with scale 1: [f32 1][codes]. */
function withUnitScale(codes: ArrayLike<number>): Uint8Array {
  const bytes = new Uint8Array(4 + codes.length);
  new DataView(bytes.buffer).setFloat32(0, 1, true);
  bytes.set(codes, 4);
  return bytes;
}

/** The nearest finite code of v's sign by brute force; ties to the even code. */
function nearestCode(v: number, table: number[]): number {
  const signBit = v < 0 || Object.is(v, -0) ? 0x80 : 0;
  let best = -1;
  for (let c = signBit; c < signBit + 0x80; c++) {
    if (!Number.isFinite(table[c])) continue;
    const d = Math.abs(table[c] - v);
    const bestD = best < 0 ? Infinity : Math.abs(table[best] - v);
    if (d < bestD || (d === bestD && c % 2 === 0)) best = c;
  }
  return best;
}

describe.each(FP8)('%s', (_, codec, format, maxFinite, nanCode) => {
  const table = Array.from({ length: 256 }, (__, c) => fp8Value(c, format));

  it(`decodes every code as the format defines it (largest finite ${maxFinite})`, () => {
    const got = codec.decode(withUnitScale(table.map((__, c) => c)), 1, 256);
    for (let c = 0; c < 256; c++) expect(Object.is(got[c], table[c]), `code ${c.toString(16)}`).toBe(true);
    expect(Math.max(...table.filter(Number.isFinite))).toBe(maxFinite);
  });

  it('encodes every finite code back to itself, with scale 1 (max |x| = largest finite)', () => {
    const codes = table.map((__, c) => c).filter((c) => Number.isFinite(table[c]));
    const bytes = codec.encode(Float32Array.from(codes, (c) => table[c]), codes.length);
    expect(new DataView(bytes.buffer).getFloat32(0, true)).toBe(1);
    expect(Array.from(bytes.subarray(4))).toEqual(codes);
  });

  it('rounds to the nearest code, ties to even: every midpoint and random values', () => {
    const positive = table.slice(0, 128).filter(Number.isFinite);
    const midpoints = positive.slice(1).map((v, i) => (v + positive[i]) / 2);
    let seed = 7;
    const random = Array.from({ length: 2000 }, () => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return Math.fround((seed / 2 ** 32 - 0.5) * 2 * maxFinite * 2 ** -(seed % 20));
    });
    const values = [maxFinite, ...midpoints, ...midpoints.map((v) => -v), ...random];
    const bytes = codec.encode(Float32Array.from(values), values.length);
    values.forEach((v, i) => expect(bytes[4 + i], `value ${v}`).toBe(nearestCode(v, table)));
  });

  it('saturates Inf to the largest finite code (Inf does not count towards the scale), NaN stays NaN', () => {
    const x = Float32Array.of(maxFinite, -maxFinite, Infinity, -Infinity, NaN);
    const bytes = codec.encode(x, x.length);
    const maxCode = table.indexOf(maxFinite);
    expect(new DataView(bytes.buffer).getFloat32(0, true)).toBe(1);
    expect(Array.from(bytes.subarray(4))).toEqual([maxCode, maxCode | 0x80, maxCode, maxCode | 0x80, nanCode]);
  });

  it('saturates a max |x| whose x / scale rounds past the largest finite value', () => {
    // Find an absmax a with f32(a / f32(a / maxFinite)) > maxFinite.
    let a = 1;
    while (Math.fround(a / Math.fround(a / maxFinite)) <= maxFinite) a = Math.fround(a * 1.0001 + 0.37);
    const bytes = codec.encode(Float32Array.of(a, -a), 2);
    const maxCode = table.indexOf(maxFinite);
    expect(Array.from(bytes.subarray(4))).toEqual([maxCode, maxCode | 0x80]);
  });

  it('scales by max |x| / largest finite, and decodes code value * scale', () => {
    const x = Float32Array.of(0.5, -2, 1e-3, 0, -0);
    const bytes = codec.encode(x, 5);
    const scale = new DataView(bytes.buffer).getFloat32(0, true);
    expect(scale).toBe(Math.fround(2 / maxFinite));
    const back = codec.decode(bytes, 1, 5);
    for (let i = 0; i < 5; i++) expect(back[i]).toBe(Math.fround(table[bytes[4 + i]] * scale));
    expect(back[1]).toBe(-2);
    expect(Object.is(back[4], -0)).toBe(true);
    // Relative error at most half a step: 2^-(mantissa bits + 1) for normal values.
    const mantissaBits = format === 'e4m3' ? 3 : 2;
    expect(Math.abs(back[0] - 0.5) / 0.5).toBeLessThanOrEqual(2 ** -(mantissaBits + 1));
  });

  it('an all-zero tensor gets scale 1 and zero codes', () => {
    const bytes = codec.encode(new Float32Array(8), 4);
    expect(new DataView(bytes.buffer).getFloat32(0, true)).toBe(1);
    expect(Array.from(bytes.subarray(4))).toEqual(new Array(8).fill(0));
  });

  it('keeps a non-zero scale for subnormal tensors', () => {
    const tiny = 2 ** -149;
    const bytes = codec.encode(Float32Array.of(tiny, -tiny, 0), 3);
    expect(new DataView(bytes.buffer).getFloat32(0, true)).toBe(tiny);
    expect(Array.from(codec.decode(bytes, 1, 3))).toEqual([tiny, -tiny, 0]);
  });

  it('rejects a byte count that does not match the shape', () => {
    expect(() => codec.decode(new Uint8Array(10), 2, 4)).toThrow(RangeError);
  });
});
