// Activation modes with the products on WebGPU (Node + Dawn; SwiftShader without a GPU):
// the inputs are rounded in JS before the GPU product (activations.ts), so the GPU sees the
// CPU's rounded inputs bit for bit given the same inputs. But the GPU sums in f32 in its own
// order, so a product's output (the next product's input) differs by an ulp or so, and an
// ulp next to a rounding boundary moves a value by a whole INT8/q8 step: the KL figures then
// differ by a few percent, as llama.cpp's own do from ours (SwiftShader, measured: ggml
// 5.4%, int8 3.8%; f32 mode agrees within 1e-4, gpu-linear.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestGpu } from '../gpu/gpu-test-setup.ts';
import type { GpuContext } from '../gpu/device.ts';
import { loadModel, type ModelIndex } from '../formats/model.ts';
import { fixture } from '../formats/testing.ts';
import { evaluateModel } from './eval.ts';
import { EVAL_TEXT } from './eval-text.ts';
import { gpuLinear, sumGpuLinearStats, type GpuLinear } from './gpu-linear.ts';

let gpu: GpuContext;
let model: ModelIndex;
beforeAll(async () => {
  gpu = await createTestGpu();
  model = await loadModel([await fixture('stories260K.gguf')]);
}, 120_000);
afterAll(() => gpu?.destroy());

describe('activation modes on WebGPU give the CPU figures', () => {
  for (const activations of ['ggml', 'int8'] as const) {
    it(`${activations}: Q8_0 KL on the GPU within 10% of the CPU's, and not f32 mode's`, async () => {
      const options = { presets: ['Q8_0'], text: EVAL_TEXT, chunk: 64, greedyTokens: 0, activations };
      const cpu = await evaluateModel(model, options);
      const f32 = await evaluateModel(model, { ...options, activations: 'f32' });
      const linears: GpuLinear[] = [];
      const onGpu = await evaluateModel(model, {
        ...options,
        linear: (_c, w, q) => {
          const l = gpuLinear(gpu, w, q);
          linears.push(l);
          return l;
        },
      });
      const stats = sumGpuLinearStats(linears.map((l) => l.stats()));
      const [g, c, f] = [onGpu.results[0].klMean, cpu.results[0].klMean, f32.results[0].klMean];
      console.log(`${activations} on ${gpu.description}: Q8_0 KL GPU ${g.toExponential(4)}, CPU ${c.toExponential(4)}, f32 mode ${f.toExponential(4)}; products ${JSON.stringify(stats)}`);
      expect(onGpu.activations).toBe(activations);
      expect(stats.gpu).toBeGreaterThan(0);
      expect(Math.abs(g / c - 1)).toBeLessThan(0.1);
      expect(Math.abs(g / f - 1)).toBeGreaterThan(0.2);
    }, 300_000);
  }
});
