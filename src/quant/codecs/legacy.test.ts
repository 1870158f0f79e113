// Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 against the real ggml (ggml_quantize_chunk and
// dequantize_row_* from the llama.cpp inside node-llama-cpp) on inputs the golden files do
// not hold: row scales from 1e-30 to 1e10 (subnormal and overflowing f16 scales), exact
// ties, sparse rows, power-of-two grids, NaN and Inf, rows of one block, importance with
// zero columns.
import { describe, expect, it } from 'vitest';
import type { Codec } from '../codec.ts';
import { quantType } from '../types.ts';
import { Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 } from './legacy.ts';
import {
  SPECIAL_F16, bits, expectSameAsGgml, expectShortcutsChangeNothing, ggmlDequantize, importanceFor, makeRows, random, type Shape,
} from './testing.ts';

/** [id, ggml type, codec, bytes per block of 32, whether ggml uses importance]. */
const LEGACY: [string, number, Codec, number, boolean][] = [
  ['q4_0', 2, Q4_0, 18, true],
  ['q4_1', 3, Q4_1, 20, true],
  ['q5_0', 6, Q5_0, 22, true],
  ['q5_1', 7, Q5_1, 24, true],
  ['q8_0', 8, Q8_0, 34, false],
];

const SHAPES: Shape[] = ['gaussian', 'ties', 'sparse', 'grid', 'subnormal', 'constant', 'nonfinite'];
/** Share of zeros in a sparse row. */
const SPARSE_ZEROS = 0.7;


describe.each(LEGACY)('%s', (id, ggmlType, codec, typeSize, usesImportance) => {
  it(`blocks of 32 in ${typeSize} bytes (ggml-common.h's static assert)`, () => {
    const type = quantType(id)!;
    expect([type.blockSize, type.typeSize]).toEqual([32, typeSize]);
    expect(codec.encode(new Float32Array(64), 32).length).toBe(2 * typeSize);
  });

  it.each(SHAPES)('%s rows: bytes and decoded floats identical to ggml, with and without importance', (shape) => {
    for (const [seed, rows, rowLength] of [[1, 8, 512], [2, 16, 32], [3, 4, 96]]) {
      const x = makeRows(shape, seed, rows, rowLength, SPARSE_ZEROS);
      expectSameAsGgml(id, ggmlType, codec, x, rows, rowLength, importanceFor(seed, rowLength), `seed ${seed}, ${rows} x ${rowLength}`);
    }
  });

  it('decodes any bytes as ggml does, bit for bit: Inf and NaN scales with any payload', () => {
    const rnd = random(11);
    const blocks = 256;
    const bytes = Uint8Array.from({ length: blocks * typeSize }, () => Math.floor(rnd() * 256));
    const headers = id === 'q4_1' || id === 'q5_1' ? 2 : 1;
    for (let b = 0; b < blocks; b++) {
      for (let k = 0; k < headers; k++) {
        if (rnd() < 0.5) continue;
        const h = SPECIAL_F16[Math.floor(rnd() * SPECIAL_F16.length)];
        bytes[b * typeSize + 2 * k] = h & 0xff;
        bytes[b * typeSize + 2 * k + 1] = h >> 8;
      }
    }
    expect(bits(codec.decode(bytes, 8, 32 * 32))).toEqual(bits(ggmlDequantize(id, bytes, blocks * 32)));
  });

  it(usesImportance ? 'uses importance weights' : 'ignores importance weights, as ggml does', () => {
    const x = makeRows('gaussian', 5, 4, 256);
    const plain = codec.encode(x, 256);
    const weighted = codec.encode(x, 256, importanceFor(5, 256));
    if (usesImportance) expect(weighted).not.toEqual(plain);
    else expect(weighted).toEqual(plain);
  });

  it('reconstructs within the quantization step', () => {
    // Symmetric types map -max to q = 15/31 (one step short); the others round to nearest.
    const steps = id === 'q4_0' || id === 'q5_0' ? 1 : 0.5;
    const rnd = random(9);
    const x = Float32Array.from({ length: 32 * 64 }, () => Math.fround((rnd() - 0.5) * 2));
    const bytes = codec.encode(x, 256);
    const back = codec.decode(bytes, 8, 256);
    for (let b = 0; b < 64; b++) {
      const d = Math.abs(f16ToNumber(bytes, b * typeSize));
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
      for (let j = 0; j < 32; j++) {
        expect(Math.abs(x[b * 32 + j] - back[b * 32 + j])).toBeLessThanOrEqual(steps * d + amax * 2 ** -9);
      }
    }
  });

  it('rejects rows that are not whole blocks, wrong byte counts and importance of the wrong length', () => {
    expect(() => codec.encode(new Float32Array(48), 48)).toThrow(RangeError);
    expect(() => codec.decode(new Uint8Array(typeSize * 3), 1, 64)).toThrow(RangeError);
    expect(() => codec.encode(new Float32Array(64), 64, new Float32Array(32))).toThrow(RangeError);
  });
});

describe('search shortcuts', () => {
  // The _impl paths run make_qx_quants / make_qkx3_quants, shared with the K types.
  it.each(LEGACY.filter(([, , , , usesImportance]) => usesImportance))('%s: skipping proven trials changes no byte', (_id, _type, codec) => {
    for (const shape of SHAPES) {
      expectShortcutsChangeNothing(codec, makeRows(shape, 21, 4, 512, SPARSE_ZEROS), 512, importanceFor(21, 512), shape);
    }
  });
});

/** The f16 at `offset` as a number (the scale d of a block). */
function f16ToNumber(bytes: Uint8Array, offset: number): number {
  const h = bytes[offset] | (bytes[offset + 1] << 8);
  const exponent = (h >> 10) & 31;
  const magnitude = exponent ? (1 + (h & 1023) / 1024) * 2 ** (exponent - 15) : (h & 1023) * 2 ** -24;
  return h & 0x8000 ? -magnitude : magnitude;
}
