import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { quantType } from '../types.ts';
import {
  IQ4_NL, IQ4_NL_BLOCK, IQ4_NL_BYTES, IQ4_XS, IQ4_XS_BLOCK, IQ4_XS_BYTES, KVALUES_IQ4NL, bestIndexInt8, nearestGridIndex,
} from './iquants.ts';
import { f32Bits, f32FromBits } from '../../formats/float16.ts';

/** Deterministic pseudo-Gaussian weights (no Math.random: failures must reproduce). */
function weights(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  for (let i = 0; i < n; i++) out[i] = 0.02 * Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next());
  return out;
}

const concat = (a: ArrayLike<number> & Iterable<number>, b: ArrayLike<number> & Iterable<number>) => [...a, ...b];

describe('iq4 block layout (static asserts in ggml-common.h)', () => {
  it('pins block sizes and the type table agrees', () => {
    expect([IQ4_NL_BLOCK, IQ4_NL_BYTES]).toEqual([32, 18]);
    expect([IQ4_XS_BLOCK, IQ4_XS_BYTES]).toEqual([256, 136]);
    expect(quantType('iq4_nl')).toMatchObject({ blockSize: 32, typeSize: 18 });
    expect(quantType('iq4_xs')).toMatchObject({ blockSize: 256, typeSize: 136 });
  });
});

describe.each([
  ['iq4_nl', IQ4_NL],
  ['iq4_xs', IQ4_XS],
] as const)('%s', (_, codec) => {
  it('reproduces a block that lies exactly on the grid', () => {
    // Every grid value twice per 32, scaled by a power of two: the best scale is exact.
    const x = Float32Array.from({ length: 256 }, (_, i) => KVALUES_IQ4NL[i % 16] / 64);
    expect(Array.from(codec.decode(codec.encode(x, 256), 1, 256))).toEqual(Array.from(x));
  });

  it('reads importance weights by column, row after row', () => {
    const a = weights(256, 1);
    const b = weights(256, 2);
    const wa = weights(256, 3).map(Math.abs);
    const wb = weights(256, 4).map(Math.abs);
    const wide = codec.encode(Float32Array.from(concat(a, b)), 512, Float32Array.from(concat(wa, wb)));
    const halves = concat(codec.encode(a, 256, wa), codec.encode(b, 256, wb));
    expect(Array.from(wide)).toEqual(halves);
    expect(Array.from(codec.encode(a, 256, wa))).not.toEqual(Array.from(codec.encode(a, 256)));
  });

  it('rejects rows that are not whole blocks, importance of the wrong length, short data', () => {
    expect(() => codec.encode(new Float32Array(48), 48)).toThrow(RangeError);
    expect(() => codec.encode(new Float32Array(256), 256, new Float32Array(255))).toThrow(RangeError);
    expect(() => codec.decode(new Uint8Array(10), 1, 256)).toThrow(RangeError);
  });
});

describe('iq4_xs', () => {
  it('stores an all-zero super-block with d = -0 and grid index 8 (value 1), as ggml', () => {
    const bytes = IQ4_XS.encode(new Float32Array(256), 256);
    expect([bytes[0], bytes[1]]).toEqual([0x00, 0x80]);
    expect(bytes.subarray(8).every((b) => b === 0x88)).toBe(true);
    expect(IQ4_XS.decode(bytes, 1, 256).every((v) => v === 0)).toBe(true);
  });
});

describe('nearestGridIndex (bucket lookup)', () => {
  it('equals the C binary search on any f32', () => {
    fc.assert(fc.property(fc.float(), (x) => nearestGridIndex(x) === bestIndexInt8(x)), { numRuns: 20000 });
  });

  it('equals the C binary search next to every grid value and midpoint', () => {
    const points = [...KVALUES_IQ4NL].flatMap((v, i) => (i < 15 ? [v, (v + KVALUES_IQ4NL[i + 1]) / 2] : [v]));
    for (const p of [...points, 0, -0.5, 0.5]) {
      for (let step = -4; step <= 4; step++) {
        const x = p === 0 ? f32FromBits(Math.abs(step)) * Math.sign(step) : f32FromBits(f32Bits(p) + step);
        expect(nearestGridIndex(x), `x = ${x}`).toBe(bestIndexInt8(x));
      }
    }
  });
});
