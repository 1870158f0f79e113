// The page's preset sizes: every preset llama.cpp would write for the model, none it refuses.
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { planModel, presetSizes } from './plan.ts';

it('presetSizes lists the sub-4-bit presets and leaves out Q1_0 where llama.cpp refuses it (rows of 64)', async () => {
  const model = await loadModel([await fileSource(join(FIXTURE_MODELS, 'stories260K.gguf'))]);
  const names = presetSizes(model).map((s) => s.preset);
  expect(names).toEqual(expect.arrayContaining(['Q4_K_M', 'IQ2_XXS', 'IQ1_S', 'IQ3_M', 'TQ1_0', 'Q2_0', 'MXFP4_MOE']));
  expect(names).not.toContain('Q1_0');
  expect(() => planModel(model, { preset: 'Q1_0' })).toThrow('no tensor type fallback is defined for type q1_0');
});
