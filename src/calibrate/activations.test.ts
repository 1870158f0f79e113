// calibrateSequentially (GPTQ's sequential pass): a layer at a time and stage by stage, it
// shows each weight the inputs of the model as quantized up to that weight. Checked against
// collectInputs, the whole forward pass, on stories260K.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { quantType } from '../quant/types.ts';
import { calibrateSequentially, chunkTokens, collectInputs, LAYER_STAGES, linearWeightNames, openCalibrationModel, type LayerInputs } from './activations.ts';
import { CALIBRATION_STORY_TEXT } from './calibration-text.ts';

const CHUNK = 128;
const open = async () => openCalibrationModel(await loadModel([await fileSource(join(FIXTURE_MODELS, 'stories260K.gguf'))]));

/** Every stage's inputs as calibrateSequentially hands them over, with `replace` applied after each stage. */
async function sequentialInputs(replace: (name: string, w: Float32Array, cols: number) => Float32Array | null) {
  const cm = await open();
  const { chunks } = chunkTokens(cm.tokenize(CALIBRATION_STORY_TEXT), CHUNK, cm.bosId, cm.addBos);
  const seen = new Map<string, LayerInputs>();
  const stages: string[][] = [];
  await calibrateSequentially(cm, chunks, (names, inputs) => {
    stages.push(names);
    for (const name of names) {
      const x = inputs.get(name)!;
      seen.set(name, x);
      const w = replace(name, cm.weights.get(cm.fileName(name))!, x.cols);
      if (w) cm.weights.set(cm.fileName(name), w);
    }
  });
  return { seen, stages, config: cm.config };
}

const q4_0 = quantType('q4_0')!.codec;
const roundQ4_0 = (w: Float32Array, cols: number) => q4_0.decode(q4_0.encode(w, cols), w.length / cols, cols);

describe('calibrateSequentially', () => {
  it('leaving the weights as they are, hands every weight the F32 forward pass\'s inputs, bit for bit, stage by stage in forward order', async () => {
    const { seen, stages, config } = await sequentialInputs(() => null);
    expect(stages.flat()).toEqual(linearWeightNames(config));
    expect(stages.length).toBe(config.nLayer * LAYER_STAGES.length);
    const f32 = await collectInputs(await open(), CALIBRATION_STORY_TEXT, CHUNK);
    for (const [name, x] of f32) {
      expect(seen.get(name)!.n, name).toBe(x.n);
      expect(Buffer.from(seen.get(name)!.x.buffer).equals(Buffer.from(x.x.buffer)), name).toBe(true);
    }
  });

  it("replacing each stage's weights, hands each weight the inputs of the model whose earlier stages are replaced", async () => {
    // Rows of 32 hold Q4_0 blocks: every weight but ffn_down (rows of 172) is rounded.
    const round = (_: string, w: Float32Array, cols: number) => (cols % 32 === 0 ? roundQ4_0(w, cols) : null);
    const { seen } = await sequentialInputs(round);
    // A stage's inputs depend on the stages before it alone, so the model with every weight
    // rounded gives each weight the same inputs as the sequential pass.
    const cm = await open();
    for (const name of linearWeightNames(cm.config)) {
      const w = cm.weights.get(cm.fileName(name))!;
      const r = round(name, w, seen.get(name)!.cols);
      if (r) cm.weights.set(cm.fileName(name), r);
    }
    const rounded = await collectInputs(cm, CALIBRATION_STORY_TEXT, CHUNK);
    const f32 = await collectInputs(await open(), CALIBRATION_STORY_TEXT, CHUNK);
    for (const [name, x] of rounded) {
      expect(Buffer.from(seen.get(name)!.x.buffer).equals(Buffer.from(x.x.buffer)), name).toBe(true);
      // Layer 0's q/k/v read the embeddings alone; everything after sees the rounding.
      const same = Buffer.from(f32.get(name)!.x.buffer).equals(Buffer.from(x.x.buffer));
      expect(same, name).toBe(/^blk\.0\.attn_[qkv]\./.test(name));
    }
  });
});
