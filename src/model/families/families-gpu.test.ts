// Every family's forward pass with its weight products on WebGPU (gpu-linear.ts: the
// engine's matmul kernel over f32 weights; Node + Dawn, SwiftShader on GPU-less machines;
// a missing adapter fails, never skips) against llama.cpp, on the same random GGUFs and
// with the same measure as families.test.ts: per position max_j |ours - llama.cpp's| /
// max_j |llama.cpp's|, worst position within 1e-4. Every product (fused qkv and gate|up,
// biased q/k/v included) must run on the GPU.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../gpu/device.ts';
import { createTestGpu } from '../../gpu/gpu-test-setup.ts';
import { FAMILY_CASES, llamaCppLogits, MAX_REL, maxRelativeError, ourLogits, prepareCase } from '../../testing/family-cases.ts';
import { loadModel } from '../../formats/model.ts';
import { fileSource } from '../../formats/node-source.ts';
import { evaluateModel } from '../eval.ts';
import { gpuLinear, sumGpuLinearStats, type GpuLinear } from '../gpu-linear.ts';
import { argmax } from './decoder.ts';

const TIMEOUT = 180_000;
let gpu: GpuContext;

beforeAll(async () => {
  gpu = await createTestGpu();
});
afterAll(() => gpu?.destroy());

describe('each family against llama.cpp with the weight products on WebGPU', () => {
  for (const c of FAMILY_CASES) {
    it(`${c.label}: logits within 1e-4 relative at all ${c.tokens} positions, every product on the GPU`, async () => {
      const p = await prepareCase(c);
      const linear = gpuLinear(gpu, p.weights, null);
      try {
        const [ours, theirs] = await Promise.all([ourLogits(c, p, linear), llamaCppLogits(c, p)]);
        const V = p.config.nVocab;
        const { rel, position } = maxRelativeError(ours, theirs, V);
        const cpu = await ourLogits(c, p);
        const vsCpu = maxRelativeError(ours, Array.from({ length: c.tokens }, (_, i) => Array.from(cpu.subarray(i * V, (i + 1) * V))), V).rel;
        const stats = linear.stats();
        const agree = theirs.filter((row, i) => argmax(row) === argmax(ours, i * V, V)).length;
        console.log(`${c.label} on ${gpu.description}: max rel ${rel.toExponential(2)} (position ${position}) vs llama.cpp, ${vsCpu.toExponential(2)} vs our CPU; ${stats.gpu} GPU products, ${stats.cpu} CPU`);
        expect(rel).toBeLessThan(MAX_REL);
        expect(vsCpu).toBeGreaterThan(0); // f32 sums on the GPU, f64 on the CPU: really two paths
        expect(agree).toBe(c.tokens);
        expect(stats.cpu).toBe(0);
        // One product per weight per layer (fused ones count once) and the output matrix.
        const perLayer = Object.values(p.config.names.layers[0]).filter((n) => n && /\.(attn_(q|k|v|qkv|output)|ffn_(gate|up|down))\.weight$/.test(n)).length;
        expect(stats.gpu).toBe(p.config.nLayer * perLayer + 1);
      } finally {
        linear.dispose();
      }
    }, TIMEOUT);
  }
});

describe("eval's quantized models on WebGPU (packed blocks in the kernel) for the other families", () => {
  it('Q8_0 and Q4_K_M on qwen2, gemma3, gemma2 and phi3: the CPU eval\'s KL and top-1, every product on the GPU', async () => {
    for (const family of ['qwen2', 'gemma3', 'gemma2', 'phi3']) {
      const p = await prepareCase(FAMILY_CASES.find((c) => c.gguf.family === family)!);
      const model = await loadModel([await fileSource(p.path)]);
      const options = { presets: ['Q8_0', 'Q4_K_M'], text: 'Once upon a time, there was a little girl named Lily. She loved to play outside.', greedyTokens: 4, chunk: 16 };
      const linears: GpuLinear[] = [];
      const onGpu = await evaluateModel(model, {
        ...options,
        linear: (_c, weights, quantized) => {
          const l = gpuLinear(gpu, weights, quantized);
          linears.push(l);
          return l;
        },
      });
      const onCpu = await evaluateModel(model, options);
      const stats = sumGpuLinearStats(linears.map((l) => l.stats()));
      console.log(`${family}: ${JSON.stringify(stats.byType)}; KL on GPU ${onGpu.results.map((r) => r.klMean.toExponential(3)).join(', ')}, on CPU ${onCpu.results.map((r) => r.klMean.toExponential(3)).join(', ')}`);
      expect(stats.cpu, family).toBe(0);
      expect(Object.keys(stats.byType).filter((t) => t !== 'f32').length, family).toBeGreaterThan(0); // packed types ran in the kernel
      onGpu.results.forEach((r, i) => {
        const cpu = onCpu.results[i];
        expect(r.klMean, `${family} ${r.preset}`).toBeGreaterThan(0);
        expect(Math.abs(r.klMean - cpu.klMean), `${family} ${r.preset}`).toBeLessThan(0.02 * cpu.klMean + 1e-6);
        expect(r.top1Agree, `${family} ${r.preset}`).toBeGreaterThanOrEqual(cpu.top1Agree - 0.05);
      });
    }
  }, 600_000);
});
