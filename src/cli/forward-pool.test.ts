import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../formats/model.ts';
import { fixture } from '../formats/testing.ts';
import { evaluateModel } from '../model/eval.ts';
import { fastCpuLinear } from '../model/fast-linear.ts';
import { quantType } from '../quant/types.ts';
import { gaussians } from '../testing/random.ts';
import { ForwardPool, sharedCopy } from './forward-pool.ts';

describe('the forward pool (worker threads over row ranges, weights in shared memory)', () => {
  let pool: ForwardPool;
  beforeAll(async () => {
    pool = await ForwardPool.start(2, 0);
  }, 60_000);
  afterAll(async () => {
    await pool.close();
  });

  it("gives one thread's products exactly: f32 and packed weights, shared or not", async () => {
    const [rows, cols, n] = [203, 512, 5];
    const w = gaussians(rows * cols, 1);
    const q4k = quantType('q4_K')!;
    const bytes = q4k.codec.encode(w, cols);
    const x = gaussians(n * cols, 2);
    const weights = new Map([['f', sharedCopy(w)], ['plain', w]]);
    const packed = new Map([['q', { type: q4k, bytes: sharedCopy(bytes), rows, cols }]]);
    const provider = (name: string) => weights.get(name)!;
    const one = fastCpuLinear(provider, packed);
    const pooled = pool.linear(provider, packed);
    for (const name of ['f', 'plain', 'q']) {
      const expected = await one(name, x, n, rows, cols);
      expect(await pooled(name, x, n, rows, cols), name).toEqual(expected);
      expect(await pooled(name, x, n, rows, cols), `${name}, again`).toEqual(expected);
    }
    // f32 sums (bench/forward.ts --threads N times them): the workers sum as one thread does.
    const oneF32 = fastCpuLinear(provider, packed, undefined, 'f32');
    const pooledF32 = pool.linear(provider, packed, 'f32');
    for (const name of ['f', 'q']) {
      const expected = await oneF32(name, x, n, rows, cols);
      expect(expected, name).not.toEqual(await one(name, x, n, rows, cols));
      expect(await pooledF32(name, x, n, rows, cols), `${name}, f32 sums`).toEqual(expected);
    }
  });

  it('eval on the pool (sharedWeights) gives the figures of one thread, to the bit', async () => {
    const model = await loadModel([await fixture('stories260K.gguf')]);
    const options = { presets: ['Q4_K_M'], greedyTokens: 4, chunk: 8 };
    const one = await evaluateModel(model, options);
    const pooled = await evaluateModel(model, { ...options, sharedWeights: true, linear: (_c, weights, q) => pool.linear(weights, q?.packed ?? null) });
    expect(pooled.f32.ppl).toBe(one.f32.ppl);
    expect(pooled.results[0].kl).toEqual(one.results[0].kl);
    expect(pooled.results[0].greedy.tokens).toEqual(one.results[0].greedy.tokens);
  }, 60_000);
});
