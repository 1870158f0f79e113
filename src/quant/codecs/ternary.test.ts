import { describe, expect, it } from 'vitest';
import { quantType } from '../types.ts';
import { TQ1_0, TQ1_0_BYTES, TQ2_0, TQ2_0_BYTES, TQ_BLOCK } from './ternary.ts';

describe('ternary block layout (static asserts in ggml-common.h)', () => {
  it('pins block sizes and the type table agrees', () => {
    expect([TQ_BLOCK, TQ1_0_BYTES, TQ2_0_BYTES]).toEqual([256, 54, 66]);
    expect(quantType('tq1_0')).toMatchObject({ blockSize: 256, typeSize: 54 });
    expect(quantType('tq2_0')).toMatchObject({ blockSize: 256, typeSize: 66 });
  });
});

describe.each([
  ['tq1_0', TQ1_0],
  ['tq2_0', TQ2_0],
] as const)('%s', (_, codec) => {
  it('round-trips ternary weights in every position', () => {
    // A -1 and a +1 walking through the block: each trit slot is packed and read back.
    for (let p = 0; p < 256; p++) {
      const x = new Float32Array(512);
      x[p] = -0.5;
      x[(p + 1) % 256] = 0.5;
      x[256 + p] = 0.25;
      const back = codec.decode(codec.encode(x, 512), 1, 512);
      expect(Array.from(back)).toEqual(Array.from(x));
    }
  });

  it('stores an all-zero block as zeros', () => {
    const back = codec.decode(codec.encode(new Float32Array(256), 256), 1, 256);
    expect(back.every((v) => Object.is(v, 0))).toBe(true);
  });

  it('rejects rows that are not whole blocks and short data', () => {
    expect(() => codec.encode(new Float32Array(128), 128)).toThrow(RangeError);
    expect(() => codec.decode(new Uint8Array(10), 1, 256)).toThrow(RangeError);
  });
});

describe('subnormal absmax', () => {
  it('stores middle trits, as ggml does when 1/amax is infinite (lroundf of inf/NaN on x86-64)', () => {
    // Bytes from ggml built with gcc -O3 on x86-64, for a row of values around 1e-40.
    const x = Float32Array.from({ length: 256 }, (_, i) => Math.fround((i % 3) - 1) * 1e-40 * (1 + (i % 5)));
    const tq1 = TQ1_0.encode(x, 256);
    expect(Array.from(tq1)).toEqual([...new Array(48).fill(128), ...new Array(4).fill(127), 0, 0]);
    expect(Array.from(TQ2_0.encode(x, 256))).toEqual([...new Array(64).fill(85), 0, 0]);
  });
});

describe('tq1_0 packing', () => {
  it('stores 5 trits as ceil(q * 256 / 243), first trit most significant', () => {
    const x = new Float32Array(256);
    x[0] = 1; // trits of byte 0: 2,1,1,1,1 -> q = 202 -> ceil(51712 / 243) = 213
    expect(TQ1_0.encode(x, 256)[0]).toBe(213);
  });
});
