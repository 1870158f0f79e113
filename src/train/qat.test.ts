// QAT does what it is for: held-out KL against F32 below round-to-nearest of the same
// type (q4_0 on stories260K, whose rows of 64 hold its blocks; Q2_K on a seeded synthetic
// Llama with rows of 256), and the exported GGUF is that model: quantlab's KL on the file
// equals the trainer's, llama.cpp's KL on it agrees within 5%, and its quantized tensors are
// the last step's blocks byte for byte.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectBytes } from '../formats/bytes.ts';
import { loadModel, readTensorBytes, type ModelIndex } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { fixture } from '../formats/testing.ts';
import { klDivergence, logSoftmax, modelTokenizer } from '../model/eval.ts';
import { EVAL_TEXT } from '../model/eval-text.ts';
import { llamaConfig, LlamaModel } from '../model/llama.ts';
import { mapProvider, readModelWeights } from '../model/weights.ts';
import { writeFamilyGguf } from '../testing/family-gguf.ts';
import { runLlamaCpp } from '../testing/llama-cpp-peer.ts';
import { qatGguf, QAT_KEYS } from './export.ts';
import { trainQat, TrainingDiverged } from './qat.ts';

let dir: string;
let stories: ModelIndex;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quantlab-qat-'));
  stories = await loadModel([await fixture('stories260K.gguf')]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Teacher-forced logits of the inference pass (model/llama.ts) on a GGUF file. */
async function inferenceLogits(model: ModelIndex, tokens: number[]): Promise<Float32Array> {
  const c = llamaConfig(model);
  const m = new LlamaModel(c, mapProvider(await readModelWeights(model, c)));
  return m.forward(tokens, m.newCache(tokens.length), { logits: 'all' });
}

function meanKl(base: ArrayLike<number>, other: ArrayLike<number>, n: number, v: number): number {
  const a = new Float64Array(v);
  const b = new Float64Array(v);
  let s = 0;
  for (let t = 0; t < n; t++) s += klDivergence(logSoftmax(base, t * v, v, a), logSoftmax(other, t * v, v, b));
  return s / n;
}

describe('QAT on stories260K (q4_0)', () => {
  it('lowers held-out KL against F32 below round-to-nearest, deterministically', async () => {
    const options = { mode: { type: 'q4_0' }, steps: 16, lr: 1e-4, seqLen: 48 };
    const r = await trainQat(stories, options);
    console.log(`stories260K q4_0: held-out KL PTQ ${r.before.kl.toFixed(5)} -> QAT ${r.after.kl.toFixed(5)}; PPL ${r.before.ppl.toFixed(3)} -> ${r.after.ppl.toFixed(3)} (F32 ${r.f32Ppl.toFixed(3)})`);
    expect(r.losses).toHaveLength(16);
    expect(r.after.kl).toBeLessThan(0.85 * r.before.kl);
    // The types are the export plan's: q4_0, and f16 for ffn_down (rows of 172 hold no q4_0 block).
    expect(r.types.get('blk.0.attn_q.weight')).toBe('q4_0');
    expect(r.types.get('blk.0.ffn_down.weight')).toBe('f16');
    expect(r.types.has('blk.0.attn_norm.weight')).toBe(false);
    // Same seed, same bits (two steps suffice to show it).
    const a = await trainQat(stories, { ...options, steps: 2 });
    const b = await trainQat(stories, { ...options, steps: 2 });
    expect(b.losses).toEqual(a.losses);
    expect(b.blocks.get('blk.1.attn_v.weight')).toEqual(a.blocks.get('blk.1.attn_v.weight'));
    // About 5 s of CPU; the time limit is for a loaded machine.
  }, 180_000);

  it('stops at the step where a learning rate makes the loss NaN', async () => {
    const steps: number[] = [];
    const run = trainQat(stories, { mode: { type: 'q4_0' }, steps: 6, lr: 1e30, warmup: 1, clip: 1e300, onStep: (s) => steps.push(s.step) });
    const error = await run.then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(TrainingDiverged);
    expect((error as TrainingDiverged).step).toBe(steps.length + 1);
    expect((error as Error).message).toMatch(/^training diverged at step \d: the (loss|gradient) is not a number/);
  });

  it('refuses bad settings in one line', async () => {
    await expect(trainQat(stories, { mode: { type: 'q4_0' }, steps: 0 })).rejects.toThrow('steps must be a positive whole number, not 0');
    await expect(trainQat(stories, { mode: { type: 'q4_0' }, steps: 1, lr: -1 })).rejects.toThrow('the learning rate must be a positive number, not -1');
    await expect(trainQat(stories, { mode: { type: 'q4_0' }, steps: 1, text: 'Tim.' })).rejects.toThrow(/training text has \d+ tokens, fewer than one sequence of 64/);
  });
});

describe('QAT at Q2_K on a synthetic Llama with rows of 256, exported and run by llama.cpp', () => {
  it('beats PTQ; the file holds the last blocks; quantlab and llama.cpp measure the same KL', async () => {
    const path = join(dir, 'synthetic.gguf');
    await writeFamilyGguf(path, { family: 'llama', nLayer: 1, nEmbd: 256, nFf: 256, nHead: 4, nHeadKv: 2, headDim: 64, seed: 21 });
    const model = await loadModel([await fileSource(path)]);
    const mode = { type: 'q2_K' };
    const r = await trainQat(model, { mode, steps: 10, lr: 2e-4, seqLen: 32 });
    const out = join(dir, 'qat-q2_K.gguf');
    await writeFile(out, await collectBytes(qatGguf(r, mode)));

    const tokens = (await modelTokenizer(model)).encode(EVAL_TEXT);
    const peer = runLlamaCpp({ model: out, logits: [tokens] });
    peer.catch(() => undefined);
    const exported = await loadModel([await fileSource(out)]);
    expect(exported.metadata[QAT_KEYS.steps]).toBe(10);
    expect(exported.metadata[QAT_KEYS.loss]).toBe('kl');
    for (const t of exported.tensors) {
      const blocks = r.blocks.get(t.name);
      if (t.dtype === 'q2_K') expect(await readTensorBytes(exported, t), t.name).toEqual(blocks);
    }
    expect(exported.tensors.filter((t) => t.dtype === 'q2_K').length).toBeGreaterThanOrEqual(7);

    const V = llamaConfig(model).nVocab;
    const f32 = await inferenceLogits(model, tokens);
    const quantlabKl = meanKl(f32, await inferenceLogits(exported, tokens), tokens.length, V);
    const llamaKl = meanKl(f32, Float32Array.from((await peer).logits[0].flat()), tokens.length, V);
    console.log(`synthetic Q2_K: held-out KL PTQ ${r.before.kl.toFixed(5)} -> QAT ${r.after.kl.toFixed(5)}; exported file: quantlab ${quantlabKl.toFixed(5)}, llama.cpp ${llamaKl.toFixed(5)}`);
    expect(r.after.kl).toBeLessThan(0.95 * r.before.kl);
    expect(Math.abs(quantlabKl - r.after.kl)).toBeLessThan(1e-5 * r.after.kl);
    expect(Math.abs(llamaKl - quantlabKl)).toBeLessThan(0.05 * quantlabKl);
    // About 8 s of CPU with llama.cpp's child; the time limit is for a loaded machine.
  }, 180_000);
});
