// `quantlab train --backend webgpu --json`: QAT and QLoRA on stories260K run their steps on
// WebGPU (Dawn; SwiftShader here) and report where ("backend") and what it cost the GPU
// ("gpu": a submit and a readback per step at least, a forward pass per step and per held-out
// score), with the CPU run's losses within 1e-3;
// the QAT file written is the one the CPU-side export makes of the GPU's blocks.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { SWIFTSHADER_ICD } from '../gpu/swiftshader.ts';
import { runInProcess } from './testing.ts';

const STORIES = join(FIXTURE_MODELS, 'stories260K.gguf');
const STEPS = 3;
let dir: string;
beforeAll(async () => {
  process.env.VK_ICD_FILENAMES ??= SWIFTSHADER_ICD;
  dir = await mkdtemp(join(tmpdir(), 'quantlab-train-gpu-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function trainJson(args: readonly string[], out: string) {
  const r = await runInProcess(['train', STORIES, ...args, '--steps', String(STEPS), '--seq', '16', '--json', '-o', out]);
  expect(r.code, r.stderr).toBe(0);
  expect(existsSync(out)).toBe(true);
  return JSON.parse(r.stdout) as { backend: string; losses: number[]; gpu?: { adapter: string; forward_passes: number; submits: number; readbacks: number; bytes_read_back: number } };
}

describe('quantlab train --backend webgpu', () => {
  for (const [what, args] of [
    ['--qat q4_0', ['--qat', 'q4_0']],
    ['--lora 2 --base-type nf4', ['--lora', '2', '--base-type', 'nf4']],
  ] as const) {
    it(`${what}: the steps on WebGPU with the CPU's losses; "gpu" counts them`, async () => {
      const cpu = await trainJson([...args, '--backend', 'cpu'], join(dir, `cpu-${args[1]}.gguf`));
      const web = await trainJson([...args, '--backend', 'webgpu'], join(dir, `gpu-${args[1]}.gguf`));
      expect(cpu.backend).toBe('cpu');
      expect(cpu.gpu).toBeUndefined();
      expect(web.backend).toBe('webgpu');
      expect(web.gpu!.adapter).toMatch(/\S/);
      expect(web.gpu!.submits).toBeGreaterThanOrEqual(STEPS);
      expect(web.gpu!.readbacks).toBeGreaterThanOrEqual(STEPS);
      // Each step's forward pass and the held-out scores before and after.
      expect(web.gpu!.forward_passes).toBe(STEPS + 2);
      web.losses.forEach((l, i) => expect(Math.abs(l - cpu.losses[i]) / cpu.losses[i]).toBeLessThan(1e-3));
    }, 240_000);
  }

  it('--backend tpu: one line, nothing written', async () => {
    const out = join(dir, 'tpu.gguf');
    const r = await runInProcess(['train', STORIES, '--qat', 'q4_0', '--steps', '1', '--backend', 'tpu', '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--backend must be cpu or webgpu, not 'tpu'/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(existsSync(out)).toBe(false);
  });
});
