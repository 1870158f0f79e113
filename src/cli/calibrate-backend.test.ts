// `quantlab calibrate --compare --backend webgpu` runs the page's job (engine/jobs/calibrate.ts)
// with GPTQ on the GPU, as the Calibration tab does: every layer's GPTQ on WebGPU, and the
// same figures as Engine.compareCalibration on a GPU. Dawn on SwiftShader; this fails, not
// skips, without a GPU. And `calibrate -o --backend webgpu`: the imatrix of the resident pass.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { CALIBRATION_STORY_TEXT } from '../calibrate/calibration-text.ts';
import { Engine } from '../engine/engine.ts';
import { memorySource } from '../formats/bytes.ts';
import { readGguf } from '../formats/gguf/read.ts';
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
}, 300_000);

it('-o --backend webgpu: the importance matrix from the resident forward pass, one readback per chunk and one for the sums; the file quantize reads', async () => {
  process.env.VK_ICD_FILENAMES ??= SWIFTSHADER_ICD;
  const dir = mkdtempSync(join(tmpdir(), 'quantlab-imatrix-gpu-'));
  try {
    const text = join(dir, 'text.txt');
    writeFileSync(text, CALIBRATION_STORY_TEXT.slice(0, 320));
    // One imatrix path for both (quantize records it in the GGUF): each run quantizes with it before the next overwrites it.
    const matrix = join(dir, 'imatrix.gguf');
    const types = ['q4_0', 'iq4_nl'];
    const run = async (more: string[]) => {
      const r = await runInProcess(['calibrate', STORIES, '--text', text, '--chunk', '32', '-o', matrix, '--json', ...more]);
      expect(r.code, r.stderr).toBe(0);
      const quantized: Buffer[] = [];
      for (const type of types) {
        const q = await runInProcess(['quantize', STORIES, '-o', join(dir, 'q.gguf'), '--type', type, '--imatrix', matrix]);
        expect(q.code, q.stderr).toBe(0);
        quantized.push(readFileSync(join(dir, 'q.gguf')));
      }
      return { json: JSON.parse(r.stdout) as { chunk_count: number; bytes: number; entries: { name: string; columns: number; count: number }[] }, quantized };
    };
    const cpu = await run([]);
    const gpu = await run(['--backend', 'webgpu']);
    const c = cpu.json;
    const g = gpu.json as typeof c & { backend: string; gpu: { forward_passes: number; readbacks: number; bytes_read_back: number } };
    expect(g.backend).toBe('webgpu');
    expect(g.entries).toEqual(c.entries);
    expect(g.bytes).toBe(c.bytes);
    expect(g.gpu.forward_passes).toBe(c.chunk_count);
    expect(g.gpu.readbacks).toBe(c.chunk_count + 1);
    const sumsBytes = c.entries.reduce((s, e) => s + e.columns * 4, 0);
    expect(g.gpu.bytes_read_back).toBe(sumsBytes + c.chunk_count * 32 * 16);
    // Quantized with each: Q4_0 / IQ4_NL blocks (18 bytes) the same but where the weighted
    // scale search (quantize_row_q4_0_impl's / iq4_nl's candidate scales) is a near tie that
    // a few f32 ulps of the sums flip (the GPU pass's activations differ from the CPU's by
    // ulps; on equal inputs the sums are bit for bit: imatrix-gpu.test.ts): measured Q4_0 2
    // blocks (blk.1 ffn_gate and ffn_up, one input; a neighbouring f16 scale each), IQ4_NL 6,
    // of ~14,000; bounded at 0.1%.
    for (const [t, type] of types.entries()) {
      const [a, b] = [cpu.quantized[t], gpu.quantized[t]];
      expect(b.length).toBe(a.length);
      const blocks: number[] = []; // first differing byte of each run within one block's length
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(blocks.length && i - blocks[blocks.length - 1] < 18)) blocks.push(i);
      console.log(`stories260K --type ${type} with the CPU's and the GPU's imatrix: ${blocks.length} blocks differ (at bytes ${blocks.join(', ')} of ${a.length})`);
      const { dataOffset } = await readGguf(memorySource(a, 'q.gguf'));
      expect(blocks.length, type).toBeLessThanOrEqual(0.001 * ((a.length - dataOffset) / 18));
      expect(blocks.every((i) => i >= dataOffset), type).toBe(true); // the headers are the same bytes
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
