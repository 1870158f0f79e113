// IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, NVFP4, Q1_0 and Q2_0 against the real
// ggml (the llama.cpp inside node-llama-cpp, through koffi): bytes equal to
// ggml_quantize_chunk's with and without importance weights (where ggml allows without), on
// hundreds of seeded rows of 256 and on the golden inputs with the golden imatrix; decoded
// floats equal to dequantize_row_*'s bit for bit, on those bytes and on random blocks whose
// scales are Inf, NaN, subnormal or zero.
import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ggmlQuantizeChunk } from '../../testing/llama-peer.ts';
import { quantType } from '../types.ts';
import type { Codec } from '../codec.ts';
import { IQ1_M, IQ1_S } from './iq1.ts';
import { IQ2_S, IQ2_XS, IQ2_XXS } from './iq2.ts';
import { IQ3_S, IQ3_XXS } from './iq3.ts';
import { NVFP4, Q1_0, Q2_0 } from './lowbit.ts';
import { SPECIAL_F16, bits, ggmlDequantize, importanceFor, makeRows, random, readTensor, type Shape } from './testing.ts';

interface Case {
  id: string;
  ggmlType: number;
  codec: Codec;
  blockSize: number;
  typeSize: number;
  /** ggml_quantize_requires_imatrix: ggml aborts without importance weights. */
  requiresImportance: boolean;
  /** ggml_quantize_chunk passes importance weights on to the quantizer. */
  usesImportance: boolean;
  /** Write the f16 super-block scale `h` into the block at `at` (null: no f16 scale). */
  setScale: ((block: Uint8Array, at: number, h: number) => void) | null;
}

const atStart = (block: Uint8Array, at: number, h: number) => {
  block[at] = h & 0xff;
  block[at + 1] = h >> 8;
};
/** iq1_m keeps its f16 scale as the top nibble of each of its four u16 scale words. */
const iq1mScale = (block: Uint8Array, at: number, h: number) => {
  for (let j = 0; j < 4; j++) block[at + 48 + 2 * j + 1] = (block[at + 48 + 2 * j + 1] & 0x0f) | (((h >> (4 * j)) & 0xf) << 4);
};

const CASES: Case[] = [
  { id: 'iq2_xxs', ggmlType: 16, codec: IQ2_XXS, blockSize: 256, typeSize: 66, requiresImportance: true, usesImportance: true, setScale: atStart },
  { id: 'iq2_xs', ggmlType: 17, codec: IQ2_XS, blockSize: 256, typeSize: 74, requiresImportance: true, usesImportance: true, setScale: atStart },
  { id: 'iq3_xxs', ggmlType: 18, codec: IQ3_XXS, blockSize: 256, typeSize: 98, requiresImportance: false, usesImportance: true, setScale: atStart },
  { id: 'iq1_s', ggmlType: 19, codec: IQ1_S, blockSize: 256, typeSize: 50, requiresImportance: true, usesImportance: true, setScale: atStart },
  { id: 'iq3_s', ggmlType: 21, codec: IQ3_S, blockSize: 256, typeSize: 110, requiresImportance: false, usesImportance: true, setScale: atStart },
  { id: 'iq2_s', ggmlType: 22, codec: IQ2_S, blockSize: 256, typeSize: 82, requiresImportance: false, usesImportance: true, setScale: atStart },
  { id: 'iq1_m', ggmlType: 29, codec: IQ1_M, blockSize: 256, typeSize: 56, requiresImportance: false, usesImportance: true, setScale: iq1mScale },
  { id: 'nvfp4', ggmlType: 40, codec: NVFP4, blockSize: 64, typeSize: 36, requiresImportance: false, usesImportance: false, setScale: null },
  { id: 'q1_0', ggmlType: 41, codec: Q1_0, blockSize: 128, typeSize: 18, requiresImportance: false, usesImportance: false, setScale: atStart },
  { id: 'q2_0', ggmlType: 42, codec: Q2_0, blockSize: 64, typeSize: 18, requiresImportance: false, usesImportance: false, setScale: atStart },
];

const ROW = 256;
/** Rows per shape and seed: 8 shapes x 2 seeds x 24 rows = 384 rows of 256 per type. */
const ROWS = 24;
const SHAPES: Shape[] = ['gaussian', 'outliers', 'ties', 'sparse', 'grid', 'subnormal', 'constant', 'positive'];

const GOLDEN = join(import.meta.dirname, '../../../../shared/fixtures/golden');
const readF32 = (name: string) => {
  const b = readFileSync(join(GOLDEN, name));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** Our bytes and ggml's for x (with `importance` or none), and both decodes of ggml's bytes. */
function expectAsGgml(c: Case, x: Float32Array, rowLength: number, importance: Float32Array | undefined, what: string): void {
  const theirs = ggmlQuantizeChunk(c.ggmlType, x, rowLength, importance);
  const ours = c.codec.encode(x, rowLength, importance);
  const at = firstDifference(ours, theirs);
  expect(at, `${what}: first differing byte ${at} (block ${Math.floor(at / c.typeSize)})`).toBe(-1);
  const rows = x.length / rowLength;
  expect(bits(c.codec.decode(theirs, rows, rowLength)), what).toEqual(bits(ggmlDequantize(c.id, theirs, x.length)));
}

/** ggml builds its grids and neighbour lists on first use: single-threaded, up to a minute for iq1's. */
const GGML_INIT_TIMEOUT_MS = 300_000;

describe.each(CASES)('$id against ggml', (c) => {
  beforeAll(() => {
    ggmlQuantizeChunk(c.ggmlType, new Float32Array(ROW), ROW, new Float32Array(ROW).fill(1));
  }, GGML_INIT_TIMEOUT_MS);

  it('has the block layout of ggml-common.h, in the type table too', () => {
    expect(quantType(c.id)).toMatchObject({
      blockSize: c.blockSize, typeSize: c.typeSize, requiresImportance: c.requiresImportance, usesImportance: c.usesImportance || c.id.startsWith('iq'),
    });
    expect(quantType(c.id)!.ggml!.id).toBe(c.ggmlType);
    expect(ggmlQuantizeChunk(c.ggmlType, new Float32Array(ROW), ROW, new Float32Array(ROW).fill(1)).length).toBe((ROW / c.blockSize) * c.typeSize);
  });

  it.each(SHAPES)('%s rows: identical bytes and floats, with and without importance', (shape) => {
    for (let seed = 1; seed <= 2; seed++) {
      const x = makeRows(shape, seed, ROWS, ROW);
      const importance = importanceFor(seed, ROW);
      if (!c.requiresImportance) expectAsGgml(c, x, ROW, undefined, `seed ${seed}`);
      expectAsGgml(c, x, ROW, importance, `seed ${seed}, importance`);
    }
  });

  it('golden inputs (../shared/fixtures/golden): identical bytes and floats, with the golden imatrix', () => {
    const imatrix = readF32('imatrix.f32');
    expect(imatrix.length).toBe(ROW);
    for (const set of ['edge', 'real', 'realistic']) {
      const x = readF32(`${set}.input.f32`);
      if (!c.requiresImportance) expectAsGgml(c, x, ROW, undefined, set);
      expectAsGgml(c, x, ROW, imatrix, `${set}, imatrix`);
    }
  });

  it('stories260K weights (embeddings, down_proj) read as rows of 256: identical bytes and floats', () => {
    for (const name of ['model.embed_tokens.weight', 'model.layers.0.mlp.down_proj.weight']) {
      const x = readTensor(name).data;
      const whole = x.subarray(0, x.length - (x.length % ROW));
      if (!c.requiresImportance) expectAsGgml(c, whole, ROW, undefined, name);
      expectAsGgml(c, whole, ROW, importanceFor(21, ROW), `${name}, importance`);
    }
  });

  it('all-zero sub-blocks of 16 and 32 in places (iq3_s then writes the next grid bytes in their slot)', () => {
    const rnd = random(31);
    const x = makeRows('outliers', 8, ROWS, ROW);
    for (let at = 0; at < x.length; at += 16) if (rnd() < 0.3) x.fill(0, at, at + (rnd() < 0.5 ? 16 : 32));
    if (!c.requiresImportance) expectAsGgml(c, x, ROW, undefined, 'zeroed sub-blocks');
    expectAsGgml(c, x, ROW, importanceFor(8, ROW), 'zeroed sub-blocks, importance');
  });

  it('rows of several blocks read importance by column', () => {
    const x = makeRows('outliers', 9, 6, 1024);
    expectAsGgml(c, x, 1024, importanceFor(9, 1024), 'rows of 1024');
  });

  it('decodes any block as ggml does: random bytes, and scales Inf, NaN, subnormal, zero', () => {
    const rnd = random(77);
    const blocks = 64;
    const data = Uint8Array.from({ length: blocks * c.typeSize }, () => Math.floor(rnd() * 256));
    if (c.setScale) {
      for (let b = 0; b < SPECIAL_F16.length; b++) c.setScale(data, b * c.typeSize, SPECIAL_F16[b]);
    }
    const n = blocks * c.blockSize;
    expect(bits(c.codec.decode(data, 1, n))).toEqual(bits(ggmlDequantize(c.id, data, n)));
  });

  it('refuses short data and rows that are not whole blocks', () => {
    expect(() => c.codec.decode(new Uint8Array(c.typeSize - 1), 1, c.blockSize)).toThrow(RangeError);
    expect(() => c.codec.encode(new Float32Array(c.blockSize / 2), c.blockSize / 2, new Float32Array(c.blockSize / 2))).toThrow(RangeError);
    expect(() => c.codec.encode(new Float32Array(ROW), ROW, new Float32Array(ROW - 1))).toThrow(RangeError);
  });
});

describe('huge values', () => {
  // Rows of sin(i)*scale: at 1e19 and 3e38 the squared errors of iq2_xs, iq2_s and the iq3
  // searches overflow f32 and ggml aborts (GGML_ASSERT(grid_index >= 0)); the others cope.
  const hugeRows = (scale: number) => Float32Array.from({ length: 4 * ROW }, (_, i) => Math.sin(i * 1.3) * scale);
  const ABORTS_IN_GGML = new Set(['iq2_xs', 'iq2_s', 'iq3_xxs', 'iq3_s']);

  it.each(CASES)('$id at 1e15: as ggml', (c) => {
    expectAsGgml(c, hugeRows(1e15), ROW, importanceFor(2, ROW), 'scale 1e15');
  });

  it.each(CASES.filter((c) => !ABORTS_IN_GGML.has(c.id)))('$id at 1e19 and 3e38: as ggml', (c) => {
    for (const scale of [1e19, 3e38]) expectAsGgml(c, hugeRows(scale), ROW, importanceFor(2, ROW), `scale ${scale}`);
  });

  it.each(CASES.filter((c) => ABORTS_IN_GGML.has(c.id)))('$id at 1e19 and 3e38: refused, naming the row, where ggml aborts', (c) => {
    for (const scale of [1e19, 3e38]) {
      expect(() => c.codec.encode(hugeRows(scale), ROW, importanceFor(2, ROW))).toThrow(new RegExp(`^${c.id}: row 0: no grid point fits`));
    }
  });
});

describe('types that need importance weights (ggml_quantize_requires_imatrix)', () => {
  it.each(CASES.filter((c) => c.requiresImportance))('$id refuses to encode without them', (c) => {
    expect(() => c.codec.encode(makeRows('gaussian', 1, 1, ROW), ROW)).toThrow(/needs importance weights/);
  });
});

describe('i-quant searches on values that are not finite', () => {
  // ggml aborts the process (GGML_ASSERT(scale >= 0)); the codecs refuse with the row and column.
  it.each(CASES.filter((c) => c.id.startsWith('iq')))('$id refuses Inf and NaN, naming where', (c) => {
    const x = makeRows('gaussian', 3, 2, ROW);
    x[ROW + 17] = NaN;
    expect(() => c.codec.encode(x, ROW, importanceFor(3, ROW))).toThrow(/row 1, column 17 is NaN/);
    x[ROW + 17] = 1;
    x[5] = -Infinity;
    expect(() => c.codec.encode(x, ROW, importanceFor(3, ROW))).toThrow(/row 0, column 5 is -Infinity/);
  });

  it.each(CASES.filter((c) => !c.id.startsWith('iq')))('$id encodes them as ggml does', (c) => {
    const x = makeRows('nonfinite', 4, ROWS, ROW);
    expectAsGgml(c, x, ROW, undefined, 'non-finite rows');
  });
});
