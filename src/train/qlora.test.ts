// QLoRA (qlora.ts) below the CLI: a Q4_K base (a seeded synthetic llama with rows of 256,
// which Q4_K's super-blocks need) held as blocks while the adapter
// trains, KL and CE losses; LoRA dropout's gradients against finite differences.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type ModelIndex } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { modelConfig } from '../model/families/index.ts';
import { readModelWeights } from '../model/weights.ts';
import { writeFamilyGguf } from '../testing/family-gguf.ts';
import { TrainableLlama } from './model.ts';
import { seededRandom } from './optim.ts';
import { trainQlora } from './qlora.ts';

let dir: string;
let model: ModelIndex;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quantlab-qlora-'));
  const path = join(dir, 'synthetic.gguf');
  await writeFamilyGguf(path, { family: 'llama', nLayer: 1, nEmbd: 256, nFf: 256, nHead: 4, nHeadKv: 2, headDim: 64, seed: 21 });
  model = await loadModel([await fileSource(path)]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('trainQlora', () => {
  it('Q4_K base: the adapter lowers held-out KL below the base alone (KL loss); CE trains too', async () => {
    const kl = await trainQlora(model, { rank: 4, baseType: 'q4_K', targetModules: ['q_proj', 'v_proj', 'down_proj'], steps: 12, lr: 5e-3, seqLen: 32 });
    console.log(`synthetic llama (256 wide) QLoRA over Q4_K, 12 steps: held-out KL ${kl.before.kl.toExponential(3)} -> ${kl.after.kl.toExponential(3)}`);
    expect(kl.quantized).toHaveLength(7);
    expect(kl.before.kl).toBeGreaterThan(0);
    expect(kl.after.kl).toBeLessThan(kl.before.kl);
    expect([...kl.adapter.weights.keys()]).toEqual(['blk.0.attn_q.weight', 'blk.0.attn_v.weight', 'blk.0.ffn_down.weight']);
    const ce = await trainQlora(model, { rank: 2, baseType: 'q4_K', loss: 'ce', steps: 3, lr: 5e-3, seqLen: 32 });
    expect(ce.options.loss).toBe('ce');
    expect(ce.before).toEqual(kl.before);
    expect(ce.losses.every((l) => l > 1)).toBe(true);
    expect([...ce.adapter.weights.values()].every((w) => w.b.some((v) => v !== 0))).toBe(true);
  });

  it('one-line errors: rank 0, an unknown target, a type with no codec, an alpha of 0', async () => {
    await expect(trainQlora(model, { rank: 0, baseType: 'nf4', steps: 1 })).rejects.toThrow(/^LoRA: rank 0 must be a whole number >= 1$/);
    await expect(trainQlora(model, { rank: 2, baseType: 'nf4', steps: 1, targetModules: ['lm_head'] })).rejects.toThrow(/LoRA target module 'lm_head' is not one of/);
    await expect(trainQlora(model, { rank: 2, baseType: 'int9', steps: 1 })).rejects.toThrow(/^QLoRA base type 'int9' has no codec in quantlab$/);
    await expect(trainQlora(model, { rank: 2, alpha: 0, baseType: 'nf4', steps: 1 })).rejects.toThrow(/LoRA alpha must be a positive number, not 0/);
  });
});

describe('LoRA dropout', () => {
  it("A's and B's gradients and the input's through the dropped-out adapter equal finite differences (the same mask each pass); a frozen base changes none of them", async () => {
    const synthetic = model;
    const config = modelConfig(synthetic);
    const net = new TrainableLlama(config, await readModelWeights(synthetic, config));
    const target = 'blk.0.attn_v.weight';
    const [rows, cols] = net.param(target).shape;
    const r = seededRandom(5);
    const rank = 2;
    const ad = net.addAdapter(target, rank, 4, Float32Array.from({ length: rank * cols }, () => r() - 0.5), Float32Array.from({ length: rows * rank }, () => r() - 0.5));
    const tokens = [1, 17, 42, 99, 3];
    // Loss: a fixed weighting of the logits; the mask's generator restarts at each pass.
    const weights = Float64Array.from({ length: tokens.length * config.nVocab }, () => r() - 0.5);
    const loss = () => {
      net.adapterDropout = { rate: 0.3, random: seededRandom(9) };
      const f = net.forward(tokens);
      return { f, value: f.logits.reduce((s, v, i) => s + v * weights[i], 0) };
    };
    net.zeroGrad();
    loss().f.backward(weights);
    const dropped = net.adapterDropout!;
    expect(dropped.rate).toBe(0.3);
    for (const [p, i] of [[ad.a, 3], [ad.a, 200], [ad.b, 7], [ad.b, 100], [net.param('blk.0.attn_norm.weight'), 11]] as const) {
      const h = 1e-2;
      const v = p.value[i];
      p.value[i] = v + h;
      const up = loss().value;
      p.value[i] = v - h;
      const down = loss().value;
      p.value[i] = v;
      const fd = (up - down) / (2 * h);
      expect(Math.abs(p.grad[i] - fd), `${p.name}[${i}]`).toBeLessThan(2e-3 * Math.max(1, Math.abs(fd)));
    }
    // A frozen base: the same adapter gradients, none for the model's own parameters.
    const adapterGrads = [Float64Array.from(ad.a.grad), Float64Array.from(ad.b.grad)];
    net.frozenBase = true;
    net.zeroGrad();
    loss().f.backward(weights);
    expect([ad.a.grad, ad.b.grad]).toEqual(adapterGrads);
    expect([...net.params.values()].every((p) => p.grad.every((g) => g === 0))).toBe(true);
    net.frozenBase = false;
    // The mask is not vacuous: without dropout the loss differs.
    net.adapterDropout = null;
    const plain = net.forward(tokens).logits.reduce((s, v, i) => s + v * weights[i], 0);
    expect(Math.abs(plain - loss().value)).toBeGreaterThan(1e-3);
  });
});
