// ModelIndex: one description of a loaded model whatever its format, built from headers
// only. Tensor bytes stay in the files and are read on demand (readTensorBytes,
// readTensorF32). The store keeps this object; it holds no tensor data.

import { type ByteSource, checkRange } from './bytes.ts';
import { F32_DECODERS, GGML_PLAIN_DTYPES, f32View } from './decode.ts';
import { FormatError, FormatErrorList } from './errors.ts';
import { GGML_TYPES, GGUF_MAGIC } from './gguf/constants.ts';
import { type GgufMetadataEntry, metadataToObject } from './gguf/metadata.ts';
import { readGguf } from './gguf/read.ts';
import type { GgufTensorDescriptor } from './gguf/write.ts';
import {
  SAFETENSORS_DTYPE_BITS,
  type SafetensorsIndex,
  type Shard,
  checkShards,
  readJsonFile,
  readSafetensors,
  readSafetensorsIndex,
} from './safetensors.ts';

export type ModelFormat = 'gguf' | 'safetensors';

/** What a given file is to the model. 'other' files are kept but not read. */
export type ModelFileRole = 'gguf' | 'safetensors' | 'index' | 'config' | 'tokenizer' | 'other';

export interface ModelFile {
  readonly source: ByteSource;
  readonly role: ModelFileRole;
}

export interface ModelTensor {
  readonly name: string;
  /** ggml type name for GGUF ('q4_K'), safetensors dtype otherwise ('BF16'). */
  readonly dtype: string;
  /** Row-major, outermost first (PyTorch order; GGUF's ne reversed). */
  readonly shape: readonly number[];
  /** Name of the file holding the data (a ModelFile's source.name). */
  readonly file: string;
  /** Absolute byte offset in that file. */
  readonly offset: number;
  readonly nbytes: number;
  /** GGUF only: ggml type id. */
  readonly ggmlType?: number;
  /** GGUF only: an old file whose blocks run across rows; read it as one flat run. */
  readonly flat?: boolean;
}

export interface ModelIndex {
  readonly format: ModelFormat;
  /** GGUF version; null for safetensors, which has none. */
  readonly version: number | null;
  readonly files: readonly ModelFile[];
  /**
   * GGUF: key -> value in file order (arrays as typed arrays / string lists, 64-bit ints
   * as bigint). safetensors: {__metadata__: {...}, config: {...config.json}, index:
   * {...index.json's "metadata"}}, each present only when the files have it.
   */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** GGUF only: the typed key-value pairs in file order, enough to rewrite the header. */
  readonly ggufMetadata?: readonly GgufMetadataEntry[];
  /** GGUF only: data alignment. */
  readonly alignment?: number;
  /** In file order (sharded safetensors: shards by name, then by offset). */
  readonly tensors: readonly ModelTensor[];
}

/**
 * Recognises the files of one model (one GGUF; or safetensors shards with their
 * index.json, config.json and tokenizer.model) by content and name, reads their headers
 * and checks them together. Every bad file gives a FormatError; when several are bad
 * they come together as one FormatErrorList.
 */
export async function loadModel(sources: readonly ByteSource[]): Promise<ModelIndex> {
  checkUniqueNames(sources);
  const files = await Promise.all(sources.map(async (source) => ({ source, role: await recogniseFile(source) })));
  const tensorFiles = files.filter((f) => f.role === 'gguf' || f.role === 'safetensors');
  if (tensorFiles.length === 0) {
    const first = sources[0];
    throw new FormatError(first?.name ?? '(no files)', 0, 'no GGUF or safetensors file among the files given');
  }
  checkOneKind(tensorFiles);
  return tensorFiles[0].role === 'gguf' ? loadGguf(files, tensorFiles[0].source) : loadSafetensors(files);
}

function checkUniqueNames(sources: readonly ByteSource[]): void {
  const seen = new Set<string>();
  for (const s of sources) {
    if (seen.has(s.name)) throw new FormatError(s.name, 0, 'two files of this name were given');
    seen.add(s.name);
  }
}

function checkOneKind(tensorFiles: readonly ModelFile[]): void {
  const [first, ...rest] = tensorFiles;
  for (const f of rest) {
    if (f.role !== first.role) {
      throw new FormatError(f.source.name, 0, `a ${f.role} file cannot be part of the same model as ${first.role} file '${first.source.name}'`);
    }
    if (f.role === 'gguf') {
      throw new FormatError(f.source.name, 0, `only one GGUF file per model ('${first.source.name}' was given too; split GGUF files are not supported)`);
    }
  }
}

/** What a file is, from its first bytes, then its name. */
export async function recogniseFile(source: ByteSource): Promise<ModelFileRole> {
  const name = source.name.toLowerCase();
  const head = await source.read(0, Math.min(9, source.size));
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (head.length >= 4 && view.getUint32(0, true) === GGUF_MAGIC) return 'gguf';
  if (name.endsWith('.gguf')) return 'gguf'; // the reader will say what is wrong
  if (name.endsWith('.safetensors') || looksLikeSafetensors(view, source.size)) return 'safetensors';
  if (name.endsWith('.json')) {
    if (name === 'config.json' || name.endsWith('.config.json')) return 'config';
    if (name.endsWith('.index.json')) return 'index';
    return 'other';
  }
  if (name.endsWith('.model')) return 'tokenizer'; // SentencePiece (tokenizer.model, tok512.model)
  return 'other';
}

/** A u64 header length that fits the file, followed by '{'. */
function looksLikeSafetensors(view: DataView, size: number): boolean {
  if (view.byteLength < 9) return false;
  const length = view.getBigUint64(0, true);
  return length > 0n && length + 8n <= BigInt(size) && view.getUint8(8) === 0x7b;
}

async function loadGguf(files: ModelFile[], source: ByteSource): Promise<ModelIndex> {
  const header = await readGguf(source);
  return {
    format: 'gguf',
    version: header.version,
    files,
    metadata: metadataToObject(header.metadata),
    ggufMetadata: header.metadata,
    alignment: header.alignment,
    tensors: header.tensors.map((t) => ({
      name: t.name,
      dtype: t.typeName,
      shape: [...t.ne].reverse(),
      file: source.name,
      offset: header.dataOffset + t.offset,
      nbytes: t.nbytes,
      ggmlType: t.type,
      ...(t.flat ? { flat: true } : {}),
    })),
  };
}

async function loadSafetensors(files: ModelFile[]): Promise<ModelIndex> {
  const ofRole = (role: ModelFileRole) => files.filter((f) => f.role === role).map((f) => f.source);
  const shardSources = ofRole('safetensors').sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const indexSources = ofRole('index');
  const configSources = ofRole('config');
  for (const [role, list] of [['index', indexSources], ['config', configSources]] as const) {
    if (list.length > 1) throw new FormatError(list[1].name, 0, `a second ${role} file ('${list[0].name}' was given too)`);
  }

  const results = await Promise.allSettled([
    ...shardSources.map(async (source): Promise<Shard> => ({ source, header: await readSafetensors(source) })),
    ...indexSources.map(readSafetensorsIndex),
    ...configSources.map((s) => readJsonFile(s, 'config file')),
  ]);
  throwFormatErrors(results);
  const values = results.map((r) => (r as PromiseFulfilledResult<unknown>).value);
  const shards = values.slice(0, shardSources.length) as Shard[];
  const index = indexSources.length ? { source: indexSources[0], index: values[shardSources.length] as SafetensorsIndex } : null;
  const config = configSources.length ? (values[values.length - 1] as Record<string, unknown>) : null;
  checkShards(shards, index);

  return {
    format: 'safetensors',
    version: null,
    files,
    metadata: safetensorsMetadata(shards, config, index?.index ?? null),
    tensors: shards.flatMap(({ source, header }) =>
      header.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, file: source.name, offset: t.offset, nbytes: t.nbytes })),
    ),
  };
}

function throwFormatErrors(results: readonly PromiseSettledResult<unknown>[]): void {
  const reasons = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
  if (reasons.length === 0) return;
  const other = reasons.find((e) => !(e instanceof FormatError));
  if (other) throw other;
  const errors = reasons as FormatError[];
  throw errors.length === 1 ? errors[0] : new FormatErrorList(errors);
}

function safetensorsMetadata(
  shards: readonly Shard[],
  config: Record<string, unknown> | null,
  index: SafetensorsIndex | null,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const merged: Record<string, string> = {};
  for (const { header } of shards) {
    for (const [k, v] of Object.entries(header.metadata ?? {})) if (!(k in merged)) merged[k] = v;
  }
  if (shards.some((s) => s.header.metadata)) out.__metadata__ = merged;
  if (config) out.config = config;
  if (index) out.index = index.metadata;
  return out;
}

// ---- tensors ----------------------------------------------------------------------

/** The writer's descriptor of a GGUF tensor (ne = shape reversed). */
export function ggufDescriptor(tensor: ModelTensor): GgufTensorDescriptor {
  if (tensor.ggmlType === undefined) throw new Error(`tensor '${tensor.name}' is not a GGUF tensor`);
  return { name: tensor.name, type: tensor.ggmlType, ne: [...tensor.shape].reverse() };
}

export function elementCount(tensor: ModelTensor): number {
  return tensor.shape.reduce((n, d) => n * d, 1);
}

/** How elements pack into bytes: `blockElements` elements take `blockBytes` bytes. */
export function elementPacking(tensor: ModelTensor): { blockElements: number; blockBytes: number } {
  if (tensor.ggmlType !== undefined) {
    const type = GGML_TYPES.get(tensor.ggmlType)!;
    return { blockElements: type.blockSize, blockBytes: type.typeSize };
  }
  const bits = SAFETENSORS_DTYPE_BITS.get(tensor.dtype)!;
  if (bits % 8 === 0) return { blockElements: 1, blockBytes: bits / 8 };
  return bits === 4 ? { blockElements: 2, blockBytes: 1 } : { blockElements: 4, blockBytes: 3 };
}

/** Part of a tensor, in elements (whole tensor when omitted). */
export interface ElementRange {
  readonly elementOffset?: number;
  readonly elementCount?: number;
}

function byteRange(tensor: ModelTensor, range: ElementRange): { offset: number; length: number; count: number } {
  const total = elementCount(tensor);
  const start = range.elementOffset ?? 0;
  const count = range.elementCount ?? total - start;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > total) {
    throw new RangeError(`tensor '${tensor.name}': elements [${start}, ${start + count}) are outside its ${total}`);
  }
  const { blockElements, blockBytes } = elementPacking(tensor);
  if (start % blockElements !== 0 || (count % blockElements !== 0 && start + count !== total)) {
    throw new RangeError(`tensor '${tensor.name}': a range must start and end on ${blockElements}-element block boundaries`);
  }
  const offset = tensor.offset + (start / blockElements) * blockBytes;
  const length = Math.ceil(count / blockElements) * blockBytes;
  return { offset, length, count };
}

function sourceOf(model: ModelIndex, tensor: ModelTensor): ByteSource {
  const file = model.files.find((f) => f.source.name === tensor.file);
  if (!file) throw new Error(`tensor '${tensor.name}': file '${tensor.file}' is not part of this model`);
  return file.source;
}

/**
 * The raw bytes of a tensor (or of a block-aligned range of its elements); read into
 * `into` where the source can (ByteSource.read).
 */
export async function readTensorBytes(model: ModelIndex, tensor: ModelTensor, range: ElementRange = {}, into?: Uint8Array): Promise<Uint8Array> {
  const source = sourceOf(model, tensor);
  const { offset, length } = byteRange(tensor, range);
  checkRange(source, offset, length, `tensor '${tensor.name}' data`);
  return source.read(offset, length, into);
}

/**
 * Decodes block-quantized ggml data (q4_K...) to f32. formats/ cannot decode these (the
 * codecs live in src/quant, which formats must not import), so the caller passes one in:
 * e.g. `(type, bytes, n) => QUANT_TYPES.byGgmlId(type).decode(bytes, n)`.
 */
export type GgmlDequantizer = (ggmlType: number, bytes: Uint8Array, elementCount: number) => Float32Array;

export interface ReadF32Options extends ElementRange {
  readonly dequantize?: GgmlDequantizer;
  /**
   * A buffer the bytes may be read into (ByteSource.read): an F32 tensor's values are then
   * a view of it, valid until the caller reuses it.
   */
  readonly scratch?: Uint8Array;
}

/** A tensor's values as f32, read from its file on demand. */
export async function readTensorF32(model: ModelIndex, tensor: ModelTensor, options: ReadF32Options = {}): Promise<Float32Array> {
  const { count } = byteRange(tensor, options);
  const decode = decoderFor(tensor, options.dequantize);
  // A tensor may have no elements (a dimension of 0 is valid in ggml and safetensors);
  // block codecs refuse a zero row length, so there is nothing to ask them.
  if (count === 0) return new Float32Array(0);
  const bytes = await readTensorBytes(model, tensor, options, options.scratch);
  // F32 read into the caller's scratch: the values are a view of it.
  if (options.scratch && bytes.buffer === options.scratch.buffer && plainDtype(tensor) === 'F32') return f32View(bytes, count);
  return decode(bytes, count);
}

/** The tensor's dtype name when it is a plain (not block-quantized) one. */
function plainDtype(tensor: ModelTensor): string | undefined {
  return tensor.ggmlType === undefined ? tensor.dtype : GGML_PLAIN_DTYPES.get(tensor.dtype);
}

function decoderFor(tensor: ModelTensor, dequantize?: GgmlDequantizer): (bytes: Uint8Array, count: number) => Float32Array {
  const plainName = plainDtype(tensor);
  const plain = plainName ? F32_DECODERS.get(plainName) : undefined;
  if (plain) return plain;
  if (tensor.ggmlType !== undefined && dequantize) {
    const type = tensor.ggmlType;
    return (bytes, count) => dequantize(type, bytes, count);
  }
  throw new Error(
    tensor.ggmlType === undefined
      ? `tensor '${tensor.name}': reading ${tensor.dtype} as f32 is not supported`
      : `tensor '${tensor.name}' is ${tensor.dtype}: pass a dequantizer (options.dequantize) to read it as f32`,
  );
}
