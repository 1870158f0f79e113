// Test support for src/train/lora (imported by *.test.ts only): stories260K opened with its
// weights and LoRA targets, and the logit comparisons the tests report.
import { loadModel, type ModelIndex } from '../../formats/model.ts';
import { fixture } from '../../formats/testing.ts';
import { createModel, modelConfig, type Linear, type ModelConfig } from '../../model/families/index.ts';
import { cpuLinear } from '../../model/families/index.ts';
import { mapProvider, readModelWeights } from '../../model/weights.ts';
import { loraBase, type LoraBase } from './adapter.ts';

export interface OpenedModel {
  model: ModelIndex;
  config: ModelConfig;
  weights: Map<string, Float32Array>;
  base: LoraBase;
}

export async function openStories(): Promise<OpenedModel> {
  const model = await loadModel([await fixture('stories260K.gguf')]);
  const config = modelConfig(model);
  const weights = await readModelWeights(model, config);
  return { model, config, weights, base: loraBase(model, config) };
}

/** Logits after every token (n x vocab) with the weights `weights` through `linear` (default: the CPU's f32 product). */
export async function logitsOf(m: { config: ModelConfig; weights: Map<string, Float32Array> }, tokens: readonly number[], linear?: (provider: (n: string) => Float32Array) => Linear): Promise<Float32Array> {
  const provider = mapProvider(m.weights);
  const model = createModel(m.config, provider, linear ? linear(provider) : cpuLinear(provider));
  return model.forward(tokens, model.newCache(tokens.length), { logits: 'all' });
}

/** max |a - b| over all values, and that over max |b| (the relative difference the tests bound). */
export function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): { abs: number; rel: number } {
  let abs = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    abs = Math.max(abs, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { abs, rel: abs / scale };
}

/** Mean KL(p || q) over the rows of two logit matrices (n x vocab), p the reference. */
export function meanKl(reference: Float32Array, other: Float32Array, vocab: number): number {
  const rows = reference.length / vocab;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    const p = softmax(reference.subarray(r * vocab, (r + 1) * vocab));
    const q = softmax(other.subarray(r * vocab, (r + 1) * vocab));
    let kl = 0;
    for (let j = 0; j < vocab; j++) if (p[j] > 0) kl += p[j] * Math.log(p[j] / q[j]);
    total += kl;
  }
  return total / rows;
}

function softmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let j = 0; j < logits.length; j++) sum += out[j] = Math.exp(logits[j] - max);
  for (let j = 0; j < logits.length; j++) out[j] /= sum;
  return out;
}
