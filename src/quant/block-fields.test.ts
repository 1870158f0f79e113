import { describe, expect, it } from 'vitest';
import { blockFields } from './block-fields.ts';
import { QUANT_TYPES, quantType } from './types.ts';

describe('block fields', () => {
  const row = Float32Array.from({ length: 256 }, (_, i) => Math.sin(i * 0.37) * 0.05 + (i === 7 ? 0.3 : 0));

  it('reads back the scale each block-scaled type stores (it reproduces the block max)', () => {
    for (const id of ['q4_0', 'q8_0', 'q5_0', 'q4_K', 'q6_K', 'q3_K', 'q2_K', 'nf4', 'int4_g32_sym']) {
      const t = quantType(id)!;
      const bytes = t.codec.encode(row, 256);
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
