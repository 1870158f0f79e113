// `quantlab quantize --smoothquant ALPHA` and `quantlab calibrate --activation-stats /
// --smoothquant-sweep` on a synthetic Llama whose norms make three input channels 30x the
// rest: the F32 export of the smoothed model computes the original function; the JSON shapes;
// an α outside [0, 1] is one line.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../formats/model.ts';
import { metadataToObject } from '../formats/gguf/metadata.ts';
import { BUILTIN_CALIBRATION_DATASET } from '../calibrate/calibration-text.ts';
import { SMOOTHQUANT_KEYS } from '../calibrate/smoothquant.ts';
import { fileSource } from '../formats/node-source.ts';
import { EVAL_TEXT } from '../model/eval-text.ts';
import { modelTokenizer } from '../model/eval.ts';
import { cpuLinear, llamaConfig, LlamaModel } from '../model/llama.ts';
import { mapProvider, readLlamaWeights } from '../model/weights.ts';
import { writeSyntheticLlama } from '../testing/synthetic-llama.ts';
import { expectQuantizeRefused, runInProcess } from './testing.ts';

let dir: string;
const path = (name: string) => join(dir, name);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'quantlab-sq-cli-'));
  writeSyntheticLlama(path('outliers.gguf'), { nLayer: 2, nEmbd: 64, nFf: 128, nHead: 4, nHeadKv: 4, nVocab: 300, seed: 7, normOutliers: { channels: [3, 17, 40], factor: 30 } });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function logits(file: string) {
  const model = await loadModel([await fileSource(file)]);
  const config = llamaConfig(model);
  const w = mapProvider(await readLlamaWeights(model, config));
  const tokens = (await modelTokenizer(model)).encode(EVAL_TEXT);
  const m = new LlamaModel(config, w, cpuLinear(w));
  return { values: await m.forward(tokens, m.newCache(tokens.length), { logits: 'all' }), norm: w('blk.0.attn_norm.weight') };
}

describe('quantize --smoothquant', () => {
  it('the F32 export of the smoothed model gives the original logits within 1e-5 relative; its norms are divided', async () => {
    const r = await runInProcess(['quantize', path('outliers.gguf'), '-o', path('smooth-f32.gguf'), '--type', 'f32', '--smoothquant', '0.5', '--chunk', '128']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("SmoothQuant: α 0.5, 10 tensors' columns scaled, 1/s in 4 norms");
    const [a, b] = [await logits(path('outliers.gguf')), await logits(path('smooth-f32.gguf'))];
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < a.values.length; i++) {
      scale = Math.max(scale, Math.abs(a.values[i]));
      diff = Math.max(diff, Math.abs(a.values[i] - b.values[i]));
    }
    expect(diff / scale).toBeLessThan(1e-5);
    const meta = metadataToObject((await loadModel([await fileSource(path('smooth-f32.gguf'))])).ggufMetadata!);
    expect(meta[SMOOTHQUANT_KEYS.alpha]).toBe(0.5);
    expect(meta[SMOOTHQUANT_KEYS.dataset]).toBe(BUILTIN_CALIBRATION_DATASET);
    expect(meta[SMOOTHQUANT_KEYS.tensors]).toBe(10);
    expect(meta[SMOOTHQUANT_KEYS.chunkSize]).toBe(128);
    // Channel 3 (30x) is divided by more than channel 0.
    expect(a.norm[3] / b.norm[3]).toBeGreaterThan(2 * (a.norm[0] / b.norm[0]));
  });
  it('refuses α outside [0, 1] and --smoothquant with --awq, in one line', async () => {
    for (const alpha of ['1.5', '-0.2', 'half', '']) {
      await expectQuantizeRefused(path('outliers.gguf'), path('bad.gguf'), ['--type', 'q8_0', `--smoothquant=${alpha}`], /α must be a number from 0 to 1/);
    }
    await expectQuantizeRefused(path('outliers.gguf'), path('bad.gguf'), ['--type', 'q8_0', '--smoothquant', '0.5', '--awq'], /--smoothquant goes alone/);
    await expectQuantizeRefused(path('outliers.gguf'), path('bad.gguf'), ['--type', 'q8_0', '--smoothquant', '0.5', '--imatrix', 'x.gguf'], /no --imatrix with it/);
    await expectQuantizeRefused(path('outliers.gguf'), path('bad.gguf'), ['--type', 'q8_0', '--chunk', '64'], /--text and --chunk go with --gptq or --awq \(or --smoothquant\)/);
  });
});

describe('calibrate --activation-stats / --smoothquant-sweep', () => {
  it('--activation-stats --json: per linear, per-channel max |x| and max |W|, per-token range, the outlier channels', async () => {
    const r = await runInProcess(['calibrate', path('outliers.gguf'), '--activation-stats', '--json', '--chunk', '128']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.linears).toHaveLength(14);
    const q = j.linears[0];
    expect(q).toMatchObject({ name: 'blk.0.attn_q.weight', layer: 0, columns: 64, outlier_channels: [3, 17, 40] });
    expect(q.act_abs_max).toHaveLength(64);
    expect(q.weight_abs_max).toHaveLength(64);
    expect(q.token_min).toHaveLength(j.chunk_count * j.chunk_size);
    // The largest |x| over the channels is the largest of the token ranges' ends.
    expect(Math.max(...q.act_abs_max)).toBe(Math.max(Math.max(...q.token_max), -Math.min(...q.token_min)));
    expect(q.act_abs_max[3]).toBeGreaterThan(10 * q.act_abs_max[0]);
  });
  it('--smoothquant-sweep --json: α 0..1, the best below without', async () => {
    const r = await runInProcess(['calibrate', path('outliers.gguf'), '--smoothquant-sweep', '--json', '--chunk', '128']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ preset: 'Q8_0', activations: 'int8' });
    expect(j.sweep.map((p: { alpha: number }) => p.alpha)).toEqual([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]);
    expect(j.best.kl_mean).toBeLessThan(j.without.kl_mean);
  });
  it('refuses the two together, or with -o', async () => {
    for (const args of [['--activation-stats', '--smoothquant-sweep'], ['--activation-stats', '-o', path('x.gguf')]]) {
      const r = await runInProcess(['calibrate', path('outliers.gguf'), ...args]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
