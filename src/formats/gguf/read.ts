// GGUF v2/v3 header reader. Follows ggml-org/ggml src/gguf.cpp (gguf_init_from_reader,
// commit d99724f2) for layout and validity rules: the same file is accepted or refused
// as llama.cpp would, except that old files whose quant blocks run across rows are read
// as flat tensors (docs/contracts.md), and nested metadata arrays (allowed by the spec,
// written by gguf-py) are read. Only the header is read; tensor data stays in the file.

import { type ByteSource, ByteReader, assertLittleEndianHost } from '../bytes.ts';
import {
  MAX_ARRAY_LENGTH,
  MAX_ARRAY_NESTING,
  MAX_DIMS,
  MAX_GGUF_ALIGNMENT,
  MAX_METADATA_COUNT,
  MAX_STRING_BYTES,
  MAX_TENSOR_COUNT,
  MAX_TENSOR_NAME_BYTES,
} from '../limits.ts';
import {
  GGML_TYPES,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VALUE_TYPE,
  type GgmlTypeInfo,
  type GgufValueType,
  REMOVED_GGML_TYPES,
} from './constants.ts';
import {
  GGUF_NUMERIC_TYPES,
  type GgufArray,
  type GgufMetadataEntry,
  type GgufNumericArray,
  type GgufValue,
  ggufValueTypeName,
  isGgufValueType,
  minEncodedBytes,
} from './metadata.ts';

export const GGUF_ALIGNMENT_KEY = 'general.alignment';

/** Versions this reader accepts: v2 and v3 share one layout (v3 only added big-endian files). */
export const SUPPORTED_GGUF_VERSIONS: readonly number[] = [2, 3];

export interface GgufTensorInfo {
  readonly name: string;
  /** ggml's ne: innermost dimension first, exactly n_dims entries as stored. */
  readonly ne: readonly number[];
  /** ggml type id. */
  readonly type: number;
  /** ggml type name ('f32', 'q4_K'). */
  readonly typeName: string;
  /** Offset of the data from the start of the data section, as stored. */
  readonly offset: number;
  readonly nbytes: number;
  /** True for old files whose blocks run across rows (ne0 not a multiple of the block
   *  size, the element count is): the data is one flat run of blocks. */
  readonly flat: boolean;
}

export interface GgufHeader {
  readonly version: number;
  /** Key-value pairs in file order, with their GGUF types. */
  readonly metadata: readonly GgufMetadataEntry[];
  readonly tensors: readonly GgufTensorInfo[];
  readonly alignment: number;
  /** Absolute file offset of the data section (the header end, aligned). */
  readonly dataOffset: number;
}

// Smallest encodings, used to refuse counts the file cannot hold before looping over them.
const MIN_KV_BYTES = 8 + 1 + 4 + 1; // key length, 1-byte key, value type, 1-byte value
const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 4 + 8; // name length, 1-byte name, n_dims, type, offset

/** Reads and validates the header of a GGUF file. Throws FormatError on anything bad. */
export async function readGguf(source: ByteSource): Promise<GgufHeader> {
  const r = new ByteReader(source);
  const version = await readPreamble(r);
  const tensorCount = await readCount(r, 'tensor count', MAX_TENSOR_COUNT, MIN_TENSOR_INFO_BYTES);
  const kvCount = await readCount(r, 'metadata key count', MAX_METADATA_COUNT, MIN_KV_BYTES);
  const keyOffsets = new Map<string, number>();
  const metadata = await readMetadata(r, kvCount, keyOffsets);
  const alignment = alignmentOf(r, metadata, keyOffsets.get(GGUF_ALIGNMENT_KEY) ?? 0);
  const infos = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) infos.push(await readTensorInfo(r, names));
  const dataOffset = tensorCount > 0 ? alignUp(r.position, alignment) : r.position;
  if (dataOffset > source.size) {
    throw r.error(`the data section would start at byte ${dataOffset}, past the end of the file (${source.size} bytes)`);
  }
  const tensors = checkTensorData(r, infos, alignment, dataOffset);
  return { version, metadata, tensors, alignment, dataOffset };
}

export function alignUp(offset: number, alignment: number): number {
  return Math.ceil(offset / alignment) * alignment;
}

async function readPreamble(r: ByteReader): Promise<number> {
  await r.need(8, 'GGUF magic and version');
  const magic = r.u32();
  if (magic !== GGUF_MAGIC) {
    throw r.error(`not a GGUF file: starts with ${describeMagic(magic)}, expected 'GGUF'`, 0);
  }
  const version = r.u32();
  if (version === 0) throw r.error('GGUF version 0 is not a valid version', 4);
  // A big-endian v3 file reads as 0x03000000 here (gguf.cpp checks the same bits).
  if ((version & 0xffff) === 0) {
    throw r.error(`GGUF version reads as ${version}: a big-endian file; only little-endian GGUF is supported`, 4);
  }
  if (version === 1) {
    throw r.error('GGUF version 1 (2023, 32-bit counts) is not supported; convert the model again with a current llama.cpp', 4);
  }
  if (!SUPPORTED_GGUF_VERSIONS.includes(version)) {
    throw r.error(`GGUF version ${version} is not supported (this reader knows versions 2 and 3)`, 4);
  }
  return version;
}

function describeMagic(magic: number): string {
  const bytes = [magic & 0xff, (magic >>> 8) & 0xff, (magic >>> 16) & 0xff, magic >>> 24];
  return `'${bytes.map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '?')).join('')}'`;
}

/** A u64 count, refused if above `max` or if the rest of the file cannot hold that many items. */
async function readCount(r: ByteReader, what: string, max: number, minItemBytes: number): Promise<number> {
  await r.need(8, what);
  const at = r.position;
  const count = r.u64();
  if (count > BigInt(max)) throw r.error(`${what} ${count} is above the limit of ${max}`, at);
  const n = Number(count);
  if (n * minItemBytes > r.remaining) {
    throw r.error(`${what} ${n} cannot fit: the ${r.remaining} bytes left in the file hold fewer`, at);
  }
  return n;
}

async function readString(r: ByteReader, what: string, maxBytes = MAX_STRING_BYTES): Promise<string> {
  const fast = readBufferedString(r, what, maxBytes);
  if (fast !== null) return fast;
  await r.need(8, `${what} length`);
  const n = readStringLength(r, what, maxBytes);
  await r.need(n, what);
  return r.text(n);
}

/** The next string if it is already buffered whole, else null (position unchanged).
 *  Lets a 200k-token vocabulary be read without an await per token. */
function readBufferedString(r: ByteReader, what: string, maxBytes: number): string | null {
  if (!r.buffered(8)) return null;
  const at = r.position;
  const n = readStringLength(r, what, maxBytes);
  if (r.buffered(n)) return r.text(n);
  r.seek(at);
  return null;
}

function readStringLength(r: ByteReader, what: string, maxBytes: number): number {
  const at = r.position;
  const n = r.u32(); // u64 as two u32 halves: no BigInt per string
  const high = r.u32();
  if (high !== 0 || n > maxBytes) {
    const length = (BigInt(high) << 32n) | BigInt(n);
    throw r.error(`${what} is ${length} bytes long, above the limit of ${maxBytes}`, at);
  }
  if (n > r.remaining) {
    throw r.error(`${what} is ${n} bytes long but only ${r.remaining} bytes are left in the file`, at);
  }
  return n;
}

async function readValueType(r: ByteReader, what: string): Promise<GgufValueType> {
  await r.need(4, what);
  const at = r.position;
  const type = r.u32();
  if (!isGgufValueType(type)) throw r.error(`${what}: unknown GGUF value type ${type}`, at);
  return type;
}

/** Reads `count` key-value pairs; `keyOffsets` gets where each key starts, for errors. */
async function readMetadata(r: ByteReader, count: number, keyOffsets: Map<string, number>): Promise<GgufMetadataEntry[]> {
  const entries: GgufMetadataEntry[] = [];
  for (let i = 0; i < count; i++) {
    const at = r.position;
    const key = await readString(r, `metadata key ${i}`);
    if (key === '') throw r.error(`metadata key ${i} is empty`, at);
    if (keyOffsets.has(key)) throw r.error(`metadata key '${key}' appears twice`, at);
    keyOffsets.set(key, at);
    const type = await readValueType(r, `metadata '${key}'`);
    const value = await readValue(r, type, key, 0);
    entries.push({ key, type, value });
  }
  return entries;
}

async function readValue(r: ByteReader, type: GgufValueType, key: string, depth: number): Promise<GgufValue> {
  if (type === GGUF_VALUE_TYPE.STRING) return readString(r, `metadata '${key}' string`);
  if (type === GGUF_VALUE_TYPE.ARRAY) return readArray(r, key, depth + 1);
  const size = minEncodedBytes(type);
  if (!r.buffered(size)) await r.need(size, `metadata '${key}' value`);
  return readScalar(r, type);
}

function readScalar(r: ByteReader, type: GgufValueType): number | bigint | boolean {
  switch (type) {
    case GGUF_VALUE_TYPE.UINT8: return r.u8();
    case GGUF_VALUE_TYPE.INT8: return r.i8();
    case GGUF_VALUE_TYPE.UINT16: return r.u16();
    case GGUF_VALUE_TYPE.INT16: return r.i16();
    case GGUF_VALUE_TYPE.UINT32: return r.u32();
    case GGUF_VALUE_TYPE.INT32: return r.i32();
    case GGUF_VALUE_TYPE.FLOAT32: return r.f32();
    case GGUF_VALUE_TYPE.BOOL: return r.u8() !== 0; // as gguf.cpp: any non-zero byte is true
    case GGUF_VALUE_TYPE.UINT64: return r.u64();
    case GGUF_VALUE_TYPE.INT64: return r.i64();
    case GGUF_VALUE_TYPE.FLOAT64: return r.f64();
    default: throw new Error(`not a scalar GGUF type: ${type}`);
  }
}

async function readArray(r: ByteReader, key: string, depth: number): Promise<GgufArray> {
  const at = r.position;
  if (depth > MAX_ARRAY_NESTING) {
    throw r.error(`metadata '${key}': arrays nested ${depth} deep, above the limit of ${MAX_ARRAY_NESTING}`, at);
  }
  const itemType = await readValueType(r, `metadata '${key}' array item type`);
  await r.need(8, `metadata '${key}' array length`);
  const lengthAt = r.position;
  const length = r.u64();
  if (length > BigInt(MAX_ARRAY_LENGTH)) {
    throw r.error(`metadata '${key}': array of ${length} items, above the limit of ${MAX_ARRAY_LENGTH}`, lengthAt);
  }
  const n = Number(length);
  if (n * minEncodedBytes(itemType) > r.remaining) {
    throw r.error(`metadata '${key}': array of ${n} ${ggufValueTypeName(itemType)} items cannot fit in the ${r.remaining} bytes left`, lengthAt);
  }
  const numeric = GGUF_NUMERIC_TYPES.get(itemType);
  if (numeric) return { itemType, items: await readNumericItems(r, numeric.array, n) };
  if (itemType === GGUF_VALUE_TYPE.BOOL) {
    await r.need(n, `metadata '${key}' bool array`);
    return { itemType, items: Array.from(r.bytes(n), (b) => b !== 0) };
  }
  if (itemType === GGUF_VALUE_TYPE.STRING) return { itemType, items: await readStrings(r, key, n) };
  const items: GgufArray[] = [];
  for (let i = 0; i < n; i++) items.push(await readArray(r, key, depth + 1));
  return { itemType, items };
}

async function readStrings(r: ByteReader, key: string, n: number): Promise<string[]> {
  const items = new Array<string>(n);
  const what = `metadata '${key}' item`;
  for (let i = 0; i < n; i++) {
    items[i] = readBufferedString(r, what, MAX_STRING_BYTES) ?? (await readString(r, `${what} ${i}`));
  }
  return items;
}

/** Copies n little-endian items straight into a typed array, a chunk at a time. */
async function readNumericItems(
  r: ByteReader,
  ArrayType: { new (length: number): GgufNumericArray },
  n: number,
): Promise<GgufNumericArray> {
  assertLittleEndianHost();
  const items = new ArrayType(n);
  const target = new Uint8Array(items.buffer);
  for (let done = 0; done < target.length; ) {
    const chunk = Math.min(target.length - done, 1 << 20);
    await r.need(chunk, 'metadata array');
    target.set(r.bytes(chunk), done);
    done += chunk;
  }
  return items;
}

function alignmentOf(r: ByteReader, metadata: readonly GgufMetadataEntry[], at: number): number {
  const entry = metadata.find((e) => e.key === GGUF_ALIGNMENT_KEY);
  if (!entry) return GGUF_DEFAULT_ALIGNMENT;
  // gguf.cpp insists on uint32 and a power of two.
  if (entry.type !== GGUF_VALUE_TYPE.UINT32) {
    throw r.error(`'${GGUF_ALIGNMENT_KEY}' must be uint32, not ${ggufValueTypeName(entry.type)}`, at);
  }
  const alignment = entry.value as number;
  if (alignment === 0 || (alignment & (alignment - 1)) !== 0 || alignment > MAX_GGUF_ALIGNMENT) {
    throw r.error(`'${GGUF_ALIGNMENT_KEY}' is ${alignment}; it must be a power of two up to ${MAX_GGUF_ALIGNMENT}`, at);
  }
  return alignment;
}

interface RawTensorInfo extends Omit<GgufTensorInfo, 'offset' | 'nbytes'> {
  /** Offset as stored (u64), checked later against the data section. */
  readonly storedOffset: bigint;
  /** File position of the stored offset, for errors about the data. */
  readonly offsetAt: number;
  readonly nbytesBig: bigint;
}

async function readTensorInfo(r: ByteReader, names: Set<string>): Promise<RawTensorInfo> {
  const at = r.position;
  const name = await readString(r, 'tensor name');
  if (utf8Length(name) > MAX_TENSOR_NAME_BYTES) {
    throw r.error(`tensor name '${name.slice(0, 80)}…' is longer than ggml's ${MAX_TENSOR_NAME_BYTES} bytes`, at);
  }
  if (names.has(name)) throw r.error(`tensor '${name}' appears twice`, at);
  names.add(name);

  await r.need(4, `tensor '${name}' n_dims`);
  const dimsAt = r.position;
  const nDims = r.u32();
  if (nDims > MAX_DIMS) throw r.error(`tensor '${name}' has ${nDims} dimensions; ggml allows at most ${MAX_DIMS}`, dimsAt);
  await r.need(8 * nDims + 4 + 8, `tensor '${name}' info`);
  const ne: number[] = [];
  for (let d = 0; d < nDims; d++) {
    const dimAt = r.position;
    const dim = r.i64();
    if (dim < 0n) throw r.error(`tensor '${name}' dimension ${d} is negative (${dim})`, dimAt);
    if (dim > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw r.error(`tensor '${name}' dimension ${d} is ${dim}, above 2^53 - 1`, dimAt);
    }
    ne.push(Number(dim));
  }
  const typeAt = r.position;
  const type = lookUpType(r, name, r.u32(), typeAt);
  const size = tensorByteSize(type, ne);
  if (typeof size === 'string') throw r.error(`tensor '${name}' ${size}`, dimsAt);
  const offsetAt = r.position;
  const storedOffset = r.u64();
  return {
    name, ne, type: type.id, typeName: type.name, storedOffset, offsetAt, nbytesBig: size.nbytes, flat: size.flat,
  };
}

function lookUpType(r: ByteReader, name: string, id: number, at: number): GgmlTypeInfo {
  const type = GGML_TYPES.get(id);
  if (type) return type;
  const removed = REMOVED_GGML_TYPES.get(id);
  if (removed) throw r.error(`tensor '${name}' has ggml type ${id}, ${removed}`, at);
  throw r.error(`tensor '${name}' has unknown ggml type ${id}`, at);
}

const INT64_MAX = (1n << 63n) - 1n;
const encoder = new TextEncoder();

function utf8Length(text: string): number {
  return encoder.encode(text).length;
}

/**
 * Bytes of a tensor: ggml_nbytes for whole rows of blocks, i.e. elements / blockSize *
 * typeSize. Old files whose rows are not whole blocks but whose element count is are
 * read as one flat run of blocks. Returns a reason (string) when neither holds.
 */
export function tensorByteSize(type: GgmlTypeInfo, ne: readonly number[]): { nbytes: bigint; flat: boolean } | string {
  const elements = ne.reduce((n, d) => n * BigInt(d), 1n);
  if (elements > INT64_MAX) return `has ${elements} elements, more than int64 can count`;
  const block = BigInt(type.blockSize);
  const nbytes = (elements / block) * BigInt(type.typeSize);
  const rowLength = ne[0] ?? 1;
  if (rowLength % type.blockSize === 0) return { nbytes, flat: false };
  if (elements % block === 0n) return { nbytes, flat: true };
  return `of type ${type.name} has ${elements} elements, not a whole number of ${type.blockSize}-element blocks`;
}

/** ggml's rule: each tensor starts where the previous one's padded data ends. */
function checkTensorData(
  r: ByteReader,
  infos: readonly RawTensorInfo[],
  alignment: number,
  dataOffset: number,
): GgufTensorInfo[] {
  const fileSize = r.source.size;
  let expected = 0n;
  return infos.map(({ storedOffset, offsetAt, nbytesBig, ...info }) => {
    const where = `tensor '${info.name}' data offset ${storedOffset}`;
    if (storedOffset % BigInt(alignment) !== 0n) {
      throw r.error(`${where} is not a multiple of the alignment (${alignment})`, offsetAt);
    }
    if (storedOffset < expected) {
      throw r.error(`${where} overlaps the previous tensor's data, which ends at ${expected}`, offsetAt);
    }
    if (storedOffset > expected) {
      throw r.error(`${where} leaves a gap: ggml expects ${expected}, where the previous tensor's padded data ends`, offsetAt);
    }
    const end = BigInt(dataOffset) + storedOffset + nbytesBig;
    if (end > BigInt(fileSize)) {
      throw r.error(`tensor '${info.name}' data runs past the end of the file (ends at ${end}, file is ${fileSize} bytes)`, offsetAt);
    }
    expected = storedOffset + ((nbytesBig + BigInt(alignment) - 1n) / BigInt(alignment)) * BigInt(alignment);
    return { ...info, offset: Number(storedOffset), nbytes: Number(nbytesBig) };
  });
}
