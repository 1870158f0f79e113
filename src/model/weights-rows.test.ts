import { describe, expect, it } from 'vitest';
import { quantType } from '../quant/types.ts';
import { gaussians } from '../testing/random.ts';
import { quantizedProvider, type QuantizedWeights } from './weights.ts';
import { weightRow } from './families/linear.ts';

describe('quantizedProvider.row: one row of a packed tensor without decoding it whole', () => {
  it('gives the floats of that row of the whole decode (q4_K, q6_K, q8_0), and rows of kept tensors', () => {
    const [rows, cols] = [12, 512];
    for (const name of ['q4_K', 'q6_K', 'q8_0']) {
      const type = quantType(name)!;
      const w = gaussians(rows * cols, 31);
      const bytes = type.codec.encode(w, cols);
      const whole = type.codec.decode(bytes, rows, cols);
      const kept = gaussians(3 * cols, 32);
      const q: QuantizedWeights = { values: new Map([['kept', kept]]), packed: new Map([['emb', { type, bytes, rows, cols }]]), types: new Map() };
      const provider = quantizedProvider(q);
      for (const r of [0, 5, rows - 1]) expect(weightRow(provider, 'emb', r, cols), `${name} row ${r}`).toEqual(whole.subarray(r * cols, (r + 1) * cols));
      expect(weightRow(provider, 'kept', 2, cols)).toEqual(kept.subarray(2 * cols));
      expect(() => provider.row('emb', rows, cols)).toThrow(/row 12 of tensor 'emb' is outside its 12 rows/);
      expect(() => provider.row('emb', 0, cols / 2)).toThrow(/rows of 512, expected 256/);
      expect(() => provider.row('nothing', 0, cols)).toThrow(/no weights for tensor 'nothing'/);
      // A plain provider (no row reader): the row of its f32 tensor.
      expect(weightRow(() => whole, 'emb', 3, cols)).toEqual(whole.subarray(3 * cols, 4 * cols));
    }
  });
});
