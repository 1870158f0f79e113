// A tensor bigger than a comparison holds (MAX_COMPARE_VALUES) is compared on evenly spaced
// runs of its rows, from its first row to its last; sizes stay the whole tensor's.
import { describe, expect, it } from 'vitest';
import { memorySource } from '../formats/bytes.ts';
import { f32ToF16Bits } from '../formats/float16.ts';
import { GGML_TYPE } from '../formats/gguf/constants.ts';
import { planGguf, writeGguf } from '../formats/gguf/write.ts';
import { collect } from '../formats/testing.ts';
import { rng } from '../testing/random.ts';
import { compareJson } from '../cli/compare.ts';
import { Engine, MAX_COMPARE_VALUES } from './engine.ts';

const COLS = 4096;

async function engineWith(rows: number): Promise<Engine> {
  const layout = planGguf({ metadata: [], tensors: [{ name: 'big.weight', type: GGML_TYPE.F16, ne: [COLS, rows] }] });
  const r = rng(9);
  const bytes = await collect(
    writeGguf(layout, () => {
      const data = new Uint16Array(rows * COLS);
      for (let i = 0; i < data.length; i++) data[i] = f32ToF16Bits((r() - 0.5) * 0.1);
      // The first and the last rows stand out: both must be in the sample.
      data.fill(f32ToF16Bits(3), 0, COLS);
      data.fill(f32ToF16Bits(-7), (rows - 1) * COLS);
      return new Uint8Array(data.buffer);
    }),
  );
  const engine = new Engine(null);
  await engine.load([memorySource(bytes, 'big.gguf')]);
  return engine;
}

describe('comparing a tensor too big to hold whole', () => {
  it('uses evenly spaced runs of rows, first and last included, and reports whole-tensor sizes', async () => {
    const rows = MAX_COMPARE_VALUES / COLS + 104;
    const engine = await engineWith(rows);
    const r = await engine.compare({ tensor: 'big.weight', types: ['q8_0', 'q4_0'] });
    const sampled = MAX_COMPARE_VALUES / COLS;
    expect(r.sampledRows).toEqual({ rows: sampled, of: rows });
    const h = r.weightHistogram;
    expect(h.counts.reduce((a, b) => a + b, 0) + h.below + h.above).toBe(sampled * COLS);
    expect(h.min).toBeCloseTo(-7, 3);
    expect(h.max).toBeGreaterThanOrEqual(3);
    expect(r.results.map((x) => x.bytes)).toEqual([(rows * COLS / 32) * 34, (rows * COLS / 32) * 18]);
    expect(r.results[1].metrics.rmse).toBeGreaterThan(r.results[0].metrics.rmse);
    // `quantlab compare --json` says so too.
    expect(compareJson(r).sampled_rows).toEqual({ rows: sampled, of: rows });
  }, 120_000);

  it('compares a tensor within the limit whole', async () => {
    const r = await (await engineWith(64)).compare({ tensor: 'big.weight', types: ['q8_0'] });
    expect(r.sampledRows).toBeUndefined();
    expect(r.results[0].bytes).toBe((64 * COLS / 32) * 34);
  });
});
