import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { CALIBRATION_STORY_TEXT } from '../calibrate/calibration-text.ts';
import { readLogitsFile } from '../model/logits-file.ts';
import { runInProcess } from './testing.ts';

const STORIES = join(FIXTURE_MODELS, 'stories260K.gguf');
let dir: string;
let textFile: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quantlab-eval-kl-'));
  textFile = join(dir, 'stories.txt');
  await writeFile(textFile, CALIBRATION_STORY_TEXT);
});
afterAll(async () => {
  await rm(dir, { recursive: true });
});

describe('quantlab eval --ctx / --kl-divergence-base / --save-logits', () => {
  it('writes a base from the F32 pass, then prints llama-perplexity\'s report of a preset against it; --json carries the same figures', async () => {
    const base = join(dir, 'stories.kld');
    const save = await runInProcess(['eval', STORIES, '--presets', 'F32', '--text', textFile, '--ctx', '128', '--kl-divergence-base', base, '--save-logits', '--tokens', '0']);
    expect(save.stderr).toBe('');
    expect(save.code).toBe(0);
    expect(save.stdout).toContain(`saved the F32 pass's log-probs to ${base} (llama-perplexity _logits_: n_ctx 128, 11 chunks)`);
    const file = readLogitsFile(new Uint8Array(await readFile(base)), base);
    expect([file.nCtx, file.nVocab, file.nChunk]).toEqual([128, 512, 11]);

    const text = await runInProcess(['eval', STORIES, '--presets', 'Q4_K_M', '--text', textFile, '--kl-divergence-base', base, '--tokens', '0']);
    expect(text.stderr).toBe('');
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`Q4_K_M against ${base} (n_ctx 128, 11 chunks, 693 tokens scored), as llama-perplexity --kl-divergence:`);
    expect(text.stdout).toContain('chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p');
    for (const label of ['Mean PPL(Q)                   :', 'Cor(ln(PPL(Q)), ln(PPL(base))):', 'Mean    KLD:', '99.9%   KLD:', 'Median  KLD:', ' 0.1%   KLD:', 'Mean    Δp:', '75.0%   Δp:', 'RMS Δp    :', 'Same top p:']) {
      expect(text.stdout).toContain(`\n${label}`);
    }
    const json = JSON.parse((await runInProcess(['eval', STORIES, '--presets', 'Q4_K_M', '--text', textFile, '--kl-divergence-base', base, '--tokens', '0', '--json'])).stdout);
    expect(json.chunking).toEqual({ n_ctx: 128, n_chunk: 11, base });
    const r = json.kl_reports.Q4_K_M;
    expect(r.count).toBe(693);
    expect(json.results[0].kl_mean).toBe(r.kld_mean.value);
    expect(json.results[0].top1_agree).toBe(r.same_top.value);
    expect(Object.keys(r.kld_percentiles)).toEqual(['Maximum', '99.9%', '99.0%', '95.0%', '90.0%', 'Median', '10.0%', '5.0%', '1.0%', '0.1%', 'Minimum']);
    // The printed line is the JSON's figure in llama-perplexity's %10.6lf.
    expect(text.stdout).toContain(`Mean    KLD: ${r.kld_mean.value.toFixed(6).padStart(10)} ± ${r.kld_mean.uncertainty.toFixed(6).padStart(10)}`);
    expect(r.chunks).toHaveLength(11);
  }, 120_000);

  it('refuses a truncated base file, a bad --ctx, and --save-logits without --ctx: one line each', async () => {
    const base = join(dir, 'cut.kld');
    const bytes = new Uint8Array(40);
    bytes.set(new TextEncoder().encode('_logits_'));
    new DataView(bytes.buffer).setInt32(8, 64, true);
    new DataView(bytes.buffer).setInt32(12, 512, true);
    new DataView(bytes.buffer).setInt32(16, 3, true);
    await writeFile(base, bytes);
    const cut = await runInProcess(['eval', STORIES, '--presets', 'Q8_0', '--kl-divergence-base', base]);
    expect(cut.code).toBe(1);
    expect(cut.stderr.trim()).toMatch(new RegExp(`${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: at byte 40: truncated: 3·64 tokens end at byte 788, the file has 40 bytes`));
    expect(cut.stderr.trim().split('\n')).toHaveLength(1);
    const badCtx = await runInProcess(['eval', STORIES, '--presets', 'Q8_0', '--ctx', 'x']);
    expect(badCtx.code).not.toBe(0);
    expect(badCtx.stderr).toContain("--ctx must be a whole number of at least 4, not 'x'");
    const noCtx = await runInProcess(['eval', STORIES, '--presets', 'F32', '--kl-divergence-base', join(dir, 'x.kld'), '--save-logits']);
    expect(noCtx.stderr).toContain('--save-logits needs --ctx N');
  });
});
