import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { quantType } from '../types.ts';
import { f32Bits, f32FromBits } from '../../formats/float16.ts';
import { KVALUES_MXFP4, MXFP4, MXFP4_BLOCK, MXFP4_BYTES, bestIndexMxfp4, e8m0ToF32Half, nearestCode } from './mxfp4.ts';

describe('mxfp4 block layout (static assert in ggml-common.h)', () => {
  it('pins the block size and the type table agrees', () => {
    expect([MXFP4_BLOCK, MXFP4_BYTES]).toEqual([32, 17]);
    expect(quantType('mxfp4')).toMatchObject({ blockSize: 32, typeSize: 17 });
  });
});

describe('mxfp4', () => {
  it('reads E8M0 as half the power of two, subnormal at the bottom', () => {
    expect(e8m0ToF32Half(0)).toBe(2 ** -128);
    expect(e8m0ToF32Half(1)).toBe(2 ** -127);
    expect(e8m0ToF32Half(2)).toBe(2 ** -126);
    expect(e8m0ToF32Half(128)).toBe(1);
    expect(e8m0ToF32Half(254)).toBe(2 ** 126);
  });

  it('picks the exponent from log2f rounded to f32, as C', () => {
    const block = (amax: number) => Float32Array.from({ length: 32 }, (_, i) => (i === 5 ? amax : 0));
    expect(MXFP4.encode(block(6), 32)[0]).toBe(127);
    // Just below 16, log2f rounds up to 4.0f: a double floor would give exponent 128.
    const below16 = Math.fround(16 * (1 - 2 ** -24));
    expect(MXFP4.encode(block(below16), 32)[0]).toBe(129);
    expect(MXFP4.encode(new Float32Array(32), 32)[0]).toBe(0);
  });

  it('wraps the exponent of a subnormal absmax as gcc on x86-64 does', () => {
    // From ggml built with gcc -O3: floor(log2f(5e-40)) - 2 + 127 = -6 -> (uint8_t) 250.
    const bytes = MXFP4.encode(new Float32Array(32).fill(5e-40), 32);
    expect(Array.from(bytes)).toEqual([250, ...new Array(16).fill(0)]);
    const inf = Float32Array.from({ length: 32 }, (_, i) => (i === 3 ? Infinity : 1));
    expect(Array.from(MXFP4.encode(inf, 32))).toEqual(new Array(17).fill(0));
  });

  it('round-trips E2M1 values exactly', () => {
    const x = Float32Array.from({ length: 64 }, (_, i) => (KVALUES_MXFP4[i % 16] * 0.25) / 2);
    x[7] = 1.5; // amax 1.5 -> exponent 127 - 2: scale 0.25, 1.5 = 6 * 0.25
    const back = MXFP4.decode(MXFP4.encode(x, 64), 1, 64);
    expect(Array.from(back)).toEqual(Array.from(x));
  });

  it('rejects rows that are not whole blocks and short data', () => {
    expect(() => MXFP4.encode(new Float32Array(48), 48)).toThrow(RangeError);
    expect(() => MXFP4.decode(new Uint8Array(10), 1, 32)).toThrow(RangeError);
  });
});

describe('nearestCode (two-candidate search)', () => {
  const exponent = fc.integer({ min: 0, max: 254 });

  it('equals the C scan for weights within a block of that exponent', () => {
    const weight = exponent.chain((e) =>
      fc.tuple(fc.constant(e), fc.float({ min: -16, max: 16, noNaN: true }).map((t) => Math.fround(t * e8m0ToF32Half(e)))),
    );
    fc.assert(
      fc.property(weight, ([e, x]) => {
        const h = e8m0ToF32Half(e);
        return nearestCode(x, h, 1 / h) === bestIndexMxfp4(x, h);
      }),
      { numRuns: 20000 },
    );
  });

  it('equals the C scan on ties and next to them', () => {
    for (const e of [0, 1, 2, 100, 127, 254]) {
      const h = e8m0ToF32Half(e);
      for (let half = -32; half < 32; half++) {
        const mid = (half / 2) * h;
        for (let step = -2; step <= 2; step++) {
          const x = mid === 0 ? step * f32FromBits(1) : f32FromBits(f32Bits(mid) + step);
          expect(nearestCode(x, h, 1 / h), `e ${e}, x ${x}`).toBe(bestIndexMxfp4(x, h));
        }
      }
    }
  });

  it('equals the C scan on any f32, NaN included', () => {
    fc.assert(fc.property(exponent, fc.float(), (e, x) => {
      const h = e8m0ToF32Half(e);
      return nearestCode(x, h, 1 / h) === bestIndexMxfp4(x, h);
    }), { numRuns: 20000 });
  });
});
