// safetensors reader: u64 header length, a JSON object header, then the data section.
// Validity rules follow the reference implementation (huggingface/safetensors,
// safetensors/src/tensor.rs: read_metadata and Metadata::validate): header at most
// 100 MB of UTF-8 JSON; tensors, sorted by offset, tile the data section exactly (no
// gaps, no overlap, nothing after the last one); each tensor's byte count equals its
// element count times the dtype's bit size / 8. Sharded models pair shard files with
// model.safetensors.index.json (transformers' layout).

import { type ByteSource, readWhole } from './bytes.ts';
import { FormatError } from './errors.ts';
import { MAX_JSON_FILE_BYTES, MAX_SAFETENSORS_DIMS, MAX_SAFETENSORS_HEADER_BYTES } from './limits.ts';

/** Every dtype the format defines, with its size in bits (tensor.rs Dtype::bitsize). */
export const SAFETENSORS_DTYPE_BITS: ReadonlyMap<string, number> = new Map([
  ['BOOL', 8], ['F4', 4], ['F6_E2M3', 6], ['F6_E3M2', 6], ['U8', 8], ['I8', 8],
  ['F8_E5M2', 8], ['F8_E4M3', 8], ['F8_E8M0', 8], ['I16', 16], ['U16', 16],
  ['F16', 16], ['BF16', 16], ['I32', 32], ['U32', 32], ['F32', 32], ['C64', 64],
  ['F64', 64], ['I64', 64], ['U64', 64],
]);

export const SAFETENSORS_METADATA_KEY = '__metadata__';
export const SAFETENSORS_INDEX_NAME = 'model.safetensors.index.json';

export interface SafetensorsTensorInfo {
  readonly name: string;
  readonly dtype: string;
  /** Row-major, outermost first. */
  readonly shape: readonly number[];
  /** Absolute offset in the file. */
  readonly offset: number;
  readonly nbytes: number;
}

export interface SafetensorsHeader {
  /** `__metadata__` (string -> string), or null when absent. */
  readonly metadata: Readonly<Record<string, string>> | null;
  /** In data order (by offset). */
  readonly tensors: readonly SafetensorsTensorInfo[];
  /** Absolute offset of the data section: 8 + header length. */
  readonly dataOffset: number;
}

const HEADER_START = 8;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Reads and validates one safetensors file's header. Throws FormatError on anything bad. */
export async function readSafetensors(source: ByteSource): Promise<SafetensorsHeader> {
  const fail = (offset: number, reason: string) => new FormatError(source.name, offset, reason);
  if (source.size < HEADER_START) {
    throw fail(0, `file is ${source.size} bytes, too short for a safetensors header (8-byte length)`);
  }
  const length = new DataView((await source.read(0, 8)).slice().buffer).getBigUint64(0, true);
  if (length > BigInt(MAX_SAFETENSORS_HEADER_BYTES)) {
    throw fail(0, `header length ${length} is above the limit of ${MAX_SAFETENSORS_HEADER_BYTES} bytes`);
  }
  const headerBytes = Number(length);
  if (HEADER_START + headerBytes > source.size) {
    throw fail(0, `header length ${headerBytes} runs past the end of the file (${source.size} bytes)`);
  }
  const text = decodeHeader(await source.read(HEADER_START, headerBytes), fail);
  const json = parseJsonObject(text, (reason) => fail(HEADER_START, `header ${reason}`));
  const locate = (name: string) => HEADER_START + byteIndexOfKey(text, name);

  let metadata: Record<string, string> | null = null;
  const entries: SafetensorsTensorInfo[] = [];
  const dataOffset = HEADER_START + headerBytes;
  for (const [name, entry] of Object.entries(json)) {
    if (name === SAFETENSORS_METADATA_KEY) {
      metadata = readMetadataEntry(entry, (reason) => fail(locate(name), reason));
    } else {
      entries.push(readTensorEntry(name, entry, dataOffset, (reason) => fail(locate(name), reason)));
    }
  }
  const tensors = checkDataLayout(entries, source.size - dataOffset, dataOffset, (name, reason) =>
    fail(name === null ? dataOffset : locate(name), reason),
  );
  return { metadata, tensors, dataOffset };
}

function decodeHeader(bytes: Uint8Array, fail: (offset: number, reason: string) => FormatError): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw fail(HEADER_START, 'header is not valid UTF-8');
  }
}

/** JSON.parse, refusing anything that is not a JSON object. */
export function parseJsonObject(text: string, fail: (reason: string) => FormatError): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw fail(`is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(json)) throw fail(`is ${describeJson(json)}, not a JSON object`);
  return json;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** Byte offset of `"name"` in the header text (0 if written with escapes we cannot find). */
function byteIndexOfKey(text: string, name: string): number {
  const index = text.indexOf(JSON.stringify(name));
  return index < 0 ? 0 : new TextEncoder().encode(text.slice(0, index)).length;
}

function readMetadataEntry(entry: unknown, fail: (reason: string) => FormatError): Record<string, string> {
  if (!isPlainObject(entry)) throw fail(`'${SAFETENSORS_METADATA_KEY}' is ${describeJson(entry)}, not an object`);
  for (const [key, value] of Object.entries(entry)) {
    // The reference reads it as HashMap<String, String>.
    if (typeof value !== 'string') throw fail(`'${SAFETENSORS_METADATA_KEY}.${key}' is ${describeJson(value)}, not a string`);
  }
  return entry as Record<string, string>;
}

function isIndex(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function readTensorEntry(
  name: string,
  entry: unknown,
  dataOffset: number,
  fail: (reason: string) => FormatError,
): SafetensorsTensorInfo {
  if (!isPlainObject(entry)) throw fail(`tensor '${name}' is ${describeJson(entry)}, not an object`);
  const { dtype, shape, data_offsets: offsets } = entry;
  if (typeof dtype !== 'string') throw fail(`tensor '${name}' has no dtype string`);
  if (!SAFETENSORS_DTYPE_BITS.has(dtype)) throw fail(`tensor '${name}' has unknown dtype '${dtype}'`);
  if (!Array.isArray(shape) || shape.length > MAX_SAFETENSORS_DIMS || !shape.every(isIndex)) {
    throw fail(`tensor '${name}' shape must be a list of at most ${MAX_SAFETENSORS_DIMS} integers in [0, 2^53)`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex) || offsets[0] > offsets[1]) {
    throw fail(`tensor '${name}' data_offsets must be [begin, end] with 0 <= begin <= end < 2^53`);
  }
  const [begin, end] = offsets as number[];
  return { name, dtype, shape: shape as number[], offset: dataOffset + begin, nbytes: end - begin };
}

/** Byte size from shape and dtype, or a reason when it overflows or splits a byte. */
export function safetensorsByteSize(dtype: string, shape: readonly number[]): bigint | string {
  const bits = BigInt(SAFETENSORS_DTYPE_BITS.get(dtype)!);
  const totalBits = shape.reduce((n, d) => n * BigInt(d), 1n) * bits;
  if (totalBits > BigInt(Number.MAX_SAFE_INTEGER)) return `shape [${shape}] of ${dtype} is too large (over 2^53 bits)`;
  if (totalBits % 8n !== 0n) return `shape [${shape}] of ${dtype} does not end on a byte boundary`;
  return totalBits / 8n;
}

function checkDataLayout(
  entries: SafetensorsTensorInfo[],
  dataBytes: number,
  dataOffset: number,
  fail: (name: string | null, reason: string) => FormatError,
): SafetensorsTensorInfo[] {
  const sorted = [...entries].sort((a, b) => a.offset - b.offset || a.nbytes - b.nbytes);
  let end = 0;
  for (const t of sorted) {
    const begin = t.offset - dataOffset;
    const expected = safetensorsByteSize(t.dtype, t.shape);
    if (typeof expected === 'string') throw fail(t.name, `tensor '${t.name}' ${expected}`);
    if (BigInt(t.nbytes) !== expected) {
      throw fail(t.name, `tensor '${t.name}' has ${t.nbytes} bytes of data but shape [${t.shape}] of ${t.dtype} needs ${expected}`);
    }
    if (begin < end) throw fail(t.name, `tensor '${t.name}' data [${begin}, ${begin + t.nbytes}) overlaps the previous tensor's, which ends at ${end}`);
    if (begin > end) throw fail(t.name, `tensor '${t.name}' data starts at ${begin}, leaving a gap after the previous tensor's end at ${end}`);
    if (begin + t.nbytes > dataBytes) {
      throw fail(t.name, `tensor '${t.name}' data runs past the end of the file (ends at ${dataOffset + begin + t.nbytes}, file is ${dataOffset + dataBytes} bytes)`);
    }
    end = begin + t.nbytes;
  }
  if (end !== dataBytes) {
    throw fail(null, `${dataBytes - end} bytes after the last tensor's data; safetensors data must end the file`);
  }
  return sorted;
}

// ---- sharded models ---------------------------------------------------------------

export interface SafetensorsIndex {
  /** The index's "metadata" object (e.g. total_size), or {}. */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** tensor name -> shard file name, in file order. */
  readonly weightMap: ReadonlyMap<string, string>;
  /** Byte offset of a tensor's entry in the index file, for errors. */
  readonly offsetOf: (tensorName: string) => number;
}

/** Reads model.safetensors.index.json. */
export async function readSafetensorsIndex(source: ByteSource): Promise<SafetensorsIndex> {
  const { json, text } = await readJson(source, 'index file');
  const offsetOf = (name: string) => byteIndexOfKey(text, name);
  const fail = (reason: string, offset = 0) => new FormatError(source.name, offset, reason);
  const { metadata = {}, weight_map: weightMap } = json;
  if (!isPlainObject(metadata)) throw fail(`"metadata" is ${describeJson(metadata)}, not an object`);
  if (!isPlainObject(weightMap)) throw fail(`"weight_map" is missing or not an object`);
  const map = new Map<string, string>();
  for (const [name, file] of Object.entries(weightMap)) {
    if (typeof file !== 'string') throw fail(`"weight_map" entry '${name}' is ${describeJson(file)}, not a file name`, offsetOf(name));
    map.set(name, file);
  }
  return { metadata, weightMap: map, offsetOf };
}

/** A small JSON side file (config.json, the index) read whole and parsed as an object. */
export async function readJsonFile(source: ByteSource, what: string): Promise<Record<string, unknown>> {
  return (await readJson(source, what)).json;
}

async function readJson(source: ByteSource, what: string): Promise<{ json: Record<string, unknown>; text: string }> {
  const bytes = await readWhole(source, MAX_JSON_FILE_BYTES, what);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new FormatError(source.name, 0, `${what} is not valid UTF-8`);
  }
  return { json: parseJsonObject(text, (reason) => new FormatError(source.name, 0, `${what} ${reason}`)), text };
}

export interface Shard {
  readonly source: ByteSource;
  readonly header: SafetensorsHeader;
}

/**
 * Checks shards against their index: every index entry must be in the shard it names,
 * every shard tensor must be listed under its shard, and every shard must be listed.
 * Without an index, tensor names must be unique across shards.
 */
export function checkShards(shards: readonly Shard[], index: { source: ByteSource; index: SafetensorsIndex } | null): void {
  const namesByFile = new Map(shards.map((s) => [s.source.name, new Set(s.header.tensors.map((t) => t.name))]));
  if (index) {
    const { weightMap, offsetOf } = index.index;
    const indexFail = (name: string, reason: string) => new FormatError(index.source.name, offsetOf(name), reason);
    for (const [name, file] of weightMap) {
      const names = namesByFile.get(file);
      if (!names) throw indexFail(name, `tensor '${name}' is in shard '${file}', which was not given`);
      if (!names.has(name)) throw indexFail(name, `tensor '${name}' is not in shard '${file}', where the index puts it`);
    }
    const listedFiles = new Set(weightMap.values());
    for (const { source, header } of shards) {
      if (!listedFiles.has(source.name)) throw new FormatError(source.name, 0, `shard is not named in ${index.source.name}`);
      for (const t of header.tensors) {
        const file = weightMap.get(t.name);
        if (file !== source.name) {
          throw new FormatError(source.name, t.offset, `tensor '${t.name}' is ${file ? `listed under '${file}'` : 'not listed'} in ${index.source.name}`);
        }
      }
    }
    return;
  }
  const seen = new Map<string, string>();
  for (const { source, header } of shards) {
    for (const t of header.tensors) {
      const other = seen.get(t.name);
      if (other) throw new FormatError(source.name, t.offset, `tensor '${t.name}' is also in '${other}'`);
      seen.set(t.name, source.name);
    }
  }
}
