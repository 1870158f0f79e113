// AWQ on real stories260K layers: its α search beats or equals RTN on the calibration
// inputs by construction (α = 0 is RTN), and on held-out text (the eval text) its layer
// output MSE stays at or below RTN's on the same INT4 grid.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { EVAL_TEXT } from '../model/eval-text.ts';
import { collectInputs, openCalibrationModel, type CalibrationModel, type LayerInputs } from './activations.ts';
import { awqQuantize, awqScales, meanAbs } from './awq.ts';
import { CALIBRATION_STORY_TEXT } from './calibration-text.ts';
import { gram, outputMse, quantizeRtn, type Grid } from './grid.ts';

let cm: CalibrationModel;
let calib: Map<string, LayerInputs>;
let held: Map<string, LayerInputs>;
beforeAll(async () => {
  cm = await openCalibrationModel(await loadModel([await fileSource(join(FIXTURE_MODELS, 'stories260K.gguf'))]));
  calib = await collectInputs(cm, CALIBRATION_STORY_TEXT, 512);
  held = await collectInputs(cm, EVAL_TEXT, 64);
});

describe('AWQ', () => {
  it('scales: α = 0 gives ones; they are normalized to max·min = 1', () => {
    const act = Float64Array.of(0.5, 2, 8, 0);
    expect(Array.from(awqScales(act, 0))).toEqual([1, 1, 1, 1]);
    const s = awqScales(act, 0.5);
    expect(Math.max(...s) * Math.min(...s)).toBeCloseTo(1, 12);
    expect(s[2] / s[0]).toBeCloseTo(4, 12); // (8 / 0.5)^0.5
  });

  const grid: Grid = { kind: 'int', bits: 4, group: 32 };
  const improved: string[] = [];
  it.each(['blk.0.attn_q.weight', 'blk.1.ffn_gate.weight', 'blk.3.ffn_down.weight', 'blk.4.attn_v.weight'])('stories260K %s, INT4 g32: AWQ <= RTN on calibration and on held-out inputs', (name) => {
    const w = cm.weights.get(name)!;
    const c = calib.get(name)!;
    const t = held.get(name)!;
    const rows = w.length / c.cols;
    const r = awqQuantize(w, rows, c.cols, c.x, c.n, grid);
    expect(r.calibrationMse).toBeLessThanOrEqual(r.rtnCalibrationMse);
    const rtnDirect = outputMse(w, quantizeRtn(w, rows, c.cols, grid), rows, c.cols, gram(c.x, c.n, c.cols), c.n);
    expect(r.rtnCalibrationMse).toBeCloseTo(rtnDirect, 12);
    const g = gram(t.x, t.n, t.cols);
    const awq = outputMse(w, r.weights, rows, c.cols, g, t.n);
    const rtn = outputMse(w, quantizeRtn(w, rows, c.cols, grid), rows, c.cols, g, t.n);
    expect(Number.isFinite(awq) && awq > 0).toBe(true);
    expect(awq).toBeLessThanOrEqual(rtn);
    expect(meanAbs(c.x, c.n, c.cols).every((v) => v > 0)).toBe(true);
    if (r.alpha > 0 && awq < rtn) improved.push(name);
  });

  it('the search is not idle: some layer takes α > 0 and gets strictly below RTN on held-out text', () => {
    expect(improved.length).toBeGreaterThan(0);
  });
});
