// SmoothQuant (calibrate/smoothquant.ts): the statistics against the inputs collected by
// collectInputs, the scale formula written out, the folding (F32 logits unchanged), and on a
// synthetic Llama whose attn_norm/ffn_norm make three channels 30x the rest, W8A8's KL with
// SmoothQuant at its best α below W8A8's without.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type ModelIndex } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { EVAL_TEXT } from '../model/eval-text.ts';
import { LlamaModel, cpuLinear } from '../model/llama.ts';
import { mapProvider } from '../model/weights.ts';
import { writeSyntheticLlama } from '../testing/synthetic-llama.ts';
import { collectInputs, linearWeightNames, openCalibrationModel, type CalibrationModel } from './activations.ts';
import { CALIBRATION_STORY_TEXT } from './calibration-text.ts';
import {
  activationStats,
  checkAlpha,
  columnAbsMax,
  outlierChannels,
  smoothedWeights,
  smoothGroups,
  smoothQuantScales,
  smoothQuantSweep,
  type ActivationStats,
} from './smoothquant.ts';

const OUTLIERS = [3, 17, 40];
let dir: string;
let model: ModelIndex;
let cm: CalibrationModel;
let stats: ActivationStats;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quantlab-sq-'));
  const path = join(dir, 'outliers.gguf');
  writeSyntheticLlama(path, { nLayer: 2, nEmbd: 64, nFf: 128, nHead: 4, nHeadKv: 4, nVocab: 300, seed: 7, normOutliers: { channels: OUTLIERS, factor: 30 } });
  model = await loadModel([await fileSource(path)]);
  cm = await openCalibrationModel(model);
  stats = await activationStats(cm, { chunk: 128 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('smoothQuantScales', () => {
  it('is max|X|^α / max|W|^(1-α) per channel, 1 for a channel never seen', () => {
    const s = smoothQuantScales([4, 9, 0], [0.25, 1, 2], 0.5);
    expect(s[0]).toBeCloseTo(2 / 0.5, 12);
    expect(s[1]).toBeCloseTo(3, 12);
    expect(s[2]).toBe(1);
    expect(Array.from(smoothQuantScales([4, 9], [0.25, 1], 1))).toEqual([4, 9]);
    expect(Array.from(smoothQuantScales([4, 9], [0.25, 1], 0))).toEqual([4, 1]);
  });
  it('refuses α outside [0, 1] in one line', async () => {
    for (const a of [-0.1, 1.5, NaN]) expect(() => checkAlpha(a)).toThrow(/^SmoothQuant's α must be a number from 0 to 1, not /);
    await expect(smoothQuantSweep(model, cm, { alphas: [0.5, 2] })).rejects.toThrow(/not 2$/);
  });
});

describe('activation statistics', () => {
  it('per channel max |x| and per token range equal those of the collected inputs; max |W| per column; the 30x channels are the outliers', async () => {
    const inputs = await collectInputs(cm, CALIBRATION_STORY_TEXT, 128);
    expect(stats.linears.map((l) => l.name)).toEqual(linearWeightNames(cm.config));
    for (const l of stats.linears) {
      const x = inputs.get(l.name)!;
      expect(l.tokenMin.length).toBe(x.n);
      const actMax = new Float32Array(x.cols);
      for (let t = 0; t < x.n; t++) {
        const row = x.x.subarray(t * x.cols, (t + 1) * x.cols);
        expect(l.tokenMin[t]).toBe(Math.min(...row));
        expect(l.tokenMax[t]).toBe(Math.max(...row));
        row.forEach((v, c) => (actMax[c] = Math.max(actMax[c], Math.abs(v))));
      }
      expect(Array.from(l.actMax)).toEqual(Array.from(actMax));
      const w = cm.weights.get(l.name)!;
      expect(l.weightMax[5]).toBe(Math.max(...Array.from({ length: w.length / x.cols }, (_, r) => Math.abs(w[r * x.cols + 5]))));
      if (/attn_[qkv]|ffn_(gate|up)/.test(l.name)) expect(l.outliers).toEqual(OUTLIERS);
      if (/attn_output/.test(l.name)) expect(l.outliers).toEqual([]);
    }
  });
  it('outlierChannels: at least 10x the median channel', () => {
    expect(outlierChannels([1, 1, 1, 10, 9.9, 1])).toEqual([3]);
    expect(Array.from(columnAbsMax([1, -3, 2, -0.5], 2))).toEqual([2, 3]);
  });
});

describe('folding', () => {
  it('the smoothed F32 model computes the original function (logits within 1e-5 relative)', async () => {
    const groups = smoothGroups(cm, stats, 0.5);
    expect(groups.map((g) => g.norm)).toEqual(['blk.0.attn_norm.weight', 'blk.0.ffn_norm.weight', 'blk.1.attn_norm.weight', 'blk.1.ffn_norm.weight']);
    // The outlier channels are divided by much more than the rest.
    const s = groups[0].scales;
    expect(Math.min(...OUTLIERS.map((c) => s[c]))).toBeGreaterThan(3 * Math.max(...Array.from(s).filter((_, c) => !OUTLIERS.includes(c))));
    const smoothed = await smoothedWeights(cm, groups);
    expect(smoothed.get('blk.0.attn_norm.weight')).not.toEqual(cm.weights.get('blk.0.attn_norm.weight'));
    const tokens = cm.tokenize(EVAL_TEXT);
    const logits = async (w: ReadonlyMap<string, Float32Array>) => {
      const m = new LlamaModel(cm.config, mapProvider(w), cpuLinear(mapProvider(w)));
      return m.forward(tokens, m.newCache(tokens.length), { logits: 'all' });
    };
    const [a, b] = [await logits(cm.weights), await logits(smoothed)];
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < a.length; i++) {
      scale = Math.max(scale, Math.abs(a[i]));
      diff = Math.max(diff, Math.abs(a[i] - b[i]));
    }
    expect(diff / scale).toBeLessThan(1e-5);
  });
});

describe('the α sweep (W8A8: Q8_0 weights, per-token INT8 inputs)', () => {
  it('on the 30x-outlier Llama, SmoothQuant at its best α has a lower KL than without', async () => {
    // Two points of the grid here (the CLI test runs all eleven).
    const r = await smoothQuantSweep(model, cm, { chunk: 128, alphas: [0.5, 0.7] });
    expect(r.points.map((p) => p.alpha)).toEqual([0.5, 0.7]);
    expect(r.best.klMean).toBe(Math.min(...r.points.map((p) => p.klMean)));
    // Measured: without 2.26e-5, best (α 0.7) 4.96e-6.
    expect(r.best.klMean).toBeLessThan(0.5 * r.without.klMean);
    expect(r.without.klMean).toBeGreaterThan(0);
  });
});
