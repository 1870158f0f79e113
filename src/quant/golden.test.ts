// Every GGUF type of the table against ggml's own output (../shared/fixtures/golden):
// quantized bytes identical, dequantized floats identical bit for bit.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { QUANT_TYPES } from './types.ts';

const GOLDEN = join(import.meta.dirname, '../../../shared/fixtures/golden');

interface GoldenFile {
  set: string;
  type: string;
  imatrix?: string;
  quantized: string;
  dequantized: string;
}
interface Manifest {
  n_per_row: number;
  sets: Record<string, { input: string; rows: number }>;
  types: Record<string, { ggml_type: number; block_size: number; type_size: number }>;
  files: GoldenFile[];
}

const manifest = JSON.parse(readFileSync(join(GOLDEN, 'manifest.json'), 'utf8')) as Manifest;
const read = (name: string) => new Uint8Array(readFileSync(join(GOLDEN, name)));
const readF32 = (name: string) => {
  const b = read(name);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};

/** Index of the first differing byte, or -1. */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

describe('golden vectors from ggml_quantize_chunk', () => {
  const gguf = QUANT_TYPES.filter((t) => t.ggml && manifest.types[t.ggml.name]);

  it('covers every type the fixtures hold', () => {
    const covered = new Set(gguf.map((t) => t.ggml!.name));
    expect(Object.keys(manifest.types).filter((n) => !covered.has(n))).toEqual([]);
  });

  for (const type of gguf) {
    const files = manifest.files.filter((f) => f.type === type.ggml!.name);
    describe(type.id, () => {
      it('has a block size and type size matching the manifest', () => {
        const m = manifest.types[type.ggml!.name];
        expect([type.blockSize, type.typeSize]).toEqual([m.block_size, m.type_size]);
      });
      for (const file of files) {
        it(`${file.quantized}: bytes and dequantized floats identical`, () => {
          const input = readF32(manifest.sets[file.set].input);
          const importance = file.imatrix ? readF32(file.imatrix) : undefined;
          const expected = read(file.quantized);
          const got = type.codec.encode(input, manifest.n_per_row, importance);
          const at = firstDifference(got, expected);
          expect(at, `first differing byte ${at} (block ${Math.floor(at / type.typeSize)})`).toBe(-1);

          const deq = type.codec.decode(expected, manifest.sets[file.set].rows, manifest.n_per_row);
          const want = read(file.dequantized);
          const atF = firstDifference(new Uint8Array(deq.buffer, deq.byteOffset, deq.byteLength), want);
          expect(atF, `first differing float ${atF >> 2}`).toBe(-1);
        });
      }
    });
  }
});
