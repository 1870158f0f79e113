// The converter reads a slab of rows on its own (readRowsF32), so an export of a safetensors
// model holds a slab, never a whole tensor: every row range, including ranges that cut
// through attention heads of the permuted q/k matrices, equals the same rows of the whole.
import { describe, expect, it } from 'vitest';
import { loadModel } from '../formats/model.ts';
import { fixture } from '../formats/testing.ts';
import { rng } from '../testing/random.ts';
import { convertHfLlama } from './llama.ts';

describe('rows read on their own', () => {
  it('equal the rows of the whole tensor, for every tensor of the sample and random ranges', async () => {
    const model = await loadModel([await fixture('stories260K.f32.safetensors'), await fixture('stories260K.config.json')]);
    const converted = await convertHfLlama(model);
    const r = rng(5);
    let permutedChecked = 0;
    for (const t of converted.tensors) {
      const whole = await t.readF32();
      const cols = t.shape.length > 1 ? t.shape[t.shape.length - 1] : t.shape[0];
      const rows = whole.length / cols;
      const ranges = [[0, rows], [0, 1], [rows - 1, 1]];
      for (let i = 0; i < 6; i++) {
        const first = Math.floor(r() * rows);
        ranges.push([first, 1 + Math.floor(r() * (rows - first))]);
      }
      for (const [first, count] of ranges) {
        const got = await t.readRowsF32!(first, count);
        expect(got, `${t.name} rows ${first}+${count}`).toEqual(whole.subarray(first * cols, (first + count) * cols));
      }
      if (/attn_[qk]\.weight/.test(t.name)) permutedChecked++;
    }
    expect(permutedChecked).toBe(2 * 5); // q and k of each of the 5 layers
  });
});
