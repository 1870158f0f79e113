// What one model family's converter says (convert_hf_to_gguf.py's model class for it): its
// GGUF architecture, which config.json it takes, its tensor names beyond the common ones
// (gguf-py tensor_mapping.py), how values change (Gemma's norm + 1), its hyperparameter
// keys in the script's order (set_gguf_parameters), the tensors it generates (LongRoPE
// factors) and where its vocabulary comes from. src/convert/hf.ts drives them all.

import { GGML_TYPE, GGUF_VALUE_TYPE, type GgufValueType } from '../../formats/gguf/constants.ts';
import { type GgufMetadataEntry, type GgufValue, ggufEntry } from '../../formats/gguf/metadata.ts';
import { type HfConfig, configError } from '../config.ts';
import type { LlamaHparams } from '../llama.ts';
import type { UnquantizedGgmlType } from '../source-model.ts';

export interface FamilyContext {
  /** config.json (text_config merged over it, as the script's hparams). */
  readonly config: HfConfig;
  readonly hparams: LlamaHparams;
  readonly fileType: UnquantizedGgmlType;
  /** general.name. */
  readonly name: string;
}

/** A tensor the converter makes rather than reads (1-D, F32). */
export interface GeneratedTensor {
  readonly name: string;
  readonly values: Float32Array;
}

/** Where the vocabulary comes from, in the order the script tries. */
export type VocabularySource =
  /** tokenizer.model (SentencePiece), else tokenizer.json (byte-level BPE): Qwen2/3. */
  | 'spm-else-bpe'
  /** tokenizer.model with add_space_prefix false, else tokenizer.json: Gemma 2/3. */
  | 'gemma'
  /** GPT2Tokenizer per tokenizer_config.json -> tokenizer.json, else tokenizer.model: Phi-3. */
  | 'phi3';

export interface HfFamily {
  /** general.architecture. */
  readonly arch: string;
  /** config.json `architectures[0]` values it converts. */
  readonly hfArchitectures: readonly string[];
  /** config.json `model_type` values it converts (when `architectures` is absent). */
  readonly modelTypes: readonly string[];
  /** HF block modules -> GGUF block names, beyond COMMON_BLOCK_NAMES (these win). */
  readonly blockNames: ReadonlyMap<string, string>;
  /** Tensors the script skips (Gemma's lm_head). */
  readonly skipTensor?: (hfName: string) => boolean;
  /** Gemma: every *norm.weight + 1 (Gemma's RMSNorm multiplies by 1 + w). */
  readonly normPlusOne?: boolean;
  /** Gemma 3: token_embd keeps only the vocabulary's rows. */
  readonly trimEmbeddingToVocabulary?: boolean;
  /** rope_scaling types it converts ('default' and none always). */
  readonly ropeTypes: readonly string[];
  readonly vocabulary: VocabularySource;
  /** Hyperparameter keys, before the vocabulary, in the script's order. */
  metadata(ctx: FamilyContext): GgufMetadataEntry[];
  /** Tensors written before the checkpoint's (generate_extra_tensors). */
  generatedTensors?(ctx: FamilyContext): GeneratedTensor[];
}

/** gguf-py tensor_mapping.py's rows every family here shares (the Llama layout). */
export const COMMON_BLOCK_NAMES: ReadonlyMap<string, string> = new Map([
  ['self_attn.q_proj', 'attn_q'],
  ['self_attn.k_proj', 'attn_k'],
  ['self_attn.v_proj', 'attn_v'],
  ['self_attn.o_proj', 'attn_output'],
  ['mlp.gate_proj', 'ffn_gate'],
  ['mlp.up_proj', 'ffn_up'],
  ['mlp.down_proj', 'ffn_down'],
  ['input_layernorm', 'attn_norm'],
  ['post_attention_layernorm', 'ffn_norm'],
]);

/** llama_ftype (general.file_type) of an unquantized file: ALL_F32, MOSTLY_F16, MOSTLY_BF16. */
export const FILE_TYPE_OF: Readonly<Record<number, number>> = { [GGML_TYPE.F32]: 0, [GGML_TYPE.F16]: 1, [GGML_TYPE.BF16]: 32 };

/** gguf-py GGML_QUANT_VERSION. */
const GGML_QUANT_VERSION = 2;

/**
 * The script's key-value list: a key written again keeps its first place and takes the
 * new value (gguf-py GGUFWriter warns "Duplicated key name" and overwrites a dict entry).
 */
export class KeyList {
  private readonly entries = new Map<string, GgufMetadataEntry>();
  constructor(readonly arch: string) {}
  set(key: string, type: GgufValueType, value: GgufValue | undefined): this {
    if (value !== undefined) this.entries.set(key, ggufEntry(key, type, value));
    return this;
  }
  u32(key: string, value: number | undefined): this {
    return this.set(`${this.arch}.${key}`, GGUF_VALUE_TYPE.UINT32, value);
  }
  f32(key: string, value: number | undefined): this {
    return this.set(`${this.arch}.${key}`, GGUF_VALUE_TYPE.FLOAT32, value);
  }
  list(): GgufMetadataEntry[] {
    return [...this.entries.values()];
  }
}

/** general.architecture, general.type, general.name: what every file starts with. */
export function generalKeys(ctx: FamilyContext, arch: string): KeyList {
  const keys = new KeyList(arch);
  keys.set('general.architecture', GGUF_VALUE_TYPE.STRING, arch);
  keys.set('general.type', GGUF_VALUE_TYPE.STRING, 'model');
  keys.set('general.name', GGUF_VALUE_TYPE.STRING, ctx.name);
  return keys;
}

export function fileTypeOf(ctx: FamilyContext): number {
  return FILE_TYPE_OF[ctx.fileType];
}

/** general.quantization_version, written after the hyperparameters. */
export function quantizationVersion(keys: KeyList): KeyList {
  return keys.set('general.quantization_version', GGUF_VALUE_TYPE.UINT32, GGML_QUANT_VERSION);
}

/** TextModel.set_gguf_parameters (conversion/base.py), for the keys these families have. */
export function textModelKeys(ctx: FamilyContext, arch: string): KeyList {
  const h = ctx.hparams;
  const keys = generalKeys(ctx, arch);
  keys.u32('block_count', h.blockCount);
  keys.u32('context_length', h.contextLength);
  keys.u32('embedding_length', h.embeddingLength);
  keys.u32('feed_forward_length', h.feedForwardLength);
  keys.u32('attention.head_count', h.headCount);
  keys.u32('attention.head_count_kv', h.headCountKv);
  const rope = ropeType(ctx.config, h);
  if (rope === 'linear' && typeof h.ropeScaling?.factor === 'number') {
    keys.set(`${arch}.rope.scaling.type`, GGUF_VALUE_TYPE.STRING, 'linear');
    keys.f32('rope.scaling.factor', h.ropeScaling.factor);
  }
  keys.f32('rope.freq_base', h.ropeTheta);
  keys.f32('attention.layer_norm_rms_epsilon', h.rmsNormEps);
  keys.u32('attention.key_length', h.headDim);
  keys.u32('attention.value_length', h.headDim);
  keys.set('general.file_type', GGUF_VALUE_TYPE.UINT32, fileTypeOf(ctx));
  return keys;
}

/** rope_scaling's type ('rope_type', else 'type'), lower-cased; undefined when there is none. */
export function ropeType(config: HfConfig, h: LlamaHparams): string | undefined {
  const rope = h.ropeScaling;
  if (!rope) return undefined;
  const type = rope.rope_type ?? rope.type;
  if (type === undefined || type === null) return undefined;
  if (typeof type !== 'string') throw configError(config, `rope_scaling.rope_type is ${JSON.stringify(type)}, not a string`);
  return type.toLowerCase();
}

/** A config number the script reads with hparams[key] (a KeyError there, one error here). */
export function requiredNumber(config: HfConfig, key: string): number {
  const value = config.values[key];
  if (value === undefined || value === null) throw configError(config, `needs "${key}"`);
  if (typeof value !== 'number' || !Number.isFinite(value)) throw configError(config, `"${key}" is ${JSON.stringify(value)}, not a number`);
  return value;
}
