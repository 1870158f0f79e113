import { describe, expect, it } from 'vitest';
import { blockFields } from './block-fields.ts';
import { QUANT_TYPES, quantType } from './types.ts';

describe('block fields', () => {
  const row = Float32Array.from({ length: 256 }, (_, i) => Math.sin(i * 0.37) * 0.05 + (i === 7 ? 0.3 : 0));

  it('reads back the scale each block-scaled type stores (it reproduces the block max)', () => {
    const sub4 = ['iq3_s', 'iq3_xxs', 'iq2_s', 'iq2_xs', 'iq2_xxs', 'iq1_m', 'iq1_s', 'nvfp4', 'q2_0', 'q1_0'];
    for (const id of ['q4_0', 'q8_0', 'q5_0', 'q4_K', 'q6_K', 'q3_K', 'q2_K', 'nf4', 'int4_g32_sym', ...sub4]) {
      const t = quantType(id)!;
      const bytes = t.codec.encode(row, 256, Float32Array.from({ length: 256 }, () => 1));
      const fields = blockFields(id, bytes.subarray(0, t.typeSize));
      const first = Object.values(fields)[0];
      // q4_0 stores a signed scale (max / -8), so only its magnitude is positive.
      expect(Number.isFinite(first) && first !== 0, `${id}: ${JSON.stringify(fields)}`).toBe(true);
    }
  });

  it('matches the codec: q8_0 d times 127 is the block absmax (to f16 precision)', () => {
    const t = quantType('q8_0')!;
    const bytes = t.codec.encode(row, 256);
    const { d } = blockFields('q8_0', bytes.subarray(0, t.typeSize));
    const absmax = Math.max(...row.subarray(0, 32).map(Math.abs));
    expect(d * 127).toBeCloseTo(absmax, 3);
  });

  it('gives {} for layouts without per-block fields, and never throws for a table type', () => {
    expect(blockFields('int8', new Uint8Array(8))).toEqual({});
    for (const t of QUANT_TYPES) expect(() => blockFields(t.id, new Uint8Array(Math.max(t.typeSize, 4)))).not.toThrow();
  });
});

describe('block fields of the sub-4-bit types', () => {
  it('iq1_m: the f16 scale gathered from the scale words decodes the block as the codec does', () => {
    const row = Float32Array.from({ length: 256 }, (_, i) => Math.cos(i * 0.21) * 0.04);
    const t = quantType('iq1_m')!;
    const bytes = t.codec.encode(row, 256, Float32Array.from({ length: 256 }, () => 1));
    const { d } = blockFields('iq1_m', bytes.subarray(0, t.typeSize));
    // Each weight is d * (2*s + 1) * (grid value +- 1/8) with a 3-bit s: |w| <= d * 15 * 1.125.
    const deq = t.codec.decode(bytes, 1, 256);
    const maxAbs = Math.max(...deq.map(Math.abs));
    expect(d).toBeGreaterThan(0);
    expect(maxAbs).toBeLessThanOrEqual(d * 15 * 1.125 * (1 + 1e-6));
    expect(maxAbs).toBeGreaterThan(d * 0.125);
  });

  it('nvfp4: four sub-block scales; each sub-block of 16 is at most 6 times its scale', () => {
    const row = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i * 0.7) * (i < 16 ? 0.01 : 1));
    const t = quantType('nvfp4')!;
    const bytes = t.codec.encode(row, 64);
    const fields = blockFields('nvfp4', bytes.subarray(0, t.typeSize));
    const deq = t.codec.decode(bytes, 1, 64);
    expect(Object.keys(fields)).toEqual(['d0', 'd1', 'd2', 'd3']);
    for (let s = 0; s < 4; s++) {
      const maxAbs = Math.max(...deq.subarray(s * 16, s * 16 + 16).map(Math.abs));
      expect(maxAbs, `sub-block ${s}`).toBeCloseTo(6 * fields[`d${s}`], 6);
    }
    expect(fields.d0).toBeLessThan(fields.d1);
  });
});
