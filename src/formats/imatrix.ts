// Importance matrices (llama.cpp's `--imatrix FILE`), read as llama-quantize reads them:
// llama.cpp common/imatrix-loader.cpp (common_imatrix_load) and tools/quantize/quantize.cpp
// (load_imatrix), at the pinned commit. Two formats:
// - GGUF (what `llama-imatrix` writes now): per weight NAME two f32 tensors,
//   `NAME.in_sum2` (ne0 x n_mat sums of squared activations) and `NAME.counts` (1 x n_mat),
//   plus the keys imatrix.datasets, imatrix.chunk_count and imatrix.chunk_size, which
//   llama-quantize requires ("missing imatrix metadata"). Importance = sum / count per
//   matrix (count lround-ed to an integer; a zero count gives all-ones).
// - legacy .dat: i32 n_entries; per entry i32 name length, name, i32 ncall, i32 nval,
//   f32[nval]; then optionally i32 chunk count, i32 length, dataset name. Importance =
//   value / ncall (the values as they are when ncall is 0).
// Any file that does not parse as GGUF is read as legacy, as llama.cpp does.
// The quantize.imatrix.* keys llama-quantize adds to its output come from `imatrixKeys`.
import { ByteReader, type ByteSource } from './bytes.ts';
import { FormatError } from './errors.ts';
import { GGML_TYPE, GGUF_MAGIC, GGUF_VALUE_TYPE } from './gguf/constants.ts';
import { type GgufMetadataEntry, ggufEntry, metadataToObject } from './gguf/metadata.ts';
import { readGguf } from './gguf/read.ts';

export interface Imatrix {
  /** Importance per column, by weight name: ne0 values per matrix (ne0 x n_expert for experts). */
  readonly entries: ReadonlyMap<string, Float32Array>;
  /** Datasets the matrix was computed on (imatrix.datasets / the legacy trailer). */
  readonly datasets: readonly string[];
  /** imatrix.chunk_count (0 when unknown). */
  readonly chunkCount: number;
}

/** llama_model_kv_override's val_str is char[128]: llama-quantize keeps 127 bytes of a string. */
const KV_OVERRIDE_STRING_BYTES = 127;
const SUM_SUFFIX = '.in_sum2';
const COUNT_SUFFIX = '.counts';

/** Reads an importance matrix file in either format. Throws FormatError for a bad file. */
export async function readImatrix(source: ByteSource): Promise<Imatrix> {
  const head = await source.read(0, Math.min(4, source.size));
  const isGguf = head.length === 4 && new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true) === GGUF_MAGIC;
  const imatrix = isGguf ? await readGgufImatrix(source) : await readLegacyImatrix(source);
  checkFinite(source.name, imatrix.entries);
  return imatrix;
}

async function readGgufImatrix(source: ByteSource): Promise<Imatrix> {
  const header = await readGguf(source);
  if (header.tensors.length < 1) throw new FormatError(source.name, 0, 'no data in the importance matrix file');
  const meta = metadataToObject(header.metadata);
  const missing = ['imatrix.datasets', 'imatrix.chunk_count', 'imatrix.chunk_size'].filter((k) => !(k in meta));
  if (missing.length > 0) throw new FormatError(source.name, 0, `missing imatrix metadata (${missing.join(', ')})`);
  const datasetsEntry = header.metadata.find((e) => e.key === 'imatrix.datasets');
  const datasets = datasetsEntry?.type === GGUF_VALUE_TYPE.ARRAY && typeof datasetsEntry.value === 'object' && datasetsEntry.value.itemType === GGUF_VALUE_TYPE.STRING
    ? (datasetsEntry.value.items as readonly string[])
    : [];

  const pairs = new Map<string, { sums?: (typeof header.tensors)[number]; counts?: (typeof header.tensors)[number] }>();
  for (const t of header.tensors) {
    const suffix = t.name.endsWith(SUM_SUFFIX) ? SUM_SUFFIX : t.name.endsWith(COUNT_SUFFIX) ? COUNT_SUFFIX : null;
    if (!suffix) continue;
    const name = t.name.slice(0, -suffix.length);
    const pair = pairs.get(name) ?? {};
    if (suffix === SUM_SUFFIX) pair.sums = t;
    else pair.counts = t;
    pairs.set(name, pair);
  }
  const entries = new Map<string, Float32Array>();
  for (const [name, { sums, counts }] of pairs) {
    if (!sums || !counts) throw new FormatError(source.name, 0, `mismatched sums and counts for ${name}`);
    if (sums.type !== GGML_TYPE.F32 || counts.type !== GGML_TYPE.F32) {
      throw new FormatError(source.name, 0, `sums and counts for ${name} must be F32`);
    }
    const sumValues = await readF32(source, header.dataOffset + sums.offset, sums.nbytes);
    const countValues = await readF32(source, header.dataOffset + counts.offset, counts.nbytes);
    if (countValues.length === 0) throw new FormatError(source.name, header.dataOffset + counts.offset, `no counts for ${name}`);
    entries.set(name, normalizeBySum(sumValues, countValues));
  }
  const chunkCount = Number(meta['imatrix.chunk_count']);
  return { entries, datasets, chunkCount: Number.isFinite(chunkCount) ? chunkCount : 0 };
}

/** quantize.cpp load_imatrix (GGUF): sums / count per matrix, in f32; count 0 -> ones. */
export function normalizeBySum(sums: Float32Array, counts: Float32Array): Float32Array {
  const ne0 = Math.trunc(sums.length / counts.length);
  const out = new Float32Array(sums.length);
  for (let j = 0; j < counts.length; j++) {
    const count = Math.fround(lround(counts[j]));
    for (let i = 0; i < ne0; i++) out[j * ne0 + i] = count > 0 ? Math.fround(sums[j * ne0 + i] / count) : 1;
  }
  return out;
}

/** C lround: to nearest, halves away from zero. */
function lround(x: number): number {
  return x >= 0 ? Math.floor(x + 0.5) : -Math.floor(-x + 0.5);
}

async function readF32(source: ByteSource, offset: number, nbytes: number): Promise<Float32Array> {
  const bytes = await source.read(offset, nbytes);
  return new Float32Array(bytes.slice().buffer); // slice: an aligned copy
}

async function readLegacyImatrix(source: ByteSource): Promise<Imatrix> {
  const r = new ByteReader(source);
  await r.need(4, 'entry count');
  const nEntries = r.i32();
  if (nEntries < 1) throw r.error('no data in the importance matrix file (neither GGUF nor a legacy imatrix)', 0);
  const entries = new Map<string, Float32Array>();
  for (let i = 0; i < nEntries; i++) {
    await r.need(4, `name length of entry ${i + 1}`);
    const length = r.i32();
    if (length < 0) throw r.error(`entry ${i + 1}: bad name length ${length}`);
    await r.need(length, `name of entry ${i + 1}`);
    const name = r.text(length).split('\0')[0]; // read as a C string
    await r.need(8, `counts of entry ${i + 1}`);
    const ncall = r.i32();
    const nval = r.i32();
    if (nval < 1) throw r.error(`entry ${i + 1} (${name}): ${nval} values`);
    await r.need(nval * 4, `values of entry ${i + 1} (${name})`);
    const values = new Float32Array(r.bytes(nval * 4).slice().buffer);
    entries.set(name, normalizeByCalls(values, ncall));
  }
  const { chunkCount, dataset } = await readLegacyTrailer(r);
  return { entries, datasets: dataset === null ? [] : [dataset], chunkCount };
}

/** quantize.cpp load_imatrix (legacy): values / ncall in f32; as they are when ncall <= 0. */
function normalizeByCalls(values: Float32Array, ncall: number): Float32Array {
  if (ncall <= 0) return values;
  const n = Math.fround(ncall);
  return values.map((v) => Math.fround(v / n));
}

/** The optional trailer: chunk count, then the dataset name. */
async function readLegacyTrailer(r: ByteReader): Promise<{ chunkCount: number; dataset: string | null }> {
  if (r.remaining < 4) return { chunkCount: 0, dataset: null };
  await r.need(4);
  const chunkCount = r.i32();
  if (r.remaining < 4) return { chunkCount, dataset: null };
  await r.need(4);
  const length = r.i32();
  if (length <= 0 || r.remaining < length) return { chunkCount, dataset: null };
  await r.need(length);
  return { chunkCount, dataset: r.text(length).split('\0')[0] };
}

/** llama_model_quantize_impl refuses NaN or infinite importance. */
function checkFinite(file: string, entries: ReadonlyMap<string, Float32Array>): void {
  for (const [name, values] of entries) {
    const bad = values.find((v) => !Number.isFinite(v));
    if (bad !== undefined) throw new FormatError(file, 0, `imatrix contains non-finite value ${bad} (entry ${name})`);
  }
}

/** A C string cut to `maxBytes` bytes (strncpy into char[128]), at a character boundary. */
function truncateUtf8(text: string, maxBytes: number): string {
  const encoder = new TextEncoder();
  if (encoder.encode(text).length <= maxBytes) return text;
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const n = encoder.encode(ch).length;
    if (bytes + n > maxBytes) break;
    out += ch;
    bytes += n;
  }
  return out;
}

/**
 * The keys llama-quantize (tools/quantize/quantize.cpp) adds when given an imatrix, in its
 * order, as kv overrides applied after general.file_type: the file name as given on the
 * command line, the first dataset, the number of entries, the chunk count (when > 0).
 */
export function imatrixKeys(imatrix: Imatrix, fileArgument: string): GgufMetadataEntry[] {
  const { STRING, UINT32 } = GGUF_VALUE_TYPE;
  const keys = [ggufEntry('quantize.imatrix.file', STRING, truncateUtf8(fileArgument, KV_OVERRIDE_STRING_BYTES))];
  if (imatrix.datasets.length > 0) {
    keys.push(ggufEntry('quantize.imatrix.dataset', STRING, truncateUtf8(imatrix.datasets[0], KV_OVERRIDE_STRING_BYTES)));
  }
  keys.push(ggufEntry('quantize.imatrix.entries_count', UINT32, imatrix.entries.size));
  if (imatrix.chunkCount > 0) keys.push(ggufEntry('quantize.imatrix.chunks_count', UINT32, imatrix.chunkCount));
  return keys;
}
