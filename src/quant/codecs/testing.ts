// Helpers shared by the codec tests: seeded inputs (failures must reproduce), the
// stories260K weights, and the real ggml's dequantizers from the llama.cpp inside
// node-llama-cpp. Test support only: no codec imports this.
import koffi from 'koffi';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { ggmlQuantizeChunk, llamaBinDir } from '../../testing/llama-peer.ts';
import type { Codec } from '../codec.ts';
import { setSearchShortcuts } from './search.ts';

/** A deterministic uniform generator in (0, 1) (an LCG). */
export function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
}

/** Seeded standard normal values (mulberry32 + Box-Muller). */
export { gaussians as gaussian } from '../../testing/random.ts';

export const rmse = (a: Float32Array, b: Float32Array) => Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]) ** 2, 0) / a.length);

/** The floats' bits, so that comparisons see NaN payloads and -0. */
export const bits = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);

/** f16 values a decoder must get right: Inf, NaNs with payloads, zeros, subnormal, max. */
export const SPECIAL_F16 = [0x7c00, 0xfc00, 0x7e00, 0xfe00, 0x7c01, 0xfd55, 0x0000, 0x8000, 0x0001, 0x7bff];

export type Shape = 'gaussian' | 'outliers' | 'ties' | 'sparse' | 'grid' | 'subnormal' | 'constant' | 'positive' | 'nonfinite';
const NON_FINITE = [NaN, Infinity, -Infinity];

/**
 * `rows` rows of `shape`, each at a random scale from 1e-30 to 1e10 (subnormal and
 * overflowing f16 scales); `zeroFraction` of a sparse row is zero; subnormal rows hold
 * multiples of 2^-149, whose inverse scales overflow to Inf.
 */
export function makeRows(shape: Shape, seed: number, rows: number, rowLength: number, zeroFraction = 0.8): Float32Array {
  const rnd = random(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(rnd())) * Math.cos(2 * Math.PI * rnd());
  const x = new Float32Array(rows * rowLength);
  for (let r = 0; r < rows; r++) {
    const scale = 10 ** (rnd() * 40 - 30);
    const level = gauss() * scale;
    for (let j = 0; j < rowLength; j++) {
      const g = gauss();
      x[r * rowLength + j] =
        shape === 'outliers' ? g * scale * (j % 37 === 5 ? 300 : 1)
        : shape === 'ties' ? (Math.round(g * 8) / 2) * scale
        : shape === 'sparse' ? (rnd() < zeroFraction ? 0 : g * scale)
        : shape === 'grid' ? (Math.floor(rnd() * 32) - 16) * 2 ** Math.floor(rnd() * 20 - 10)
        : shape === 'subnormal' ? (Math.floor(rnd() * 40) - 20) * 2 ** -149
        : shape === 'constant' ? (j % 32 < 16 ? level : rnd() < 0.5 ? 0 : level)
        : shape === 'positive' ? Math.abs(g * scale) + scale
        : shape === 'nonfinite' ? (rnd() < 0.03 ? NON_FINITE[Math.floor(rnd() * 3)] : g)
        : g * scale;
    }
  }
  return x;
}

/** Importance weights (an imatrix row) in [0, 5), a tenth of them zero. */
export function importanceFor(seed: number, rowLength: number): Float32Array {
  const rnd = random(seed + 100);
  return Float32Array.from({ length: rowLength }, () => (rnd() < 0.1 ? 0 : rnd() * 5));
}

const MODEL = join(import.meta.dirname, '../../../../shared/fixtures/models/stories260K.f32.safetensors');

/** One F32 tensor of stories260K's safetensors: u64 header length, JSON header, then the data. */
export function readTensor(name: string): { rows: number; rowLength: number; data: Float32Array } {
  const file = readFileSync(MODEL);
  const headerBytes = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + headerBytes).toString('utf8'));
  const { shape, data_offsets: [begin, end] } = header[name];
  const base = file.byteOffset + 8 + headerBytes;
  return { rows: shape[0], rowLength: shape[1], data: new Float32Array(file.buffer.slice(base + begin, base + end)) };
}

let ggmlBase: ReturnType<typeof koffi.load> | undefined;
const ggmlFunctions = new Map<string, (...args: unknown[]) => unknown>();

/** A function of the peer's libggml-base by its C prototype, bound on first use. */
export function ggmlFunction(prototype: string): (...args: unknown[]) => unknown {
  let fn = ggmlFunctions.get(prototype);
  if (!fn) {
    ggmlBase ??= koffi.load(join(llamaBinDir(), 'libggml-base.so'));
    fn = ggmlBase.func(prototype) as (...args: unknown[]) => unknown;
    ggmlFunctions.set(prototype, fn);
  }
  return fn;
}

/** ggml's dequantize_row_<id> on `values` floats' worth of blocks. */
export function ggmlDequantize(id: string, blocks: Uint8Array, values: number): Float32Array {
  const out = new Float32Array(values);
  ggmlFunction(`void dequantize_row_${id}(const uint8_t *, _Out_ float *, int64_t)`)(blocks, out, BigInt(values));
  return out;
}

/**
 * `codec` on `rows` rows of x, without importance weights and with `importance`: its bytes
 * must be ggml_quantize_chunk's, and its decoded floats ggml's dequantize_row_<id>'s, bit
 * for bit.
 */
export function expectSameAsGgml(
  id: string, ggmlType: number, codec: Codec, x: Float32Array, rows: number, rowLength: number,
  importance: Float32Array, what: string,
): void {
  for (const weights of [undefined, importance]) {
    const where = `${what}${weights ? ', importance' : ''}`;
    const ours = codec.encode(x, rowLength, weights);
    expect(ours, where).toEqual(ggmlQuantizeChunk(ggmlType, x, rowLength, weights));
    expect(bits(codec.decode(ours, rows, rowLength)), where).toEqual(bits(ggmlDequantize(id, ours, x.length)));
  }
}

/**
 * The scale searches skip trials whose outcome they can prove (search.ts); the C runs them
 * all. `codec` must write the same bytes with the skips turned off.
 */
export function expectShortcutsChangeNothing(codec: Codec, x: Float32Array, rowLength: number, weights: Float32Array | undefined, what: string): void {
  try {
    setSearchShortcuts(true);
    const fast = codec.encode(x, rowLength, weights);
    setSearchShortcuts(false);
    expect(codec.encode(x, rowLength, weights), what).toEqual(fast);
  } finally {
    setSearchShortcuts(true);
  }
}
