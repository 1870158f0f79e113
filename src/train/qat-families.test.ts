// QAT on the families beyond Llama that the CPU trainer runs: a tiny seeded qwen2 (q/k/v
// biases) and qwen3 (per-head q/k norms) at q4_0. Held-out KL against F32 falls below
// round-to-nearest's, the extras are trained (their gradients reach the optimizer), and
// the exported GGUF is that model: the inference pass's KL on the file equals the
// trainer's, and llama.cpp's agrees within 5%. The WebGPU trainer, whose graph is Llama's, refuses them in one line.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectBytes, memorySource } from '../formats/bytes.ts';
import { loadModel, type ModelIndex } from '../formats/model.ts';
import type { GpuContext } from '../gpu/device.ts';
import { klDivergence, logSoftmax, modelTokenizer } from '../model/eval.ts';
import { EVAL_TEXT } from '../model/eval-text.ts';
import { llamaConfig, LlamaModel } from '../model/llama.ts';
import { mapProvider, readModelWeights } from '../model/weights.ts';
import { buildFamilyGguf } from '../testing/family-gguf.ts';
import { runLlamaCpp } from '../testing/llama-cpp-peer.ts';
import { qatGguf } from './export.ts';
import { trainQat } from './qat.ts';

async function inferenceLogits(model: ModelIndex, tokens: number[]): Promise<Float32Array> {
  const c = llamaConfig(model);
  const m = new LlamaModel(c, mapProvider(await readModelWeights(model, c)));
  return m.forward(tokens, m.newCache(tokens.length), { logits: 'all' });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quantlab-qat-families-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function meanKl(base: ArrayLike<number>, other: ArrayLike<number>, n: number, v: number): number {
  const a = new Float64Array(v);
  const b = new Float64Array(v);
  let s = 0;
  for (let t = 0; t < n; t++) s += klDivergence(logSoftmax(base, t * v, v, a), logSoftmax(other, t * v, v, b));
  return s / n;
}

describe.each([
  { family: 'qwen2' as const, extra: 'blk.0.attn_k.bias' },
  { family: 'qwen3' as const, extra: 'blk.0.attn_q_norm.weight' },
])('QAT q4_0 on a tiny $family', ({ family, extra }) => {
  let model: ModelIndex;
  beforeAll(async () => {
    const bytes = await buildFamilyGguf({ family, nLayer: 1, nEmbd: 64, nFf: 64, nHead: 4, nHeadKv: 2, headDim: 16, embeddingStd: 0.5, seed: 31 });
    model = await loadModel([memorySource(bytes, `${family}.gguf`)]);
  });

  it('lowers held-out KL below PTQ; the extras train; the exported file scores as the trainer did', async () => {
    const mode = { type: 'q4_0' };
    const r = await trainQat(model, { mode, steps: 12, lr: 5e-4, seqLen: 32 });
    console.log(`${family} q4_0: held-out KL PTQ ${r.before.kl.toFixed(5)} -> QAT ${r.after.kl.toFixed(5)}; PPL ${r.before.ppl.toFixed(3)} -> ${r.after.ppl.toFixed(3)} (F32 ${r.f32Ppl.toFixed(3)})`);
    expect(r.losses).toHaveLength(12);
    expect(r.after.kl).toBeLessThan(0.95 * r.before.kl);
    expect(r.types.get('blk.0.attn_q.weight')).toBe('q4_0');
    expect(r.types.has(extra)).toBe(false);
    const c = llamaConfig(model);
    const original = (await readModelWeights(model, c)).get(extra)!;
    expect(r.master.get(extra)!.some((v, i) => v !== original[i]), `${extra} trained`).toBe(true);

    const bytes = await collectBytes(qatGguf(r, mode));
    const out = join(dir, `${family}-qat.gguf`);
    await writeFile(out, bytes);
    const tokens = (await modelTokenizer(model)).encode(EVAL_TEXT).slice(0, c.contextLength);
    const peer = runLlamaCpp({ model: out, logits: [tokens] });
    peer.catch(() => undefined);
    const exported = await loadModel([memorySource(bytes, `${family}-qat.gguf`)]);
    const f32 = await inferenceLogits(model, tokens);
    const fileKl = meanKl(f32, await inferenceLogits(exported, tokens), tokens.length, c.nVocab);
    const llamaKl = meanKl(f32, Float32Array.from((await peer).logits[0].flat()), tokens.length, c.nVocab);
    console.log(`${family} q4_0 exported file: KL quantlab ${fileKl.toFixed(5)}, llama.cpp ${llamaKl.toFixed(5)}`);
    expect(Math.abs(fileKl - r.after.kl)).toBeLessThan(1e-5 * r.after.kl);
    expect(Math.abs(llamaKl - fileKl)).toBeLessThan(0.05 * fileKl);
    // Under 2 s of CPU with llama.cpp's child; the time limit is for a loaded machine.
  }, 120_000);

  it('training on WebGPU refuses it in one line (before touching a device)', async () => {
    const run = trainQat(model, { mode: { type: 'q4_0' }, steps: 1, seqLen: 32, gpu: {} as GpuContext });
    await expect(run).rejects.toThrow(`training on WebGPU runs the llama family only; this model is ${family}: use --backend cpu`);
  });
});
