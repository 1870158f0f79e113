// llama.cpp's file types ("presets"): which ggml type each tensor of a model gets, and the
// order llama-quantize writes the tensors in. A port of the pinned llama.cpp (the one
// inside @node-llama-cpp/linux-x64@3.22.1, see docs/contracts.md), src/llama-quant.cpp:
//   tensor_allows_quantization   -> allowsQuantization
//   tensor_get_category          -> categoryOf
//   llama_tensor_get_type        -> planTensor (overrides, --pure, output/token_embd types)
//   llama_tensor_get_type_impl   -> mixtureType (the per-file-type rules)
//   tensor_type_fallback         -> fallback (row-size fallbacks)
//   tensor_requires_imatrix      -> requiresImatrix
//   llama_ftype_get_default_type -> PRESETS[].defaultType
//   init_quantize_state_counters and the preliminary loop of llama_model_quantize_impl
//                                -> planQuantization (counters, tied embeddings, order)
// and src/llama-model-loader.h (weight_name_comparer: the order of weights_map, which is
// the order of the output file) -> compareTensorNames. Every file type the pinned
// llama-quantize accepts is here (NVFP4 = 39 it refuses: see PURE_ONLY_FILE_TYPES).
// Verified tensor by tensor against the real library in presets.test.ts.
import { didYouMean } from '../formats/suggest.ts';
import { ggmlTypeByName, type GgmlTypeInfo } from '../formats/gguf/constants.ts';
import { TYPE_INFOS, typeInfo } from './type-data.ts';

export type PresetName =
  | 'F16' | 'BF16' | 'Q4_0' | 'Q4_1' | 'Q5_0' | 'Q5_1' | 'Q8_0' | 'Q2_K' | 'Q2_K_S' | 'Q3_K_S' | 'Q3_K_M'
  | 'Q3_K_L' | 'Q4_K_S' | 'Q4_K_M' | 'Q5_K_S' | 'Q5_K_M' | 'Q6_K' | 'IQ4_NL' | 'IQ4_XS' | 'MXFP4_MOE'
  | 'IQ3_M' | 'IQ3_S' | 'IQ3_XS' | 'IQ3_XXS' | 'IQ2_M' | 'IQ2_S' | 'IQ2_XS' | 'IQ2_XXS' | 'IQ1_M' | 'IQ1_S'
  | 'TQ2_0' | 'TQ1_0' | 'Q2_0' | 'Q1_0';

export interface Preset {
  /** As llama-quantize prints it. */
  readonly name: PresetName;
  /** llama_ftype, written as general.file_type. */
  readonly fileType: number;
  /** llama_ftype_get_default_type: the type of every quantizable tensor no rule changes. */
  readonly defaultType: string;
  readonly description: string;
}

// Sizes and ppl deltas: llama.cpp tools/quantize/quantize.cpp (QUANT_OPTIONS).
export const PRESETS: readonly Preset[] = [
  { name: 'F16', fileType: 1, defaultType: 'f16', description: 'every quantizable weight in f16; norms and 1-D tensors stay as they are' },
  { name: 'BF16', fileType: 32, defaultType: 'bf16', description: 'every quantizable weight in bf16; norms and 1-D tensors stay as they are' },
  { name: 'Q8_0', fileType: 7, defaultType: 'q8_0', description: 'q8_0 everywhere (llama.cpp: 7.96G, +0.0026 ppl @ Llama-3-8B)' },
  { name: 'Q6_K', fileType: 18, defaultType: 'q6_K', description: 'q6_K everywhere (6.14G, +0.0217 ppl @ Llama-3-8B)' },
  { name: 'Q5_K_M', fileType: 17, defaultType: 'q5_K', description: 'q5_K; q6_K for output and half the attn_v/ffn_down layers (5.33G, +0.0569 ppl @ Llama-3-8B)' },
  { name: 'Q5_K_S', fileType: 16, defaultType: 'q5_K', description: 'q5_K; q6_K output (5.21G, +0.1049 ppl @ Llama-3-8B)' },
  { name: 'Q5_1', fileType: 9, defaultType: 'q5_1', description: 'legacy q5_1; q6_K output (5.65G, +0.1062 ppl @ Llama-3-8B)' },
  { name: 'Q5_0', fileType: 8, defaultType: 'q5_0', description: 'legacy q5_0; q6_K output (5.21G, +0.1316 ppl @ Llama-3-8B)' },
  { name: 'Q4_K_M', fileType: 15, defaultType: 'q4_K', description: 'q4_K; q6_K for output and half the attn_v/ffn_down layers (4.58G, +0.1754 ppl @ Llama-3-8B)' },
  { name: 'Q4_K_S', fileType: 14, defaultType: 'q4_K', description: 'q4_K; q5_K for the first attn_v and ffn_down layers, q6_K output (4.37G, +0.2689 ppl @ Llama-3-8B)' },
  { name: 'Q4_1', fileType: 3, defaultType: 'q4_1', description: 'legacy q4_1; q6_K output (4.78G, +0.4511 ppl @ Llama-3-8B)' },
  { name: 'Q4_0', fileType: 2, defaultType: 'q4_0', description: 'legacy q4_0; q6_K output (4.34G, +0.4685 ppl @ Llama-3-8B)' },
  { name: 'IQ4_NL', fileType: 25, defaultType: 'iq4_nl', description: '4.50 bpw non-linear grid, blocks of 32; q5_K attn_v with GQA, q6_K output' },
  { name: 'IQ4_XS', fileType: 30, defaultType: 'iq4_xs', description: '4.25 bpw non-linear grid, super-blocks of 256; q5_K attn_v with GQA, q6_K output' },
  { name: 'Q3_K_L', fileType: 13, defaultType: 'q3_K', description: 'q3_K; q5_K for attn_v, attn_output, ffn_down, q6_K output (4.03G, +0.5562 ppl @ Llama-3-8B)' },
  { name: 'Q3_K_M', fileType: 12, defaultType: 'q3_K', description: 'q3_K; q4_K/q5_K for attn_v, attn_output, ffn_down, q6_K output (3.74G, +0.6569 ppl @ Llama-3-8B)' },
  { name: 'Q3_K_S', fileType: 11, defaultType: 'q3_K', description: 'q3_K almost everywhere, q6_K output (3.41G, +1.6321 ppl @ Llama-3-8B)' },
  { name: 'Q2_K', fileType: 10, defaultType: 'q2_K', description: 'q2_K; q3_K/q4_K for attn_v, attn_output, ffn_down, q6_K output (2.96G, +3.5199 ppl @ Llama-3-8B)' },
  { name: 'Q2_K_S', fileType: 21, defaultType: 'q2_K', description: 'q2_K, fewer exceptions than Q2_K; needs an importance matrix (2.96G, +3.1836 ppl @ Llama-3-8B)' },
  // The sub-4-bit mixtures (llama.cpp gives bits per weight, not sizes, for these).
  { name: 'IQ3_M', fileType: 27, defaultType: 'iq3_s', description: '3.66 bpw mix: iq3_s; q4_K for attn_v, attn_output and the first ffn_down layers, q6_K output' },
  { name: 'IQ3_S', fileType: 26, defaultType: 'iq3_s', description: '3.44 bpw: iq3_s; q4_K attn_v with GQA, q6_K output' },
  { name: 'IQ3_XS', fileType: 22, defaultType: 'iq3_s', description: '3.3 bpw: iq3_s; iq3_xxs for attn_q/attn_k and the middle ffn_gate/ffn_up layers; needs an importance matrix' },
  { name: 'IQ3_XXS', fileType: 23, defaultType: 'iq3_xxs', description: '3.06 bpw: iq3_xxs; iq2_s attn_q/attn_k, iq3_s attn_output and token_embd; needs an importance matrix' },
  { name: 'IQ2_M', fileType: 29, defaultType: 'iq2_s', description: '2.7 bpw: iq2_s; iq3_s for attn_v, attn_output, token_embd and the first ffn_down layers, q5_K output; needs an importance matrix' },
  { name: 'IQ2_S', fileType: 28, defaultType: 'iq2_xs', description: '2.5 bpw: iq2_xs; iq3_s for attn_v, attn_output, token_embd and the first ffn_down layers, q5_K output; needs an importance matrix' },
  { name: 'IQ2_XS', fileType: 20, defaultType: 'iq2_xs', description: '2.31 bpw: iq2_xs; q2_K attn_v, token_embd and first ffn_down layers, q5_K output; needs an importance matrix' },
  { name: 'Q2_0', fileType: 41, defaultType: 'q2_0', description: '2.25 bpw: q2_0 (blocks of 64); q4_K token_embd, q6_K output' },
  { name: 'IQ2_XXS', fileType: 19, defaultType: 'iq2_xxs', description: '2.06 bpw: iq2_xxs; q2_K attn_v, token_embd and first ffn_down layers, q5_K output; needs an importance matrix' },
  { name: 'TQ2_0', fileType: 37, defaultType: 'tq2_0', description: '2.06 bpw ternarization (for ternary-trained models); q4_K token_embd, q6_K output' },
  { name: 'IQ1_M', fileType: 31, defaultType: 'iq1_m', description: '1.75 bpw: iq1_m; iq2_xxs attn_output, q2_K attn_v/token_embd/first ffn_down layers, q5_K output; needs an importance matrix' },
  { name: 'TQ1_0', fileType: 36, defaultType: 'tq1_0', description: '1.69 bpw ternarization (for ternary-trained models); q4_K token_embd, q6_K output' },
  { name: 'IQ1_S', fileType: 24, defaultType: 'iq1_s', description: '1.56 bpw: iq1_s; iq2_xxs attn_output, q2_K attn_v/token_embd/first ffn_down layers, q5_K output; needs an importance matrix' },
  { name: 'Q1_0', fileType: 40, defaultType: 'q1_0', description: '1.125 bpw: q1_0 (1-bit signs, blocks of 128); q6_K output' },
  { name: 'MXFP4_MOE', fileType: 38, defaultType: 'mxfp4', description: 'MoE models: mxfp4 for the expert tensors (3-D), q8_0 for every other weight' },
];

/** The types GPTQ export writes (the table's gptqTarget), in table order: q4_0, q4_K. */
export function gptqTargetTypes(): string[] {
  return TYPE_INFOS.filter((t) => t.gptqTarget).map((t) => t.id);
}

/** The presets whose weights' type GPTQ export writes, smallest first: Q4_0, Q4_K_S, Q4_K_M. */
export function gptqPresets(): PresetName[] {
  const targets = gptqTargetTypes();
  return PRESETS.filter((p) => targets.includes(p.defaultType))
    .map((p) => p.name)
    .reverse();
}

/** llama-quantize's aliases (quantize.cpp: "Q4_K" = Q4_K_M ...). */
export const PRESET_ALIASES: Readonly<Record<string, PresetName>> = { Q3_K: 'Q3_K_M', Q4_K: 'Q4_K_M', Q5_K: 'Q5_K_M' };

/**
 * llama.cpp file types that only `--type T` (pure) reaches here. (LLAMA_FTYPE_MOSTLY_NVFP4 = 39
 * is in llama.h, but the pinned llama_ftype_get_default_type has no case for it:
 * llama_model_quantize refuses it as "invalid output file type 39", so there is no nvfp4 file type.)
 */
const PURE_ONLY_FILE_TYPES: readonly { name: string; fileType: number; defaultType: string }[] = [
  { name: 'F32', fileType: 0, defaultType: 'f32' },
];

/** Find a preset by name, case-insensitively, aliases included; undefined if none. */
export function findPreset(name: string): Preset | undefined {
  const upper = name.toUpperCase();
  const canonical = PRESET_ALIASES[upper] ?? upper;
  return PRESETS.find((p) => p.name === canonical);
}

/** The types a whole GGUF can be written in (`--type T`, `train --qat T`): those of the type table with a llama.cpp file type. */
export function pureFileTypes(): string[] {
  return TYPE_INFOS.filter((t) => t.ggml && fileTypeForPureType(t.id)).map((t) => t.id);
}

/**
 * `--type T` is llama-quantize's `--pure` with the file type whose default type is T:
 * the file type it names (and writes as general.file_type). K types use llama-quantize's
 * aliases: q4_K -> Q4_K (= Q4_K_M), q3_K -> Q3_K (= Q3_K_M), q2_K -> Q2_K.
 */
export function fileTypeForPureType(type: string): { name: string; fileType: number; defaultType: string } | undefined {
  const id = typeInfo(type)?.id;
  if (id === undefined) return undefined;
  const alias = Object.entries(PRESET_ALIASES).find(([a]) => a.toLowerCase() === id.toLowerCase());
  // Several file types share a default type (iq3_s: IQ3_XS, IQ3_S, IQ3_M): the one named after it.
  const sameDefault = PRESETS.filter((p) => p.defaultType === id);
  const preset = alias ? findPreset(alias[1]) : (sameDefault.find((p) => p.name.toLowerCase() === id.toLowerCase()) ?? sameDefault[0]);
  return preset ?? PURE_ONLY_FILE_TYPES.find((p) => p.defaultType === id);
}

export interface PlanTensorInput {
  readonly name: string;
  /** Row-major (PyTorch order): the last entry is the row length (GGUF ne0). */
  readonly shape: readonly (number | bigint)[];
  /** The tensor's current type: a ggml type name ('f32', 'q8_0') or a safetensors dtype ('BF16'). */
  readonly dtype: string;
}

/** What llama.cpp's rules read from the model (llama_hparams, llama_model::type). */
export interface ModelInfo {
  /** general.architecture ('llama'); 'falcon' has rules of its own. */
  readonly arch: string;
  /** {arch}.block_count (hparams.n_layer_all): the n_layer of the ffn_* layer rules. */
  readonly nLayer: number;
  /** {arch}.attention.head_count of layer 0. */
  readonly nHead: number;
  /** {arch}.attention.head_count_kv of layer 0; defaults to nHead (no GQA). */
  readonly nHeadKv?: number;
  /** {arch}.expert_count; 0 or absent for dense models. */
  readonly nExpert?: number;
  /** llama.cpp's LLM_TYPE_70B (attn_v gets more bits); derived from arch and sizes if absent. */
  readonly is70B?: boolean;
}

export type PlanMode =
  /** llama-quantize's file type; `pure` = `--pure` (every quantizable tensor in its default type). */
  | { readonly preset: string; readonly pure?: boolean }
  /** `--type T`: every quantizable tensor in T (llama-quantize --pure with T's file type). */
  | { readonly type: string };

/** llama-quantize's `--tensor-type PATTERN=TYPE`: the first pattern that matches (regex search) wins. */
export interface TensorTypeOverride {
  readonly pattern: RegExp | string;
  readonly type: string;
}

export interface PlanOptions {
  /** An importance matrix will be given (llama.cpp's has_imatrix changes a few rules). */
  readonly hasImatrix?: boolean;
  /** `--output-tensor-type T`. */
  readonly outputTensorType?: string;
  /** `--token-embedding-type T`. */
  readonly tokenEmbeddingType?: string;
  /** `--leave-output-tensor`: output.weight is not quantized. */
  readonly leaveOutputTensor?: boolean;
}

export interface TensorPlan {
  readonly name: string;
  /** The type the tensor has now (ggml spelling). */
  readonly sourceType: string;
  /** The type llama-quantize writes (a type id of quant/types.ts, ggml spelling). */
  readonly type: string;
  /** Which rule chose the type, e.g. 'attn_v 2/4: use_more_bits -> q6_K; fallback: ...'. */
  readonly reason: string;
  /** llama.cpp's tensor_allows_quantization: the type rules apply (else the type is kept). */
  readonly quantized: boolean;
  /** The bytes change (type != sourceType); otherwise llama-quantize copies them as they are. */
  readonly converted: boolean;
  /** llama.cpp refuses to write this tensor without an importance matrix. */
  readonly requiresImatrix: boolean;
}

interface ResolvedMode {
  /** Name of the llama_ftype ('Q4_K_M', 'F32', ...). */
  readonly ftype: string;
  readonly fileType: number;
  readonly defaultType: GgmlTypeInfo;
  readonly pure: boolean;
}

/** The file type a mode stands for: its name, general.file_type and default type. */
export function resolveMode(mode: PlanMode): ResolvedMode {
  if ('type' in mode) {
    const ft = fileTypeForPureType(mode.type);
    if (!ft) throw new Error(`--type ${mode.type}: llama.cpp has no file type whose tensors are ${mode.type}`);
    return { ftype: ft.name, fileType: ft.fileType, defaultType: ggmlType(ft.defaultType), pure: true };
  }
  const preset = findPreset(mode.preset);
  if (!preset) throw new Error(`unknown preset ${mode.preset}${didYouMean(mode.preset, PRESETS.map((p) => p.name))} (one of ${PRESETS.map((p) => p.name).join(' ')})`);
  return { ftype: preset.name, fileType: preset.fileType, defaultType: ggmlType(preset.defaultType), pure: mode.pure ?? false };
}

function ggmlType(id: string): GgmlTypeInfo {
  const t = ggmlTypeByName(id);
  if (!t) throw new Error(`${id} is not a ggml type`);
  return t;
}

/** A target type given by the user: one that GGUF stores and quantlab can encode. */
function targetType(id: string, what: string): GgmlTypeInfo {
  const type = typeInfo(id);
  const t = type?.ggml;
  if (!type || !t || type.activationOnly) throw new Error(`${what}: ${id} is not a type quantlab can write to GGUF`);
  return t;
}

/** ggml_is_quantized: every block type (f32/f16/bf16 and the integers have blocks of 1). */
function isQuantized(t: GgmlTypeInfo): boolean {
  return t.blockSize > 1;
}

// --- tensor names ------------------------------------------------------------------

const BLK_PREFIX = /^blk\.[ \t\n\v\f\r]*([+-]?\d+)/;

/** sscanf(name, "blk.%d.", &layer): the layer, or undefined where sscanf assigns nothing. */
function scanLayer(name: string): number | undefined {
  const m = BLK_PREFIX.exec(name);
  return m ? Number.parseInt(m[1], 10) : undefined;
}

/** std::string operator< : byte order of the UTF-8 encoding (= code point order). */
function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done ? (y.done ? 0 : -1) : 1;
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

/** llama_model_loader::weight_name_comparer: by layer (non-blk tensors count as -1), then by name. */
export function compareTensorNames(a: string, b: string): number {
  const la = scanLayer(a) ?? -1;
  const lb = scanLayer(b) ?? -1;
  return la !== lb ? la - lb : compareCodePoints(a, b);
}

/** The order llama-quantize writes tensors in (that of the loader's weights_map). */
export function outputTensorOrder(names: readonly string[]): string[] {
  return [...names].sort(compareTensorNames);
}

type Category =
  | 'token_embd' | 'attn_q' | 'attn_v' | 'attn_k' | 'attn_qkv' | 'attn_kv_b' | 'attn_output'
  | 'ffn_up' | 'ffn_gate' | 'ffn_down' | 'output' | 'other';

/** tensor_get_category (substring tests, in llama.cpp's order). */
function categoryOf(name: string): Category {
  if (name === 'output.weight') return 'output';
  if (name === 'token_embd.weight' || name === 'per_layer_token_embd.weight') return 'token_embd';
  const bySubstring: [string, Category][] = [
    ['attn_qkv.weight', 'attn_qkv'], ['attn_kv_b.weight', 'attn_kv_b'], ['attn_v.weight', 'attn_v'],
    ['attn_k.weight', 'attn_k'], ['attn_q.weight', 'attn_q'], ['attn_output.weight', 'attn_output'],
    ['ffn_up', 'ffn_up'], ['ffn_gate', 'ffn_gate'], ['ffn_down', 'ffn_down'],
  ];
  return bySubstring.find(([s]) => name.includes(s))?.[1] ?? 'other';
}

function isAttnVLike(c: Category): boolean {
  return c === 'attn_v' || c === 'attn_qkv' || c === 'attn_kv_b';
}

// Substrings that keep a tensor out of quantization (tensor_allows_quantization).
const NOT_QUANTIZED_SUBSTRINGS: readonly [string, string][] = [
  ['_norm.weight', 'a norm'],
  ['ffn_gate_inp.weight', 'an expert gating tensor'],
  ['ffn_gate_tid2eid.weight', 'a token-id -> expert-id table'],
  ['altup', 'altup (tiny)'],
  ['laurel', 'laurel (tiny)'],
  ['per_layer_model_proj', 'per_layer_model_proj (small)'],
  ['ssm_conv1d', 'a Mamba conv1d weight'],
  ['shortconv.conv.weight', 'a short conv weight'],
  ['indexer.k_proj.weight', 'an indexer projection'],
  ['indexer.q_proj.weight', 'an indexer projection'],
  ...['first', 'w0', 'w1', 'w2', 'v0', 'v1', 'v2', 'a0', 'a1', 'a2', 'g1', 'g2', 'decay_w1', 'decay_w2', 'lerp_fused'].map(
    (s): [string, string] => [`time_mix_${s}.weight`, 'a small RWKV weight'],
  ),
  ['attn_rel_b.weight', 'a relative position bias'],
  ['.position_embd', 'a multimodal position embedding'],
  ['sam.pos_embd', 'a multimodal position embedding'],
  ['sam.neck.', 'a SAM neck tensor'],
  ['sam.net_', 'a SAM tensor'],
  ['.rel_pos', 'a relative position tensor'],
  ['.patch_embd', 'a patch embedding'],
  ['.patch_merger', 'a patch merger'],
  ['a.rvq.codebook', 'an audio codebook'],
  ['mm.a.code_embd', 'an audio codebook'],
];

/** ggml_n_dims: dimensions up to the last one above 1 (at least 1). */
function nDims(ne: readonly number[]): number {
  for (let i = ne.length - 1; i >= 1; i--) if (ne[i] > 1) return i + 1;
  return 1;
}

/** tensor_allows_quantization: null if allowed, else why not. */
function whyNotQuantized(name: string, ne: readonly number[], leaveOutput: boolean): string | null {
  if (nDims(ne) < 2) return '1-D';
  // name.rfind("weight") == name.size() - 6, including its size_t wrap-around for 5-char names.
  const endsInWeight = name.endsWith('weight') || (name.length === 5 && !name.includes('weight'));
  if (!endsInWeight) return "name does not end in 'weight'";
  for (const [s, what] of NOT_QUANTIZED_SUBSTRINGS.slice(0, 1)) if (name.includes(s)) return what;
  if (leaveOutput && name === 'output.weight') return 'output.weight left as is (--leave-output-tensor)';
  for (const [s, what] of NOT_QUANTIZED_SUBSTRINGS.slice(1)) if (name.includes(s)) return what;
  if (name === 'position_embd.weight' || name === 'token_types.weight') return 'a position/token-type embedding';
  return null;
}

// --- type selection ------------------------------------------------------------------

interface State {
  readonly model: Required<ModelInfo>;
  readonly mode: ResolvedMode;
  readonly options: PlanOptions;
  readonly overrides: readonly { regex: RegExp; type: GgmlTypeInfo; label: string }[];
  readonly tiedEmbeddings: boolean;
  readonly nAttentionWv: number;
  iAttentionWv: number;
  iFfnDown: number;
  iFfnGate: number;
  iFfnUp: number;
}

const T = (id: string) => ggmlType(id);

function useMoreBits(i: number, n: number): boolean {
  const n8 = Math.trunc(n / 8);
  return i < n8 || i >= Math.trunc((7 * n) / 8) || (i - n8) % 3 === 2;
}

function nGqa(m: Required<ModelInfo>): number {
  return m.nHeadKv === 0 ? 0 : Math.trunc(m.nHead / m.nHeadKv);
}

/** layer_info: the counter's layer, or (with experts) the layer in the name. */
function layerOf(s: State, counter: number, name: string): number {
  if (s.model.nExpert <= 1) return counter;
  const layer = scanLayer(name);
  if (layer === undefined) throw new Error(`Failed to determine layer for tensor ${name}`);
  if (layer < 0 || layer >= s.model.nLayer) throw new Error(`Bad layer ${layer} for tensor ${name}. Must be in [0, ${s.model.nLayer})`);
  return layer;
}

// The file types whose mixtures share one branch of llama_tensor_get_type_impl (the 1-2 bit i-quants).
const IQ1_IQ2_FTYPES: readonly string[] = ['IQ2_XXS', 'IQ2_XS', 'IQ1_S', 'IQ2_S', 'IQ2_M', 'IQ1_M'];
// Their output tensor is q5_K (IQ3_XXS's too), not q6_K.
const Q5K_OUTPUT_FTYPES: readonly string[] = ['IQ2_XXS', 'IQ2_XS', 'IQ3_XXS', 'IQ1_S', 'IQ2_S', 'IQ2_M', 'IQ1_M'];
// token_embd when it is not tied to the output.
const TOKEN_EMBD_TYPES: Readonly<Record<string, string>> = {
  IQ2_XXS: 'q2_K', IQ2_XS: 'q2_K', IQ1_S: 'q2_K', IQ1_M: 'q2_K', IQ2_S: 'iq3_s', IQ2_M: 'iq3_s', IQ3_XXS: 'iq3_s',
  TQ1_0: 'q4_K', TQ2_0: 'q4_K', Q2_0: 'q4_K',
};

/** llama_tensor_get_type_impl for the file types of PRESETS. Returns the type and why. */
function mixtureType(s: State, type: GgmlTypeInfo, name: string, ne: readonly number[], category: Category): [GgmlTypeInfo, string] {
  const ne0 = ne[0] ?? 1;
  const ftype = s.mode.ftype;
  const falcon = s.model.arch === 'falcon';
  const nExpert = s.model.nExpert;
  const gqa = nGqa(s.model);
  const keep = (why: string): [GgmlTypeInfo, string] => [type, why];

  if (category === 'output' || (s.tiedEmbeddings && category === 'token_embd')) {
    const what = category === 'output' ? 'output' : 'token_embd (tied to output)';
    if (s.options.outputTensorType !== undefined) {
      return [targetType(s.options.outputTensorType, '--output-tensor-type'), `${what}: --output-tensor-type`];
    }
    if (ftype === 'MXFP4_MOE') return [T('q8_0'), `${what}: MXFP4_MOE -> q8_0`];
    if (falcon) return [T('q8_0'), `${what}: falcon -> q8_0`];
    if (ne0 % type.blockSize !== 0) return [T('q8_0'), `${what}: row ${ne0} not a multiple of ${type.name}'s ${type.blockSize} -> q8_0`];
    if (Q5K_OUTPUT_FTYPES.includes(ftype)) return [T('q5_K'), `${what}: ${ftype} -> q5_K`];
    if (type.name !== 'q8_0') return [T('q6_K'), `${what} -> q6_K`];
    return keep(`${what}: ${ftype} default`);
  }
  if (ftype === 'MXFP4_MOE') {
    // Expert tensors (3-D) -> mxfp4, every other weight q8_0; bailingmoe3's MLA projections are 3-D too.
    const expertRole = category === 'ffn_up' || category === 'ffn_gate' || category === 'ffn_down';
    if ((ne[2] ?? 1) > 1 && (s.model.arch !== 'bailingmoe3' || expertRole)) return [T('mxfp4'), `${category}: MXFP4_MOE expert tensor -> mxfp4`];
    return [T('q8_0'), `${category === 'other' ? 'tensor' : category}: MXFP4_MOE, not an expert tensor -> q8_0`];
  }
  if (category === 'token_embd') {
    const to = TOKEN_EMBD_TYPES[ftype];
    return to ? [T(to), `token_embd: ${ftype} -> ${to}`] : keep(`token_embd: ${ftype} default`);
  }
  if (IQ1_IQ2_FTYPES.includes(ftype)) return iq1iq2Type(s, type, category);

  if (isAttnVLike(category)) {
    const i = s.iAttentionWv;
    const n = s.nAttentionWv;
    const at = `${category} #${i} of ${n}`;
    let t = type;
    let why = `${at}: ${ftype} default`;
    if (ftype === 'Q2_K') [t, why] = gqa >= 4 ? [T('q4_K'), `${at}: Q2_K with n_gqa ${gqa} >= 4 -> q4_K`] : [T('q3_K'), `${at}: Q2_K -> q3_K`];
    else if (ftype === 'Q2_K_S' && gqa >= 4) [t, why] = [T('q4_K'), `${at}: Q2_K_S with n_gqa ${gqa} >= 4 -> q4_K`];
    else if (ftype === 'IQ3_XXS') {
      [t, why] = gqa >= 4 ? [T('q4_K'), `${at}: IQ3_XXS with n_gqa ${gqa} >= 4 -> q4_K`]
        : !s.options.hasImatrix ? [T('iq3_s'), `${at}: IQ3_XXS without imatrix -> iq3_s`]
        : [T('iq3_xxs'), `${at}: IQ3_XXS with imatrix -> iq3_xxs`];
    } else if ((ftype === 'IQ3_XS' || ftype === 'IQ3_S') && gqa >= 4) [t, why] = [T('q4_K'), `${at}: ${ftype} with n_gqa ${gqa} >= 4 -> q4_K`];
    else if (ftype === 'IQ3_M') [t, why] = [T('q4_K'), `${at}: IQ3_M -> q4_K`];
    else if (ftype === 'Q3_K_M') [t, why] = i < 2 ? [T('q5_K'), `${at}: Q3_K_M, first 2 -> q5_K`] : [T('q4_K'), `${at}: Q3_K_M -> q4_K`];
    else if (ftype === 'Q3_K_L') [t, why] = [T('q5_K'), `${at}: Q3_K_L -> q5_K`];
    else if ((ftype === 'IQ4_NL' || ftype === 'IQ4_XS') && gqa >= 4) [t, why] = [T('q5_K'), `${at}: ${ftype} with n_gqa ${gqa} >= 4 -> q5_K`];
    else if ((ftype === 'Q4_K_M' || ftype === 'Q5_K_M') && useMoreBits(i, n)) [t, why] = [T('q6_K'), `${at}: use_more_bits -> q6_K`];
    else if (ftype === 'Q4_K_S' && i < 4) [t, why] = [T('q5_K'), `${at}: Q4_K_S, first 4 -> q5_K`];
    if (s.model.is70B && (t.name === 'q3_K' || t.name === 'q4_K')) [t, why] = [T('q5_K'), `${why}; 70B -> q5_K`];
    if (nExpert === 8) [t, why] = [T('q8_0'), `${at}: 8 experts -> q8_0`];
    s.iAttentionWv++;
    return [t, why];
  }
  if (category === 'attn_k' || category === 'attn_q') {
    if (category === 'attn_k' && nExpert === 8) return [T('q8_0'), 'attn_k: 8 experts -> q8_0'];
    if (ftype === 'IQ3_XS') return [T('iq3_xxs'), `${category}: IQ3_XS -> iq3_xxs`];
    if (ftype === 'IQ3_XXS') return [T('iq2_s'), `${category}: IQ3_XXS -> iq2_s`];
    return keep(`${category}: ${ftype} default`);
  }

  if (category === 'ffn_down') {
    const i = layerOf(s, s.iFfnDown, name);
    const n = s.model.nLayer;
    const at = `ffn_down layer ${i} of ${n}`;
    const n8 = Math.trunc(n / 8);
    let r: [GgmlTypeInfo, string] = keep(`${at}: ${ftype} default`);
    if (ftype === 'Q2_K') r = [T('q3_K'), `${at}: Q2_K -> q3_K`];
    else if (ftype === 'Q2_K_S') {
      if (i < n8) r = [T('q4_K'), `${at}: Q2_K_S, first n_layer/8 -> q4_K`];
    } else if (ftype === 'IQ3_XXS' && !s.options.hasImatrix) {
      r = i < n8 ? [T('q4_K'), `${at}: IQ3_XXS without imatrix, first n_layer/8 -> q4_K`] : [T('q3_K'), `${at}: IQ3_XXS without imatrix -> q3_K`];
    } else if (ftype === 'Q3_K_M') {
      r = i < Math.trunc(n / 16) ? [T('q5_K'), `${at}: Q3_K_M, first n_layer/16 -> q5_K`]
        : !falcon || useMoreBits(i, n) ? [T('q4_K'), `${at}: Q3_K_M -> q4_K`]
        : [T('q3_K'), `${at}: Q3_K_M falcon -> q3_K`];
    } else if (ftype === 'IQ3_M' && (i < n8 || (nExpert === 8 && useMoreBits(i, n)))) {
      r = [T('q4_K'), `${at}: IQ3_M, ${i < n8 ? 'first n_layer/8' : '8 experts, use_more_bits'} -> q4_K`];
    } else if (ftype === 'Q3_K_L') {
      r = falcon ? [T('q4_K'), `${at}: Q3_K_L falcon -> q4_K`] : [T('q5_K'), `${at}: Q3_K_L -> q5_K`];
    } else if (ftype === 'Q4_K_M') {
      if (falcon) {
        r = i < Math.trunc(n / 16) ? [T('q6_K'), `${at}: Q4_K_M falcon, first n_layer/16 -> q6_K`]
          : useMoreBits(i, n) ? [T('q5_K'), `${at}: Q4_K_M falcon, use_more_bits -> q5_K`]
          : [T('q4_K'), `${at}: Q4_K_M falcon -> q4_K`];
      } else if (useMoreBits(i, n)) r = [T('q6_K'), `${at}: use_more_bits -> q6_K`];
    } else if (i < n8 && (ftype === 'IQ4_NL' || ftype === 'IQ4_XS') && !s.options.hasImatrix) {
      r = [T('q5_K'), `${at}: ${ftype} without imatrix, first n_layer/8 -> q5_K`];
    } else if (ftype === 'Q5_K_M' && useMoreBits(i, n)) r = [T('q6_K'), `${at}: use_more_bits -> q6_K`];
    else if (ftype === 'Q4_K_S' && !falcon && i < n8) r = [T('q5_K'), `${at}: Q4_K_S, first n_layer/8 -> q5_K`];
    else if ((ftype === 'Q4_0' || ftype === 'Q5_0') && s.options.hasImatrix && i < n8) {
      const t = ftype === 'Q4_0' ? 'q4_1' : 'q5_1';
      r = [T(t), `${at}: ${ftype} with imatrix, first n_layer/8 -> ${t}`];
    }
    s.iFfnDown++;
    return r;
  }

  if (category === 'attn_output') {
    const hit = (why: string, t: string): [GgmlTypeInfo, string] => [T(t), `attn_output: ${why} -> ${t}`];
    if (!falcon) {
      if (nExpert === 8) {
        const q5k = ['Q2_K', 'IQ3_XS', 'IQ3_XXS', 'Q3_K_S', 'Q3_K_M', 'IQ4_NL', 'Q4_K_S', 'Q4_K_M', 'IQ3_S', 'IQ3_M', 'IQ4_XS'];
        if (q5k.includes(ftype)) return hit(`${ftype} with 8 experts`, 'q5_K');
      } else if (ftype === 'Q2_K') return hit('Q2_K', 'q3_K');
      else if (ftype === 'IQ3_XXS') return hit('IQ3_XXS', 'iq3_s');
      else if (ftype === 'Q3_K_M') return hit('Q3_K_M', 'q4_K');
      else if (ftype === 'Q3_K_L') return hit('Q3_K_L', 'q5_K');
      else if (ftype === 'IQ3_M') return hit('IQ3_M', 'q4_K');
    } else if (ftype === 'Q3_K_L') return hit('Q3_K_L falcon', 'q4_K');
    return keep(`attn_output: ${ftype} default`);
  }

  // ffn_gate / ffn_up: only IQ3_XS has rules; the counters still run (and layer_info can throw).
  if (category === 'ffn_gate' || category === 'ffn_up') {
    const i = layerOf(s, category === 'ffn_gate' ? s.iFfnGate : s.iFfnUp, name);
    if (category === 'ffn_gate') s.iFfnGate++;
    else s.iFfnUp++;
    const n = s.model.nLayer;
    if (ftype === 'IQ3_XS' && i >= Math.trunc(n / 8) && i < Math.trunc((7 * n) / 8)) {
      return [T('iq3_xxs'), `${category} layer ${i} of ${n}: IQ3_XS, middle layers -> iq3_xxs`];
    }
  }
  return keep(`${category === 'other' ? 'tensor' : category}: ${ftype} default`);
}

/** The IQ1_S/IQ1_M/IQ2_* branch of llama_tensor_get_type_impl (no 70B or 8-expert attn_v rules there). */
function iq1iq2Type(s: State, type: GgmlTypeInfo, category: Category): [GgmlTypeInfo, string] {
  const ftype = s.mode.ftype;
  const { nExpert } = s.model;
  const gqa = nGqa(s.model);
  // IQ2_S and IQ2_M protect with iq3_s, the others with q2_K.
  const guard = ftype === 'IQ2_S' || ftype === 'IQ2_M' ? 'iq3_s' : 'q2_K';
  if (isAttnVLike(category)) {
    const at = `${category} #${s.iAttentionWv} of ${s.nAttentionWv}`;
    s.iAttentionWv++;
    if (gqa >= 4 || nExpert >= 4) return [T('q4_K'), `${at}: ${ftype} with n_gqa ${gqa} / ${nExpert} experts (one >= 4) -> q4_K`];
    return [T(guard), `${at}: ${ftype} -> ${guard}`];
  }
  if (nExpert === 8 && category === 'attn_k') return [T('q4_K'), `attn_k: ${ftype} with 8 experts -> q4_K`];
  if (category === 'ffn_down') {
    // The counter, not the layer in the name (this branch has no layer_info).
    const i = s.iFfnDown++;
    const n = s.model.nLayer;
    const at = `ffn_down #${i} of ${n}`;
    return i < Math.trunc(n / 8) ? [T(guard), `${at}: ${ftype}, first n_layer/8 -> ${guard}`] : [type, `${at}: ${ftype} default`];
  }
  if (category === 'attn_output') {
    if (nExpert === 8) return [T('q5_K'), `attn_output: ${ftype} with 8 experts -> q5_K`];
    if (ftype === 'IQ1_S' || ftype === 'IQ1_M') return [T('iq2_xxs'), `attn_output: ${ftype} -> iq2_xxs`];
    if (ftype === 'IQ2_S' || ftype === 'IQ2_M') return [T('iq3_s'), `attn_output: ${ftype} -> iq3_s`];
  }
  return [type, `${category === 'other' ? 'tensor' : category}: ${ftype} default`];
}

/** tensor_type_fallback: a type whose blocks divide the row, and why. */
function fallback(type: GgmlTypeInfo, ne0: number): [GgmlTypeInfo, string | null] {
  if (ne0 % type.blockSize === 0) return [type, null];
  const next: Record<string, string> = {
    iq1_s: 'iq4_nl', iq1_m: 'iq4_nl', iq2_xxs: 'iq4_nl', iq2_xs: 'iq4_nl', iq2_s: 'iq4_nl', iq3_xxs: 'iq4_nl',
    iq3_s: 'iq4_nl', iq4_xs: 'iq4_nl',
    q2_0: 'q4_0', q2_K: 'q4_0', q3_K: 'q4_0', tq1_0: 'q4_0', tq2_0: 'q4_0',
    q4_K: 'q5_0', q5_K: 'q5_1', q6_K: 'q8_0',
  };
  let to: GgmlTypeInfo;
  if (next[type.name]) to = T(next[type.name]);
  else if (type.blockSize <= 32) to = type; // already a 32-block type: the check below makes it f16
  else throw new Error(`no tensor type fallback is defined for type ${type.name}`);
  let why = `fallback: row ${ne0} not a multiple of ${type.blockSize} (${type.name})`;
  if (to !== type) why += ` -> ${to.name}`;
  if (ne0 % to.blockSize !== 0) {
    why += to !== type ? `, not a multiple of ${to.blockSize} either -> f16` : ' -> f16';
    to = T('f16');
  }
  return [to, why];
}

/** tensor_requires_imatrix. */
function requiresImatrix(name: string, type: GgmlTypeInfo, ftype: string): boolean {
  if (categoryOf(name) === 'token_embd' || name === 'output.weight') return false;
  if (['iq3_xxs', 'iq2_xxs', 'iq2_xs', 'iq2_s', 'iq1_m', 'iq1_s'].includes(type.name)) return true;
  return type.name === 'q2_K' && ftype === 'Q2_K_S';
}

/** llama_tensor_get_type for one quantizable tensor. */
function planType(s: State, name: string, ne: readonly number[], category: Category): [GgmlTypeInfo, string] {
  const ne0 = ne[0] ?? 1;
  const { mode, options } = s;
  if (options.tokenEmbeddingType !== undefined && category === 'token_embd') {
    // per_layer_token_embd may still be named by a --tensor-type pattern.
    const named = name === 'per_layer_token_embd.weight' && s.overrides.some((o) => o.regex.test(name));
    if (!named) return [targetType(options.tokenEmbeddingType, '--token-embedding-type'), 'token_embd: --token-embedding-type'];
  }
  if (options.outputTensorType !== undefined && category === 'output') {
    return [targetType(options.outputTensorType, '--output-tensor-type'), 'output: --output-tensor-type'];
  }
  let type = mode.defaultType;
  if (!isQuantized(type)) {
    const ignored = s.overrides.some((o) => o.regex.test(name)) ? ' (llama.cpp applies --tensor-type only to quantized file types)' : '';
    return [type, `${mode.ftype}${mode.pure ? ' --pure' : ''} -> ${type.name}${ignored}`];
  }
  let why: string;
  const manual = s.overrides.find((o) => o.regex.test(name));
  if (manual) {
    type = manual.type;
    why = `--tensor-type ${manual.label} -> ${type.name}`;
  } else if (mode.pure) {
    why = `${mode.ftype} --pure -> ${type.name}`;
  } else {
    [type, why] = mixtureType(s, type, name, ne, category);
  }
  const [final, fellBack] = fallback(type, ne0);
  return [final, fellBack ? `${why}; ${fellBack}` : why];
}

function fullModelInfo(m: ModelInfo): Required<ModelInfo> {
  const nHeadKv = m.nHeadKv ?? m.nHead;
  const nExpert = m.nExpert ?? 0;
  return { arch: m.arch, nLayer: m.nLayer, nHead: m.nHead, nHeadKv, nExpert, is70B: m.is70B ?? is70B(m.arch, m.nLayer, m.nHead, nHeadKv, nExpert) };
}

/** llama.cpp's LLM_TYPE_70B, as the pinned src/models/{llama,qwen2,deci,olmo,jais2}.cpp set it. */
export function is70B(arch: string, nLayer: number, nHead: number, nHeadKv: number, nExpert = 0): boolean {
  if (arch === 'llama') return nExpert !== 8 && nLayer === 80 && nHead !== nHeadKv;
  if (arch === 'qwen2' || arch === 'deci' || arch === 'olmo') return nLayer === 80;
  if (arch === 'jais2') return nLayer === 68;
  return false;
}

function toRegExp(p: RegExp | string): RegExp {
  // test() on a /g or /y regex is stateful; std::regex_search is not.
  return typeof p === 'string' ? new RegExp(p) : new RegExp(p.source, p.flags.replace(/[gy]/g, ''));
}

/**
 * The type llama-quantize gives every tensor, with the rule that chose it, in the order
 * llama-quantize writes them (outputTensorOrder). Throws where llama.cpp would fail
 * (an unknown preset, a type without a fallback, an expert tensor without a layer).
 */
export function planQuantization(
  tensors: readonly PlanTensorInput[],
  model: ModelInfo,
  mode: PlanMode,
  overrides: readonly TensorTypeOverride[] = [],
  options: PlanOptions = {},
): TensorPlan[] {
  const resolved = resolveMode(mode);
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`invalid model: tensor '${t.name}' is duplicated`);
    names.add(t.name);
  }
  const ordered = [...tensors].sort((a, b) => compareTensorNames(a.name, b.name));
  const categories = ordered.map((t) => categoryOf(t.name));
  const s: State = {
    model: fullModelInfo(model),
    mode: resolved,
    options,
    overrides: overrides.map((o) => ({
      regex: toRegExp(o.pattern),
      type: targetType(o.type, `--tensor-type ${String(o.pattern)}`),
      label: `${typeof o.pattern === 'string' ? o.pattern : o.pattern.source}=${o.type}`,
    })),
    tiedEmbeddings: !categories.includes('output'),
    nAttentionWv: categories.filter(isAttnVLike).length,
    iAttentionWv: 0,
    iFfnDown: 0,
    iFfnGate: 0,
    iFfnUp: 0,
  };
  return ordered.map((t, i): TensorPlan => {
    const source = ggmlTypeByName(t.dtype);
    if (!source) throw new Error(`tensor ${t.name}: dtype ${t.dtype} is not a ggml type`);
    const ne = t.shape.map(Number).reverse();
    const notWhy = whyNotQuantized(t.name, ne, options.leaveOutputTensor ?? false);
    if (notWhy !== null) {
      return {
        name: t.name, sourceType: source.name, type: source.name, reason: `not quantized: ${notWhy}`,
        quantized: false, converted: false, requiresImatrix: false,
      };
    }
    const [type, reason] = planType(s, t.name, ne, categories[i]);
    return {
      name: t.name, sourceType: source.name, type: type.name, reason, quantized: true,
      converted: type.name !== source.name, requiresImatrix: requiresImatrix(t.name, type, resolved.ftype),
    };
  });
}

/** llama-quantize's `--tensor-type NAME=TYPE` argument: the name is lower-cased, as llama-quantize does. */
export function parseTensorTypeOverride(arg: string): TensorTypeOverride {
  const sep = arg.indexOf('=');
  if (sep < 0) throw new Error(`--tensor-type ${arg}: expected PATTERN=TYPE`);
  if (sep === 0) throw new Error(`--tensor-type ${arg}: missing tensor name`);
  const type = arg.slice(sep + 1);
  if (type === '') throw new Error(`--tensor-type ${arg}: missing quantization type`);
  targetType(type, `--tensor-type ${arg}`);
  return { pattern: arg.slice(0, sep).toLowerCase(), type: typeInfo(type)!.id };
}

function scalar(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (ArrayBuffer.isView(v) || Array.isArray(v)) return scalar((v as ArrayLike<unknown>)[0]);
  return undefined;
}

/** ModelInfo from GGUF metadata as a plain object (formats/gguf/metadata.ts metadataToObject). */
export function modelInfoFromMetadata(metadata: Readonly<Record<string, unknown>>): ModelInfo {
  const arch = metadata['general.architecture'];
  if (typeof arch !== 'string') throw new Error('general.architecture is missing');
  const key = (k: string) => scalar(metadata[`${arch}.${k}`]);
  const nLayer = key('block_count');
  if (nLayer === undefined) throw new Error(`${arch}.block_count is missing`);
  const nHead = key('attention.head_count') ?? 0;
  return { arch, nLayer, nHead, nHeadKv: key('attention.head_count_kv') ?? nHead, nExpert: key('expert_count') ?? 0 };
}
