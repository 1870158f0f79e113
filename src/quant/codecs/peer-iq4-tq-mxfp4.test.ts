// IQ4_NL, IQ4_XS, TQ1_0, TQ2_0 and MXFP4 against the real ggml (ggml_quantize_chunk from the
// llama.cpp inside node-llama-cpp) on inputs the golden files do not hold: row scales from
// 1e-30 to 1e10, exact ties, sparse rows, values on power-of-two grids, two blocks a row,
// and importance weights with zero columns.
import { describe, expect, it } from 'vitest';
import { ggmlQuantizeChunk } from '../../testing/llama-peer.ts';
import type { Codec } from '../codec.ts';
import { IQ4_NL, IQ4_XS } from './iquants.ts';
import { MXFP4 } from './mxfp4.ts';
import { importanceFor, random } from './testing.ts';
import { TQ1_0, TQ2_0 } from './ternary.ts';

const ROW = 512;
const ROWS = 8;

type Shape = 'gaussian' | 'ties' | 'sparse' | 'grid';

function makeRows(shape: Shape, seed: number): Float32Array {
  const rnd = random(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(rnd())) * Math.cos(2 * Math.PI * rnd());
  const x = new Float32Array(ROWS * ROW);
  for (let r = 0; r < ROWS; r++) {
    const scale = 10 ** (rnd() * 40 - 30);
    for (let j = 0; j < ROW; j++) {
      const g = gauss();
      x[r * ROW + j] =
        shape === 'ties' ? (Math.round(g * 2) / 2) * scale
        : shape === 'sparse' ? (rnd() < 0.7 ? 0 : g * scale)
        : shape === 'grid' ? (Math.floor(rnd() * 16) - 8) * 2 ** Math.floor(rnd() * 20 - 10)
        : g * scale;
    }
  }
  return x;
}

const CODECS: [string, number, Codec, boolean][] = [
  ['iq4_nl', 20, IQ4_NL, true],
  ['iq4_xs', 23, IQ4_XS, true],
  ['tq1_0', 34, TQ1_0, false],
  ['tq2_0', 35, TQ2_0, false],
  ['mxfp4', 39, MXFP4, false],
];
const SHAPES: Shape[] = ['gaussian', 'ties', 'sparse', 'grid'];

describe.each(CODECS)('%s against ggml_quantize_chunk', (_, ggmlType, codec, usesImportance) => {
  it.each(SHAPES)('%s rows: identical bytes', (shape) => {
    for (let seed = 1; seed <= 4; seed++) {
      const x = makeRows(shape, seed);
      expect(codec.encode(x, ROW), `seed ${seed}`).toEqual(ggmlQuantizeChunk(ggmlType, x, ROW));
      if (!usesImportance) continue;
      const importance = importanceFor(seed, ROW);
      expect(codec.encode(x, ROW, importance), `seed ${seed}, imatrix`).toEqual(ggmlQuantizeChunk(ggmlType, x, ROW, importance));
    }
  });
});
