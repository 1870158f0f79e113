// `quantlab calibrate --compare`: every method's per-layer held-out output MSE is finite
// and positive, GPTQ's and AWQ's totals are below RTN's on the same grid, the imatrix and
// GPTQ into Q4_K's grid lower Q4_K's total; the JSON matches the table's totals; --act-order
// changes GPTQ's figures alone.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { runInProcess } from '../cli/testing.ts';
import { CALIBRATION_METHODS } from './compare.ts';
import { loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { evaluateModel } from '../model/eval.ts';

const STORIES = join(FIXTURE_MODELS, 'stories260K.gguf');

describe('quantlab calibrate --compare', () => {
  it('stories260K, INT4 g32: 35 layers, finite figures; GPTQ < RTN, AWQ <= RTN, Q4_K + imatrix < Q4_K, GPTQ into Q4_K < Q4_K in total', async () => {
    const r = await runInProcess(['calibrate', STORIES, '--compare', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as {
      calibration: { tokens: number; chunk: number; chunks: number };
      held_out: { tokens: number; rows: number };
      methods: { method: string; total_mse: number; bpw: number }[];
      layers: { name: string; mse: Record<string, number>; awq_alpha: number }[];
    };
    expect(j.layers).toHaveLength(35);
    expect(j.calibration.chunks).toBeGreaterThanOrEqual(2);
    expect(j.held_out.rows).toBeGreaterThanOrEqual(128);
    for (const l of j.layers) for (const m of CALIBRATION_METHODS) expect(Number.isFinite(l.mse[m]) && l.mse[m] > 0, `${l.name} ${m}`).toBe(true);
    const total = Object.fromEntries(j.methods.map((m) => [m.method, m.total_mse]));
    for (const m of CALIBRATION_METHODS) expect(total[m]).toBeCloseTo(j.layers.reduce((s, l) => s + l.mse[m], 0), 12);
    expect(total.gptq).toBeLessThan(total.rtn);
    expect(total.awq).toBeLessThanOrEqual(total.rtn);
    expect(total.q4_K_imatrix).toBeLessThan(total.q4_K);
    expect(total.gptq_q4_K).toBeLessThan(total.q4_K); // on Q4_K's own grid too
    // The whole model: F32's perplexity as the eval (model/eval.ts) computes it on the same text.
    const j2 = j as unknown as { f32_ppl: number; positions: number; methods: { kl_mean: number; ppl: number; top1_agree: number }[] };
    const ev = await evaluateModel(await loadModel([await fileSource(STORIES)]), { presets: [], greedyTokens: 0, chunk: 64 });
    expect(j2.positions).toBe(ev.positions);
    expect(j2.f32_ppl).toBeCloseTo(ev.f32.ppl, 5);
    for (const m of j2.methods) {
      expect(m.kl_mean > 0 && Number.isFinite(m.kl_mean)).toBe(true);
      expect(m.ppl).toBeGreaterThan(1);
      expect(m.top1_agree).toBeGreaterThan(0.5);
    }

    const text = await runInProcess(['calibrate', STORIES, '--compare', '--group', '128']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/INT4 groups of 128/);
    expect(text.stdout).toMatch(/^total\s+\d/m);
    expect((await runInProcess(['calibrate', STORIES, '--compare', '--group', '48'])).stderr).toMatch(/--group must be 32, 64 or 128/);
    expect((await runInProcess(['calibrate', STORIES, '--act-order', '-o', 'x.gguf'])).stderr).toMatch(/--act-order go with --compare/);
  });

  it('--act-order: both GPTQ methods in act-order (static groups), still below RTN and Q4_K; every other method as without it', async () => {
    const figures = async (...args: string[]) => {
      const r = await runInProcess(['calibrate', STORIES, '--compare', '--json', ...args]);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { gptq_act_order: boolean; methods: { method: string; total_mse: number; kl_mean: number }[] };
    };
    const [plain, act] = [await figures(), await figures('--act-order')];
    expect([plain.gptq_act_order, act.gptq_act_order]).toEqual([false, true]);
    const total = (j: typeof plain) => Object.fromEntries(j.methods.map((m) => [m.method, m.total_mse]));
    const [p, a] = [total(plain), total(act)];
    console.log(`stories260K held-out summed layer MSE: GPTQ ${p.gptq.toFixed(4)} -> act-order ${a.gptq.toFixed(4)}; GPTQ → Q4_K ${p.gptq_q4_K.toFixed(4)} -> ${a.gptq_q4_K.toFixed(4)}`);
    for (const m of ['rtn', 'q4_K', 'q4_K_imatrix', 'awq']) expect(a[m], m).toBe(p[m]);
    expect(a.gptq).not.toBe(p.gptq);
    expect(a.gptq).toBeLessThan(a.rtn);
    expect(a.gptq_q4_K).toBeLessThan(a.q4_K);
  });
});
