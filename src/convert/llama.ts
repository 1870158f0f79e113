// Hugging Face safetensors (+ config.json, tokenizer.model) -> a GGUF source model, as
// llama.cpp's convert_hf_to_gguf.py does it (conversion/llama.py LlamaModel, on top of
// conversion/base.py TextModel/ModelBase; names from gguf-py tensor_mapping.py, keys
// from gguf-py constants.py). Llama-family models (LlamaForCausalLM, MistralForCausalLM)
// get llama.cpp's tensor names, its q/k row permutation, its hyperparameter keys and the
// SentencePiece vocabulary, so the file runs in llama.cpp. Anything else is written
// weights-only under its own tensor names, with a warning saying so.
//
// Deliberate differences from the script, each small:
// - outtype 'auto' keeps F32 weights F32 (the script's auto makes them F16); BF16 and
//   F16 sources give bf16 / f16 as the script's auto does.
// - general.name is the option, else config's _name_or_path, else the file name (the
//   script uses the model directory's name and its README); no size label or other
//   model-card keys are written.
// - special token ids fall back to tokenizer.model's, add_bos/add_eos are always
//   written, and add_space_prefix=false when SentencePiece adds no dummy prefix (vocab.ts).

import { F32_DECODERS } from '../formats/decode.ts';
import { FormatError } from '../formats/errors.ts';
import { GGML_TYPE, GGUF_VALUE_TYPE, type GgufValueType } from '../formats/gguf/constants.ts';
import { type GgufMetadataEntry, ggufEntry } from '../formats/gguf/metadata.ts';
import { MAX_ARRAY_LENGTH, MAX_DIMS, MAX_TENSOR_NAME_BYTES } from '../formats/limits.ts';
import { type ModelIndex, type ModelTensor, readTensorF32 } from '../formats/model.ts';
import { readJsonFile } from '../formats/safetensors.ts';
import {
  type HfConfig,
  configError,
  hfConfigOf,
  optionalBoolean,
  optionalCount,
  optionalNumber,
  optionalObject,
  requiredCount,
  stringList,
} from './config.ts';
import { type SentencePieceModel, readSentencePieceModel } from './sentencepiece.ts';
import { type GgufSourceModel, type GgufSourceTensor, type UnquantizedGgmlType, encodeUnquantized } from './source-model.ts';
import { type TokenizerSideFiles, sentencePieceVocabEntries } from './vocab.ts';
import { type HfTokenizerConverter, bpeVocabulary } from './hf-vocab.ts';
import { COMMON_BLOCK_NAMES } from './families/family.ts';

/** convert_hf_to_gguf.py --outtype for an unquantized conversion. */
export type ConvertOuttype = 'auto' | 'f32' | 'f16' | 'bf16';

export interface ConvertOptions {
  /** Default 'auto': BF16 weights -> bf16, F16 -> f16, anything else -> f32. */
  readonly outtype?: ConvertOuttype;
  /** general.name. */
  readonly name?: string;
  /**
   * tokenizer.json -> tokenizer.* entries (src/model/tokenizer-hf.ts hfTokenizerToGguf),
   * for checkpoints without tokenizer.model (Llama 3, Qwen): it lives above this layer.
   */
  readonly hfTokenizer?: HfTokenizerConverter;
}

/** hf architectures that conversion/llama.py's LlamaModel converts with no extra steps. */
const LLAMA_ARCHITECTURES = new Set(['LlamaForCausalLM', 'LLaMAForCausalLM', 'MistralForCausalLM', 'LlamaModel']);
const LLAMA_MODEL_TYPES = new Set(['llama', 'mistral']);

/** gguf-py GGML_QUANT_VERSION, written into every file. */
const GGML_QUANT_VERSION = 2;

/** llama_ftype (general.file_type) of an unquantized file. */
const FILE_TYPE: Readonly<Record<UnquantizedGgmlType, number>> = {
  [GGML_TYPE.F32]: 0, // ALL_F32
  [GGML_TYPE.F16]: 1, // MOSTLY_F16
  [GGML_TYPE.BF16]: 32, // MOSTLY_BF16
};

const OUTTYPE_GGML: Readonly<Record<Exclude<ConvertOuttype, 'auto'>, UnquantizedGgmlType>> = {
  f32: GGML_TYPE.F32, f16: GGML_TYPE.F16, bf16: GGML_TYPE.BF16,
};

/**
 * Converts a safetensors model. Llama-family models come out runnable in llama.cpp (when a
 * tokenizer.model is among the files); other architectures come out weights-only with a
 * warning. Throws FormatError for a config or tensor set that cannot be converted.
 */
export async function convertHfLlama(model: ModelIndex, options: ConvertOptions = {}): Promise<GgufSourceModel> {
  if (model.format !== 'safetensors') throw new Error(`convertHfLlama converts safetensors models, not ${model.format}`);
  const config = hfConfigOf(model);
  if (config) refuseQuantizedCheckpoint(config);
  return config && isLlamaFamily(config) ? convertLlama(model, config, options) : convertWeightsOnly(model, config, options);
}

export function isLlamaFamily(config: HfConfig): boolean {
  const [architecture] = stringList(config, 'architectures');
  if (architecture !== undefined) return LLAMA_ARCHITECTURES.has(architecture);
  return LLAMA_MODEL_TYPES.has(String(config.values.model_type));
}

function refuseQuantizedCheckpoint(config: HfConfig): void {
  const quantization = config.values.quantization_config;
  if (quantization && typeof quantization === 'object') {
    const method = (quantization as Record<string, unknown>).quant_method;
    throw configError(config, `the checkpoint is already quantized (quant_method ${JSON.stringify(method ?? 'unknown')}); convert its unquantized weights`);
  }
}

// ---- Llama ------------------------------------------------------------------------

/** The hyperparameters convert_hf_to_gguf.py reads for a Llama (base.py find_hparam lists). */
export interface LlamaHparams {
  readonly blockCount: number;
  readonly contextLength?: number;
  readonly embeddingLength: number;
  readonly feedForwardLength?: number;
  readonly headCount: number;
  /** As written (absent when config.json has none). */
  readonly headCountKv?: number;
  readonly ropeTheta?: number;
  readonly rmsNormEps?: number;
  readonly headDim?: number;
  readonly ropeDimensionCount: number;
  readonly vocabSize?: number;
  readonly tieWordEmbeddings: boolean;
  readonly ropeScaling?: Readonly<Record<string, unknown>>;
}

export function readLlamaHparams(config: HfConfig): LlamaHparams {
  const embeddingLength = requiredCount(config, ['hidden_size', 'n_embd', 'dim']);
  const headCount = requiredCount(config, ['num_attention_heads', 'n_head', 'n_heads']);
  const headDim = optionalCount(config, ['head_dim']);
  const ropeDimensionCount = headDim ?? embeddingLength / headCount;
  if (!Number.isInteger(ropeDimensionCount)) {
    throw configError(config, `hidden_size ${embeddingLength} is not a multiple of num_attention_heads ${headCount} (and there is no head_dim)`);
  }
  const vocabSize = optionalCount(config, ['vocab_size']);
  // The vocabulary is built as arrays of this length: bound it as the GGUF reader does.
  if (vocabSize !== undefined && vocabSize > MAX_ARRAY_LENGTH) throw configError(config, `vocab_size ${vocabSize} is above the limit of ${MAX_ARRAY_LENGTH}`);
  const ropeScaling = fullAttentionRope(optionalObject(config, ['rope_parameters', 'rope_scaling']));
  return {
    blockCount: requiredCount(config, ['n_layers', 'num_hidden_layers', 'n_layer', 'num_layers']),
    contextLength: optionalCount(config, ['max_position_embeddings', 'n_ctx', 'n_positions', 'max_length', 'max_sequence_length', 'model_max_length']),
    embeddingLength,
    feedForwardLength: optionalCount(config, ['prefix_dense_intermediate_size', 'dense_intermediate_size', 'intermediate_size', 'n_inner', 'hidden_dim']),
    headCount,
    headCountKv: optionalCount(config, ['num_key_value_heads', 'n_kv_heads']),
    // transformers 5 moves rope_theta into rope_parameters.
    ropeTheta: optionalNumber(config, ['global_rope_theta', 'rope_global_theta', 'rope_theta_global', 'rope_theta', 'rotary_emb_base']) ??
      (typeof ropeScaling?.rope_theta === 'number' ? ropeScaling.rope_theta : undefined),
    rmsNormEps: optionalNumber(config, ['rms_norm_eps', 'norm_eps']),
    headDim,
    ropeDimensionCount,
    vocabSize,
    tieWordEmbeddings: optionalBoolean(config, 'tie_word_embeddings') ?? false,
    ropeScaling,
  };
}

/** transformers 5 may key rope parameters by layer type; the script reads full attention's. */
function fullAttentionRope(rope: Readonly<Record<string, unknown>> | undefined): Readonly<Record<string, unknown>> | undefined {
  const full = rope?.full_attention;
  return typeof full === 'object' && full !== null ? (full as Record<string, unknown>) : rope;
}

async function convertLlama(model: ModelIndex, config: HfConfig, options: ConvertOptions): Promise<GgufSourceModel> {
  const hparams = readLlamaHparams(config);
  const warnings: string[] = [];
  const prefixNames = stringList(config, 'architectures')[0] === 'LlamaModel'; // a bare model: names lack "model."
  const planned = orderedTensors(model)
    .filter((t) => !isDroppedTensor(t.name))
    .filter((t) => !(hparams.tieWordEmbeddings && t.name === 'lm_head.weight')) // llama.cpp reuses token_embd
    .map((t) => ({ tensor: t, ggufName: llamaTensorName(prefixNames ? `model.${t.name}` : t.name, hparams.blockCount) ?? unmappable(t) }));
  const fileType = resolveOuttype(options.outtype ?? 'auto', planned.map((p) => p.tensor));
  const tensors = planned.map(({ tensor, ggufName }) => llamaSourceTensor(model, config, hparams, tensor, ggufName, fileType));

  const ropeFreqs = llama3RopeFreqs(config, hparams);
  if (ropeFreqs) tensors.unshift(ropeFreqsSource(ropeFreqs)); // generate_extra_tensors come first

  const tokenizer = await readTokenizer(model);
  let vocabEntries: GgufMetadataEntry[] = [];
  const bpe = tokenizer ? null : await bpeVocabulary(model, config, hparams.vocabSize, options.hfTokenizer);
  let runnable = tokenizer !== null || bpe !== null;
  if (bpe) {
    vocabEntries = bpe.entries;
    const embeddingRows = tensors.find((t) => t.name === 'token_embd.weight')?.shape[0];
    if (embeddingRows !== undefined && bpe.tokenCount > embeddingRows) {
      throw new FormatError(bpe.file, 0, `the vocabulary has ${bpe.tokenCount} tokens but token_embd only ${embeddingRows} rows (config.json vocab_size ${hparams.vocabSize ?? 'unset'}): tokenizer and weights do not belong together`);
    }
    if (embeddingRows !== undefined && bpe.tokenCount !== embeddingRows) {
      throw configError(config, `vocab_size makes the vocabulary ${bpe.tokenCount} tokens, but token_embd has ${embeddingRows} rows: llama.cpp would refuse the file`);
    }
  } else if (tokenizer) {
    const vocabSize = hparams.vocabSize ?? tokenizer.pieces.length; // as _create_vocab_sentencepiece
    vocabEntries = sentencePieceVocabEntries(tokenizer, config, vocabSize, await readTokenizerSideFiles(model), warnings);
    const embeddingRows = tensors.find((t) => t.name === 'token_embd.weight')?.shape[0];
    if (embeddingRows !== undefined && embeddingRows !== vocabSize) {
      runnable = false;
      warnings.push(`the vocabulary has ${vocabSize} tokens but token_embd ${embeddingRows} rows: llama.cpp will refuse the file`);
    }
  } else {
    warnings.push('no tokenizer.model (or tokenizer.json) was given: the GGUF has no vocabulary, and llama.cpp will not load it without one');
  }
  warnings.push(...ropeWarnings(hparams));
  return {
    architecture: 'llama',
    metadata: [...llamaMetadata(hparams, fileType, modelName(model, config, options)), ...vocabEntries],
    tensors,
    runnable,
    warnings,
  };
}

/** What convert_hf_to_gguf.py drops (base.py prepare_tensors "we don't need these"). */
export function isDroppedTensor(name: string): boolean {
  return name.endsWith('.attention.masked_bias') || name.endsWith('.attention.bias') || name.endsWith('.rotary_emb.inv_freq');
}

// gguf-py tensor_mapping.py, the Llama rows: HF module -> llama.cpp name.
const GLOBAL_NAMES: ReadonlyMap<string, string> = new Map([
  ['model.embed_tokens', 'token_embd'],
  ['model.norm', 'output_norm'],
  ['lm_head', 'output'],
]);
const BLOCK_PATTERN = /^model\.layers\.(\d+)\.(.+)$/;

/** llama.cpp's name for an HF Llama tensor (with its .weight / .bias), or null. */
export function llamaTensorName(hfName: string, blockCount: number): string | null {
  const suffix = ['.weight', '.bias'].find((s) => hfName.endsWith(s));
  if (!suffix) return null;
  const module = hfName.slice(0, -suffix.length);
  const global = GLOBAL_NAMES.get(module);
  if (global) return global + suffix;
  const match = BLOCK_PATTERN.exec(module);
  if (!match) return null;
  const block = Number(match[1]);
  const name = COMMON_BLOCK_NAMES.get(match[2]);
  // gguf-py builds its map for blocks 0 .. block_count - 1 only.
  return name && block < blockCount ? `blk.${block}.${name}${suffix}` : null;
}

function unmappable(tensor: ModelTensor): never {
  throw new FormatError(tensor.file, tensor.offset, `cannot map tensor '${tensor.name}' to a llama.cpp name`);
}

function llamaSourceTensor(
  model: ModelIndex,
  config: HfConfig,
  hparams: LlamaHparams,
  tensor: ModelTensor,
  ggufName: string,
  fileType: UnquantizedGgmlType,
): GgufSourceTensor {
  checkConvertible(tensor, ggufName);
  const shape = tensor.shape.length ? tensor.shape : [1];
  const heads = permutationHeads(tensor.name, hparams);
  if (heads !== undefined) checkPermutable(config, tensor, heads);
  const readF32 = async () => {
    const values = await readTensorF32(model, tensor);
    return heads === undefined ? values : permuteQkRows(values, shape[0], heads);
  };
  const ggmlType = outputType(ggufName, shape, fileType);
  return {
    name: ggufName, sourceName: tensor.name, ggmlType, shape, readF32,
    readBytes: async () => encodeUnquantized(await readF32(), ggmlType),
    readRowsF32: (first, count) => readRowsF32(model, tensor, shape, heads, first, count),
  };
}

/**
 * Rows of a tensor as the GGUF holds them. The q/k permutation moves rows only within a
 * head (2 x half rows), so the heads that hold the rows are read, permuted, and cut.
 */
async function readRowsF32(model: ModelIndex, tensor: ModelTensor, shape: readonly number[], heads: number | undefined, first: number, count: number): Promise<Float32Array> {
  const cols = shape.length > 1 ? shape[shape.length - 1] : (shape[0] ?? 1);
  const rows = (n: number) => ({ elementOffset: n * cols });
  if (heads === undefined || shape.length < 2) {
    if (heads !== undefined) return (await readTensorF32(model, tensor).then((v) => permuteQkRows(v, shape[0], heads))).subarray(first * cols, (first + count) * cols);
    return readTensorF32(model, tensor, { ...rows(first), elementCount: count * cols });
  }
  const perHead = shape[0] / heads;
  const h0 = Math.floor(first / perHead);
  const h1 = Math.ceil((first + count) / perHead);
  const values = await readTensorF32(model, tensor, { ...rows(h0 * perHead), elementCount: (h1 - h0) * perHead * cols });
  const start = first - h0 * perHead;
  return permuteQkRows(values, (h1 - h0) * perHead, h1 - h0).subarray(start * cols, (start + count) * cols);
}

/** Heads to permute q/k rows by (LlamaModel.modify_tensors: n_head for q, n_kv_head for k). */
function permutationHeads(hfName: string, hparams: LlamaHparams): number | undefined {
  if (/q_proj\.(weight|bias)$/.test(hfName)) return hparams.headCount;
  if (/k_proj\.(weight|bias)$/.test(hfName)) return hparams.headCountKv ?? hparams.headCount;
  return undefined;
}

function checkPermutable(config: HfConfig, tensor: ModelTensor, heads: number): void {
  const rows = tensor.shape[0] ?? 1;
  if (rows % (2 * heads) !== 0) {
    throw configError(config, `tensor '${tensor.name}' has ${rows} rows, which ${heads} heads of rotary pairs do not divide (check num_attention_heads / num_key_value_heads)`);
  }
}

/**
 * llama.cpp's q/k row order (convert_hf_to_gguf.py LlamaModel.permute):
 * w.reshape(n_head, 2, rows / n_head / 2, ...).swapaxes(1, 2).reshape(w.shape).
 * HF keeps each head's rotary pairs as two halves (rotate_half); llama.cpp's rope wants
 * them side by side, so GGUF row h*2*half + 2*i + s is HF row h*2*half + s*half + i.
 */
export function permuteQkRows(values: Float32Array, rows: number, nHead: number): Float32Array {
  const cols = values.length / rows;
  const half = rows / nHead / 2;
  if (!Number.isInteger(cols) || !Number.isInteger(half)) throw new Error(`cannot permute ${rows} rows for ${nHead} heads`);
  const out = new Float32Array(values.length);
  for (let h = 0; h < nHead; h++) {
    for (let i = 0; i < half; i++) {
      for (let s = 0; s < 2; s++) {
        const from = h * 2 * half + s * half + i;
        const to = h * 2 * half + 2 * i + s;
        out.set(values.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

/** The metadata keys before the vocabulary, in the order convert_hf_to_gguf.py writes them. */
export function llamaMetadata(h: LlamaHparams, fileType: UnquantizedGgmlType, name: string): GgufMetadataEntry[] {
  const { STRING, UINT32, FLOAT32 } = GGUF_VALUE_TYPE;
  const entries: GgufMetadataEntry[] = [];
  const add = (key: string, type: GgufValueType, value: number | string | undefined) => {
    if (value !== undefined) entries.push(ggufEntry(key, type, value));
  };
  add('general.architecture', STRING, 'llama');
  add('general.type', STRING, 'model');
  add('general.name', STRING, name);
  add('llama.block_count', UINT32, h.blockCount);
  add('llama.context_length', UINT32, h.contextLength);
  add('llama.embedding_length', UINT32, h.embeddingLength);
  add('llama.feed_forward_length', UINT32, h.feedForwardLength);
  add('llama.attention.head_count', UINT32, h.headCount);
  add('llama.attention.head_count_kv', UINT32, h.headCountKv);
  entries.push(...ropeScalingEntries(h.ropeScaling));
  add('llama.rope.freq_base', FLOAT32, h.ropeTheta);
  add('llama.attention.layer_norm_rms_epsilon', FLOAT32, h.rmsNormEps);
  add('llama.attention.key_length', UINT32, h.headDim);
  add('llama.attention.value_length', UINT32, h.headDim);
  add('general.file_type', UINT32, FILE_TYPE[fileType]);
  add('llama.vocab_size', UINT32, h.vocabSize);
  add('llama.rope.dimension_count', UINT32, h.ropeDimensionCount);
  add('general.quantization_version', UINT32, GGML_QUANT_VERSION);
  return entries;
}

/** base.py set_gguf_parameters: linear and yarn scaling become keys; llama3 needs a
 *  rope_freqs tensor (not written: see ropeWarnings). */
function ropeScalingEntries(rope: Readonly<Record<string, unknown>> | undefined): GgufMetadataEntry[] {
  const type = rope?.rope_type ?? rope?.type;
  const factor = rope?.factor;
  if ((type !== 'linear' && type !== 'yarn') || typeof factor !== 'number') return [];
  const { STRING, UINT32, FLOAT32 } = GGUF_VALUE_TYPE;
  const entries = [ggufEntry('llama.rope.scaling.type', STRING, type), ggufEntry('llama.rope.scaling.factor', FLOAT32, factor)];
  if (type === 'yarn') {
    const original = rope!.original_max_position_embeddings;
    if (typeof original === 'number') entries.push(ggufEntry('llama.rope.scaling.original_context_length', UINT32, original));
    const optional: [string, unknown][] = [
      ['yarn_ext_factor', rope!.extrapolation_factor],
      ['yarn_attn_factor', rope!.attention_factor ?? rope!.attn_factor],
      ['yarn_beta_fast', rope!.beta_fast],
      ['yarn_beta_slow', rope!.beta_slow],
    ];
    for (const [key, value] of optional) if (typeof value === 'number') entries.push(ggufEntry(`llama.rope.scaling.${key}`, FLOAT32, value));
  }
  return entries;
}

function ropeWarnings(h: LlamaHparams): string[] {
  const type = h.ropeScaling?.rope_type ?? h.ropeScaling?.type;
  if (type === undefined || type === 'default' || type === 'linear' || type === 'yarn' || type === 'llama3') return [];
  return [`rope scaling '${String(type)}' is not converted: long-context behaviour will differ from the original`];
}

/**
 * Llama 3's rope_freqs (LlamaModel.generate_extra_tensors, rope_type 'llama3'): per rotary
 * pair, 1 for high frequencies, `factor` for low ones, a smooth blend between. Computed in
 * f32 step by step as torch does (freqs is a float32 tensor, so every later step is too).
 */
export function llama3RopeFreqs(config: HfConfig, h: LlamaHparams): Float32Array | null {
  const rope = h.ropeScaling;
  const type = rope?.rope_type ?? rope?.type;
  if (typeof type !== 'string' || type.toLowerCase() !== 'llama3') return null;
  const num = (value: unknown, fallback: number, key: string) => {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value)) throw configError(config, `rope_scaling.${key} is ${JSON.stringify(value)}, not a number`);
    return value;
  };
  const f = Math.fround;
  const base = num(rope!.rope_theta ?? h.ropeTheta, 10000, 'rope_theta');
  const dim = h.headDim ?? h.embeddingLength / h.headCount;
  const factor = num(rope!.factor, 8, 'factor');
  const low = num(rope!.low_freq_factor, 1, 'low_freq_factor');
  const high = num(rope!.high_freq_factor, 4, 'high_freq_factor');
  const old = num(rope!.original_max_position_embeddings ?? config.values.original_max_position_embeddings, 8192, 'original_max_position_embeddings');
  if (low === high) throw configError(config, `rope_scaling.low_freq_factor and high_freq_factor are both ${low}: llama3 scaling blends between two different ones`);
  const lowWavelen = old / low;
  const highWavelen = old / high;
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < out.length; i++) {
    const freq = f(1 / f(Math.pow(base, f(f(2 * i) / dim))));
    const wavelen = f(f(2 * Math.PI) / freq);
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = factor;
    else {
      const smooth = f(f(f(old / wavelen) - low) / (high - low));
      out[i] = f(1 / f(f(f(1 - smooth) / factor) + smooth));
    }
  }
  return out;
}

function ropeFreqsSource(values: Float32Array): GgufSourceTensor {
  const readF32 = async () => values.slice();
  return {
    name: 'rope_freqs.weight', sourceName: 'rope_freqs.weight', ggmlType: GGML_TYPE.F32, shape: [values.length], readF32,
    readBytes: async () => encodeUnquantized(values.slice(), GGML_TYPE.F32),
    readRowsF32: async (first, count) => values.slice(first * values.length, (first + count) * values.length),
  };
}

// ---- tokenizer --------------------------------------------------------------------

async function readTokenizer(model: ModelIndex): Promise<SentencePieceModel | null> {
  const files = model.files.filter((f) => f.role === 'tokenizer');
  if (files.length > 1) throw new FormatError(files[1].source.name, 0, `a second tokenizer model ('${files[0].source.name}' was given too)`);
  return files.length ? readSentencePieceModel(files[0].source) : null;
}

async function readTokenizerSideFiles(model: ModelIndex): Promise<TokenizerSideFiles> {
  const read = async (name: string) => {
    const file = model.files.find((f) => f.source.name === name);
    return file ? readJsonFile(file.source, name) : undefined;
  };
  return { tokenizerConfig: await read('tokenizer_config.json'), addedTokens: await read('added_tokens.json') };
}

// ---- shared -----------------------------------------------------------------------

/** convert_hf_to_gguf.py's order: shards by name, tensors by name within a shard
 *  (gguf-py utility.py SafetensorsLocal sorts its keys). */
export function orderedTensors(model: ModelIndex): ModelTensor[] {
  const byFile = new Map<string, ModelTensor[]>();
  for (const t of model.tensors) {
    const list = byFile.get(t.file);
    if (list) list.push(t);
    else byFile.set(t.file, [t]);
  }
  const files = [...byFile.keys()].sort(compareStrings);
  return files.flatMap((f) => byFile.get(f)!.sort((a, b) => compareStrings(a.name, b.name)));
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The file type: the requested one, or for 'auto' the script's heuristic (the dtype of
 * the first tensor with 2+ dimensions: BF16 -> bf16, F16 -> f16), except that anything
 * else stays f32 where the script would pick f16.
 */
export function resolveOuttype(outtype: ConvertOuttype, tensors: readonly ModelTensor[]): UnquantizedGgmlType {
  if (outtype !== 'auto') return OUTTYPE_GGML[outtype];
  const first = tensors.find((t) => t.shape.length >= 2);
  if (first?.dtype === 'BF16') return GGML_TYPE.BF16;
  if (first?.dtype === 'F16') return GGML_TYPE.F16;
  return GGML_TYPE.F32;
}

/** base.py prepare_tensors: 1-D tensors, norms and non-weights stay f32. */
export function outputType(ggufName: string, shape: readonly number[], fileType: UnquantizedGgmlType): UnquantizedGgmlType {
  if (shape.length <= 1 || ggufName.endsWith('_norm.weight') || !ggufName.endsWith('.weight')) return GGML_TYPE.F32;
  return fileType;
}

export function checkConvertible(tensor: ModelTensor, ggufName: string): void {
  const fail = (reason: string) => new FormatError(tensor.file, tensor.offset, `tensor '${tensor.name}' ${reason}`);
  if (!F32_DECODERS.has(tensor.dtype)) throw fail(`is ${tensor.dtype}, which cannot be converted`);
  if (tensor.shape.length > MAX_DIMS) throw fail(`has ${tensor.shape.length} dimensions; GGUF allows ${MAX_DIMS}`);
  if (new TextEncoder().encode(ggufName).length > MAX_TENSOR_NAME_BYTES) {
    throw fail(`needs the GGUF name '${ggufName}', longer than ggml's ${MAX_TENSOR_NAME_BYTES} bytes`);
  }
}

/** general.name: the option, config's _name_or_path (its last part), else the file name. */
export function modelName(model: ModelIndex, config: HfConfig | null, options: ConvertOptions): string {
  if (options.name) return options.name;
  const path = config?.values._name_or_path;
  const fromConfig = typeof path === 'string' ? path.split(/[\\/]/).filter(Boolean).pop() : undefined;
  if (fromConfig) return fromConfig;
  const file = model.tensors[0]?.file ?? 'model';
  const stem = file.replace(/\.safetensors$/i, '').replace(/-\d+-of-\d+$/, '');
  const modelType = config?.values.model_type;
  return stem === 'model' && typeof modelType === 'string' ? modelType : stem;
}

// ---- other architectures ----------------------------------------------------------

function convertWeightsOnly(model: ModelIndex, config: HfConfig | null, options: ConvertOptions): GgufSourceModel {
  const [hfArchitecture] = config ? stringList(config, 'architectures') : [];
  const modelType = config?.values.model_type;
  const architecture = typeof modelType === 'string' && modelType ? modelType : (hfArchitecture ?? 'unknown');
  const ordered = orderedTensors(model);
  const fileType = resolveOuttype(options.outtype ?? 'auto', ordered);
  const tensors = ordered.map((tensor): GgufSourceTensor => {
    checkConvertible(tensor, tensor.name);
    const shape = tensor.shape.length ? tensor.shape : [1];
    const ggmlType = outputType(tensor.name, shape, fileType);
    const readF32 = () => readTensorF32(model, tensor);
    return {
      name: tensor.name, sourceName: tensor.name, ggmlType, shape, readF32,
      readBytes: async () => encodeUnquantized(await readF32(), ggmlType),
      readRowsF32: (first, count) => readRowsF32(model, tensor, shape, undefined, first, count),
    };
  });
  const { STRING, UINT32 } = GGUF_VALUE_TYPE;
  const what = hfArchitecture ?? (config ? `model_type '${architecture}'` : 'a model without config.json');
  return {
    architecture,
    metadata: [
      ggufEntry('general.architecture', STRING, architecture),
      ggufEntry('general.type', STRING, 'model'),
      ggufEntry('general.name', STRING, modelName(model, config, options)),
      ggufEntry('general.file_type', UINT32, FILE_TYPE[fileType]),
      ggufEntry('general.quantization_version', UINT32, GGML_QUANT_VERSION),
    ],
    tensors,
    runnable: false,
    warnings: [
      `${what} is not a Llama-family model: the GGUF keeps the original tensor names and has no llama.cpp hyperparameters or vocabulary. It holds the weights only and will not run in llama.cpp.`,
    ],
  };
}
