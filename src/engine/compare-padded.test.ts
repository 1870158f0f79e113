// The padded comparison (issue 23): a type whose block does not divide the rows is measured on
// the rows zero-padded to its block, as the CPU reference codec does it on those rows, with the
// error over the tensor's own elements only (the padding is not part of the tensor) and the size
// counted with the padding.
import { describe, expect, it } from 'vitest';
import { memorySource } from '../formats/bytes.ts';
import { GGML_TYPE } from '../formats/gguf/constants.ts';
import { planGguf, writeGguf } from '../formats/gguf/write.ts';
import { collect } from '../formats/testing.ts';
import { accumulateErrors, metricsFromSums } from '../quant/metrics.ts';
import { QUANT_TYPES } from '../quant/types.ts';
import { rng } from '../testing/random.ts';
import { Engine } from './engine.ts';
import { paddingFor, padRows, unpadRows } from './jobs/compare.ts';

// The sample's shapes: rows of 64 (attention), fewer than most K-quant blocks hold, and of 172
// (ffn_down), which only blocks of 1, 2 and 4 divide.
let COLS = 64;
const ROWS = 24;

function tensorValues(): Float32Array {
  const r = rng(23);
  const data = new Float32Array(ROWS * COLS);
  for (let i = 0; i < data.length; i++) data[i] = (r() - 0.5) * 0.2 + (i % 17 === 0 ? 0.5 : 0);
  return data;
}

async function engineWith(data: Float32Array): Promise<Engine> {
  const layout = planGguf({ metadata: [], tensors: [{ name: 'w.weight', type: GGML_TYPE.F32, ne: [COLS, ROWS] }] });
  const bytes = await collect(writeGguf(layout, () => new Uint8Array(data.buffer.slice(0))));
  const engine = new Engine(null);
  await engine.load([memorySource(bytes, 'padded.gguf')]);
  return engine;
}

describe('padRows / unpadRows', () => {
  it('zero-fills each row tail and takes it off again', () => {
    const data = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const wide = padRows(data, 3, 5);
    expect([...wide]).toEqual([1, 2, 3, 0, 0, 4, 5, 6, 0, 0]);
    expect([...unpadRows(wide, 5, 3)]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('pads only a type whose block does not divide the row', () => {
    const q4k = QUANT_TYPES.find((t) => t.id === 'q4_K')!;
    const q80 = QUANT_TYPES.find((t) => t.id === 'q8_0')!;
    expect(paddingFor(q4k, 64)).toEqual({ rowLength: 64, paddedRowLength: 256 });
    expect(paddingFor(q4k, 300)).toEqual({ rowLength: 300, paddedRowLength: 512 });
    expect(paddingFor(q4k, 512)).toBeUndefined();
    expect(paddingFor(q80, 64)).toBeUndefined();
  });
});

describe('compare with pad: every type on rows of 64 and 172', () => {
  const types = QUANT_TYPES.filter((t) => !t.activationOnly);

  it.each([64, 172])('rows of %i: each non-dividing type on zero-padded rows, equal to the CPU reference codec there', async (cols) => {
    COLS = cols;
    const data = tensorValues();
    const engine = await engineWith(data);
    const r = await engine.compare({ tensor: 'w.weight', types: types.map((t) => t.id), pad: true });
    expect(r.results.map((x) => x.type)).toEqual(types.map((t) => t.id));
    let padded = 0;
    for (const [i, type] of types.entries()) {
      const result = r.results[i];
      if (type.requiresImportance) {
        // ggml refuses these without an imatrix; the comparison says so instead of failing.
        expect(result.error, type.id).toMatch(/needs an importance matrix/);
        continue;
      }
      expect(result.error, type.id).toBeUndefined();
      const wide = COLS % type.blockSize === 0 || type.blockSize <= 1 ? COLS : Math.ceil(COLS / type.blockSize) * type.blockSize;
      if (wide === COLS) {
        expect(result.padded, type.id).toBeUndefined();
      } else {
        padded++;
        expect(result.padded, type.id).toEqual({ rowLength: COLS, paddedRowLength: wide });
      }
      const bytes = type.reference.encode(padRows(data, COLS, wide), wide);
      const deq = unpadRows(type.reference.decode(bytes, ROWS, wide), wide, COLS);
      // Excluded: the error is over the 24 x 64 elements of the tensor, not the padding's zeros.
      const expected = metricsFromSums(accumulateErrors(data, deq));
      expect(result.sums.count, type.id).toBe(ROWS * COLS);
      expect(result.metrics.rmse, type.id).toBeCloseTo(expected.rmse, 12);
      expect(result.metrics.maxAbs, type.id).toBeCloseTo(expected.maxAbs, 12);
      expect(result.metrics.cosine, type.id).toBeCloseTo(expected.cosine, 10);
      // Size with the padding: a row of 64 in q4_K costs a whole 256-block (144 bytes).
      expect(result.bytes, type.id).toBe(bytes.length);
      expect(result.bpw, type.id).toBeCloseTo((bytes.length * 8) / (ROWS * COLS), 12);
    }
    // The K-quants, iq4_xs, tq1_0/tq2_0 at least.
    expect(padded).toBeGreaterThanOrEqual(7);
    const q4k = r.results.find((x) => x.type === 'q4_K')!;
    expect(q4k.bytes).toBe(ROWS * Math.ceil(COLS / 256) * 144);
    expect(q4k.block?.original.length).toBe(256);
    expect(q4k.histogram.counts.reduce((a, b) => a + b, 0) + q4k.histogram.below + q4k.histogram.above).toBe(ROWS * COLS);
  }, 120_000);

  it('still refuses a non-dividing type without pad (the CLI, GGUF export rules)', async () => {
    COLS = 64;
    const r = await (await engineWith(tensorValues())).compare({ tensor: 'w.weight', types: ['q4_K'] });
    expect(r.results[0].error).toMatch(/not a multiple of q4_K's block size 256/);
    expect(r.results[0].padded).toBeUndefined();
  });
});
