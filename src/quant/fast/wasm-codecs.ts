// The fast codecs: ggml's quantizers compiled to WebAssembly from AssemblyScript (wasm/*.ts),
// where f32 arithmetic is native IEEE single precision (the TypeScript reference pays for a
// Math.fround after every operation). They write the reference codecs' bytes exactly; rows
// the WebAssembly leaves alone (Inf/NaN in the row or its importance, a NaN scale: ggml's NaN
// bits are the reference's job) are encoded by the reference codec. The type table
// (types.ts) runs them through `withFastPath`; until `installFastCodecs` is given the module,
// or for a type without one, the reference runs. No DOM, no Node: the caller brings the bytes.
import type { Codec } from '../codec.ts';
import { accumulateErrors, addSlabSums, type ErrorSums } from '../metrics.ts';
import { IQ1S_LEVELS, IQ2S_LEVELS, IQ2XS_LEVELS, IQ2XXS_LEVELS, IQ3S_LEVELS, IQ3XXS_LEVELS } from '../codecs/iquants-grid-data.ts';

/** Type codes of wasm/index.ts. */
const TYPE_CODES: Readonly<Record<string, number>> = {
  q4_0: 0, q4_1: 1, q5_0: 2, q5_1: 3, q8_0: 4, q2_K: 10, q3_K: 11, q4_K: 12, q5_K: 13, q6_K: 14,
  tq1_0: 20, tq2_0: 21, mxfp4: 22,
  iq2_xxs: 30, iq2_xs: 31, iq2_s: 32, iq3_xxs: 33, iq3_s: 34, iq1_s: 35, iq1_m: 36, nvfp4: 40, q1_0: 41, q2_0: 42,
};
const BLOCK: Readonly<Record<string, readonly [number, number]>> = {
  q4_0: [32, 18], q4_1: [32, 20], q5_0: [32, 22], q5_1: [32, 24], q8_0: [32, 34],
  q2_K: [256, 84], q3_K: [256, 110], q4_K: [256, 144], q5_K: [256, 176], q6_K: [256, 210],
  tq1_0: [256, 54], tq2_0: [256, 66], mxfp4: [32, 17],
  iq2_xxs: [256, 66], iq2_xs: [256, 74], iq2_s: [256, 82], iq3_xxs: [256, 98], iq3_s: [256, 110], iq1_s: [256, 50], iq1_m: [256, 56],
  nvfp4: [64, 36], q1_0: [128, 18], q2_0: [64, 18],
};
/** Types whose encoder ignores importance, as ggml_quantize_chunk does for them. */
const WITHOUT_IMPORTANCE: ReadonlySet<string> = new Set(['tq1_0', 'tq2_0', 'mxfp4', 'nvfp4', 'q1_0', 'q2_0']);
/** Types that cannot encode without importance: the reference refuses (its error). */
const NEEDS_IMPORTANCE: ReadonlySet<string> = new Set(['iq1_s', 'iq2_xxs', 'iq2_xs']);
/**
 * Types with a fast encoder only: their decode (and error measurement) stays the
 * reference's. The sub-4-bit types of issue 18, whose encode is the slow part.
 */
const ENCODE_ONLY: ReadonlySet<string> = new Set(['iq1_s', 'iq1_m', 'iq2_xxs', 'iq2_xs', 'iq2_s', 'iq3_xxs', 'iq3_s', 'nvfp4', 'q1_0', 'q2_0']);
/**
 * The lattice grids that wasm/iqlattice.ts's and iq1.ts's encoders search, by type: its grid slot, the
 * level list (iquants-grid-data.ts, the one copy of the data), coordinates per point, bits
 * per level and ggml's nwant (iquants-grid.ts). Handed to the module once, on first use.
 */
const LATTICE_GRIDS: Readonly<Record<string, { slot: number; levels: Uint16Array; dims: number; bits: number; nwant: number }>> = {
  iq2_xxs: { slot: 0, levels: IQ2XXS_LEVELS, dims: 8, bits: 2, nwant: 2 },
  iq2_xs: { slot: 1, levels: IQ2XS_LEVELS, dims: 8, bits: 2, nwant: 2 },
  iq2_s: { slot: 2, levels: IQ2S_LEVELS, dims: 8, bits: 2, nwant: 1 },
  iq3_xxs: { slot: 3, levels: IQ3XXS_LEVELS, dims: 4, bits: 3, nwant: 2 },
  iq3_s: { slot: 4, levels: IQ3S_LEVELS, dims: 4, bits: 3, nwant: 3 },
  iq1_s: { slot: 5, levels: IQ1S_LEVELS, dims: 8, bits: 2, nwant: 3 },
  iq1_m: { slot: 5, levels: IQ1S_LEVELS, dims: 8, bits: 2, nwant: 3 },
};
/**
 * Float types whose encode runs in WebAssembly (every value there, NaN included: the
 * conversions choose NaN bits from the input's bits); their decode stays the reference's.
 */
const FLOAT_ENCODERS: Readonly<Record<string, 'encodeF16' | 'encodeBF16'>> = { f16: 'encodeF16', bf16: 'encodeBF16' };

/** Rows per call into the module: bounds its memory (input + output) to a few MiB. */
const CHUNK_VALUES = 1 << 20;
/**
 * Values per encode call (whole rows, at least one): the rows copied into the module's memory
 * are encoded while they are still in cache (128 KiB of f32: a level-2 cache holds them). With
 * 4 MiB chunks, q4_0 and q4_1 encoded 10-20% slower (bench/legacy-encode.ts, codec column).
 */
const ENCODE_CHUNK_VALUES = 1 << 15;
const WASM_PAGE = 65536;

interface Exports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  encode(type: number, src: number, rows: number, rowLength: number, imp: number, out: number, flags: number): number;
  encodeMeasured(
    type: number, src: number, rows: number, rowLength: number, imp: number, out: number, flags: number, deq: number, sums: number,
    maxAbs0: number, squaredOnly: number,
  ): number;
  decode(type: number, src: number, blocks: number, out: number, flags: number): number;
  encodeF16(src: number, n: number, out: number): void;
  encodeBF16(src: number, n: number, out: number): void;
  accumulateErrors(ref: number, deq: number, n: number, sums: number, maxAbs0: number): void;
  matmulSlab(w: number, rows: number, cols: number, x: number, n: number, y: number, yStride: number): void;
  matmulSlabF32(w: number, rows: number, cols: number, x: number, n: number, y: number, yStride: number): void;
  widenF32(x: number, n: number, out: number): void;
  iqGridInit(slot: number, levels: number, size: number, dims: number, bits: number, nwant: number): number;
  iqGridReady(slot: number): number;
}

let exportsOf: Exports | null = null;
/**
 * Where the installed module's scratch starts: past its static data and the grid tables
 * set up so far (those stay put; every call lays its regions out from here).
 */
let scratchBase = 0;

/** The type ids that have a fast codec (encode, decode and the measured encode). */
export const FAST_TYPE_IDS: readonly string[] = Object.keys(TYPE_CODES).filter((id) => !ENCODE_ONLY.has(id));
/** The type ids that have a fast encoder only (their decode is the reference's). */
export const FAST_ENCODE_ONLY_TYPE_IDS: readonly string[] = [...ENCODE_ONLY];
/** The float type ids that have a fast encoder only. */
export const FAST_FLOAT_TYPE_IDS: readonly string[] = Object.keys(FLOAT_ENCODERS);

/**
 * What the module imports. log2: mxfp4's shared exponent near a power of two, where only the
 * reference's own Math.log2 rounds as it does (wasm/mxfp4.ts sharedExponent).
 */
export const WASM_IMPORTS = { env: { abort: wasmAbort, log2: Math.log2 } };

/**
 * Instantiate the module (synchronously: Node, or a worker) and switch the fast codecs on.
 * `relaxedMatmul`: wasm/build/matmul-relaxed.wasm, the products with relaxed SIMD's fused
 * multiply-add in their f32 sums; used only where the engine validates it (else, or without
 * it, the products are quant.wasm's own).
 */
export function installFastCodecs(module: WebAssembly.Module | BufferSource, relaxedMatmul: BufferSource | null = null): void {
  const compiled = module instanceof WebAssembly.Module ? module : new WebAssembly.Module(module);
  const instance = new WebAssembly.Instance(compiled, WASM_IMPORTS);
  exportsOf = instance.exports as unknown as Exports;
  scratchBase = exportsOf.heapBase();
  moduleOf = relaxedMatmul && WebAssembly.validate(relaxedMatmul) ? new WebAssembly.Module(relaxedMatmul) : compiled;
  relaxedInstalled = moduleOf !== compiled;
  matmulExportsOf = null;
}

/** Switch the fast codecs off again (tests). */
export function uninstallFastCodecs(): void {
  exportsOf = null;
  matmulExportsOf = null;
  relaxedInstalled = false;
}

/** True when the products run matmul-relaxed.wasm (f32 sums by relaxed_madd). */
export function relaxedMatmulInstalled(): boolean {
  return exportsOf !== null && relaxedInstalled;
}

export function fastCodecsInstalled(): boolean {
  return exportsOf !== null;
}

/** The module the products instantiate: matmul-relaxed.wasm where it was given and validates, else quant.wasm. */
let moduleOf: WebAssembly.Module | null = null;
let relaxedInstalled = false;
let matmulExportsOf: Exports | null = null;

/**
 * The matrix-product entry (wasm/matmul.ts), for src/model/fast-linear.ts; null before
 * installFastCodecs. An instance of its own: a product decodes packed rows through the
 * codecs between its calls, and the codecs' scratch starts at heapBase too.
 */
export function wasmMatmulExports(): Pick<Exports, 'memory' | 'heapBase' | 'matmulSlab' | 'matmulSlabF32' | 'widenF32'> | null {
  if (!exportsOf || !moduleOf) return null;
  matmulExportsOf ??= new WebAssembly.Instance(moduleOf, WASM_IMPORTS).exports as unknown as Exports;
  return matmulExportsOf;
}

function wasmAbort(): never {
  throw new Error('quantlab fast codecs: WebAssembly abort');
}

/** Byte offsets of the call's regions, growing the module's memory to hold them. */
function reserve(e: Exports, sizes: number[]): number[] {
  let at = (scratchBaseOf(e) + 15) & ~15;
  const offsets = sizes.map((size) => {
    const start = at;
    at = (at + size + 15) & ~15;
    return start;
  });
  const need = at - e.memory.buffer.byteLength;
  if (need > 0) e.memory.grow(Math.ceil(need / WASM_PAGE));
  return offsets;
}

/** The codecs' instance keeps its grid tables below scratchBase; other instances (matmul) have none. */
function scratchBaseOf(e: Exports): number {
  return e === exportsOf ? scratchBase : e.heapBase();
}

/** Type `id`'s lattice grid set up in the module (once: its tables then stay below scratchBase). */
function ensureGrid(e: Exports, id: string): void {
  const grid = LATTICE_GRIDS[id];
  if (!grid || e.iqGridReady(grid.slot)) return;
  const at = (scratchBase + 15) & ~15;
  const need = at + grid.levels.byteLength - e.memory.buffer.byteLength;
  if (need > 0) e.memory.grow(Math.ceil(need / WASM_PAGE));
  new Uint16Array(e.memory.buffer, at, grid.levels.length).set(grid.levels);
  scratchBase = e.iqGridInit(grid.slot, at, grid.levels.length, grid.dims, grid.bits, grid.nwant);
}

/**
 * The fast encoder of type `id` over `reference`: the same bytes, from WebAssembly where it
 * can, else (rows it flags, or before installFastCodecs) from the reference. Null when the
 * type has no fast encoder.
 */
export function fastEncode(id: string, reference: Codec): Codec['encode'] | null {
  const code = TYPE_CODES[id];
  if (code === undefined) return null;
  return (src, rowLength, importance) => {
    const e = exportsOf;
    // The reference checks the arguments and throws its own errors.
    if (!e || !fastEncodable(id, src, rowLength, importance)) return reference.encode(src, rowLength, importance);
    return encodeInWasm(e, id, reference, src, rowLength, usedImportance(id, importance), ENCODE_CHUNK_VALUES, null, false);
  };
}

/** WebAssembly can encode these rows of type `id` (else the reference does, or throws its error). */
function fastEncodable(id: string, src: Float32Array, rowLength: number, importance: Float32Array | undefined): boolean {
  const blockSize = BLOCK[id][0];
  const importanceFits = !importance || importance.length === rowLength || WITHOUT_IMPORTANCE.has(id);
  if (!importance && NEEDS_IMPORTANCE.has(id)) return false;
  return rowLength > 0 && rowLength % blockSize === 0 && src.length % rowLength === 0 && importanceFits;
}

/** The importance type `id`'s encoder reads: none for the types whose reference ignores it. */
function usedImportance(id: string, importance: Float32Array | undefined): Float32Array | undefined {
  return WITHOUT_IMPORTANCE.has(id) ? undefined : importance;
}

/**
 * The rows encoded in WebAssembly, `slabElements` values' worth of rows per call (at least
 * one row); flagged rows by the reference. With `into`, each call's rows also have their
 * error added to `into` as one accumulateErrors(rows, decode(bytes), into) would (so in
 * slabs of the same rows as a caller measuring slab by slab), in the same pass where it can;
 * with `squaredOnly`, at least count and sumSqErr (all an RMSE needs) where it can.
 */
function encodeInWasm(
  e: Exports, id: string, reference: Codec, src: Float32Array, rowLength: number,
  importance: Float32Array | undefined, slabElements: number, into: ErrorSums | null, squaredOnly: boolean,
): Uint8Array {
  const code = TYPE_CODES[id];
  const [blockSize, blockBytes] = BLOCK[id];
  const rows = src.length / rowLength;
  ensureGrid(e, id);
  const rowBytes = (rowLength / blockSize) * blockBytes;
  const out = uninitializedBytes(rows * rowBytes); // every row is written below
  const chunkRows = Math.max(1, Math.floor(slabElements / rowLength));
  const n = Math.min(rows, chunkRows);
  const [srcAt, impAt, outAt, flagsAt, sumsAt, deqAt] = reserve(e, [n * rowLength * 4, importance ? rowLength * 4 : 0, n * rowBytes, n, 56, into ? rowLength * 4 : 0]);
  let heap = e.memory.buffer;
  if (importance) new Float32Array(heap, impAt, rowLength).set(importance);
  for (let r = 0; r < rows; r += chunkRows) {
    const m = Math.min(chunkRows, rows - r);
    const part = src.subarray(r * rowLength, (r + m) * rowLength);
    new Float32Array(heap, srcAt, m * rowLength).set(part);
    const flagged = into
      ? e.encodeMeasured(code, srcAt, m, rowLength, importance ? impAt : 0, outAt, flagsAt, deqAt, sumsAt, into.maxAbsErr, squaredOnly ? 1 : 0)
      : e.encode(code, srcAt, m, rowLength, importance ? impAt : 0, outAt, flagsAt);
    heap = e.memory.buffer;
    out.set(new Uint8Array(heap, outAt, m * rowBytes), r * rowBytes);
    if (flagged > 0) {
      // The lattice searches refuse rows (non-finite, or overflowing squared errors): the
      // reference over all the rows throws its error, naming the row.
      if (LATTICE_GRIDS[id]) return reference.encode(src, rowLength, importance);
      const flags = new Uint8Array(heap, flagsAt, m);
      for (let i = 0; i < m; i++) {
        if (!flags[i]) continue;
        const row = part.subarray(i * rowLength, (i + 1) * rowLength);
        out.set(reference.encode(row, rowLength, importance), (r + i) * rowBytes);
      }
    }
    if (!into) continue;
    const sums = new Float64Array(heap, sumsAt, 7);
    if (sums[6] === 1) {
      // Complete: every row measured in the pass.
      addSlabSums(into, part.length, sums);
    } else {
      // A row or block left to the reference: these rows measured after the fact.
      const bytes = out.subarray(r * rowBytes, (r + m) * rowBytes);
      if (!fastAccumulateErrors(id, reference, part, bytes, into)) accumulateErrors(part, fastDecode(id, reference)!(bytes, m, rowLength), into);
      // Those lay out the module's memory afresh: the importance goes back in place.
      heap = e.memory.buffer;
      if (importance) new Float32Array(heap, impAt, rowLength).set(importance);
    }
  }
  return out;
}

/**
 * type `id`'s encode(src, rowLength, importance) and, in the same pass, the error of the
 * result against src added to `into`, exactly as measuring `slabElements` values' worth of
 * rows at a time with accumulateErrors(rows, decode(bytes), into) would (the same sums to the
 * last bit). `squaredOnly`: only count and sumSqErr need be summed (an RMSE; the others may
 * stay as they were, or be summed too). Null when the type has no fast encoder, the module is
 * not installed, or the arguments are for the reference to refuse.
 */
export function fastEncodeMeasured(
  id: string, reference: Codec, src: Float32Array, rowLength: number, importance: Float32Array | undefined,
  slabElements: number, into: ErrorSums, squaredOnly = false,
): Uint8Array | null {
  const e = exportsOf;
  if (TYPE_CODES[id] === undefined || ENCODE_ONLY.has(id) || !e || !fastEncodable(id, src, rowLength, importance)) return null;
  return encodeInWasm(e, id, reference, src, rowLength, usedImportance(id, importance), slabElements, into, squaredOnly);
}

/**
 * The fast decoder of type `id` over `reference`: the same floats bit for bit, from
 * WebAssembly where it can, else (blocks with an Inf or NaN scale, whose NaN bits are the
 * reference's job, or before installFastCodecs) from the reference. Null when the type has
 * no fast decoder.
 */
export function fastDecode(id: string, reference: Codec): Codec['decode'] | null {
  const code = TYPE_CODES[id];
  if (code === undefined || ENCODE_ONLY.has(id)) return null;
  const [blockSize, blockBytes] = BLOCK[id];
  return (data, rows, rowLength) => {
    const e = exportsOf;
    const blocks = (rows * rowLength) / blockSize;
    // The reference checks the arguments and throws its own errors.
    if (!e || rowLength <= 0 || rowLength % blockSize !== 0 || !Number.isInteger(blocks) || data.length !== blocks * blockBytes) {
      return reference.decode(data, rows, rowLength);
    }
    const out = new Float32Array(blocks * blockSize);
    const chunkBlocks = Math.max(1, Math.floor(CHUNK_VALUES / blockSize));
    const n = Math.min(blocks, chunkBlocks);
    const [srcAt, outAt, flagsAt] = reserve(e, [n * blockBytes, n * blockSize * 4, n]);
    for (let b = 0; b < blocks; b += chunkBlocks) {
      const m = Math.min(chunkBlocks, blocks - b);
      new Uint8Array(e.memory.buffer, srcAt, m * blockBytes).set(data.subarray(b * blockBytes, (b + m) * blockBytes));
      const flagged = e.decode(code, srcAt, m, outAt, flagsAt);
      const heap = e.memory.buffer;
      out.set(new Float32Array(heap, outAt, m * blockSize), b * blockSize);
      if (flagged > 0) {
        const flags = new Uint8Array(heap, flagsAt, m);
        for (let i = 0; i < m; i++) {
          if (!flags[i]) continue;
          const at = (b + i) * blockBytes;
          out.set(reference.decode(data.subarray(at, at + blockBytes), 1, blockSize), (b + i) * blockSize);
        }
      }
    }
    return out;
  };
}

/**
 * `reference` with its encode and decode replaced by the fast ones when type `id` has them:
 * what the type table runs.
 */
export function withFastPath(id: string, reference: Codec): Codec {
  const floatEncoder = FLOAT_ENCODERS[id];
  if (floatEncoder) return { encode: fastFloatEncode(floatEncoder, reference), decode: reference.decode };
  const encode = fastEncode(id, reference);
  if (encode && ENCODE_ONLY.has(id)) return { encode, decode: reference.decode };
  const decode = fastDecode(id, reference);
  if (!encode || !decode) return reference;
  return { encode, decode };
}

/**
 * metrics.ts accumulateErrors(ref, decode(bytes)) in one pass through WebAssembly, without
 * handing the decoded floats back: the same sums to the last bit (f64, in its order; blocks
 * with an Inf or NaN scale decoded by the reference). `ref` holds whole blocks of type `id`,
 * at most CHUNK_VALUES of them (callers measure a slab at a time). Null when the type has no
 * fast decoder, the module is not installed, or the slab is too big.
 */
export function fastAccumulateErrors(
  id: string, reference: Codec, ref: Float32Array, bytes: Uint8Array, into: ErrorSums,
): ErrorSums | null {
  const code = TYPE_CODES[id];
  const e = exportsOf;
  if (code === undefined || ENCODE_ONLY.has(id) || !e) return null;
  const [blockSize, blockBytes] = BLOCK[id];
  const blocks = ref.length / blockSize;
  if (!Number.isInteger(blocks) || ref.length > CHUNK_VALUES || bytes.length !== blocks * blockBytes) return null;
  const [srcAt, refAt, outAt, flagsAt, sumsAt] = reserve(e, [bytes.length, ref.length * 4, ref.length * 4, blocks, 48]);
  new Uint8Array(e.memory.buffer, srcAt, bytes.length).set(bytes);
  new Float32Array(e.memory.buffer, refAt, ref.length).set(ref);
  if (e.decode(code, srcAt, blocks, outAt, flagsAt) > 0) {
    const flags = new Uint8Array(e.memory.buffer, flagsAt, blocks);
    const out = new Float32Array(e.memory.buffer, outAt, ref.length);
    for (let b = 0; b < blocks; b++) {
      if (flags[b]) out.set(reference.decode(bytes.subarray(b * blockBytes, (b + 1) * blockBytes), 1, blockSize), b * blockSize);
    }
  }
  e.accumulateErrors(refAt, outAt, ref.length, sumsAt, into.maxAbsErr);
  return addSlabSums(into, ref.length, new Float64Array(e.memory.buffer, sumsAt, 6));
}

/**
 * A float type's encode (f16, bf16: 2 bytes a value) through WebAssembly, ENCODE_CHUNK_VALUES
 * values per call; the reference before installFastCodecs, or to refuse bad arguments.
 */
function fastFloatEncode(encoder: 'encodeF16' | 'encodeBF16', reference: Codec): Codec['encode'] {
  return (src, rowLength, importance) => {
    const e = exportsOf;
    if (!e || rowLength <= 0 || src.length % rowLength !== 0) return reference.encode(src, rowLength, importance);
    const out = uninitializedBytes(src.length * 2);
    const n = Math.min(src.length, ENCODE_CHUNK_VALUES);
    const [srcAt, outAt] = reserve(e, [n * 4, n * 2]);
    const heap = e.memory.buffer; // the calls below allocate nothing: it stays valid
    const input = new Float32Array(heap, srcAt, n);
    const output = new Uint8Array(heap, outAt, n * 2);
    for (let i = 0; i < src.length; i += n) {
      const m = Math.min(n, src.length - i);
      input.set(m === n ? src.subarray(i, i + n) : src.subarray(i, i + m));
      e[encoder](srcAt, m, outAt);
      out.set(m === n ? output : output.subarray(0, m * 2), i * 2);
    }
    return out;
  };
}

/** Node's Buffer.allocUnsafeSlow, where there is one (an own ArrayBuffer, never the pool). */
const allocUnsafeSlow = (globalThis as { Buffer?: { allocUnsafeSlow(size: number): Uint8Array } }).Buffer?.allocUnsafeSlow;

/**
 * A plain Uint8Array of `size` bytes that the caller overwrites entirely: in Node its memory
 * is not zeroed first (malloc, not calloc: a pass over the output fewer, when the allocator
 * hands back memory it already had); in a browser, a zeroed one.
 */
function uninitializedBytes(size: number): Uint8Array {
  if (!allocUnsafeSlow || size === 0) return new Uint8Array(size);
  const b = allocUnsafeSlow(size);
  return new Uint8Array(b.buffer, b.byteOffset, size);
}
