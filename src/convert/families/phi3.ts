// Phi-3 / Phi-3.5 (conversion/phi.py Phi3MiniModel). llama.cpp keeps the checkpoint's fused
// tensors: qkv_proj is attn_qkv (rows q, k, v) and gate_up_proj is ffn_up (gate rows, then
// up rows). Its own key list, with rope.scaling.original_context_length and
// attention.sliding_window (0 when config.json has none). LongRoPE ('longrope' / 'su', or
// 'yarn'): rope_factors_long / rope_factors_short tensors from rope_scaling's lists, and
// rope.scaling.attn_factor from the context ratio, as generate_extra_tensors computes them.

import { GGUF_VALUE_TYPE } from '../../formats/gguf/constants.ts';
import { configError, optionalCount, optionalNumber, requiredCount } from '../config.ts';
import { type FamilyContext, type GeneratedTensor, type HfFamily, fileTypeOf, generalKeys, quantizationVersion, requiredNumber, ropeType } from './family.ts';

/** rope dimensions: int(partial_rotary_factor * n_embd) // n_head. */
function ropeDims(ctx: FamilyContext): number {
  const rotary = optionalNumber(ctx.config, ['partial_rotary_factor']) ?? 1;
  return Math.floor(Math.floor(rotary * ctx.hparams.embeddingLength) / ctx.hparams.headCount);
}

function contexts(ctx: FamilyContext): { max: number; original: number } {
  return {
    max: requiredCount(ctx.config, ['n_positions', 'max_position_embeddings']),
    original: requiredCount(ctx.config, ['original_max_position_embeddings']),
  };
}

/** attn_factor as the script: LongRoPE sqrt(1 + ln s / ln orig), YaRN 0.1 ln s + 1 (s > 1), else 1. */
function attnFactor(type: string, scale: number, original: number): number {
  if (scale <= 1) return 1;
  return type === 'yarn' ? 0.1 * Math.log(scale) + 1 : Math.sqrt(1 + Math.log(scale) / Math.log(original));
}

function factorList(ctx: FamilyContext, key: 'long_factor' | 'short_factor', length: number): Float32Array {
  const list = ctx.hparams.ropeScaling?.[key];
  if (!Array.isArray(list)) throw configError(ctx.config, `rope_scaling.${key} is missing (LongRoPE needs long_factor and short_factor)`);
  if (list.length !== length) throw configError(ctx.config, `rope_scaling.${key} has ${list.length} values; the rope dimensions (${length * 2}) need ${length}`);
  if (list.some((x) => typeof x !== 'number' || !Number.isFinite(x))) throw configError(ctx.config, `rope_scaling.${key} holds a value that is not a number`);
  return Float32Array.from(list as number[]);
}

export const PHI3: HfFamily = {
  arch: 'phi3',
  hfArchitectures: ['Phi3ForCausalLM'],
  modelTypes: ['phi3'],
  blockNames: new Map([
    ['self_attn.qkv_proj', 'attn_qkv'],
    ['mlp.gate_up_proj', 'ffn_up'],
  ]),
  ropeTypes: ['longrope', 'su', 'yarn'],
  vocabulary: 'phi3',
  metadata(ctx: FamilyContext) {
    const h = ctx.hparams;
    const { max, original } = contexts(ctx);
    const keys = generalKeys(ctx, 'phi3');
    keys.u32('context_length', max);
    keys.u32('rope.scaling.original_context_length', original);
    keys.u32('embedding_length', h.embeddingLength);
    keys.u32('feed_forward_length', requiredNumber(ctx.config, 'intermediate_size'));
    keys.u32('block_count', h.blockCount);
    keys.u32('attention.head_count', h.headCount);
    keys.u32('attention.head_count_kv', requiredCount(ctx.config, ['num_key_value_heads', 'n_head_kv']));
    keys.f32('attention.layer_norm_rms_epsilon', requiredNumber(ctx.config, 'rms_norm_eps'));
    keys.u32('rope.dimension_count', ropeDims(ctx));
    if (h.ropeTheta === undefined) throw configError(ctx.config, 'needs "rope_theta"');
    keys.f32('rope.freq_base', h.ropeTheta);
    keys.set('general.file_type', GGUF_VALUE_TYPE.UINT32, fileTypeOf(ctx));
    keys.u32('attention.sliding_window', optionalCount(ctx.config, ['sliding_window']) ?? 0);
    const type = ropeType(ctx.config, h);
    if (type !== undefined) keys.f32('rope.scaling.attn_factor', attnFactor(type, max / original, original));
    return quantizationVersion(keys).list();
  },
  generatedTensors(ctx: FamilyContext): GeneratedTensor[] {
    if (!ctx.hparams.ropeScaling) return [];
    const type = ropeType(ctx.config, ctx.hparams);
    if (type === undefined) throw configError(ctx.config, 'rope_scaling has no rope_type (or type)');
    const half = ropeDims(ctx) / 2;
    return [
      { name: 'rope_factors_long.weight', values: factorList(ctx, 'long_factor', half) },
      { name: 'rope_factors_short.weight', values: factorList(ctx, 'short_factor', half) },
    ];
  },
};
