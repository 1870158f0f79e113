// The Compare job with an importance matrix (issue 18): a type ggml refuses without one
// (iq2_xxs, iq2_xs, iq1_s) is refused with a message saying where to get one; with the
// matrix its bytes are the CPU codec's with that tensor's entry as importance, and every
// type that takes importance is weighted the same way (marked imatrix in the result).
import { describe, expect, it } from 'vitest';
import { memorySource } from '../formats/bytes.ts';
import { GGML_TYPE } from '../formats/gguf/constants.ts';
import { planGguf, writeGguf } from '../formats/gguf/write.ts';
import type { Imatrix } from '../formats/imatrix.ts';
import { collect } from '../formats/testing.ts';
import { accumulateErrors, metricsFromSums } from '../quant/metrics.ts';
import { quantType } from '../quant/types.ts';
import { rng } from '../testing/random.ts';
import { Engine } from './engine.ts';

const COLS = 256;
const ROWS = 8;

async function engineWith(data: Float32Array): Promise<Engine> {
  const layout = planGguf({ metadata: [], tensors: [{ name: 'w.weight', type: GGML_TYPE.F32, ne: [COLS, ROWS] }] });
  const bytes = await collect(writeGguf(layout, () => new Uint8Array(data.buffer.slice(0))));
  const engine = new Engine(null);
  await engine.load([memorySource(bytes, 'w.gguf')]);
  return engine;
}

describe('compare with an importance matrix', () => {
  const r = rng(18);
  const data = Float32Array.from({ length: ROWS * COLS }, () => (r() - 0.5) * 0.1);
  const importance = Float32Array.from({ length: COLS }, (_, i) => 0.1 + ((i * 37) % 11));
  const imatrix: Imatrix = { entries: new Map([['w.weight', importance]]), datasets: ['t'], chunkCount: 1 };
  const types = ['iq2_xxs', 'iq1_s', 'iq3_s', 'q4_K', 'q8_0'];

  it('without one: the types that need it are refused, saying where to get one; the rest compare unweighted', async () => {
    const engine = await engineWith(data);
    const result = await engine.compare({ tensor: 'w.weight', types });
    const byType = new Map(result.results.map((t) => [t.type, t]));
    expect(byType.get('iq2_xxs')!.error).toMatch(/needs an importance matrix.*Calibration tab or drop an imatrix file/);
    expect(byType.get('iq1_s')!.error).toMatch(/needs an importance matrix/);
    expect(byType.get('iq3_s')!.error).toBeUndefined();
    expect(byType.get('iq3_s')!.imatrix).toBeUndefined();
  });

  it('with one: every type that takes importance is the CPU codec with that entry; q8_0 (no importance) is not marked', async () => {
    const engine = await engineWith(data);
    const result = await engine.compare({ tensor: 'w.weight', types }, undefined, imatrix);
    for (const t of result.results) {
      const q = quantType(t.type)!;
      expect(t.error, t.type).toBeUndefined();
      expect(t.imatrix ?? false, t.type).toBe(q.usesImportance === true);
      const expected = q.codec.decode(q.codec.encode(data, COLS, q.usesImportance ? importance : undefined), ROWS, COLS);
      expect(t.metrics.rmse, t.type).toBe(metricsFromSums(accumulateErrors(data, expected)).rmse);
    }
    // The weights change the bytes: iq3_s with them differs from iq3_s without.
    const iq3s = quantType('iq3_s')!;
    const unweighted = metricsFromSums(accumulateErrors(data, iq3s.codec.decode(iq3s.codec.encode(data, COLS), ROWS, COLS))).rmse;
    expect(result.results.find((t) => t.type === 'iq3_s')!.metrics.rmse).not.toBe(unweighted);
  });

  it('an imatrix without this tensor: the refusal says so', async () => {
    const engine = await engineWith(data);
    const other: Imatrix = { ...imatrix, entries: new Map([['x.weight', importance]]) };
    const result = await engine.compare({ tensor: 'w.weight', types: ['iq2_xs'] }, undefined, other);
    expect(result.results[0].error).toMatch(/the one in use has no entry/);
  });
});
