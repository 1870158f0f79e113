// The model summary says, before any job runs, whether the forward pass can run the model
// (the Model output and Calibration tabs show the reason when it cannot).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { memorySource } from '../formats/bytes.ts';
import { loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { buildFamilyGguf } from '../testing/family-gguf.ts';
import { summarizeModel } from './summary.ts';

const fixture = async (...names: string[]) => summarizeModel(await loadModel(await Promise.all(names.map((n) => fileSource(join(FIXTURE_MODELS, n))))));

describe('forwardPassRefusal', () => {
  it('is null for a GGUF and a safetensors Llama', async () => {
    expect((await fixture('stories260K.gguf')).forwardPassRefusal).toBeNull();
    expect((await fixture('stories260K.f32.safetensors', 'stories260K.config.json')).forwardPassRefusal).toBeNull();
  });

  it('is null for the other families (qwen3, gemma2 GGUF)', async () => {
    for (const family of ['qwen3', 'gemma2'] as const) {
      const bytes = await buildFamilyGguf({ family, nLayer: 1, nEmbd: 64, nFf: 128, nHead: 4, nHeadKv: 2, headDim: 16, slidingWindow: 8, seed: 5 });
      expect(summarizeModel(await loadModel([memorySource(bytes, `${family}.gguf`)])).forwardPassRefusal, family).toBeNull();
    }
  });

  it('names what is missing for a model the forward pass does not have', async () => {
    expect((await fixture('mnist-mlp-dfdx.safetensors')).forwardPassRefusal).toMatch(/no config\.json of a family that converts \(the forward pass runs llama, .*qwen3/);
    const bytes = await buildFamilyGguf({ family: 'qwen2', nLayer: 1, nEmbd: 64, nFf: 128, nHead: 4, nHeadKv: 2, headDim: 16, seed: 5 });
    const model = await loadModel([memorySource(bytes, 'x.gguf')]);
    const renamed = { ...model, metadata: { ...model.metadata, 'general.architecture': 'bert' } };
    expect(summarizeModel(renamed).forwardPassRefusal).toMatch(/^general\.architecture is "bert": the forward pass runs llama/);
  });
});
