// GGUF v3 writer. Layout as ggml-org/ggml src/gguf.cpp writes it (gguf_write_out,
// commit d99724f2): magic, version, u64 tensor count, u64 kv count, key-value pairs,
// tensor infos (name, n_dims, ne[], type, offset), zero padding to the alignment, then
// each tensor's data followed by zero padding to the alignment (after the last one too).
// Tensor offsets are relative to the data section: the running sum of padded sizes.
// Data is pulled per tensor from a callback, so an export never sits in memory whole.

import { ByteWriter, assertLittleEndianHost } from '../bytes.ts';
import { MAX_DIMS, MAX_TENSOR_NAME_BYTES } from '../limits.ts';
import { GGML_TYPES, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VALUE_TYPE, type GgufValueType } from './constants.ts';
import {
  GGUF_NUMERIC_TYPES,
  type GgufArray,
  type GgufMetadataEntry,
  type GgufNumericArray,
  type GgufValue,
  ggufValueTypeName,
  isGgufValueType,
} from './metadata.ts';
import { GGUF_ALIGNMENT_KEY, SUPPORTED_GGUF_VERSIONS, alignUp } from './read.ts';

/** What the writer needs to know of a tensor before its data. */
export interface GgufTensorDescriptor {
  readonly name: string;
  /** ggml type id. */
  readonly type: number;
  /** ggml's ne: innermost first; its length is the n_dims written (0 to 4). */
  readonly ne: readonly number[];
}

export interface GgufLayoutTensor extends GgufTensorDescriptor {
  /** Offset from the start of the data section. */
  readonly offset: number;
  readonly nbytes: number;
}

export interface GgufLayout {
  readonly version: number;
  readonly alignment: number;
  readonly metadata: readonly GgufMetadataEntry[];
  readonly tensors: readonly GgufLayoutTensor[];
  /** The encoded header, padded to the alignment: the file's first bytes. */
  readonly header: Uint8Array;
  /** Absolute offset of the data section (= header.length). */
  readonly dataOffset: number;
  /** Size of the whole file. */
  readonly totalBytes: number;
}

export interface GgufPlanInput {
  readonly metadata: readonly GgufMetadataEntry[];
  readonly tensors: readonly GgufTensorDescriptor[];
  /** 3 unless given; 2 has the same layout and is accepted so that v2 files copy exactly. */
  readonly version?: number;
}

/** Tensor data as bytes, or as chunks (sync or async) whose lengths add up to nbytes. */
export type GgufTensorData = Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
export type GgufTensorDataSource = (tensor: GgufLayoutTensor, index: number) => GgufTensorData | Promise<GgufTensorData>;

/** Validates the input and computes the header bytes and every tensor's offset. */
export function planGguf(input: GgufPlanInput): GgufLayout {
  const version = input.version ?? 3;
  if (!SUPPORTED_GGUF_VERSIONS.includes(version)) throw new Error(`cannot write GGUF version ${version}`);
  checkMetadata(input.metadata);
  const alignment = alignmentFrom(input.metadata);
  const tensors = layOutTensors(input.tensors, alignment);
  const header = encodeHeader(version, input.metadata, tensors, alignment);
  const dataBytes = tensors.reduce((sum, t) => sum + alignUp(t.nbytes, alignment), 0);
  return {
    version, alignment, metadata: input.metadata, tensors, header,
    dataOffset: header.length, totalBytes: header.length + dataBytes,
  };
}

/** The file as a stream of chunks: the header, then each tensor's data and padding. */
export async function* writeGguf(layout: GgufLayout, data: GgufTensorDataSource): AsyncGenerator<Uint8Array> {
  yield layout.header;
  for (const [index, tensor] of layout.tensors.entries()) {
    let written = 0;
    for await (const chunk of chunksOf(await data(tensor, index))) {
      written += chunk.length;
      if (written > tensor.nbytes) break;
      yield chunk;
    }
    if (written !== tensor.nbytes) {
      throw new Error(`tensor '${tensor.name}': got ${written} bytes of data, expected ${tensor.nbytes}`);
    }
    const padding = alignUp(tensor.nbytes, layout.alignment) - tensor.nbytes;
    if (padding > 0) yield new Uint8Array(padding);
  }
}

/** The same stream as a web ReadableStream (for a download or a file handle). */
export function ggufReadableStream(layout: GgufLayout, data: GgufTensorDataSource): ReadableStream<Uint8Array> {
  const chunks = writeGguf(layout, data);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await chunks.next();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel() {
      await chunks.return(undefined);
    },
  });
}

function chunksOf(data: GgufTensorData): Iterable<Uint8Array> | AsyncIterable<Uint8Array> {
  return data instanceof Uint8Array ? [data] : data;
}

// ---- validation -------------------------------------------------------------------

function checkMetadata(entries: readonly GgufMetadataEntry[]): void {
  const keys = new Set<string>();
  for (const { key, type, value } of entries) {
    if (typeof key !== 'string' || key === '') throw new Error('GGUF metadata key must be a non-empty string');
    if (keys.has(key)) throw new Error(`GGUF metadata key '${key}' appears twice`);
    keys.add(key);
    checkValue(key, type, value);
  }
}

const INT_RANGES: ReadonlyMap<number, readonly [number, number]> = new Map([
  [GGUF_VALUE_TYPE.UINT8, [0, 0xff]],
  [GGUF_VALUE_TYPE.INT8, [-0x80, 0x7f]],
  [GGUF_VALUE_TYPE.UINT16, [0, 0xffff]],
  [GGUF_VALUE_TYPE.INT16, [-0x8000, 0x7fff]],
  [GGUF_VALUE_TYPE.UINT32, [0, 0xffffffff]],
  [GGUF_VALUE_TYPE.INT32, [-0x80000000, 0x7fffffff]],
] as const);

const BIGINT_RANGES: ReadonlyMap<number, readonly [bigint, bigint]> = new Map([
  [GGUF_VALUE_TYPE.UINT64, [0n, (1n << 64n) - 1n]],
  [GGUF_VALUE_TYPE.INT64, [-(1n << 63n), (1n << 63n) - 1n]],
] as const);

function checkValue(key: string, type: number, value: GgufValue): void {
  const bad = (why: string) => new Error(`GGUF metadata '${key}': ${why}`);
  if (!isGgufValueType(type)) throw bad(`unknown value type ${type}`);
  const intRange = INT_RANGES.get(type);
  const bigRange = BIGINT_RANGES.get(type);
  if (intRange) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < intRange[0] || value > intRange[1]) {
      throw bad(`${String(value)} is not a ${ggufValueTypeName(type)}`);
    }
  } else if (bigRange) {
    if (typeof value !== 'bigint' || value < bigRange[0] || value > bigRange[1]) {
      throw bad(`${String(value)} is not a ${ggufValueTypeName(type)} (64-bit values are bigint)`);
    }
  } else if (type === GGUF_VALUE_TYPE.FLOAT32 || type === GGUF_VALUE_TYPE.FLOAT64) {
    if (typeof value !== 'number') throw bad(`${String(value)} is not a number`);
  } else if (type === GGUF_VALUE_TYPE.BOOL) {
    if (typeof value !== 'boolean') throw bad(`${String(value)} is not a boolean`);
  } else if (type === GGUF_VALUE_TYPE.STRING) {
    if (typeof value !== 'string') throw bad(`${String(value)} is not a string`);
  } else {
    checkArray(key, value);
  }
}

function checkArray(key: string, value: GgufValue): void {
  if (typeof value !== 'object' || value === null || !('itemType' in value)) {
    throw new Error(`GGUF metadata '${key}': an array value must be {itemType, items}`);
  }
  const numeric = GGUF_NUMERIC_TYPES.get(value.itemType);
  if (numeric && value.items instanceof numeric.array) return;
  if (numeric && ArrayBuffer.isView(value.items)) {
    throw new Error(`GGUF metadata '${key}': ${ggufValueTypeName(value.itemType)} items must be a ${numeric.array.name}`);
  }
  if (!Array.isArray(value.items)) throw new Error(`GGUF metadata '${key}': array items must be an array`);
  for (const item of value.items as readonly GgufValue[]) checkValue(key, value.itemType, item);
}

function alignmentFrom(entries: readonly GgufMetadataEntry[]): number {
  const entry = entries.find((e) => e.key === GGUF_ALIGNMENT_KEY);
  if (!entry) return GGUF_DEFAULT_ALIGNMENT;
  const alignment = entry.value;
  if (entry.type !== GGUF_VALUE_TYPE.UINT32 || typeof alignment !== 'number' || alignment === 0 || (alignment & (alignment - 1)) !== 0) {
    throw new Error(`'${GGUF_ALIGNMENT_KEY}' must be a uint32 power of two`);
  }
  return alignment;
}

const encoder = new TextEncoder();

function layOutTensors(descriptors: readonly GgufTensorDescriptor[], alignment: number): GgufLayoutTensor[] {
  const names = new Set<string>();
  let offset = 0;
  return descriptors.map(({ name, type, ne }) => {
    if (encoder.encode(name).length > MAX_TENSOR_NAME_BYTES) {
      throw new Error(`tensor name '${name}' is longer than ggml's ${MAX_TENSOR_NAME_BYTES} bytes`);
    }
    if (names.has(name)) throw new Error(`tensor '${name}' appears twice`);
    names.add(name);
    if (ne.length > MAX_DIMS) throw new Error(`tensor '${name}' has ${ne.length} dimensions; ggml allows ${MAX_DIMS}`);
    if (!ne.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`tensor '${name}' has a bad shape [${ne}]`);
    const info = GGML_TYPES.get(type);
    if (!info) throw new Error(`tensor '${name}': ggml type ${type} cannot be written`);
    const rowLength = ne[0] ?? 1;
    if (rowLength % info.blockSize !== 0) {
      throw new Error(`tensor '${name}': rows of ${rowLength} are not a multiple of ${info.name}'s block size ${info.blockSize}`);
    }
    const elements = ne.reduce((n, d) => n * d, 1);
    const nbytes = (elements / info.blockSize) * info.typeSize;
    if (!Number.isSafeInteger(nbytes)) throw new Error(`tensor '${name}' is too large`);
    const tensor = { name, type, ne: [...ne], offset, nbytes };
    offset += alignUp(nbytes, alignment);
    return tensor;
  });
}

// ---- encoding ---------------------------------------------------------------------

function encodeHeader(
  version: number,
  metadata: readonly GgufMetadataEntry[],
  tensors: readonly GgufLayoutTensor[],
  alignment: number,
): Uint8Array {
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(version);
  w.u64(BigInt(tensors.length));
  w.u64(BigInt(metadata.length));
  for (const { key, type, value } of metadata) {
    w.string(key);
    w.u32(type);
    writeValue(w, type, value);
  }
  for (const t of tensors) {
    w.string(t.name);
    w.u32(t.ne.length);
    for (const d of t.ne) w.i64(BigInt(d));
    w.u32(t.type);
    w.u64(BigInt(t.offset));
  }
  w.zeros(alignUp(w.length, alignment) - w.length);
  return w.finish();
}

function writeValue(w: ByteWriter, type: GgufValueType, value: GgufValue): void {
  switch (type) {
    case GGUF_VALUE_TYPE.UINT8: return w.u8(value as number);
    case GGUF_VALUE_TYPE.INT8: return w.i8(value as number);
    case GGUF_VALUE_TYPE.UINT16: return w.u16(value as number);
    case GGUF_VALUE_TYPE.INT16: return w.i16(value as number);
    case GGUF_VALUE_TYPE.UINT32: return w.u32(value as number);
    case GGUF_VALUE_TYPE.INT32: return w.i32(value as number);
    case GGUF_VALUE_TYPE.FLOAT32: return w.f32(value as number);
    case GGUF_VALUE_TYPE.BOOL: return w.u8(value ? 1 : 0);
    case GGUF_VALUE_TYPE.STRING: return w.string(value as string);
    case GGUF_VALUE_TYPE.UINT64: return w.u64(value as bigint);
    case GGUF_VALUE_TYPE.INT64: return w.i64(value as bigint);
    case GGUF_VALUE_TYPE.FLOAT64: return w.f64(value as number);
    case GGUF_VALUE_TYPE.ARRAY: return writeArray(w, value as GgufArray);
  }
}

function writeArray(w: ByteWriter, array: GgufArray): void {
  w.u32(array.itemType);
  w.u64(BigInt(array.items.length));
  const numeric = GGUF_NUMERIC_TYPES.get(array.itemType);
  if (numeric) {
    assertLittleEndianHost();
    // Typed arrays are copied as raw bytes (bit-exact, NaN payloads included; the host
    // is little-endian like every browser platform); plain arrays are converted first.
    const items = ArrayBuffer.isView(array.items)
      ? (array.items as GgufNumericArray)
      : (numeric.array as unknown as { from(a: ArrayLike<unknown>): GgufNumericArray }).from(array.items as ArrayLike<unknown>);
    w.bytes(new Uint8Array(items.buffer, items.byteOffset, items.byteLength));
    return;
  }
  for (const item of array.items as readonly GgufValue[]) writeValue(w, array.itemType, item);
}
