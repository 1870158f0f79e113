// The WebGPU forward pass (gpu-linear.ts) against the CPU reference on stories260K
// (Node + Dawn; SwiftShader on GPU-less machines; a missing adapter fails, never skips):
//   - F32: greedy from BOS gives the same tokens as the CPU forward, the logits agree
//     within 1e-4 relative (norm-wise, per position), and every product ran on the GPU;
//     so does a batched prefill (n > 1: the matmul case) of the same tokens.
//   - Presets Q8_0 and Q4_K_M (packed q8_0 / q5_0 / f16 blocks in the kernel): evaluateModel
//     on the GPU gives the CPU path's top-1 agreement, greedy text and KL.
//   - A type without a GPU matmul falls back to the CPU for that tensor, counted; weights
//     split into row chunks and tokens into chunks give the unsplit result.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restrictLimits, type GpuContext } from '../gpu/device.ts';
import { createTestGpu } from '../gpu/gpu-test-setup.ts';
import { loadModel, type ModelIndex } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { quantType } from '../quant/types.ts';
import { evaluateModel, modelTokenizer, type ModelEval } from './eval.ts';
import { EVAL_TEXT } from './eval-text.ts';
import { gpuLinear, sumGpuLinearStats, type GpuLinear } from './gpu-linear.ts';
import { argmax, llamaConfig, LlamaModel, type LlamaConfig, type WeightProvider } from './llama.ts';
import { mapProvider, readLlamaWeights, type PackedTensor, type QuantizedWeights } from './weights.ts';

const STORIES = join(FIXTURE_MODELS, 'stories260K.gguf');
/** The fixture README: greedy decoding of stories260K from BOS (llama.test.ts). */
const README_TEXT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.';
/** Its first 40 tokens, as llama.cpp gives them (llama.test.ts GREEDY_60). */
const GREEDY_40 = [
  403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282,
  295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352,
];
/** The bar for the GPU forward against the F32 CPU forward. */
const MAX_REL = 1e-4;
/** SwiftShader runs the kernels on the CPU (~0.3 s per decoded token): GPU work is kept small. */
const GREEDY_STEPS = GREEDY_40.length;
const HOOK_TIMEOUT = 120_000;

let gpu: GpuContext;
let model: ModelIndex;
let config: LlamaConfig;
let weights: WeightProvider;

beforeAll(async () => {
  gpu = await createTestGpu();
  model = await loadModel([await fileSource(STORIES)]);
  config = llamaConfig(model);
  weights = mapProvider(await readLlamaWeights(model, config));
});

afterAll(() => gpu?.destroy());

/** Products per forward call: 7 per layer and the output matrix. */
const productsPerForward = () => config.nLayer * 7 + 1;

/** ||a - b|| / ||b|| over one position's logits. */
function relNorm(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let r = 0;
  for (let i = 0; i < b.length; i++) {
    d += (a[i] - b[i]) ** 2;
    r += b[i] ** 2;
  }
  return Math.sqrt(d / r);
}

/** Greedy decoding from `prompt`, one token per forward (the matvec case), keeping each step's logits. */
async function greedyWithLogits(m: LlamaModel, prompt: number[], steps: number): Promise<{ tokens: number[]; logits: Float32Array[] }> {
  const cache = m.newCache(prompt.length + steps);
  const tokens: number[] = [];
  const logits: Float32Array[] = [];
  let l = await m.forward(prompt, cache);
  for (let i = 0; i < steps; i++) {
    logits.push(l);
    tokens.push(argmax(l));
    if (i < steps - 1) l = await m.forward([tokens[i]], cache);
  }
  return { tokens, logits };
}

/** Logits of every position of `tokens`, `chunk` positions per forward call (the matmul case). */
async function prefill(m: LlamaModel, tokens: number[], chunk: number): Promise<Float32Array> {
  const cache = m.newCache(tokens.length);
  const V = config.nVocab;
  const out = new Float32Array(tokens.length * V);
  for (let s = 0; s < tokens.length; s += chunk) {
    const part = tokens.slice(s, s + chunk);
    out.set(await m.forward(part, cache, { logits: 'all' }), s * V);
  }
  return out;
}

describe('the GPU forward of stories260K (F32) against the CPU forward', () => {
  let cpuRun: { tokens: number[]; logits: Float32Array[] };
  let gpuRun: { tokens: number[]; logits: Float32Array[] };
  let linear: GpuLinear;
  let ms = 0;

  beforeAll(async () => {
    cpuRun = await greedyWithLogits(new LlamaModel(config, weights), [1], GREEDY_STEPS);
    linear = gpuLinear(gpu, weights, null);
    const t0 = performance.now();
    gpuRun = await greedyWithLogits(new LlamaModel(config, weights, linear), [1], GREEDY_STEPS);
    ms = performance.now() - t0;
  }, HOOK_TIMEOUT);
  afterAll(() => linear?.dispose());

  it(`greedy from BOS: the same ${GREEDY_STEPS} tokens (the fixture README text), logits within 1e-4 relative per position`, async () => {
    expect(cpuRun.tokens).toEqual(GREEDY_40);
    expect(gpuRun.tokens).toEqual(cpuRun.tokens);
    const tok = await modelTokenizer(model);
    expect(README_TEXT.startsWith(tok.detokenize(gpuRun.tokens))).toBe(true);
    const rel = gpuRun.logits.map((g, i) => relNorm(g, cpuRun.logits[i]));
    const max = Math.max(...rel);
    console.log(
      `F32 greedy on ${gpu.description}: ${GREEDY_STEPS} tokens in ${ms.toFixed(0)} ms (${(ms / GREEDY_STEPS).toFixed(1)} ms/token); ` +
        `logits vs CPU: max rel ${max.toExponential(2)}, mean ${(rel.reduce((s, v) => s + v, 0) / rel.length).toExponential(2)}`,
    );
    expect(max).toBeLessThan(MAX_REL);
    expect(max).toBeGreaterThan(0); // f32 sums on the GPU, f64 on the CPU: really two paths
  });

  it('every matrix product ran on the GPU, each weight uploaded once', () => {
    const s = linear.stats();
    expect(s.cpu).toBe(0);
    expect(s.gpu).toBe(GREEDY_STEPS * productsPerForward());
    expect(s.byType).toEqual({ f32: { gpu: GREEDY_STEPS * productsPerForward(), cpu: 0 } });
    expect(s.cpuTensors).toEqual({});
    const bytes = model.tensors.filter((t) => t.shape.length === 2 && t.name !== 'token_embd.weight').reduce((n, t) => n + t.nbytes, 0);
    expect(s.uploadedBytes).toBe(bytes);
  });

  it('batched prefill (20 positions per call) of the same tokens: logits within 1e-4 of the CPU, all on the GPU', async () => {
    const tokens = [1, ...cpuRun.tokens.slice(0, 39)];
    const cpuLogits = await prefill(new LlamaModel(config, weights), tokens, 20);
    linear.resetStats();
    const t0 = performance.now();
    const gpuLogits = await prefill(new LlamaModel(config, weights, linear), tokens, 20);
    const t = performance.now() - t0;
    const V = config.nVocab;
    let max = 0;
    for (let i = 0; i < tokens.length; i++) {
      const g = gpuLogits.subarray(i * V, (i + 1) * V);
      const c = cpuLogits.subarray(i * V, (i + 1) * V);
      max = Math.max(max, relNorm(g, c));
      expect(argmax(g)).toBe(argmax(c));
    }
    console.log(`F32 prefill of ${tokens.length} positions, 20 per call: ${t.toFixed(0)} ms; logits vs CPU: max rel ${max.toExponential(2)}`);
    expect(max).toBeLessThan(MAX_REL);
    expect(linear.stats()).toMatchObject({ gpu: 2 * productsPerForward(), cpu: 0 });
  });
});

describe('evaluateModel on the GPU against the CPU path (Q8_0, Q4_K_M)', () => {
  const presets = ['Q8_0', 'Q4_K_M'];
  // The first two sentences of the built-in text, all positions in one forward call.
  const text = EVAL_TEXT.slice(0, EVAL_TEXT.indexOf('much.') + 5);
  const options = { presets, text, chunk: 64, greedyTokens: 8 };
  let cpu: ModelEval;
  let gpuEval: ModelEval;
  const linears: GpuLinear[] = [];
  let ms = 0;

  beforeAll(async () => {
    cpu = await evaluateModel(model, options);
    const t0 = performance.now();
    gpuEval = await evaluateModel(model, {
      ...options,
      linear: (_c, w, q: QuantizedWeights | null) => {
        const l = gpuLinear(gpu, w, q);
        linears.push(l);
        return l;
      },
    });
    ms = performance.now() - t0;
  }, HOOK_TIMEOUT);

  it('the same top-1 agreement and greedy text, KL and perplexity within 1e-4', () => {
    const lines = [`evaluateModel on ${gpu.description}: ${gpuEval.positions} positions, one call, ${options.greedyTokens} greedy tokens, 3 models in ${ms.toFixed(0)} ms`];
    expect(gpuEval.f32.greedy.tokens).toEqual(cpu.f32.greedy.tokens);
    expect(Math.abs(gpuEval.f32.ppl / cpu.f32.ppl - 1)).toBeLessThan(MAX_REL);
    for (const [i, g] of gpuEval.results.entries()) {
      const c = cpu.results[i];
      expect(g.preset).toBe(presets[i]);
      expect(g.greedy.tokens).toEqual(c.greedy.tokens);
      expect(g.greedy.text).toBe(c.greedy.text);
      expect(g.top1Agree).toBe(c.top1Agree);
      expect(g.types).toEqual(c.types);
      let maxKl = 0;
      for (let p = 0; p < g.kl.length; p++) maxKl = Math.max(maxKl, Math.abs(g.kl[p] - c.kl[p]));
      expect(maxKl).toBeLessThan(MAX_REL);
      expect(Math.abs(g.klMean - c.klMean)).toBeLessThan(MAX_REL * Math.max(c.klMean, 1e-3));
      expect(Math.abs(g.ppl / c.ppl - 1)).toBeLessThan(MAX_REL);
      lines.push(
        `  ${g.preset.padEnd(6)} KL mean ${g.klMean.toExponential(4)} (CPU ${c.klMean.toExponential(4)}), max |dKL| per position ${maxKl.toExponential(2)}, ` +
          `ppl ${g.ppl.toFixed(5)} (CPU ${c.ppl.toFixed(5)}), top1 ${(100 * g.top1Agree).toFixed(1)}%`,
      );
    }
    console.log(lines.join('\n'));
  });

  it('every product of every model ran on the GPU, packed tensors in their own blocks', () => {
    expect(linears).toHaveLength(3); // F32, Q8_0, Q4_K_M
    const s = sumGpuLinearStats(linears.map((l) => l.stats()));
    expect(s.cpu).toBe(0);
    expect(s.cpuTensors).toEqual({});
    const [f32, q8, q4] = linears.map((l) => l.stats());
    expect(Object.keys(f32.byType)).toEqual(['f32']);
    expect(Object.keys(q8.byType).sort()).toEqual(['f16', 'q8_0']);
    expect(Object.keys(q4.byType).sort()).toEqual(['f16', 'q5_0', 'q8_0']);
    for (const l of [f32, q8, q4]) expect(l.gpu % productsPerForward()).toBe(0);
    // Each quantized model uploaded its packed blocks, not f32 copies.
    expect(q8.uploadedBytes).toBeLessThan(f32.uploadedBytes / 3);
    expect(q4.uploadedBytes).toBeLessThan(q8.uploadedBytes);
  });

  it('the models were released: their linears are disposed', async () => {
    await expect(linears[0]('output.weight', new Float32Array(config.nEmbd), 1, config.nVocab, config.nEmbd)).rejects.toThrow(/after dispose/);
  });
});

describe('fallbacks and chunking', () => {
  it('a type without a GPU matmul runs that tensor on the CPU, counted', async () => {
    const int8 = quantType('int8')!;
    const name = config.names.layers[0].q!;
    const rows = config.nHead * config.headDim;
    const w = weights(name);
    const bytes = int8.codec.encode(w, config.nEmbd);
    const values = int8.codec.decode(bytes, rows, config.nEmbd);
    const packed = new Map<string, PackedTensor>([[name, { type: int8, bytes, rows, cols: config.nEmbd }]]);
    const provider: WeightProvider = (n) => (n === name ? values : weights(n));
    const q: QuantizedWeights = { values: new Map([[name, values]]), packed, types: new Map([[name, 'int8']]) };
    const linear = gpuLinear(gpu, provider, q);
    try {
      const tokens = [1, 403, 407, 261];
      const m = new LlamaModel(config, provider, linear);
      const g = await m.forward(tokens, m.newCache(4), { logits: 'all' });
      const cpuModel = new LlamaModel(config, provider);
      const c = await cpuModel.forward(tokens, cpuModel.newCache(4), { logits: 'all' });
      expect(relNorm(g, c)).toBeLessThan(MAX_REL);
      const s = linear.stats();
      expect(s.cpu).toBe(1);
      expect(s.gpu).toBe(productsPerForward() - 1);
      expect(s.byType.int8).toEqual({ gpu: 0, cpu: 1 });
      expect(s.cpuTensors).toEqual({ [name]: 'int8 has no GPU matmul' });
    } finally {
      linear.dispose();
    }
  });

  it('weights in row chunks and tokens in chunks (small binding limit) give the unsplit result, bit for bit', async () => {
    const tokens = [1, 403, 407, 261, 378, 432, 383];
    const run = async (ctx: GpuContext) => {
      const linear = gpuLinear(ctx, weights, null);
      try {
        const m = new LlamaModel(config, weights, linear);
        return await m.forward(tokens, m.newCache(tokens.length), { logits: 'all' });
      } finally {
        linear.dispose();
      }
    };
    // 4 KiB bindings: the 512 x 64 output matrix (128 KiB, 256-byte rows) in chunks of 15
    // rows, the 7 x 172 activations of ffn_down in chunks of 5 tokens.
    const small = restrictLimits(gpu, { maxStorageBufferBindingSize: 4096 });
    const a = await run(gpu);
    const b = await run(small);
    expect(b).toEqual(a);
  });
});
