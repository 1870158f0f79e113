// Qwen2 / Qwen2.5 and Qwen3 (conversion/qwen.py Qwen2Model, Qwen3Model): TextModel's keys
// as they are, no q/k permutation (llama.cpp runs them with NEOX RoPE on HF's row order).
// Qwen2 keeps its q/k/v biases (tensor_mapping maps .bias as .weight); Qwen3 adds the
// per-head q/k RMSNorm weights. Vocabulary: tokenizer.model if any, else tokenizer.json.

import { type FamilyContext, type HfFamily, quantizationVersion, textModelKeys } from './family.ts';

export const QWEN2: HfFamily = {
  arch: 'qwen2',
  hfArchitectures: ['Qwen2ForCausalLM', 'Qwen2Model'],
  modelTypes: ['qwen2'],
  blockNames: new Map(),
  ropeTypes: ['linear'],
  vocabulary: 'spm-else-bpe',
  metadata: (ctx: FamilyContext) => quantizationVersion(textModelKeys(ctx, 'qwen2')).list(),
};

export const QWEN3: HfFamily = {
  arch: 'qwen3',
  hfArchitectures: ['Qwen3ForCausalLM', 'Qwen3Model'],
  modelTypes: ['qwen3'],
  blockNames: new Map([
    ['self_attn.q_norm', 'attn_q_norm'],
    ['self_attn.k_norm', 'attn_k_norm'],
  ]),
  ropeTypes: ['linear'],
  vocabulary: 'spm-else-bpe',
  metadata: (ctx: FamilyContext) => quantizationVersion(textModelKeys(ctx, 'qwen3')).list(),
};
