// `quantlab calibrate --compare --backend webgpu` runs the page's job (engine/jobs/calibrate.ts)
// with GPTQ on the GPU, as the Calibration tab does: every layer's GPTQ on WebGPU, and the
// same figures as Engine.compareCalibration on a GPU. Dawn on SwiftShader; this fails, not
// skips, without a GPU.
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { Engine } from '../engine/engine.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { createTestGpu, SWIFTSHADER_ICD } from '../gpu/gpu-test-setup.ts';
import { comparisonJson } from './calibrate.ts';
import { toJson } from './json.ts';
import { runInProcess } from './testing.ts';

const STORIES = join(FIXTURE_MODELS, 'stories260K.gguf');

it('--backend webgpu: GPTQ on the GPU for every layer, the figures of the page\'s job on a GPU', async () => {
  process.env.VK_ICD_FILENAMES ??= SWIFTSHADER_ICD;
  const r = await runInProcess(['calibrate', STORIES, '--compare', '--json', '--backend', 'webgpu']);
  expect(r.code, r.stderr).toBe(0);
  const cli = JSON.parse(r.stdout) as ReturnType<typeof comparisonJson>;
  expect(cli.gptq_backend).toBe('webgpu');
  expect(cli.gptq_gpu_layers).toBe(35);
  expect(cli.gptq_device).toMatch(/\w/);

  const engine = new Engine(() => createTestGpu());
  await engine.load([await fileSource(STORIES)]);
  const page = await engine.compareCalibration();
  expect(page.gptq.backend).toBe('webgpu');
  // "gpu": what the CLI's job cost the GPU (docs/cli.md); the figures are the page's.
  const { gpu, ...figures } = cli as typeof cli & { gpu: { adapter: string; forward_passes: number; submits: number; readbacks: number; bytes_read_back: number } };
  expect(gpu.adapter).toBe(cli.gptq_device);
  expect(gpu.readbacks).toBeGreaterThanOrEqual(35);
  expect(gpu.submits).toBeGreaterThanOrEqual(gpu.readbacks);
  expect(gpu.bytes_read_back).toBeGreaterThan(0);
  expect(figures).toEqual(JSON.parse(toJson(comparisonJson(page, page.gptq))));

  const text = await runInProcess(['calibrate', STORIES, '--compare', '--backend', 'webgpu', '--group', '128']);
  expect(text.code, text.stderr).toBe(0);
  expect(text.stdout).toMatch(/\nGPTQ ran on WebGPU \(.+\) for 35 of 35 layers\n$/);
  expect((await runInProcess(['calibrate', STORIES, '--backend', 'webgpu', '-o', 'x.gguf'])).stderr).toMatch(/--backend goes with --compare/);
}, 300_000);
