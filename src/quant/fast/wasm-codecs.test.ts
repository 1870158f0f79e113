// The WebAssembly fast codecs write the reference codecs' bytes, exactly: on ggml's golden
// vectors (with and without imatrix), on stories260K's tensors, on adversarial rows (tiny and
// huge scales, ties, sparse, subnormal, Inf/NaN; the finite ones also against the real
// llama.cpp's ggml_quantize_chunk) and across the chunks the glue splits a tensor into; their
// decoders and error sums give the reference's floats bit for bit; the type table runs them
// once installed.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { bits, importanceFor, makeRows, random, readTensor, SPECIAL_F16, type Shape } from '../codecs/testing.ts';
import { quantType, QUANT_TYPES, type QuantType } from '../types.ts';
import { loadFastCodecs } from './node.ts';
import { ggmlQuantizeChunk } from '../../testing/llama-peer.ts';
import { accumulateErrors, emptySums } from '../metrics.ts';
import {
  FAST_ENCODE_ONLY_TYPE_IDS, FAST_FLOAT_TYPE_IDS, FAST_TYPE_IDS, fastAccumulateErrors, fastCodecsInstalled, fastDecode, fastEncode, fastEncodeMeasured, installFastCodecs, uninstallFastCodecs,
} from './wasm-codecs.ts';

const GOLDEN = join(import.meta.dirname, '../../../../shared/fixtures/golden');
const manifest = JSON.parse(readFileSync(join(GOLDEN, 'manifest.json'), 'utf8')) as {
  n_per_row: number;
  sets: Record<string, { input: string; rows: number }>;
  files: { set: string; type: string; imatrix?: string; quantized: string; dequantized: string }[];
};
const readBytes = (name: string) => new Uint8Array(readFileSync(join(GOLDEN, name)));
const readF32 = (name: string) => {
  const b = readBytes(name);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};

/** Index of the first differing byte, or -1. */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

function expectSameFloats(type: QuantType, got: Float32Array, want: Float32Array, what: string): void {
  const a = bits(got);
  const b = bits(want);
  let at = a.length === b.length ? -1 : Math.min(a.length, b.length);
  for (let i = 0; i < Math.min(a.length, b.length) && at < 0; i++) if (a[i] !== b[i]) at = i;
  expect(at, `${type.id} ${what}: first differing float ${at} (block ${Math.floor(at / type.blockSize)})`).toBe(-1);
}

/** Where each of a type's f16 scales (and mins) sits in its block. */
const F16_FIELDS: Record<string, number[]> = {
  q4_0: [0], q4_1: [0, 2], q5_0: [0], q5_1: [0, 2], q8_0: [0], q2_K: [80, 82], q3_K: [108], q4_K: [0, 2], q5_K: [0, 2], q6_K: [208],
  tq1_0: [52], tq2_0: [64], mxfp4: [], // mxfp4's E8M0 scale is a random byte: every value of it
};

/** Random blocks of `type`, their f16 fields often one of SPECIAL_F16 (Inf, NaNs with payloads, zeros, subnormal, max). */
function randomBlocks(type: QuantType, blocks: number, seed: number): Uint8Array {
  const rnd = random(seed);
  const data = Uint8Array.from({ length: blocks * type.typeSize }, () => Math.floor(rnd() * 256));
  for (let b = 0; b < blocks; b++) {
    for (const at of F16_FIELDS[type.id]) {
      if (rnd() < 0.5) continue;
      const h = SPECIAL_F16[Math.floor(rnd() * SPECIAL_F16.length)];
      data[b * type.typeSize + at] = h & 0xff;
      data[b * type.typeSize + at + 1] = h >> 8;
    }
  }
  return data;
}

function expectSameBytes(type: QuantType, got: Uint8Array, want: Uint8Array, what: string): void {
  const at = firstDifference(got, want);
  expect(at, `${type.id} ${what}: first differing byte ${at} (block ${Math.floor(at / type.typeSize)})`).toBe(-1);
}

const SHAPES: Shape[] = ['gaussian', 'outliers', 'ties', 'sparse', 'grid', 'subnormal', 'constant', 'positive', 'nonfinite'];
const FAST_TYPES = FAST_TYPE_IDS.map((id) => quantType(id)!);

beforeAll(async () => {
  expect(await loadFastCodecs((m) => console.error(m))).toBe(true);
});

describe('fast codecs', () => {
  it('are installed and run by the type table for every type that has one', () => {
    expect(fastCodecsInstalled()).toBe(true);
    const withFast = QUANT_TYPES.filter((t) => t.codec !== t.reference).map((t) => t.id);
    expect(withFast.sort()).toEqual([...FAST_TYPE_IDS, ...FAST_ENCODE_ONLY_TYPE_IDS, ...FAST_FLOAT_TYPE_IDS].sort());
  });

  for (const type of FAST_TYPES) {
    const encode = fastEncode(type.id, type.reference)!;
    const decode = fastDecode(type.id, type.reference)!;
    describe(type.id, () => {
      it('decodes ggml golden blocks to ggml floats, bit for bit', () => {
        for (const file of manifest.files.filter((f) => f.type === type.id)) {
          const rows = manifest.sets[file.set].rows;
          expectSameFloats(type, decode(readBytes(file.quantized), rows, manifest.n_per_row), readF32(file.dequantized), file.quantized);
        }
      });

      it('decodes random blocks, Inf and NaN scales included, as the reference does', () => {
        const rowLength = type.blockSize * 4;
        const data = randomBlocks(type, 4 * 64, 77);
        expectSameFloats(type, decode(data, 64, rowLength), type.reference.decode(data, 64, rowLength), 'random blocks');
      });

      it('writes ggml golden bytes, with and without imatrix', () => {
        const files = manifest.files.filter((f) => f.type === type.id);
        expect(files.length).toBeGreaterThan(0);
        for (const file of files) {
          const input = readF32(manifest.sets[file.set].input);
          const importance = file.imatrix ? readF32(file.imatrix) : undefined;
          expectSameBytes(type, encode(input, manifest.n_per_row, importance), readBytes(file.quantized), file.quantized);
        }
      });

      it('equals the reference on stories260K tensors, with and without importance', () => {
        // Its rows are 64 or 172 wide: read as flat rows of 256, as the K-quant tests do.
        for (const name of ['model.embed_tokens.weight', 'model.layers.0.self_attn.q_proj.weight', 'model.layers.1.mlp.down_proj.weight']) {
          const whole = readTensor(name).data;
          const rowLength = 256;
          const data = whole.subarray(0, whole.length - (whole.length % rowLength));
          for (const importance of [undefined, importanceFor(11, rowLength)]) {
            const what = `${name}${importance ? ' imatrix' : ''}`;
            expectSameBytes(type, encode(data, rowLength, importance), type.reference.encode(data, rowLength, importance), what);
          }
        }
      });

      it('writes the bytes of the real llama.cpp (node-llama-cpp) on adversarial finite rows', () => {
        const rowLength = 512;
        for (const [s, shape] of SHAPES.entries()) {
          if (shape === 'nonfinite') continue;
          const x = makeRows(shape, 90 + s, 4, rowLength);
          for (const importance of [undefined, importanceFor(s, rowLength)]) {
            const what = `${shape}${importance ? ' imatrix' : ''} vs ggml_quantize_chunk`;
            expectSameBytes(type, encode(x, rowLength, importance), ggmlQuantizeChunk(type.ggml!.id, x, rowLength, type.usesImportance ? importance : undefined), what);
          }
        }
      });

      it('equals the reference on adversarial rows', () => {
        const rowLength = 512;
        for (const [s, shape] of SHAPES.entries()) {
          const x = makeRows(shape, 40 + s, 6, rowLength);
          for (const importance of [undefined, importanceFor(s, rowLength)]) {
            const what = `${shape}${importance ? ' imatrix' : ''}`;
            expectSameBytes(type, encode(x, rowLength, importance), type.reference.encode(x, rowLength, importance), what);
          }
        }
        // Exact ties for the rounding: multiples of 1/2 with an absmax of 127 (q8_0: d = 1),
        // and of 1/2^k at other scales.
        const halves = Float32Array.from({ length: 4 * rowLength }, (_, i) =>
          i % 32 === 0 ? 127 : ((((i * 37) % 509) - 254) / 2) / 2 ** Math.floor(i / rowLength));
        expectSameBytes(type, encode(halves, rowLength), type.reference.encode(halves, rowLength), 'halves');
        // Huge finite values: squares, sums and scales overflow to Inf and NaN inside the searches.
        const huge = makeRows('outliers', 8, 4, rowLength).map((v, i) => v * 10 ** (15 + (i % 23)));
        for (const importance of [undefined, importanceFor(8, rowLength)]) {
          expectSameBytes(type, encode(huge, rowLength, importance), type.reference.encode(huge, rowLength, importance), 'huge');
        }
        // Importance with a NaN and an Inf: every row goes to the reference.
        const x = makeRows('gaussian', 3, 2, rowLength);
        const bad = importanceFor(3, rowLength);
        bad[5] = NaN;
        bad[300] = Infinity;
        expectSameBytes(type, encode(x, rowLength, bad), type.reference.encode(x, rowLength, bad), 'non-finite importance');
      });
    });
  }

  it('measure the error with the same sums as metrics.ts, to the last bit', () => {
    for (const type of FAST_TYPES) {
      for (const [s, shape] of SHAPES.entries()) {
        const rowLength = type.blockSize * 2;
        const x = makeRows(shape, 60 + s, 8, rowLength);
        const bytes = type.reference.encode(x, rowLength);
        // A running total, as measureError keeps one across slabs.
        const start = () => ({ ...emptySums(), count: 5, sumSqErr: 0.25, maxAbsErr: shape === 'gaussian' ? 1e30 : 0.5, dot: 1 });
        const want = accumulateErrors(x, type.reference.decode(bytes, 8, rowLength), start());
        expect(fastAccumulateErrors(type.id, type.reference, x, bytes, start()), `${type.id} ${shape}`).toEqual(want);
      }
      // Random blocks: Inf and NaN scales go through the reference decoder.
      const data = randomBlocks(type, 16, 5);
      const ref = makeRows('gaussian', 2, 16, type.blockSize);
      expect(fastAccumulateErrors(type.id, type.reference, ref, data, emptySums()), `${type.id} random blocks`)
        .toEqual(accumulateErrors(ref, type.reference.decode(data, 16, type.blockSize), emptySums()));
    }
  });

  it('encode and measure in one pass: encode\'s bytes and the sums of measuring slab by slab, to the last bit', () => {
    const rows = 8;
    const slabRows = 3; // slabs of 3, 3 and 2 rows
    for (const type of FAST_TYPES) {
      const rowLength = type.blockSize * 2;
      const rowBytes = (rowLength / type.blockSize) * type.typeSize;
      for (const [s, shape] of SHAPES.entries()) {
        const x = makeRows(shape, 70 + s, rows, rowLength);
        for (const importance of [undefined, importanceFor(s, rowLength)]) {
          const what = `${type.id} ${shape}${importance ? ' imatrix' : ''}`;
          const start = () => ({ ...emptySums(), count: 5, sumSqErr: 0.25, maxAbsErr: 0.5, dot: 1 });
          const bytes = type.reference.encode(x, rowLength, importance);
          const want = start();
          for (let r = 0; r < rows; r += slabRows) {
            const n = Math.min(slabRows, rows - r);
            const deq = type.reference.decode(bytes.subarray(r * rowBytes, (r + n) * rowBytes), n, rowLength);
            accumulateErrors(x.subarray(r * rowLength, (r + n) * rowLength), deq, want);
          }
          const got = start();
          expectSameBytes(type, fastEncodeMeasured(type.id, type.reference, x, rowLength, importance, slabRows * rowLength, got)!, bytes, what);
          expect(got, what).toEqual(want);
          // Only what an RMSE needs: the same count and sumSqErr.
          const squared = start();
          expectSameBytes(type, fastEncodeMeasured(type.id, type.reference, x, rowLength, importance, slabRows * rowLength, squared, true)!, bytes, what);
          expect([squared.count, squared.sumSqErr], `${what} squared only`).toEqual([want.count, want.sumSqErr]);
        }
      }
      // Huge values: Inf scales stored, whose blocks only the reference decodes.
      const huge = makeRows('outliers', 8, rows, rowLength).map((v, i) => v * 10 ** (15 + (i % 23)));
      const got = emptySums();
      const bytes = fastEncodeMeasured(type.id, type.reference, huge, rowLength, undefined, rowLength * slabRows, got)!;
      expectSameBytes(type, bytes, type.reference.encode(huge, rowLength), `${type.id} huge`);
      const want = emptySums();
      for (let r = 0; r < rows; r += slabRows) {
        const n = Math.min(slabRows, rows - r);
        accumulateErrors(huge.subarray(r * rowLength, (r + n) * rowLength), type.reference.decode(bytes.subarray(r * rowBytes, (r + n) * rowBytes), n, rowLength), want);
      }
      expect(got, `${type.id} huge`).toEqual(want);
      const squared = emptySums();
      fastEncodeMeasured(type.id, type.reference, huge, rowLength, undefined, rowLength * slabRows, squared, true);
      expect([squared.count, squared.sumSqErr], `${type.id} huge, squared only`).toEqual([want.count, want.sumSqErr]);
    }
    // A NaN already in the running maximum (an earlier slab's) stays, as accumulateErrors keeps it.
    for (const type of FAST_TYPES) {
      const x = makeRows('gaussian', 4, 2, type.blockSize);
      const got = { ...emptySums(), maxAbsErr: NaN };
      const bytes = fastEncodeMeasured(type.id, type.reference, x, type.blockSize, undefined, 1 << 20, got)!;
      expect(got, `${type.id} NaN maximum`).toEqual(accumulateErrors(x, type.reference.decode(bytes, 2, type.blockSize), { ...emptySums(), maxAbsErr: NaN }));
      expect(got.maxAbsErr).toBeNaN();
    }
    expect(fastEncodeMeasured('iq4_nl', quantType('iq4_nl')!.reference, new Float32Array(32), 32, undefined, 32, emptySums())).toBeNull();
  });

  it('legacy encoders without importance (the whole-row fast path) on edge blocks: as the reference, and as ggml where finite', () => {
    // One block per row, so a block the fast path hands on (or a row it flags) stays alone.
    const rnd = random(77);
    const gauss = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
    const blocks: number[][] = [];
    const base = (scale: number) => Array.from({ length: 32 }, () => gauss() * scale);
    const f32 = (bits: number) => new Float32Array(new Uint32Array([bits]).buffer)[0];
    for (let k = 0; k < 32; k++) {
      const scale = 10 ** (rnd() * 60 - 40);
      // The largest magnitude at k, either sign, and tied with the other sign elsewhere (both orders).
      for (const sign of [1, -1]) {
        const b = base(scale);
        b[k] = sign * 5 * scale;
        blocks.push(b);
        const t = [...b];
        t[(k + 7) % 32] = -sign * 5 * scale;
        blocks.push(t);
      }
      // Non-finite values at k: NaNs of either sign, payloads and signalling ones, Infs.
      for (const bad of [NaN, -NaN, f32(0x7f800001), f32(0xffc00123), Infinity, -Infinity]) {
        const b = base(scale);
        b[k] = bad;
        blocks.push(b);
      }
      // Zeros of either sign as the min, the max, or everything.
      const pos = base(scale).map((v) => Math.abs(v) + scale);
      pos[k] = rnd() < 0.5 ? 0 : -0;
      blocks.push(pos, pos.map((v) => -v));
      blocks.push(Array.from({ length: 32 }, (_, j) => (j === k ? -0 : 0)), Array.from({ length: 32 }, (_, j) => (j === k ? 0 : -0)));
    }
    // Huge ranges (max - min overflows), tiny and subnormal scales (1/d overflows), constants.
    for (const scale of [3e38, 1e38, 1e-36, 1e-37, 2e-38, 1e-38, 3e-39, 1e-40, 1e-44, 1.4e-45]) {
      blocks.push(base(scale), base(scale).map(Math.abs), Array(32).fill(scale), Array(32).fill(-scale));
    }
    blocks.push(Array.from({ length: 32 }, (_, j) => (j % 2 ? 3.4e38 : -3.4e38)), Array(32).fill(-0), Array(32).fill(0));
    const x = Float32Array.from(blocks.flat());
    for (const id of ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0']) {
      const type = quantType(id)!;
      const got = type.codec.encode(x, 32);
      expectSameBytes(type, got, type.reference.encode(x, 32), 'edge blocks');
      const finite = Float32Array.from(blocks.filter((b) => b.every(Number.isFinite)).flat());
      expectSameBytes(type, type.codec.encode(finite, 32), ggmlQuantizeChunk(type.ggml!.id, finite, 32), 'finite edge blocks vs ggml_quantize_chunk');
    }
  });

  it('splits big tensors into chunks without changing a byte', () => {
    const type = quantType('q4_0')!;
    const rowLength = 96 * 32; // 1 << 20 is not a multiple: the last chunk is short
    const x = makeRows('outliers', 9, 400, rowLength);
    const bytes = type.codec.encode(x, rowLength);
    expectSameBytes(type, bytes, type.reference.encode(x, rowLength), 'chunks');
    expectSameFloats(type, type.codec.decode(bytes, 400, rowLength), type.reference.decode(bytes, 400, rowLength), 'chunks');
  });

  it('fall back to the reference when not installed, with its errors', () => {
    const type = quantType('q4_K')!;
    const x = makeRows('gaussian', 1, 2, 256);
    const wasm = readFileSync(join(import.meta.dirname, '../../../wasm/build/quant.wasm'));
    try {
      uninstallFastCodecs();
      expectSameBytes(type, type.codec.encode(x, 256), type.reference.encode(x, 256), 'uninstalled');
    } finally {
      installFastCodecs(wasm);
    }
    expect(() => type.codec.encode(x, 100)).toThrow(/row length 100/);
  });
});
