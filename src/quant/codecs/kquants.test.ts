// Q2_K..Q6_K and Q8_K against the real ggml (ggml_quantize_chunk, quantize_row_q8_K_ref and
// dequantize_row_* from the llama.cpp inside node-llama-cpp) on inputs the golden files do
// not hold: row scales from 1e-30 to 1e10 (subnormal and overflowing f16 scales), exact
// ties, sparse and constant rows, power-of-two grids, NaN and Inf, rows of several
// super-blocks with importance that has zero columns; and any bytes decoded bit for bit.
import { describe, expect, it } from 'vitest';
import { ggmlTypeByName } from '../../formats/gguf/constants.ts';
import type { Codec } from '../codec.ts';
import { quantType } from '../types.ts';
import {
  Q2_K, Q2_K_BLOCK_BYTES, Q3_K, Q3_K_BLOCK_BYTES, Q4_K, Q4_K_BLOCK_BYTES, Q5_K, Q5_K_BLOCK_BYTES,
  Q6_K, Q6_K_BLOCK_BYTES, Q8_K, Q8_K_BLOCK_BYTES, QK_K,
} from './kquants.ts';
import {
  SPECIAL_F16, bits, expectSameAsGgml, expectShortcutsChangeNothing, ggmlDequantize, ggmlFunction, importanceFor, makeRows,
  random, type Shape,
} from './testing.ts';

/** [id, codec, bytes per block, ggml-common.h's static_assert formula for the size]. */
const K_TYPES: [string, Codec, number, number][] = [
  ['q2_K', Q2_K, Q2_K_BLOCK_BYTES, 2 * 2 + QK_K / 16 + QK_K / 4],
  ['q3_K', Q3_K, Q3_K_BLOCK_BYTES, 2 + QK_K / 4 + QK_K / 8 + 12],
  ['q4_K', Q4_K, Q4_K_BLOCK_BYTES, 2 * 2 + 12 + QK_K / 2],
  ['q5_K', Q5_K, Q5_K_BLOCK_BYTES, 2 * 2 + 12 + QK_K / 2 + QK_K / 8],
  ['q6_K', Q6_K, Q6_K_BLOCK_BYTES, 2 + QK_K / 16 + (3 * QK_K) / 4],
  ['q8_K', Q8_K, Q8_K_BLOCK_BYTES, 4 + QK_K + (QK_K / 16) * 2],
];
const WEIGHT_TYPES = K_TYPES.filter(([id]) => id !== 'q8_K');

const SHAPES: Shape[] = ['gaussian', 'outliers', 'ties', 'sparse', 'grid', 'subnormal', 'constant', 'positive', 'nonfinite'];

function ggmlQuantizeQ8K(x: Float32Array): Uint8Array {
  const out = new Uint8Array((x.length / QK_K) * Q8_K_BLOCK_BYTES);
  ggmlFunction('void quantize_row_q8_K_ref(const float *, _Out_ uint8_t *, int64_t)')(x, out, BigInt(x.length));
  return out;
}

describe.each(K_TYPES)('%s', (id, codec, typeSize, ggmlSize) => {
  it(`super-blocks of 256 in ${typeSize} bytes (ggml-common.h's static assert)`, () => {
    expect(typeSize).toBe(ggmlSize);
    const type = quantType(id)!;
    expect([type.blockSize, type.typeSize]).toEqual([QK_K, typeSize]);
    expect(ggmlTypeByName(id)?.typeSize).toBe(typeSize);
    expect(codec.encode(new Float32Array(2 * QK_K), QK_K).length).toBe(2 * typeSize);
  });

  it('decodes any bytes as ggml does, bit for bit: Inf and NaN scales with any payload', () => {
    const rnd = random(11);
    const SPECIAL_F32 = [0x7f800000, 0xff800000, 0x7fc00000, 0xff812345, 0x00000001, 0x80000000, 0x7f7fffff];
    const blocks = 64;
    const bytes = Uint8Array.from({ length: blocks * typeSize }, () => Math.floor(rnd() * 256));
    const view = new DataView(bytes.buffer);
    // Where each type keeps its f16 d (and dmin), or Q8_K its f32 d.
    const headers = { q2_K: [80, 82], q3_K: [108], q4_K: [0, 2], q5_K: [0, 2], q6_K: [208], q8_K: [] }[id]!;
    for (let b = 0; b < blocks; b++) {
      for (const at of headers) {
        if (rnd() < 0.5) view.setUint16(b * typeSize + at, SPECIAL_F16[Math.floor(rnd() * SPECIAL_F16.length)], true);
      }
      if (id === 'q8_K' && rnd() < 0.7) view.setUint32(b * typeSize, SPECIAL_F32[Math.floor(rnd() * SPECIAL_F32.length)], true);
      else if (id === 'q8_K') view.setFloat32(b * typeSize, (rnd() - 0.5) * 1e-3, true);
    }
    const values = blocks * QK_K;
    expect(bits(codec.decode(bytes, 4, values / 4))).toEqual(bits(ggmlDequantize(id, bytes, values)));
  });

  it('rejects rows that are not whole super-blocks, short data and importance of the wrong length', () => {
    expect(() => codec.encode(new Float32Array(384), 384)).toThrow(RangeError);
    expect(() => codec.decode(new Uint8Array(typeSize * 3), 2, 512)).toThrow(RangeError);
    expect(() => codec.encode(new Float32Array(512), 512, new Float32Array(256))).toThrow(RangeError);
  });
});

describe.each(WEIGHT_TYPES)('%s against ggml_quantize_chunk', (id, codec) => {
  const ggmlType = ggmlTypeByName(id)!.id;

  it.each(SHAPES)('%s rows: bytes and decoded floats identical, with and without importance', (shape) => {
    for (const [seed, rows, rowLength] of [[1, 6, 512], [2, 4, 256], [3, 2, 1024]]) {
      const x = makeRows(shape, seed, rows, rowLength);
      expectSameAsGgml(id, ggmlType, codec, x, rows, rowLength, importanceFor(seed, rowLength), `seed ${seed}, ${rows} x ${rowLength}`);
    }
  });

  it('uses importance weights', () => {
    const x = makeRows('gaussian', 5, 4, 256);
    expect(codec.encode(x, 256, importanceFor(5, 256))).not.toEqual(codec.encode(x, 256));
  });
});

describe('search shortcuts', () => {
  it.each(WEIGHT_TYPES)('%s: skipping proven trials changes no byte', (_id, codec) => {
    for (const shape of SHAPES) {
      const x = makeRows(shape, 21, 4, 512);
      for (const weights of [undefined, importanceFor(21, 512)]) expectShortcutsChangeNothing(codec, x, 512, weights, shape);
    }
  });
});

describe('q8_K (activations for the K dot products)', () => {
  it.each(SHAPES)('%s rows: quantize_row_q8_K_ref bytes and dequantize_row_q8_K floats', (shape) => {
    const x = makeRows(shape, 7, 8, 512);
    const ours = Q8_K.encode(x, 512);
    expect(ours).toEqual(ggmlQuantizeQ8K(x));
    expect(bits(Q8_K.decode(ours, 8, 512))).toEqual(bits(ggmlDequantize('q8_K', ours, x.length)));
  });

  it('keeps q in -127..127 with d = max/-127, and bsums the sum of each 16', () => {
    const x = makeRows('outliers', 8, 1, QK_K);
    const bytes = Q8_K.encode(x, QK_K);
    const view = new DataView(bytes.buffer);
    let max = 0;
    for (const v of x) if (Math.abs(v) > Math.abs(max)) max = v;
    expect(view.getFloat32(0, true)).toBe(Math.fround(1 / Math.fround(-127 / max)));
    const q = new Int8Array(bytes.buffer, 4, QK_K);
    expect(Math.max(...q.map(Math.abs))).toBe(127);
    for (let j = 0; j < 16; j++) {
      const sum = q.subarray(16 * j, 16 * j + 16).reduce((a, b) => a + b, 0);
      expect(view.getInt16(4 + QK_K + 2 * j, true)).toBe(sum);
    }
  });

  it('ignores importance weights', () => {
    const x = makeRows('gaussian', 9, 2, 256);
    expect(Q8_K.encode(x, 256, importanceFor(9, 256))).toEqual(Q8_K.encode(x, 256));
  });
});
