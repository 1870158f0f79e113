// The trainable Llama on stories260K: its logits are the inference pass's (so training
// optimizes the model quantlab measures), and its gradients, for every kind of parameter,
// are central finite differences of the loss (activations in f64; each f32 master weight
// moved by ±h, the difference divided by the actual f32 step).
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { llamaConfig, LlamaModel, type LlamaConfig } from '../model/llama.ts';
import { mapProvider, readModelWeights } from '../model/weights.ts';
import { crossEntropy, klToTeacher, logSoftmaxRows } from './ops.ts';
import { TrainableLlama, type Param } from './model.ts';
import { gaussians } from '../testing/random.ts';
import { buildFamilyGguf } from '../testing/family-gguf.ts';
import { memorySource } from '../formats/bytes.ts';

let config: LlamaConfig;
let weights: Map<string, Float32Array>;
const TOKENS = [1, 403, 407, 261, 378, 434, 288, 317, 271, 401, 308, 266];

/**
 * The central difference of `loss` in entry i of `p` (over the f32 steps the value really
 * took) against p's analytic gradient there, within 2e-4 relative; returns the difference.
 */
function expectFiniteDifference(p: Param, i: number, h: number, loss: () => number): number {
  const keep = p.value[i];
  p.value[i] = keep + h;
  const wUp = p.value[i];
  const up = loss();
  p.value[i] = keep - h;
  const wDown = p.value[i];
  const down = loss();
  p.value[i] = keep;
  const numeric = (up - down) / (wUp - wDown);
  expect(Math.abs(p.grad[i] - numeric), `${p.name}[${i}]: analytic ${p.grad[i]}, numeric ${numeric}`).toBeLessThan(2e-4 * Math.abs(numeric) + 1e-9);
  return numeric;
}

/** The k entries of p with the largest gradients. */
const largestGradients = (p: Param, k = 3) => Array.from(p.grad.keys()).sort((a, b) => Math.abs(p.grad[b]) - Math.abs(p.grad[a])).slice(0, k);

beforeAll(async () => {
  const model = await loadModel([await fileSource(join(FIXTURE_MODELS, 'stories260K.gguf'))]);
  config = llamaConfig(model);
  weights = await readModelWeights(model, config);
});

describe('TrainableLlama on stories260K', () => {
  it("gives the inference pass's logits (within 1e-5 relative)", async () => {
    const inference = await new LlamaModel(config, mapProvider(weights)).forward(TOKENS, new LlamaModel(config, mapProvider(weights)).newCache(TOKENS.length), { logits: 'all' });
    const ours = new TrainableLlama(config, weights).forward(TOKENS).logits;
    expect(ours.length).toBe(inference.length);
    let worst = 0;
    for (let t = 0; t < TOKENS.length; t++) {
      const row = inference.subarray(t * config.nVocab, (t + 1) * config.nVocab);
      const scale = Math.max(...row.map(Math.abs));
      for (let j = 0; j < config.nVocab; j++) worst = Math.max(worst, Math.abs(ours[t * config.nVocab + j] - row[j]) / scale);
    }
    expect(worst).toBeLessThan(1e-5);
  });

  it("a LoRA adapter on a linear: B = 0 leaves the logits, its A/B gradients equal finite differences", () => {
    const model = new TrainableLlama(config, weights);
    const target = config.names.layers[1].v!;
    const [rows, cols] = model.param(target).shape;
    const rank = 4;
    const adapter = model.addAdapter(target, rank, 8, gaussians(rank * cols, 3, 0.1), new Float32Array(rows * rank));
    const input = TOKENS.slice(0, -1);
    const n = input.length;
    expect(model.forward(input).logits).toEqual(new TrainableLlama(config, weights).forward(input).logits);
    adapter.b.value.set(gaussians(rows * rank, 4, 0.1));
    const lossOf = () => crossEntropy(model.forward(input).logits, n, config.nVocab, TOKENS.slice(1));
    model.zeroGrad();
    const f = model.forward(input);
    f.backward(crossEntropy(f.logits, n, config.nVocab, TOKENS.slice(1)).dLogits);
    for (const p of [adapter.a, adapter.b]) {
      expect(p.grad.some((g) => g !== 0)).toBe(true);
      for (const i of largestGradients(p)) expectFiniteDifference(p, i, 1e-3, () => lossOf().loss);
    }
    expect(() => model.addAdapter(config.names.tokenEmbd, 4, 8, new Float32Array(0), new Float32Array(0))).toThrow(/not a linear weight/);
    expect(() => model.addAdapter(target, 0, 8, new Float32Array(0), new Float32Array(0))).toThrow(/rank must be a positive whole number, not 0/);
  });

  for (const loss of ['ce', 'kl'] as const) {
    it(`whole-model gradients (${loss}) equal finite differences for every kind of parameter`, () => {
      const model = new TrainableLlama(config, weights);
      const V = config.nVocab;
      const input = TOKENS.slice(0, -1);
      const n = input.length;
      // A teacher other than the model itself: the logits of a shifted input.
      const teacher = logSoftmaxRows(new TrainableLlama(config, weights).forward([1, ...input.slice(0, -1)]).logits, n, V);
      const lossOf = (logits: Float64Array) => (loss === 'ce' ? crossEntropy(logits, n, V, TOKENS.slice(1)) : klToTeacher(logits, n, V, teacher));
      const f = model.forward(input);
      f.backward(lossOf(f.logits).dLogits);
      const value = () => lossOf(model.forward(input).logits).loss;
      const L = config.names.layers;
      const names = ['token_embd.weight', 'output_norm.weight', L[0].attnNorm, L[0].q!, L[1].k!, L[2].v!, L[3].o, L[4].ffnNorm, L[4].gate!, L[2].up, L[0].down];
      if (!config.tiedOutput) names.push(config.names.output);
      for (const name of names) {
        const p = model.param(name);
        // The entries with the largest gradients (a token's embedding row the input uses).
        for (const i of largestGradients(p)) expectFiniteDifference(p, i, 1e-3 * Math.max(0.05, Math.abs(p.value[i])), value);
      }
    });
  }
});

describe('TrainableLlama on a tied Llama 3-style model (rope_freqs, GQA)', () => {
  it('gives the inference logits; the shared embedding/output matrix gets both gradients', async () => {
    const bytes = await buildFamilyGguf({ family: 'llama', nLayer: 2, nEmbd: 64, nFf: 96, nHead: 4, nHeadKv: 2, headDim: 16, tied: true, ropeFreqs: true, embeddingStd: 0.05, seed: 5 });
    const model = await loadModel([memorySource(bytes, 'tied.gguf')]);
    const c = llamaConfig(model);
    expect(c.tiedOutput).toBe(true);
    expect(c.names.ropeFreqs).toBe('rope_freqs.weight');
    const w = await readModelWeights(model, c);
    const tokens = [1, 40, 300, 40, 7, 511];
    const inference = new LlamaModel(c, mapProvider(w));
    const expected = await inference.forward(tokens, inference.newCache(tokens.length), { logits: 'all' });
    const net = new TrainableLlama(c, w);
    const f = net.forward(tokens);
    const scale = Math.max(...expected.map(Math.abs));
    expect(Math.max(...f.logits.map((v, i) => Math.abs(v - expected[i])))).toBeLessThan(1e-5 * scale);
    const n = tokens.length - 1;
    const lossOf = (logits: Float64Array) => crossEntropy(logits.subarray(0, n * c.nVocab), n, c.nVocab, tokens.slice(1));
    const d = new Float64Array(f.logits.length);
    d.set(lossOf(f.logits).dLogits);
    f.backward(d);
    const p = net.param('token_embd.weight');
    // Row 40 is an input token (embedding gradient) and an output row (head gradient); row 100 is only an output row.
    const largestIn = (row: number) => row * 64 + Array.from(p.grad.subarray(row * 64, (row + 1) * 64).map(Math.abs)).reduce((best, v, j, a) => (v > a[best] ? j : best), 0);
    for (const i of [largestIn(40), largestIn(100), largestIn(300)]) {
      expect(Math.abs(expectFiniteDifference(p, i, 1e-3, () => lossOf(net.forward(tokens).logits).loss))).toBeGreaterThan(1e-5);
    }
    expect(net.params.has('rope_freqs.weight')).toBe(false);
  });
});

// qwen2 (q/k/v biases, NEOX RoPE) and qwen3 (per-head q/k RMSNorm before NEOX RoPE): tiny
// seeded models from the families' test builder, GQA, untied and tied.
describe.each([
  { family: 'qwen2' as const, tied: false, extras: (l: number) => [`blk.${l}.attn_q.bias`, `blk.${l}.attn_k.bias`, `blk.${l}.attn_v.bias`] },
  { family: 'qwen3' as const, tied: true, extras: (l: number) => [`blk.${l}.attn_q_norm.weight`, `blk.${l}.attn_k_norm.weight`] },
])('TrainableLlama on a tiny $family', ({ family, tied, extras }) => {
  let c: LlamaConfig;
  let w: Map<string, Float32Array>;
  const tokens = [1, 40, 300, 40, 7, 511, 99, 12];
  beforeAll(async () => {
    const bytes = await buildFamilyGguf({ family, nLayer: 2, nEmbd: 32, nFf: 48, nHead: 4, nHeadKv: 2, headDim: 8, tied, embeddingStd: 0.5, seed: 11 });
    const model = await loadModel([memorySource(bytes, `${family}.gguf`)]);
    c = llamaConfig(model);
    w = await readModelWeights(model, c);
  });

  it("gives the inference pass's logits (within 1e-5 relative); its extras are parameters", async () => {
    expect(c.family).toBe(family);
    expect(c.ropeStyle).toBe('neox');
    const inference = new LlamaModel(c, mapProvider(w));
    const expected = await inference.forward(tokens, inference.newCache(tokens.length), { logits: 'all' });
    const net = new TrainableLlama(c, w);
    const ours = net.forward(tokens).logits;
    const scale = Math.max(...expected.map(Math.abs));
    expect(Math.max(...ours.map((v, i) => Math.abs(v - expected[i])))).toBeLessThan(1e-5 * scale);
    for (const name of [...extras(0), ...extras(1)]) expect(net.params.has(name), name).toBe(true);
    // The extras change the logits: a model without them would not be this family's.
    const flat = new Map(w);
    for (const name of extras(0)) flat.set(name, name.endsWith('bias') ? new Float32Array(w.get(name)!.length) : new Float32Array(w.get(name)!.length).fill(1));
    const without = new TrainableLlama(c, flat).forward(tokens).logits;
    expect(Math.max(...without.map((v, i) => Math.abs(v - ours[i])))).toBeGreaterThan(1e-3 * scale);
  });

  it('whole-model gradients (CE) equal finite differences, its extras included', () => {
    const model = new TrainableLlama(c, w);
    const V = c.nVocab;
    const input = tokens.slice(0, -1);
    const n = input.length;
    const lossOf = (logits: Float64Array) => crossEntropy(logits, n, V, tokens.slice(1));
    const f = model.forward(input);
    f.backward(lossOf(f.logits).dLogits);
    const value = () => lossOf(model.forward(input).logits).loss;
    const L = c.names.layers;
    const names = [...extras(0), ...extras(1), 'token_embd.weight', 'output_norm.weight', L[0].attnNorm, L[0].q!, L[1].k!, L[0].v!, L[1].o, L[1].ffnNorm, L[0].gate!, L[1].up, L[0].down];
    if (!c.tiedOutput) names.push(c.names.output);
    for (const name of names) {
      const p = model.param(name);
      expect(p.grad.some((g) => g !== 0), name).toBe(true);
      for (const i of largestGradients(p)) expectFiniteDifference(p, i, 1e-3 * Math.max(0.05, Math.abs(p.value[i])), value);
    }
  });
});

describe('checkTrainable', () => {
  it('refuses the families the trainer does not compute, naming the ones it does', async () => {
    const bytes = await buildFamilyGguf({ family: 'phi3', nLayer: 1, nEmbd: 32, nFf: 48, nHead: 4, nHeadKv: 4, headDim: 8, seed: 3 });
    const model = await loadModel([memorySource(bytes, 'phi3.gguf')]);
    const c = llamaConfig(model);
    const w = await readModelWeights(model, c);
    expect(() => new TrainableLlama(c, w)).toThrow('training runs the llama, qwen2, qwen3 families; this model is phi3');
  });
});
