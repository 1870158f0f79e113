// `eval` and `compare` with --backend webgpu --json report what the job cost the GPU
// ("gpu": adapter, forward_passes, submits, readbacks, bytes_read_back; docs/cli.md); on the
// CPU backend there is no "gpu". Dawn on SwiftShader; this fails, not skips, without a GPU.
// (`calibrate --compare`: calibrate-backend.test.ts.)
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { SWIFTSHADER_ICD } from '../gpu/gpu-test-setup.ts';
import { runInProcess } from './testing.ts';

const STORIES = join(FIXTURE_MODELS, 'stories260K.gguf');

let dir: string;
beforeAll(async () => {
  process.env.VK_ICD_FILENAMES ??= SWIFTSHADER_ICD;
  dir = await mkdtemp(join(tmpdir(), 'quantlab-gpu-report-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true });
});

interface GpuJson {
  adapter: string;
  forward_passes: number;
  submits: number;
  readbacks: number;
  bytes_read_back: number;
}

function expectPlausible(gpu: GpuJson): void {
  expect(Object.keys(gpu)).toEqual(['adapter', 'forward_passes', 'submits', 'readbacks', 'bytes_read_back']);
  expect(gpu.adapter).toMatch(/\w/);
  for (const k of ['forward_passes', 'submits', 'readbacks', 'bytes_read_back'] as const) expect(Number.isInteger(gpu[k]) && gpu[k] >= 0, k).toBe(true);
  expect(gpu.readbacks).toBeGreaterThanOrEqual(1);
  expect(gpu.submits).toBeGreaterThanOrEqual(gpu.readbacks);
  expect(gpu.bytes_read_back).toBeGreaterThan(0);
}

describe('"gpu" in --json', () => {
  it('compare: on webgpu the counters, the bytes read back far below the tensor; none on the CPU', async () => {
    // blk.0.ffn_up.weight: 172 x 64 = 11008 values (44 KiB as f32).
    const args = ['compare', STORIES, '--tensor', 'blk.0.ffn_up.weight', '--types', 'q8_0,q4_0', '--json'];
    const gpu = await runInProcess([...args, '--backend', 'webgpu']);
    expect(gpu.code, gpu.stderr).toBe(0);
    const json = JSON.parse(gpu.stdout);
    expect(json.backend).toBe('webgpu');
    expectPlausible(json.gpu);
    expect(json.gpu.forward_passes).toBe(0);
    // Two types, two passes each: partials (1/64 of the f32 bytes), bins and one block, not the tensor.
    expect(json.gpu.bytes_read_back).toBeLessThan(11008 * 4 * 0.25);
    const cpu = JSON.parse((await runInProcess(args)).stdout);
    expect(cpu.gpu).toBeUndefined();
    // The GPU's sums are f32 per tile, the CPU's f64: the same figures to 1e-5.
    json.results.forEach((r: { rmse: number }, i: number) => expect(Math.abs(r.rmse - cpu.results[i].rmse) / cpu.results[i].rmse).toBeLessThan(1e-5));
  }, 240_000);

  it('eval: on webgpu the counters (the matrix products round trips)', async () => {
    const text = join(dir, 'text.txt');
    await writeFile(text, 'Once upon a time, there was a little girl named Lily. She liked to play outside.');
    const r = await runInProcess(['eval', STORIES, '--presets', 'Q8_0', '--text', text, '--tokens', '0', '--json', '--backend', 'webgpu']);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(json.backend).toBe('webgpu');
    expectPlausible(json.gpu);
  }, 180_000);
});
