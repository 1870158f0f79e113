// The one interface to every family's forward pass:
//   const config = modelConfig(model);                 // GGUF by general.architecture; HF Llama safetensors
//   const weights = mapProvider(await readModelWeights(model, config));   (weights.ts)
//   const m = createModel(config, weights, linear?);   // linear: cpuLinear (default) or gpuLinear
//   const logits = await m.forward(tokens, m.newCache(n), { logits: 'all' });
// plus m.embed / m.attention / m.feedForward for layer-by-layer passes (GPTQ).
import type { ModelIndex } from '../../formats/model.ts';
import { weightNames, type ModelConfig } from './config.ts';
import { DecoderModel } from './decoder.ts';
import { FAMILY_MODULES, familyForArchitecture } from './family-registry.ts';
import { llamaHfConfig } from './llama.ts';
import type { Linear, WeightProvider } from './linear.ts';

export type { Family, LayerNames, ModelConfig, TensorNames, LayerAttention, RopeStyle } from './config.ts';
export { DecoderModel, KvCache, argmax, generateGreedy, type ForwardOptions, type GreedyOptions } from './decoder.ts';
export { cpuLinear, matmulF32, type Linear, type WeightProvider } from './linear.ts';

/** The general.architecture values that have a forward pass. */
export const SUPPORTED_ARCHITECTURES: readonly string[] = FAMILY_MODULES.map((f) => f.arch);

/**
 * A model's config: a GGUF's from its `<arch>.*` metadata and tensors (one error naming
 * the field for a missing or contradictory one); a safetensors checkpoint's from
 * config.json (Llama only).
 */
export function modelConfig(model: ModelIndex): ModelConfig {
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  if (model.format !== 'gguf') return llamaHfConfig(model.metadata, byName);
  const arch = model.metadata['general.architecture'];
  if (typeof arch !== 'string') throw new Error('GGUF metadata general.architecture is missing');
  const family = familyForArchitecture(arch);
  if (!family) throw new Error(`general.architecture is ${JSON.stringify(arch)}: no forward pass for it here (supported: ${SUPPORTED_ARCHITECTURES.join(', ')})`);
  return family.config(model.metadata, byName);
}

/** The family's forward pass over the weights; every weight product goes through `linear`. */
export function createModel(config: ModelConfig, weights: WeightProvider, linear?: Linear): DecoderModel {
  return new DecoderModel(config, weights, linear);
}

/** Every tensor name the forward pass reads (each once). */
export function modelWeightNames(config: ModelConfig): string[] {
  return weightNames(config.names);
}
