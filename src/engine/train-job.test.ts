// Engine.train and Engine.trainingFile, what the Training tab calls (CPU session): a step's
// progress carries its loss, the files are those `quantlab train -o` writes (train/files.ts),
// and a cancelled or failed run leaves the previous run's files as they were.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { memorySource } from '../formats/bytes.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { createTestGpu } from '../gpu/gpu-test-setup.ts';
import { buildFamilyGguf } from '../testing/family-gguf.ts';
import { CancelledError, Engine } from './engine.ts';
import type { TrainProgress } from './jobs/train.ts';

const STORIES = join(FIXTURE_MODELS, 'stories260K.gguf');

async function fileOf(engine: Engine, name: string): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  const bytes = await engine.trainingFile(name, (c) => void chunks.push(c.slice()));
  const file = Buffer.concat(chunks);
  expect(file.length).toBe(bytes);
  return file;
}

describe('Engine.train (the Training tab)', () => {
  it('QAT: a record per step, the held-out comparison, the GGUF; a cancelled run, a bad rank keep it', async () => {
    const engine = new Engine(null);
    await engine.load([await fileSource(STORIES)]);
    const steps: TrainProgress[] = [];
    const summary = await engine.train({ method: 'qat', mode: { type: 'q4_0' }, steps: 3, seqLen: 16 }, (p) => p.record && steps.push(p));
    expect(steps.map((p) => p.record!.step)).toEqual([1, 2, 3]);
    expect(steps.every((p) => p.stepsPerSecond! > 0)).toBe(true);
    expect(summary.records.map((r) => r.loss)).toEqual(steps.map((p) => p.record!.loss));
    expect(summary).toMatchObject({ method: 'qat', target: 'q4_0', backend: 'cpu', gpu: null, files: [{ name: 'stories260K-qat-q4_0.gguf' }] });
    expect(summary.before.kl).toBeGreaterThan(0);
    expect(summary.f32Ppl).toBeGreaterThan(1);
    const gguf = await fileOf(engine, 'stories260K-qat-q4_0.gguf');
    expect(gguf.subarray(0, 4).toString()).toBe('GGUF');

    // Cancelled at its first step: rejects with CancelledError; the first run's file is still there, the same bytes.
    const cancelled = engine.train({ method: 'qat', mode: { type: 'q4_0' }, steps: 50, seqLen: 16 }, () => engine.cancel());
    await expect(cancelled).rejects.toBeInstanceOf(CancelledError);
    await expect(engine.train({ method: 'qlora', rank: 0, baseType: 'nf4', steps: 2 })).rejects.toThrow(/rank 0 must be a whole number >= 1/);
    // A base type whose blocks do not fit the rows (q4_K's 256 on rows of 64): one line naming the tensor.
    const misfit = await engine.train({ method: 'qlora', rank: 2, baseType: 'q4_K', steps: 2 }).catch((e: Error) => e.message);
    expect(misfit).toBe("QLoRA base type q4_K: 'blk.0.attn_q.weight' has rows of 64, not a multiple of its blocks of 256");
    expect((await fileOf(engine, 'stories260K-qat-q4_0.gguf')).equals(gguf)).toBe(true);
    await expect(engine.trainingFile('adapter_config.json', () => {})).rejects.toThrow("the training run has no file 'adapter_config.json'");
  });

  it('a family the WebGPU trainer does not run (qwen2) trains on the CPU of a GPU session instead of being refused', async () => {
    const engine = new Engine(() => createTestGpu());
    const bytes = await buildFamilyGguf({ family: 'qwen2', nLayer: 1, nEmbd: 64, nFf: 64, nHead: 4, nHeadKv: 2, headDim: 16, embeddingStd: 0.5, seed: 31 });
    await engine.load([memorySource(bytes, 'qwen2.gguf')]);
    const summary = await engine.train({ method: 'qat', mode: { type: 'q4_0' }, steps: 2, seqLen: 16 });
    expect(summary).toMatchObject({ backend: 'cpu', gpu: null });
    expect(summary.records).toHaveLength(2);
  });

  it('QLoRA: the adapter GGUF and the PEFT files; a new model drops the run', async () => {
    const engine = new Engine(null);
    await engine.load([await fileSource(STORIES)]);
    const summary = await engine.train({ method: 'qlora', rank: 2, baseType: 'nf4', targetModules: ['q_proj'], steps: 2, seqLen: 16 });
    expect(summary.files.map((f) => f.name)).toEqual(['stories260K-qlora-nf4-r2.gguf', 'adapter_model.safetensors', 'adapter_config.json']);
    expect(summary.lora).toEqual({ rank: 2, alpha: 2, targets: ['q_proj'] });
    expect(JSON.parse((await fileOf(engine, 'adapter_config.json')).toString())).toMatchObject({ r: 2, target_modules: ['q_proj'] });
    expect((await fileOf(engine, 'stories260K-qlora-nf4-r2.gguf')).subarray(0, 4).toString()).toBe('GGUF');
    await engine.load([await fileSource(STORIES)]);
    await expect(engine.trainingFile('adapter_config.json', () => {})).rejects.toThrow(/no training run to download/);
  });
});
