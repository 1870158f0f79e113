// Gemma 2 and Gemma 3 text models (conversion/gemma.py Gemma2Model, Gemma3Model). Both add 1
// to every *norm.weight (Gemma's RMSNorm multiplies by 1 + w; llama.cpp by w), skip lm_head
// (the output is token_embd) and write add_space_prefix = false with a SentencePiece
// vocabulary. Gemma 2 writes its own key list (soft-caps, sliding window, all required);
// Gemma 3 writes TextModel's and then overrides with its defaults. Their layers have four
// norms: post_attention_layernorm is llama.cpp's post_attention_norm there, and
// pre_feedforward_layernorm its ffn_norm.

import { GGUF_VALUE_TYPE } from '../../formats/gguf/constants.ts';
import { configError } from '../config.ts';
import { type FamilyContext, type HfFamily, KeyList, fileTypeOf, generalKeys, quantizationVersion, requiredNumber, textModelKeys } from './family.ts';

const GEMMA_NORMS: ReadonlyMap<string, string> = new Map([
  ['post_attention_layernorm', 'post_attention_norm'],
  ['pre_feedforward_layernorm', 'ffn_norm'],
  ['post_feedforward_layernorm', 'post_ffw_norm'],
]);

const skipLmHead = (name: string) => name === 'lm_head.weight';

export const GEMMA2: HfFamily = {
  arch: 'gemma2',
  hfArchitectures: ['Gemma2ForCausalLM'],
  modelTypes: ['gemma2'],
  blockNames: GEMMA_NORMS,
  skipTensor: skipLmHead,
  normPlusOne: true,
  ropeTypes: [],
  vocabulary: 'gemma',
  metadata(ctx: FamilyContext) {
    const c = ctx.config;
    const h = ctx.hparams;
    const keys = generalKeys(ctx, 'gemma2');
    keys.u32('context_length', requiredNumber(c, 'max_position_embeddings'));
    keys.u32('embedding_length', h.embeddingLength);
    keys.u32('block_count', h.blockCount);
    keys.u32('feed_forward_length', requiredNumber(c, 'intermediate_size'));
    keys.u32('attention.head_count', h.headCount);
    keys.u32('attention.head_count_kv', h.headCountKv ?? h.headCount);
    keys.f32('attention.layer_norm_rms_epsilon', requiredNumber(c, 'rms_norm_eps'));
    keys.u32('attention.key_length', requiredNumber(c, 'head_dim'));
    keys.u32('attention.value_length', requiredNumber(c, 'head_dim'));
    keys.set('general.file_type', GGUF_VALUE_TYPE.UINT32, fileTypeOf(ctx));
    keys.f32('attn_logit_softcapping', requiredNumber(c, 'attn_logit_softcapping'));
    keys.f32('final_logit_softcapping', requiredNumber(c, 'final_logit_softcapping'));
    keys.u32('attention.sliding_window', requiredNumber(c, 'sliding_window'));
    return quantizationVersion(keys).list();
  },
};

export const GEMMA3: HfFamily = {
  arch: 'gemma3',
  hfArchitectures: ['Gemma3ForCausalLM', 'Gemma3ForConditionalGeneration'],
  modelTypes: ['gemma3', 'gemma3_text'],
  blockNames: new Map([
    ...GEMMA_NORMS,
    ['self_attn.q_norm', 'attn_q_norm'],
    ['self_attn.k_norm', 'attn_k_norm'],
  ]),
  skipTensor: skipLmHead,
  normPlusOne: true,
  trimEmbeddingToVocabulary: true,
  ropeTypes: ['linear'],
  vocabulary: 'gemma',
  metadata(ctx: FamilyContext) {
    const c = ctx.config;
    const v = c.values;
    const num = (key: string, fallback: number) => (typeof v[key] === 'number' ? (v[key] as number) : fallback);
    const keys: KeyList = textModelKeys(ctx, 'gemma3');
    keys.u32('context_length', num('max_position_embeddings', 131072));
    keys.u32('attention.head_count', num('num_attention_heads', 8));
    keys.f32('attention.layer_norm_rms_epsilon', num('rms_norm_eps', 1e-6));
    keys.u32('attention.key_length', num('head_dim', 256));
    keys.u32('attention.value_length', num('head_dim', 256));
    keys.f32('rope.freq_base', ctx.hparams.ropeTheta ?? 1_000_000); // the global layers'
    if (v.attn_logit_softcapping !== undefined && v.attn_logit_softcapping !== null) {
      throw configError(c, '"attn_logit_softcapping" is set, but Gemma 3 has none (Gemma 2 does: check model_type)');
    }
    const finalCap = v.final_logit_softcapping;
    if (typeof finalCap === 'number' && finalCap) keys.f32('final_logit_softcapping', finalCap);
    if (v.sliding_window_pattern !== 1) keys.u32('attention.sliding_window', requiredNumber(c, 'sliding_window'));
    keys.u32('attention.head_count_kv', num('num_key_value_heads', 4));
    return quantizationVersion(keys).list();
  },
};
