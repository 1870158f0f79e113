// The WebAssembly encoders of f16 and bf16 (wasm/floats.ts) and of tq1_0, tq2_0 and mxfp4
// (wasm/ternary.ts, wasm/mxfp4.ts) against the reference codecs, byte for byte, on the
// values where they could part: every f32 exponent with the mantissa bits f16/bf16 rounding
// reads (ties, carries, the subnormal and overflow edges, NaN payloads and signs), stories260K
// tensors, and one-block rows of ternary/mxfp4 edge cases (±0, subnormal scales, exact
// rounding ties, Inf/NaN at each position, absmax just below each power of two); the finite
// ones also against llama.cpp's own ggml_quantize_chunk. wasm-codecs.test.ts runs the shared
// tests (golden vectors, measured encode) on tq1_0/tq2_0/mxfp4.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { random, readTensor } from '../codecs/testing.ts';
import { quantType, type QuantType } from '../types.ts';
import { ggmlQuantizeChunk } from '../../testing/llama-peer.ts';
import { loadFastCodecs } from './node.ts';

const GOLDEN = join(import.meta.dirname, '../../../../shared/fixtures/golden');
const manifest = JSON.parse(readFileSync(join(GOLDEN, 'manifest.json'), 'utf8')) as {
  n_per_row: number;
  sets: Record<string, { input: string; rows: number }>;
  files: { set: string; type: string; imatrix?: string; quantized: string }[];
};
const readBytes = (name: string) => new Uint8Array(readFileSync(join(GOLDEN, name)));

const fromBits = (u: Uint32Array) => new Float32Array(u.buffer, u.byteOffset, u.length);

function expectSameBytes(type: QuantType, got: Uint8Array, want: Uint8Array, what: string): void {
  let at = got.length === want.length ? -1 : Math.min(got.length, want.length);
  for (let i = 0; i < Math.min(got.length, want.length) && at < 0; i++) if (got[i] !== want[i]) at = i;
  expect(at, `${type.id} ${what}: first differing byte ${at} (block ${Math.floor(at / type.typeSize)})`).toBe(-1);
}

beforeAll(async () => {
  expect(await loadFastCodecs((m) => console.error(m))).toBe(true);
});

describe('fast f16 and bf16 encoders', () => {
  for (const id of ['f16', 'bf16']) {
    const type = quantType(id)!;
    it(`${id}: run by the type table, decode left to the reference`, () => {
      expect(type.codec.encode).not.toBe(type.reference.encode);
      expect(type.codec.decode).toBe(type.reference.decode);
    });

    it(`${id}: every top 16 bits, with the low bits around each rounding point, as the reference`, () => {
      // f16 rounds at bit 13 (normal) or higher (subnormal), bf16 at bit 16: halves, just
      // below and above them, and the ends; every sign, exponent and NaN payload on top.
      const lows = [0, 1, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x2000, 0x2001, 0x7fff, 0x8000, 0x8001, 0xc000, 0xffff];
      const u = new Uint32Array(65536 * lows.length);
      for (let hi = 0, i = 0; hi < 65536; hi++) for (const lo of lows) u[i++] = ((hi << 16) | lo) >>> 0;
      // Rows of 13: the vector loop's scalar tail runs too.
      const x = fromBits(u);
      expectSameBytes(type, type.codec.encode(x, 13), type.reference.encode(x, 13), 'bit sweep');
    });

    it(`${id}: f16's subnormal and overflow edges, f32 subnormals, NaNs, as the reference`, () => {
      const edges = [
        0, -0, 1, -1, 65504, 65519.996, 65520, 65536, 3.4028234663852886e38, Infinity, -Infinity, NaN,
        2 ** -14, 2 ** -24, 2 ** -25, 1.5 * 2 ** -25, 2 ** -26, 3 * 2 ** -25, 2 ** -126, 2 ** -149, 1e-40, -1e-40,
      ];
      const all = [...edges, ...edges.map((v) => -v)];
      const x = new Float32Array([...all, ...fromBits(Uint32Array.of(0x7f800001, 0xff800001, 0x7fc00000, 0xffc00000, 0x7fbfffff, 0xffffffff, 0x7fffe000, 0x7f80ffff))]);
      expectSameBytes(type, type.codec.encode(x, x.length), type.reference.encode(x, x.length), 'edges');
    });

    it(`${id}: stories260K tensors, long enough for several chunks, as the reference`, () => {
      for (const name of ['model.embed_tokens.weight', 'model.layers.0.self_attn.q_proj.weight', 'model.layers.1.mlp.down_proj.weight']) {
        const t = readTensor(name);
        expectSameBytes(type, type.codec.encode(t.data, t.rowLength), type.reference.encode(t.data, t.rowLength), name);
      }
      // More than one 32768-value chunk, with a short last one.
      const rnd = random(5);
      const big = Float32Array.from({ length: 70001 }, () => (rnd() - 0.5) * 10 ** (rnd() * 12 - 8));
      expectSameBytes(type, type.codec.encode(big, 70001), type.reference.encode(big, 70001), 'chunks');
    });

    it(`${id}: ggml golden bytes and ggml_quantize_chunk's`, () => {
      const files = manifest.files.filter((f) => f.type === id);
      expect(files.length).toBeGreaterThan(0);
      for (const file of files) {
        const b = readBytes(manifest.sets[file.set].input);
        const input = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
        expectSameBytes(type, type.codec.encode(input, manifest.n_per_row), readBytes(file.quantized), file.quantized);
      }
      const rnd = random(9);
      const x = Float32Array.from({ length: 4096 }, (_, i) => (i % 7 === 0 ? 0 : (rnd() - 0.5) * 10 ** (rnd() * 14 - 10)));
      expectSameBytes(type, type.codec.encode(x, 512), ggmlQuantizeChunk(type.ggml!.id, x, 512), 'vs ggml_quantize_chunk');
    });

    it(`${id}: the reference's errors for bad shapes`, () => {
      expect(() => type.codec.encode(new Float32Array(10), 4)).toThrow();
      expect(() => type.codec.encode(new Float32Array(10), 0)).toThrow();
    });
  }
});

/** One-block rows of `blockSize` (each flagged row stays alone), their edge cases. */
function edgeBlocks(blockSize: number, seed: number): number[][] {
  const rnd = random(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  const base = (scale: number) => Array.from({ length: blockSize }, () => gauss() * scale);
  const f32 = (bits: number) => new Float32Array(new Uint32Array([bits]).buffer)[0];
  const blocks: number[][] = [];
  for (const k of [0, 1, 7, blockSize / 2, blockSize - 1]) {
    for (const bad of [NaN, -NaN, f32(0x7f800001), f32(0xffc00123), Infinity, -Infinity]) {
      const b = base(1);
      b[k] = bad;
      blocks.push(b);
    }
    // The absmax of either sign at k, and tied with the other sign elsewhere.
    for (const sign of [1, -1]) {
      const b = base(1);
      b[k] = sign * 6;
      blocks.push(b, b.map((v, j) => (j === (k + 3) % blockSize ? -sign * 6 : v)));
    }
  }
  // Zeros of either sign, constants, tiny and subnormal scales (1/d overflows), huge ones.
  blocks.push(Array(blockSize).fill(0), Array(blockSize).fill(-0), Array.from({ length: blockSize }, (_, j) => (j % 3 ? 0 : -0)));
  for (const scale of [3.4e38, 1e38, 1e-30, 1e-37, 1.2e-38, 5e-39, 1e-40, 1e-44, 1.4e-45]) {
    blocks.push(base(scale), base(scale).map(Math.abs), Array(blockSize).fill(scale), Array(blockSize).fill(-scale));
  }
  // Exact rounding ties: multiples of amax/2 and amax/4 (x*id = ±0.5, ±0.25, ..), and of a power of two.
  for (const amax of [2, 1, 6, 0.75, 2 ** -20]) {
    blocks.push(Array.from({ length: blockSize }, (_, j) => (j === 0 ? amax : (((j * 5) % 9) - 4) * (amax / 8))));
  }
  return blocks;
}

/** Blocks of 32 whose absmax sits just below, at and above each power of two (mxfp4's shared exponent). */
function powerOfTwoEdges(): number[][] {
  const blocks: number[][] = [];
  const mantissas = [0x7fffff, 0x7ffffe, 0x7fff80, 0x7fff00, 0x7ffeff, 0x7ff000, 0, 1, 0x400000];
  const u = new Uint32Array(1);
  const f = new Float32Array(u.buffer);
  for (let exponent = 0; exponent < 255; exponent++) {
    for (const m of mantissas) {
      u[0] = (exponent << 23) | m;
      const amax = f[0];
      // The absmax, then values on the grid, between grid points and tied between them.
      blocks.push(Array.from({ length: 32 }, (_, j) => (j === 5 ? (exponent % 2 ? -amax : amax) : amax * ((((j * 7) % 33) - 16) / 16))));
    }
  }
  return blocks;
}

describe('fast tq1_0, tq2_0 and mxfp4 encoders on edge blocks', () => {
  for (const id of ['tq1_0', 'tq2_0', 'mxfp4']) {
    const type = quantType(id)!;
    it(`${id}: as the reference, and as ggml_quantize_chunk where finite`, () => {
      const blocks = [...edgeBlocks(type.blockSize, 31), ...(id === 'mxfp4' ? powerOfTwoEdges() : [])];
      const x = Float32Array.from(blocks.flat());
      expectSameBytes(type, type.codec.encode(x, type.blockSize), type.reference.encode(x, type.blockSize), 'edge blocks');
      const finite = Float32Array.from(blocks.filter((b) => b.every(Number.isFinite)).flat());
      expectSameBytes(type, type.codec.encode(finite, type.blockSize), ggmlQuantizeChunk(type.ggml!.id, finite, type.blockSize), 'finite edge blocks vs ggml');
      // Ignored importance, even a malformed one, changes nothing (as in ggml).
      expectSameBytes(type, type.codec.encode(finite, type.blockSize, new Float32Array(3).fill(NaN)), type.reference.encode(finite, type.blockSize), 'importance ignored');
      // And the bytes decode as the reference decodes them.
      const bytes = type.codec.encode(x, type.blockSize);
      const rows = blocks.length;
      expect(new Uint32Array(type.codec.decode(bytes, rows, type.blockSize).buffer)).toEqual(new Uint32Array(type.reference.decode(bytes, rows, type.blockSize).buffer));
    });
  }

  it('mxfp4: every absmax bit pattern near a power of two, across all exponents, as the reference', () => {
    // A denser sweep of sharedExponent's host-log2 path and its edge: the top 512 mantissas.
    const type = quantType('mxfp4')!;
    const rows: number[] = [];
    const u = new Uint32Array(1);
    const f = new Float32Array(u.buffer);
    for (let exponent = 0; exponent < 255; exponent += 3) {
      for (let m = 0x7ffe00; m <= 0x7fffff; m += 3) {
        u[0] = (exponent << 23) | m;
        for (let j = 0; j < 32; j++) rows.push(j === 0 ? f[0] : f[0] * ((j % 9) - 4) / 4);
      }
    }
    const x = Float32Array.from(rows);
    expectSameBytes(type, type.codec.encode(x, 32), type.reference.encode(x, 32), 'near powers of two');
  });
});
