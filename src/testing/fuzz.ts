// A seeded mutation fuzzer for the two model parsers (GGUF and safetensors), shared by the
// bounded run in the test suite (src/formats/fuzz.test.ts) and the long run (`npm run fuzz`,
// src/testing/fuzz-run.ts). Seeds are the fixture files and hand-built corner cases; each
// input is a seed damaged by one to a few mutations, some blind (bits, bytes, cuts, splices),
// some aimed at the fields that drive allocation and seeking (GGUF counts, lengths, dims,
// types and offsets; the safetensors JSON's shapes, dtypes and data_offsets).
//
// The contract checked for every input (house rule 6): it parses, or it throws a FormatError
// that names the file, a byte offset inside it and a reason; never another exception, a hang
// or memory growth out of proportion to the file. What a user sees after a load is checked
// too: the summary the UI shows and every tensor read back (as f32 where it can be decoded).
// Node only (test support).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type ByteSource, memorySource } from '../formats/bytes.ts';
import { FormatError } from '../formats/errors.ts';
import { GGML_TYPE, GGUF_VALUE_TYPE as T } from '../formats/gguf/constants.ts';
import { ggufArray, ggufEntry } from '../formats/gguf/metadata.ts';
import { planGguf, writeGguf } from '../formats/gguf/write.ts';
import { loadModel, readTensorBytes, readTensorF32 } from '../formats/model.ts';
import { FIXTURE_MODELS, collect, rawSafetensors } from '../formats/testing.ts';
import { summarizeModel } from '../engine/summary.ts';
import { inspectJson, inspectText } from '../cli/inspect.ts';
import { toJson } from '../cli/json.ts';
import { rng } from './random.ts';
import { dequantizeGgml, quantTypeByGgmlId } from '../quant/types.ts';

// ---- random numbers ---------------------------------------------------------------------

type Random = () => number;
const int = (r: Random, n: number) => Math.floor(r() * n);
const pick = <X>(r: Random, items: readonly X[]): X => items[int(r, items.length)];

// ---- seeds ------------------------------------------------------------------------------

export type SeedFormat = 'gguf' | 'safetensors';

export interface Seed {
  readonly name: string;
  readonly format: SeedFormat;
  readonly bytes: Uint8Array;
  /** GGUF: where the header's numeric fields are (to aim mutations). */
  readonly fields: readonly Field[];
}

export interface Field {
  readonly at: number;
  readonly size: 4 | 8;
}

/** The fixture models (../shared/fixtures/models, shards included). */
function fixtureSeeds(): Seed[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.(gguf|safetensors)$/.test(name)) files.push(path);
    }
  };
  walk(FIXTURE_MODELS);
  return files.sort().map((path) => seed(path.slice(FIXTURE_MODELS.length + 1), new Uint8Array(readFileSync(path))));
}

function seed(name: string, bytes: Uint8Array): Seed {
  const format: SeedFormat = name.endsWith('.gguf') ? 'gguf' : 'safetensors';
  return { name, format, bytes, fields: format === 'gguf' ? ggufFields(bytes) : [] };
}

/** Hand-built corner cases: every GGUF value type, nesting, empty things, alignment, v2, 4-D
 *  and zero-element tensors, block types; safetensors empty, metadata-only, sub-byte dtypes. */
async function cornerSeeds(): Promise<Seed[]> {
  const gguf = async (name: string, input: Parameters<typeof planGguf>[0]) => {
    const layout = planGguf(input);
    return seed(name, await collect(writeGguf(layout, (t) => Uint8Array.from({ length: t.nbytes }, (_, i) => (i * 37 + 11) & 0xff))));
  };
  const allValues = [
    ggufEntry('general.architecture', T.STRING, 'llama'),
    ggufEntry('u8', T.UINT8, 255), ggufEntry('i8', T.INT8, -1), ggufEntry('u16', T.UINT16, 65535),
    ggufEntry('i16', T.INT16, -2), ggufEntry('u32', T.UINT32, 7), ggufEntry('i32', T.INT32, -7),
    ggufEntry('f32', T.FLOAT32, 1.5), ggufEntry('bool', T.BOOL, true), ggufEntry('u64', T.UINT64, 1n << 40n),
    ggufEntry('i64', T.INT64, -(1n << 40n)), ggufEntry('f64', T.FLOAT64, Math.PI), ggufEntry('empty', T.STRING, ''),
    ggufEntry('bools', T.ARRAY, ggufArray(T.BOOL, [true, false, true])),
    ggufEntry('strings', T.ARRAY, ggufArray(T.STRING, ['', 'a', 'ü', '<s>'])),
    ggufEntry('none', T.ARRAY, ggufArray(T.INT32, new Int32Array(0))),
    ggufEntry('nested', T.ARRAY, ggufArray(T.ARRAY, [ggufArray(T.ARRAY, [ggufArray(T.UINT16, new Uint16Array([1, 2]))])])),
  ];
  return [
    await gguf('corner-empty.gguf', { metadata: [], tensors: [] }),
    await gguf('corner-values.gguf', { metadata: allValues, tensors: [{ name: 'x', type: GGML_TYPE.F32, ne: [2] }] }),
    await gguf('corner-aligned.gguf', {
      metadata: [ggufEntry('general.alignment', T.UINT32, 64)],
      tensors: [
        { name: 'a', type: GGML_TYPE.F16, ne: [3] },
        { name: 'b', type: GGML_TYPE.Q8_0, ne: [32, 2] },
      ],
    }),
    await gguf('corner-v2.gguf', { version: 2, metadata: allValues.slice(0, 4), tensors: [{ name: 'w', type: GGML_TYPE.BF16, ne: [4, 1, 1, 2] }] }),
    await gguf('corner-blocks.gguf', {
      metadata: [ggufEntry('general.architecture', T.STRING, 'llama')],
      tensors: [
        { name: 'k', type: GGML_TYPE.Q4_K, ne: [256] },
        { name: 'i', type: GGML_TYPE.IQ4_NL, ne: [32] },
        { name: 'zero', type: GGML_TYPE.F32, ne: [0, 4] },
        { name: 'q6', type: GGML_TYPE.Q6_K, ne: [256, 1, 1, 1] },
        { name: 'scalar', type: GGML_TYPE.F32, ne: [] },
      ],
    }),
    seed('corner-empty.safetensors', rawSafetensors({}, 0)),
    seed('corner-meta-only.safetensors', rawSafetensors({ __metadata__: { format: 'pt', '': '' } }, 0)),
    seed('corner-dtypes.safetensors', rawSafetensors({
      f4: { dtype: 'F4', shape: [2, 2], data_offsets: [0, 2] },
      f6: { dtype: 'F6_E2M3', shape: [4], data_offsets: [2, 5] },
      e8: { dtype: 'F8_E8M0', shape: [3], data_offsets: [5, 8] },
      z: { dtype: 'F32', shape: [0, 7], data_offsets: [8, 8] },
      s: { dtype: 'I64', shape: [], data_offsets: [8, 16] },
      b: { dtype: 'BOOL', shape: [2], data_offsets: [16, 18] },
    }, 18)),
    seed('corner-padded.safetensors', rawSafetensors('{"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}        ', 4)),
  ];
}

let seedCache: Promise<Seed[]> | null = null;

/** Every seed: fixtures first, then the corner cases. */
export function allSeeds(): Promise<Seed[]> {
  seedCache ??= cornerSeeds().then((corners) => [...fixtureSeeds(), ...corners]);
  return seedCache;
}

/** Positions of a valid GGUF header's numeric fields: counts, lengths, value and tensor
 *  types, dims and offsets (the walk stops quietly where a seed is not what it expects). */
export function ggufFields(bytes: Uint8Array): Field[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fields: Field[] = [{ at: 4, size: 4 }, { at: 8, size: 8 }, { at: 16, size: 8 }];
  let p = 24;
  const u32 = () => { fields.push({ at: p, size: 4 }); p += 4; return view.getUint32(p - 4, true); };
  const u64 = () => { fields.push({ at: p, size: 8 }); p += 8; return Number(view.getBigUint64(p - 8, true)); };
  const str = () => {
    const n = u64(); // (not `p += u64()`: that adds to the old p)
    p += n;
  };
  const scalar: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const value = (type: number): void => {
    if (type === T.STRING) return str();
    if (type === T.ARRAY) {
      const item = u32();
      const n = u64();
      if (scalar[item] !== undefined) p += n * scalar[item];
      else if (n > bytes.length) return;
      else for (let i = 0; i < n; i++) value(item);
      return;
    }
    p += scalar[type] ?? 0;
  };
  try {
    const tensors = Number(view.getBigUint64(8, true));
    const kvs = Number(view.getBigUint64(16, true));
    for (let i = 0; i < kvs; i++) {
      str();
      value(u32());
    }
    for (let i = 0; i < tensors; i++) {
      str();
      const dims = u32();
      for (let d = 0; d < dims; d++) u64();
      u32();
      u64();
    }
  } catch {
    // a RangeError past the end: keep the fields found so far
  }
  return fields.filter((f) => f.at + f.size <= bytes.length);
}

// ---- mutations ----------------------------------------------------------------------------

const INTERESTING_U64: readonly bigint[] = [
  0n, 1n, 2n, 3n, 4n, 5n, 7n, 8n, 16n, 31n, 32n, 33n, 63n, 64n, 255n, 256n, 0x7fffn, 0xffffn, 0x10000n,
  0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n, (1n << 53n) - 1n, 1n << 53n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n,
];

/** An "interesting" value for a field, including ones near the file's own size. */
function interesting(r: Random, size: number): bigint {
  const near = [BigInt(size), BigInt(size) - 1n, BigInt(size) + 1n, BigInt(size) * 2n, BigInt(Math.max(0, size - 24))];
  const v = r() < 0.8 ? pick(r, INTERESTING_U64) : pick(r, near);
  return r() < 0.1 ? BigInt.asUintN(64, -v) : v;
}

function writeField(bytes: Uint8Array, at: number, size: 4 | 8, value: bigint): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (size === 8) view.setBigUint64(at, BigInt.asUintN(64, value), true);
  else view.setUint32(at, Number(BigInt.asUintN(32, value)), true);
}

export type MutationName =
  | 'bit' | 'byte' | 'field' | 'random-field' | 'truncate' | 'delete' | 'insert' | 'duplicate' | 'splice' | 'json';

/** Applies one mutation; returns the new bytes (may be the same array, changed in place). */
function mutateOnce(r: Random, s: Seed, bytes: Uint8Array, seeds: readonly Seed[]): { bytes: Uint8Array; name: MutationName } {
  const n = bytes.length;
  // Most of each file is tensor data, where a change can only alter values: aim at the header.
  const headerEnd = Math.min(n, s.format === 'gguf' ? (s.fields.at(-1)?.at ?? 64) + 64 : 8 + safetensorsHeaderLength(s.bytes));
  const where = () => (r() < 0.85 ? int(r, Math.max(1, headerEnd)) : int(r, Math.max(1, n)));
  const choices: MutationName[] = s.format === 'gguf'
    ? ['bit', 'byte', 'field', 'field', 'field', 'random-field', 'truncate', 'delete', 'insert', 'duplicate', 'splice']
    : ['bit', 'byte', 'random-field', 'truncate', 'delete', 'insert', 'duplicate', 'splice', 'json', 'json', 'json', 'json'];
  const name = pick(r, choices);
  switch (name) {
    case 'bit': {
      if (n === 0) return { bytes, name };
      const at = Math.min(where(), n - 1);
      bytes[at] ^= 1 << int(r, 8);
      return { bytes, name };
    }
    case 'byte': {
      if (n === 0) return { bytes, name };
      const at = Math.min(where(), n - 1);
      bytes[at] = pick(r, [0, 1, 0x7f, 0x80, 0xff, int(r, 256)]);
      return { bytes, name };
    }
    case 'field': {
      const fields = s.fields.filter((f) => f.at + f.size <= n);
      if (fields.length === 0) return { bytes, name };
      const f = pick(r, fields);
      writeField(bytes, f.at, f.size, interesting(r, n));
      return { bytes, name };
    }
    case 'random-field': {
      const size = r() < 0.5 ? 4 : 8;
      if (n < size) return { bytes, name };
      writeField(bytes, Math.min(where(), n - size), size, interesting(r, n));
      return { bytes, name };
    }
    case 'truncate':
      return { bytes: bytes.slice(0, r() < 0.7 ? where() : int(r, n + 1)), name };
    case 'delete': {
      const at = where();
      const len = 1 + int(r, r() < 0.8 ? 16 : 4096);
      return { bytes: concat(bytes.subarray(0, at), bytes.subarray(Math.min(n, at + len))), name };
    }
    case 'insert': {
      const at = where();
      const extra = Uint8Array.from({ length: 1 + int(r, 32) }, () => (r() < 0.5 ? 0 : int(r, 256)));
      return { bytes: concat(bytes.subarray(0, at), extra, bytes.subarray(at)), name };
    }
    case 'duplicate': {
      const at = where();
      const len = 1 + int(r, 256);
      return { bytes: concat(bytes.subarray(0, at + len), bytes.subarray(at)), name };
    }
    case 'splice': {
      const other = pick(r, seeds.filter((x) => x.format === s.format));
      const cut = where();
      return { bytes: concat(bytes.subarray(0, cut), other.bytes.subarray(Math.min(other.bytes.length, int(r, other.bytes.length)))), name };
    }
    case 'json':
      return { bytes: mutateSafetensorsJson(r, bytes), name };
  }
}

function safetensorsHeaderLength(bytes: Uint8Array): number {
  if (bytes.length < 8) return 0;
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  return n > BigInt(bytes.length) ? bytes.length : Number(n);
}

const JSON_NUMBERS: readonly unknown[] = [
  0, 1, -1, 2, 7, 8, 1.5, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 64, 1e300, -0, '3', null, true, [], {},
];
const DTYPES = ['F32', 'F16', 'BF16', 'F64', 'I8', 'U8', 'BOOL', 'F4', 'F6_E3M2', 'F8_E4M3', 'F8_E8M0', 'C64', 'Q4_0', '', 'f32'];

/** Re-encodes the header JSON after a structural change (the data section is kept). */
function mutateSafetensorsJson(r: Random, bytes: Uint8Array): Uint8Array {
  const length = safetensorsHeaderLength(bytes);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length))) as Record<string, unknown>;
  } catch {
    return bytes;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return bytes;
  const names = Object.keys(json);
  const name = names.length ? pick(r, names) : 'x';
  if (typeof json[name] !== 'object' || json[name] === null) json[name] = {};
  const entry = json[name] as Record<string, unknown>;
  const action = int(r, 9);
  if (action === 0) entry.dtype = pick(r, DTYPES);
  else if (action === 1 && Array.isArray(entry.shape)) {
    const shape = entry.shape as unknown[];
    if (shape.length && r() < 0.7) shape[int(r, shape.length)] = pick(r, JSON_NUMBERS);
    else shape.push(pick(r, JSON_NUMBERS));
  } else if (action === 2 && Array.isArray(entry.data_offsets)) {
    (entry.data_offsets as unknown[])[int(r, 2)] = pick(r, JSON_NUMBERS);
  } else if (action === 3) delete entry[pick(r, ['dtype', 'shape', 'data_offsets'])];
  else if (action === 4) json[`${name}.copy`] = structuredClone(entry);
  else if (action === 5) json[name] = pick(r, JSON_NUMBERS);
  else if (action === 6) json.__metadata__ = pick(r, [{ a: 'b' }, { a: 1 }, [], 'x', null]);
  else if (action === 7 && Array.isArray(entry.data_offsets)) entry.data_offsets = [...(entry.data_offsets as unknown[])].reverse();
  else entry.shape = Array.from({ length: int(r, 70) }, () => 1);
  const text = new TextEncoder().encode(JSON.stringify(json));
  const out = new Uint8Array(8 + text.length + Math.max(0, bytes.length - 8 - length));
  const claimed = r() < 0.9 ? BigInt(text.length) : interesting(r, out.length);
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, claimed), true);
  out.set(text, 8);
  out.set(bytes.subarray(8 + length), 8 + text.length);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Input number `index` of a run seeded with `runSeed`: reproducible from the two numbers. */
export function makeInput(seeds: readonly Seed[], runSeed: number, index: number): { name: string; seed: string; bytes: Uint8Array; mutations: MutationName[] } {
  const r = rng((runSeed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  const s = pick(r, seeds);
  let bytes: Uint8Array = s.bytes.slice();
  const mutations: MutationName[] = [];
  const count = 1 + int(r, r() < 0.7 ? 2 : 6);
  for (let i = 0; i < count; i++) {
    const m = mutateOnce(r, s, bytes, seeds);
    bytes = m.bytes;
    mutations.push(m.name);
  }
  const ext = s.format === 'gguf' ? 'gguf' : 'safetensors';
  return { name: `fuzz-${index}.${ext}`, seed: s.name, bytes, mutations };
}

// ---- the contract -------------------------------------------------------------------------

/** Memory a parse may add, at most: a fixed allowance plus this many times the file. */
export const PARSE_MEMORY_FIXED_BYTES = 32 << 20;
export const PARSE_MEMORY_PER_FILE_BYTE = 8;
/** An input of these small files taking longer than this is a finding (a near-hang). */
export const SLOW_INPUT_MS = 5_000;

export type Outcome =
  | { kind: 'parsed' }
  | { kind: 'format-error'; offset: number; reason: string }
  | { kind: 'finding'; problem: 'exception' | 'bad-error' | 'memory' | 'slow'; message: string };

function memoryNow(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/**
 * Loads one input as the app does (recognise, parse, summarize for the UI, read every tensor
 * back) and says how it went. A finding is a broken contract; everything else is fine.
 */
export async function checkInput(bytes: Uint8Array, name: string, load: (source: ByteSource) => Promise<void> = loadAsTheAppDoes): Promise<Outcome> {
  const base = memoryNow();
  let peak = 0;
  let largestRead = 0;
  const sample = () => {
    peak = Math.max(peak, memoryNow() - base);
  };
  const inner = memorySource(bytes, name);
  const source: ByteSource = {
    name,
    size: bytes.length,
    read(offset, length) {
      sample();
      largestRead = Math.max(largestRead, length);
      return inner.read(offset, length);
    },
  };
  const t0 = performance.now();
  let outcome: Outcome;
  try {
    await load(source);
    sample();
    outcome = { kind: 'parsed' };
  } catch (error) {
    outcome = classify(error, name, bytes.length);
  }
  const ms = performance.now() - t0;
  if (outcome.kind !== 'finding' && largestRead > bytes.length) {
    return { kind: 'finding', problem: 'memory', message: `asked the file for ${largestRead} bytes at once; it has ${bytes.length}` };
  }
  const limit = PARSE_MEMORY_FIXED_BYTES + PARSE_MEMORY_PER_FILE_BYTE * bytes.length;
  if (outcome.kind !== 'finding' && peak > limit) {
    return { kind: 'finding', problem: 'memory', message: `parsing grew memory by ${peak} bytes (limit ${limit} for a ${bytes.length}-byte file)` };
  }
  if (outcome.kind !== 'finding' && ms > SLOW_INPUT_MS) {
    return { kind: 'finding', problem: 'slow', message: `took ${ms.toFixed(0)} ms` };
  }
  return outcome;
}

/** Recognise and parse, summarize for the UI and `inspect` (text and JSON), read every tensor back (as f32 where it decodes). */
async function loadAsTheAppDoes(source: ByteSource): Promise<void> {
  const model = await loadModel([source]);
  summarizeModel(model);
  inspectText(model);
  toJson(inspectJson(model));
  for (const t of model.tensors) {
    await readTensorBytes(model, t);
    const decodable = t.ggmlType === undefined ? !t.dtype.startsWith('F6') && t.dtype !== 'C64' : quantTypeByGgmlId(t.ggmlType) !== undefined;
    if (decodable) await readTensorF32(model, t, { dequantize: dequantizeGgml });
  }
}

function classify(error: unknown, name: string, size: number): Outcome {
  if (!(error instanceof FormatError)) {
    const e = error as Error;
    return { kind: 'finding', problem: 'exception', message: `${e?.name ?? typeof error}: ${e?.message ?? String(error)}\n${e?.stack ?? ''}` };
  }
  const { file, offset, reason } = error;
  if (file !== name || !Number.isSafeInteger(offset) || offset < 0 || offset > size || !reason) {
    return { kind: 'finding', problem: 'bad-error', message: `FormatError without a proper place: file '${file}', offset ${offset}, reason '${reason}'` };
  }
  return { kind: 'format-error', offset, reason };
}

export interface FuzzTally {
  inputs: number;
  parsed: number;
  formatErrors: number;
  /** Distinct reasons (numbers stripped), for a sense of what was reached. */
  reasons: Map<string, number>;
  findings: { index: number; seed: string; mutations: MutationName[]; name: string; outcome: Outcome & { kind: 'finding' } }[];
}

export function emptyTally(): FuzzTally {
  return { inputs: 0, parsed: 0, formatErrors: 0, reasons: new Map(), findings: [] };
}

/** Runs inputs [from, to) of run `runSeed`, adding to `tally`; stops early at `deadline` (ms since epoch). */
export async function fuzzRange(seeds: readonly Seed[], runSeed: number, from: number, to: number, tally: FuzzTally, deadline = Infinity): Promise<void> {
  for (let i = from; i < to && Date.now() < deadline; i++) {
    const input = makeInput(seeds, runSeed, i);
    const outcome = await checkInput(input.bytes, input.name);
    tally.inputs++;
    if (outcome.kind === 'parsed') tally.parsed++;
    else if (outcome.kind === 'format-error') {
      tally.formatErrors++;
      const key = outcome.reason.replace(/\d+/g, 'N').replace(/'[^']*'/g, "'…'").slice(0, 90);
      tally.reasons.set(key, (tally.reasons.get(key) ?? 0) + 1);
    } else tally.findings.push({ index: i, seed: input.seed, mutations: input.mutations, name: input.name, outcome });
  }
}
