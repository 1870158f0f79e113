// safetensors + config.json + tokenizer files -> a GGUF source model, for every family
// quantlab runs, as llama.cpp's convert_hf_to_gguf.py would write it. config.json's
// `architectures` (else `model_type`) picks the family module (families/*.ts); Llama and
// Mistral go through llama.ts (q/k permutation, Llama 3's rope_freqs, SentencePiece or
// BPE vocabulary); a config no family claims is written weights-only, as before.
//
// Everything that can be wrong with the input is checked before the first tensor is read:
// config fields (missing, not numbers, rope_scaling we do not convert), tensor shapes
// against config.json, the tokenizer files, the vocabulary against token_embd. Each is
// one FormatError naming the file and the field, so no export starts half-written.

import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../formats/float16.ts';
import { FormatError } from '../formats/errors.ts';
import { GGML_TYPE, GGUF_VALUE_TYPE } from '../formats/gguf/constants.ts';
import { type GgufMetadataEntry, ggufEntry } from '../formats/gguf/metadata.ts';
import { type ModelIndex, type ModelTensor, readTensorF32 } from '../formats/model.ts';
import { type HfConfig, configError, hfConfigOf, stringList } from './config.ts';
import { GEMMA2, GEMMA3 } from './families/gemma.ts';
import { type FamilyContext, type GeneratedTensor, type HfFamily, COMMON_BLOCK_NAMES, ropeType } from './families/family.ts';
import { PHI3 } from './families/phi3.ts';
import { QWEN2, QWEN3 } from './families/qwen.ts';
import { type HfTokenizerConverter, type Vocabulary, bpeVocabulary, readJsonNamed, sentencePieceVocabulary } from './hf-vocab.ts';
import {
  type ConvertOptions,
  type LlamaHparams,
  checkConvertible,
  convertHfLlama,
  isDroppedTensor,
  isLlamaFamily,
  llama3RopeFreqs,
  llamaTensorName,
  modelName,
  orderedTensors,
  outputType,
  readLlamaHparams,
  resolveOuttype,
} from './llama.ts';
import { type GgufSourceModel, type GgufSourceTensor, type UnquantizedGgmlType, encodeUnquantized } from './source-model.ts';

export type { HfTokenizerConverter } from './hf-vocab.ts';

/** The families besides Llama, each one module. */
export const HF_FAMILIES: readonly HfFamily[] = [QWEN2, QWEN3, GEMMA3, GEMMA2, PHI3];

/**
 * Converts a safetensors checkpoint of any family quantlab runs (see HF_FAMILIES and
 * llama.ts). Throws FormatError for input that cannot be converted.
 */
export async function convertHf(model: ModelIndex, options: ConvertOptions = {}): Promise<GgufSourceModel> {
  if (model.format !== 'safetensors') throw new Error(`convertHf converts safetensors models, not ${model.format}`);
  const raw = hfConfigOf(model);
  const config = raw && withTextConfig(raw);
  const family = config && familyOf(config);
  return family ? convertFamily(model, config, family, options) : convertHfLlama(model, options);
}

/** Gemma 3 (and other multimodal checkpoints) keep the text model's fields in text_config. */
function withTextConfig(config: HfConfig): HfConfig {
  const text = config.values.text_config;
  if (typeof text !== 'object' || text === null || Array.isArray(text)) return config;
  return { file: config.file, values: { ...config.values, ...(text as Record<string, unknown>) } };
}

export function familyOf(config: HfConfig): HfFamily | undefined {
  const [architecture] = stringList(config, 'architectures');
  if (architecture !== undefined) return HF_FAMILIES.find((f) => f.hfArchitectures.includes(architecture));
  const modelType = config.values.model_type;
  return HF_FAMILIES.find((f) => typeof modelType === 'string' && f.modelTypes.includes(modelType));
}

interface PlannedTensor {
  readonly tensor: ModelTensor;
  /** The name after the script's filters (language_model. removed). */
  readonly hfName: string;
  readonly ggufName: string;
}

async function convertFamily(model: ModelIndex, config: HfConfig, family: HfFamily, options: ConvertOptions): Promise<GgufSourceModel> {
  const hparams = readLlamaHparams(config);
  checkRopeScaling(config, hparams, family);
  const warnings: string[] = [];
  const planned = planTensors(model, config, hparams, family, warnings);
  const fileType = resolveOuttype(options.outtype ?? 'auto', planned.map((p) => p.tensor));
  const ctx: FamilyContext = { config, hparams, fileType, name: modelName(model, config, options) };
  const metadata = family.metadata(ctx);
  const generated = family.generatedTensors?.(ctx) ?? [];
  checkShapes(config, hparams, family, planned);

  const vocabulary = await familyVocabulary(model, config, hparams, family, options.hfTokenizer, warnings);
  const embedding = planned.find((p) => p.ggufName === 'token_embd.weight');
  if (!embedding) throw new FormatError(model.tensors[0]?.file ?? config.file, 0, 'has no model.embed_tokens.weight (token_embd): not a complete checkpoint');
  const embeddingRows = embedding.tensor.shape[0];
  let keepRows = embeddingRows;
  if (vocabulary) {
    keepRows = checkVocabulary(config, family, vocabulary, embedding);
  } else {
    warnings.push('no tokenizer.model or tokenizer.json was given: the GGUF has no vocabulary, and llama.cpp will not load it without one');
  }
  const tensors = [
    ...generated.map(generatedSource),
    ...planned.map((p) => familySource(model, p, family, fileType, p.ggufName === 'token_embd.weight' ? keepRows : undefined)),
  ];
  return {
    architecture: family.arch,
    metadata: [...metadata, ...(vocabulary?.entries ?? [])],
    tensors,
    runnable: vocabulary !== null,
    warnings,
  };
}

// ---- tensors -----------------------------------------------------------------------

const VISION_PREFIXES = ['vision_tower.', 'multi_modal_projector.', 'model.vision_tower.', 'model.multi_modal_projector.'];

function planTensors(model: ModelIndex, config: HfConfig, h: LlamaHparams, family: HfFamily, warnings: string[]): PlannedTensor[] {
  const planned: PlannedTensor[] = [];
  let vision = 0;
  for (const tensor of orderedTensors(model)) {
    // conversion/base.py filter_tensors: "language_model." is dropped from every name.
    const hfName = tensor.name.replaceAll('language_model.', '');
    if (VISION_PREFIXES.some((p) => hfName.startsWith(p))) {
      vision++;
      continue;
    }
    if (isDroppedTensor(hfName) || family.skipTensor?.(hfName)) continue;
    if (hfName === 'lm_head.weight' && h.tieWordEmbeddings) continue; // llama.cpp reuses token_embd
    const ggufName = familyTensorName(hfName, family, h.blockCount);
    if (!ggufName) throw new FormatError(tensor.file, tensor.offset, `cannot map tensor '${tensor.name}' to a llama.cpp ${family.arch} name (config.json says ${family.arch} with ${h.blockCount} layers)`);
    checkConvertible(tensor, ggufName);
    planned.push({ tensor, hfName, ggufName });
  }
  if (vision) warnings.push(`${vision} vision tensors left out: llama.cpp keeps the vision tower in a separate mmproj file`);
  return planned;
}

const GLOBAL_NAMES: ReadonlyMap<string, string> = new Map([
  ['model.embed_tokens', 'token_embd'],
  ['model.norm', 'output_norm'],
  ['lm_head', 'output'],
]);

/** gguf-py's name for an HF tensor of this family (with its .weight / .bias), or null. */
export function familyTensorName(hfName: string, family: HfFamily, blockCount: number): string | null {
  const name = hfName.startsWith('model.') || hfName.startsWith('lm_head') ? hfName : `model.${hfName}`; // Qwen2Model-style bare names
  const suffix = ['.weight', '.bias'].find((s) => name.endsWith(s));
  if (!suffix) return null;
  const module = name.slice(0, -suffix.length);
  const global = GLOBAL_NAMES.get(module);
  if (global) return global + suffix;
  const match = /^model\.layers\.(\d+)\.(.+)$/.exec(module);
  if (!match || Number(match[1]) >= blockCount) return null;
  const gguf = family.blockNames.get(match[2]) ?? COMMON_BLOCK_NAMES.get(match[2]);
  return gguf ? `blk.${match[1]}.${gguf}${suffix}` : null;
}

function rowsOf(shape: readonly number[]): { rows: number; cols: number } {
  const cols = shape.length > 1 ? shape[shape.length - 1] : (shape[0] ?? 1);
  return { rows: shape.length > 1 ? shape.slice(0, -1).reduce((a, b) => a * b, 1) : 1, cols };
}

/** Gemma's `data_torch + 1` happens in the checkpoint's dtype: round as torch does. */
function plusOneIn(dtype: string): (v: number) => number {
  if (dtype === 'BF16') return (v) => bf16BitsToF32(f32ToBf16Bits(v + 1));
  if (dtype === 'F16') return (v) => f16BitsToF32(f32ToF16Bits(v + 1));
  return (v) => v + 1; // stored into a Float32Array: f32 rounding
}

function familySource(model: ModelIndex, p: PlannedTensor, family: HfFamily, fileType: UnquantizedGgmlType, keepRows?: number): GgufSourceTensor {
  const { tensor, ggufName } = p;
  const shape = tensor.shape.length ? [...tensor.shape] : [1];
  if (keepRows !== undefined) shape[0] = keepRows;
  const { cols } = rowsOf(shape);
  const totalRows = rowsOf(shape).rows;
  const shift = family.normPlusOne && p.hfName.endsWith('norm.weight') ? plusOneIn(tensor.dtype) : undefined;
  const readRowsF32 = async (first: number, count: number) => {
    const values = await readTensorF32(model, tensor, { elementOffset: first * cols, elementCount: count * cols });
    if (shift) for (let i = 0; i < values.length; i++) values[i] = shift(values[i]);
    return values;
  };
  const readF32 = () => readRowsF32(0, totalRows);
  const ggmlType = outputType(ggufName, shape, fileType);
  return {
    name: ggufName, sourceName: tensor.name, ggmlType, shape, readF32, readRowsF32,
    readBytes: async () => encodeUnquantized(await readF32(), ggmlType),
  };
}

function generatedSource(g: GeneratedTensor): GgufSourceTensor {
  const readF32 = async () => g.values.slice();
  return {
    name: g.name, sourceName: g.name, ggmlType: GGML_TYPE.F32, shape: [g.values.length], readF32,
    readBytes: async () => encodeUnquantized(g.values.slice(), GGML_TYPE.F32),
    readRowsF32: async (first, count) => g.values.slice(first * g.values.length, (first + count) * g.values.length),
  };
}

// ---- checks ------------------------------------------------------------------------

function checkRopeScaling(config: HfConfig, h: LlamaHparams, family: HfFamily): void {
  const type = ropeType(config, h);
  if (type === undefined || type === 'default' || family.ropeTypes.includes(type)) return;
  const supported = family.ropeTypes.length ? family.ropeTypes.join(', ') : 'none';
  throw configError(config, `rope_scaling type '${type}' is not supported for ${family.arch} (supported: ${supported})`);
}

/** Each tensor's shape (outermost first) as config.json's sizes make it; '?' where it does not say. */
function expectedShape(ggufName: string, h: LlamaHparams, family: HfFamily): (number | '?')[] | undefined {
  const d = h.embeddingLength;
  const hd = h.headDim ?? (family === GEMMA3 ? 256 : h.embeddingLength / h.headCount);
  const q = h.headCount * hd;
  const kv = (h.headCountKv ?? h.headCount) * hd;
  const ff = h.feedForwardLength ?? '?';
  const fused = (n: number | '?') => (n === '?' ? '?' : 2 * n);
  const kind = ggufName.replace(/^blk\.\d+\./, '');
  const table: Record<string, (number | '?')[]> = {
    'token_embd.weight': ['?', d],
    'output.weight': ['?', d],
    'output_norm.weight': [d],
    'attn_norm.weight': [d],
    'ffn_norm.weight': [d],
    'post_attention_norm.weight': [d],
    'post_ffw_norm.weight': [d],
    'attn_q.weight': [q, d],
    'attn_k.weight': [kv, d],
    'attn_v.weight': [kv, d],
    'attn_q.bias': [q],
    'attn_k.bias': [kv],
    'attn_v.bias': [kv],
    'attn_qkv.weight': [q + 2 * kv, d],
    'attn_output.weight': [d, q],
    'attn_q_norm.weight': [hd],
    'attn_k_norm.weight': [hd],
    'ffn_gate.weight': [ff, d],
    'ffn_up.weight': family === PHI3 ? [fused(ff), d] : [ff, d],
    'ffn_down.weight': [d, ff],
  };
  return table[kind];
}

function checkShapes(config: HfConfig, h: LlamaHparams, family: HfFamily, planned: readonly PlannedTensor[]): void {
  for (const { tensor, ggufName } of planned) {
    const expected = expectedShape(ggufName, h, family);
    if (!expected) continue;
    const fits = expected.length === tensor.shape.length && expected.every((e, i) => e === '?' || e === tensor.shape[i]);
    if (!fits) {
      throw configError(config, `tensor '${tensor.name}' has shape [${tensor.shape.join(', ')}], but config.json's hidden_size ${h.embeddingLength}, num_attention_heads ${h.headCount}, num_key_value_heads ${h.headCountKv ?? h.headCount}, head_dim ${h.headDim ?? 'unset'} and intermediate_size ${h.feedForwardLength ?? 'unset'} make it [${expected.join(', ')}]`);
    }
  }
}

/**
 * The vocabulary must fit the embedding: the script pads it to vocab_size, and llama.cpp
 * refuses a token_embd with another row count (Gemma 3's converter trims extra rows).
 * Returns the rows token_embd keeps.
 */
function checkVocabulary(config: HfConfig, family: HfFamily, vocabulary: Vocabulary, embedding: PlannedTensor): number {
  const rows = embedding.tensor.shape[0];
  const tokens = vocabulary.tokenCount;
  if (tokens === rows) return rows;
  if (tokens < rows && family.trimEmbeddingToVocabulary) return tokens;
  if (tokens > rows) {
    throw new FormatError(vocabulary.file, 0, `the vocabulary has ${tokens} tokens but '${embedding.tensor.name}' only ${rows} rows (config.json vocab_size ${String(config.values.vocab_size ?? 'unset')}): tokenizer and weights do not belong together`);
  }
  throw configError(config, `vocab_size makes the vocabulary ${tokens} tokens, but '${embedding.tensor.name}' has ${rows} rows: llama.cpp would refuse the file`);
}

async function familyVocabulary(
  model: ModelIndex,
  config: HfConfig,
  h: LlamaHparams,
  family: HfFamily,
  hfTokenizer: HfTokenizerConverter | undefined,
  warnings: string[],
): Promise<Vocabulary | null> {
  const spm = () => sentencePieceVocabulary(model, config, h.vocabSize, warnings);
  const bpe = () => bpeVocabulary(model, config, h.vocabSize, hfTokenizer);
  switch (family.vocabulary) {
    case 'spm-else-bpe':
      return (await spm()) ?? bpe();
    case 'gemma': {
      const sp = await spm();
      if (!sp) return bpe();
      return { ...sp, entries: [...sp.entries.filter((e) => e.key !== 'tokenizer.ggml.add_space_prefix'), spacePrefix(false)] };
    }
    case 'phi3': {
      const tokenizerConfig = await readJsonNamed(model, 'tokenizer_config.json');
      if (tokenizerConfig?.tokenizer_class === 'GPT2Tokenizer') return bpe();
      return (await spm()) ?? bpe();
    }
  }
}

const spacePrefix = (value: boolean): GgufMetadataEntry => ggufEntry('tokenizer.ggml.add_space_prefix', GGUF_VALUE_TYPE.BOOL, value);

/** One tensor of a conversion's layout: its GGUF name and shape, and the file tensor behind it (none for generated ones). */
export interface LayoutTensor {
  readonly name: string;
  readonly sourceName: string | null;
  readonly shape: readonly number[];
}

/**
 * The tensors and architecture keys a conversion will write, without reading the tokenizer
 * (so synchronously): what a plan needs to show llama.cpp's names before any export. Null
 * for a checkpoint no family (Llama included) claims.
 */
export function hfTensorLayout(model: ModelIndex): { arch: string; blockCount: number; headCount: number; headCountKv: number; tensors: LayoutTensor[] } | null {
  const raw = hfConfigOf(model);
  if (!raw || model.format !== 'safetensors') return null;
  const config = withTextConfig(raw);
  const h = readLlamaHparams(config);
  const shape = (t: ModelTensor) => (t.shape.length ? t.shape : [1]);
  const family = familyOf(config);
  const tensors: LayoutTensor[] = [];
  if (family) {
    const ctx: FamilyContext = { config, hparams: h, fileType: GGML_TYPE.F32, name: '' };
    for (const g of family.generatedTensors?.(ctx) ?? []) tensors.push({ name: g.name, sourceName: null, shape: [g.values.length] });
    for (const p of planTensors(model, config, h, family, [])) tensors.push({ name: p.ggufName, sourceName: p.tensor.name, shape: shape(p.tensor) });
  } else if (isLlamaFamily(config)) {
    const freqs = llama3RopeFreqs(config, h);
    if (freqs) tensors.push({ name: 'rope_freqs.weight', sourceName: null, shape: [freqs.length] });
    const bare = stringList(config, 'architectures')[0] === 'LlamaModel';
    for (const t of orderedTensors(model)) {
      if (isDroppedTensor(t.name) || (h.tieWordEmbeddings && t.name === 'lm_head.weight')) continue;
      const name = llamaTensorName(bare ? `model.${t.name}` : t.name, h.blockCount);
      if (name) tensors.push({ name, sourceName: t.name, shape: shape(t) });
    }
  } else return null;
  return { arch: family?.arch ?? 'llama', blockCount: h.blockCount, headCount: h.headCount, headCountKv: h.headCountKv ?? h.headCount, tensors };
}
