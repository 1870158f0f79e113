// GPTQ into Q4_K's grid (gptqQ4_K): real block_q4_K super-blocks that our Q4_K codec decodes
// to exactly the values GPTQ used; each super-block's header is ggml's for the row's values
// when GPTQ reached it (the first one: the row as given). On the layers of a synthetic Llama
// with rows of 256 and 768 (stories260K's 64 and 172 cannot hold Q4_K), inputs from held-out
// text give a lower layer output MSE than round-to-nearest Q4_K (the codec itself).
import { beforeAll, describe, expect, it } from 'vitest';
import { memorySource } from '../formats/bytes.ts';
import { loadModel } from '../formats/model.ts';
import { EVAL_TEXT } from '../model/eval-text.ts';
import { Q4_K } from '../quant/codecs/kquants.ts';
import { rng } from '../testing/random.ts';
import { buildSyntheticLlama } from '../testing/synthetic-llama.ts';
import { collectInputs, openCalibrationModel, type CalibrationModel, type LayerInputs } from './activations.ts';
import { CALIBRATION_STORY_TEXT } from './calibration-text.ts';
import { gptqQ4_K, hessian } from './gptq.ts';
import { gram, outputMse, Q4_K_HEADER_BYTES } from './grid.ts';

const rtnQ4K = (w: ArrayLike<number>, rows: number, cols: number) => Q4_K.decode(Q4_K.encode(Float32Array.from(w), cols), rows, cols);

describe('GPTQ into Q4_K', () => {
  it('writes block_q4_K super-blocks the Q4_K codec decodes to its values; a row\'s first header is ggml\'s for the row as given (8 x 512, correlated inputs)', () => {
    const rand = rng(11);
    const [rows, cols, n] = [8, 512, 700];
    const w = Float64Array.from({ length: rows * cols }, () => (rand() * 2 - 1) * 0.05);
    const base = Float64Array.from({ length: n * 16 }, () => rand() * 2 - 1);
    const x = Float64Array.from({ length: n * cols }, (_, k) => base[Math.floor(k / cols) * 16 + (k % 16)] + 0.2 * (rand() - 0.5));
    const { values, bytes } = gptqQ4_K(w, rows, cols, hessian(x, n, cols));
    expect(bytes.length).toBe(rows * 2 * 144);
    const decoded = Q4_K.decode(bytes, rows, cols);
    for (let k = 0; k < values.length; k++) expect(decoded[k]).toBe(values[k]);
    const rtnBytes = Q4_K.encode(Float32Array.from(w), cols);
    for (let r = 0; r < rows; r++) {
      const first = r * 2 * 144;
      expect(Array.from(bytes.subarray(first, first + Q4_K_HEADER_BYTES))).toEqual(Array.from(rtnBytes.subarray(first, first + Q4_K_HEADER_BYTES)));
    }
    // The error feedback moved the values: not RTN's blocks, and a lower error on these inputs.
    expect(Buffer.from(bytes).equals(Buffer.from(rtnBytes))).toBe(false);
    const g = gram(x, n, cols);
    expect(outputMse(w, values, rows, cols, g, n)).toBeLessThan(outputMse(w, rtnQ4K(w, rows, cols), rows, cols, g, n));
  });

  it('with act-order, every super-block header is the row\'s RTN header (static groups: params from the weights before the walk), codes still moved by the error feedback', () => {
    const rand = rng(12);
    const [rows, cols, n] = [4, 512, 600];
    const w = Float64Array.from({ length: rows * cols }, () => (rand() * 2 - 1) * 0.05);
    const base = Float64Array.from({ length: n * 16 }, () => rand() * 2 - 1);
    const x = Float64Array.from({ length: n * cols }, (_, k) => (base[Math.floor(k / cols) * 16 + (k % 16)] + 0.2 * (rand() - 0.5)) * (1 + (k % 7)));
    const { values, bytes } = gptqQ4_K(w, rows, cols, hessian(x, n, cols), { actOrder: true });
    const decoded = Q4_K.decode(bytes, rows, cols);
    for (let k = 0; k < values.length; k++) expect(decoded[k]).toBe(values[k]);
    const rtnBytes = Q4_K.encode(Float32Array.from(w), cols);
    for (let b = 0; b < rows * 2; b++) {
      const at = b * 144;
      expect(Array.from(bytes.subarray(at, at + Q4_K_HEADER_BYTES))).toEqual(Array.from(rtnBytes.subarray(at, at + Q4_K_HEADER_BYTES)));
    }
    expect(Buffer.from(bytes).equals(Buffer.from(rtnBytes))).toBe(false);
    const g = gram(x, n, cols);
    expect(outputMse(w, values, rows, cols, g, n)).toBeLessThan(outputMse(w, rtnQ4K(w, rows, cols), rows, cols, g, n));
  });

  it('refuses rows that are not a multiple of 256', () => {
    expect(() => gptqQ4_K(new Float64Array(64), 1, 64, new Float64Array(64 * 64))).toThrow(/Q4_K needs rows of a multiple of 256 values, not 64/);
  });

  let cm: CalibrationModel;
  let calib: Map<string, LayerInputs>;
  let held: Map<string, LayerInputs>;
  beforeAll(async () => {
    const bytes = buildSyntheticLlama({ nLayer: 2, nEmbd: 256, nFf: 768, nHead: 8, nHeadKv: 8, nVocab: 300, seed: 5 });
    cm = await openCalibrationModel(await loadModel([memorySource(bytes, 'synthetic.gguf')]));
    // The byte vocabulary makes a token of each character: a third of the text (1400 tokens).
    calib = await collectInputs(cm, CALIBRATION_STORY_TEXT.slice(0, CALIBRATION_STORY_TEXT.length / 3), 256);
    held = await collectInputs(cm, EVAL_TEXT, 128);
  }, 60_000);

  it.each(['blk.0.attn_q.weight', 'blk.1.attn_output.weight', 'blk.0.ffn_up.weight', 'blk.1.ffn_down.weight'])(
    'synthetic Llama %s: held-out layer output MSE of GPTQ Q4_K < RTN Q4_K',
    (name) => {
      const w = cm.weights.get(name)!;
      const c = calib.get(name)!;
      const t = held.get(name)!;
      const rows = w.length / c.cols;
      const g = gram(t.x, t.n, t.cols);
      const rtn = outputMse(w, rtnQ4K(w, rows, c.cols), rows, c.cols, g, t.n);
      const gptq = outputMse(w, gptqQ4_K(w, rows, c.cols, hessian(c.x, c.n, c.cols)).values, rows, c.cols, g, t.n);
      console.log(`${name}: held-out output MSE RTN Q4_K ${rtn.toExponential(3)}, GPTQ Q4_K ${gptq.toExponential(3)}`);
      expect(gptq).toBeGreaterThan(0);
      expect(gptq).toBeLessThan(rtn);
    },
    30_000,
  );
});
