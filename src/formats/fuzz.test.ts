// Random damage to small valid files must only ever give a FormatError (or a good
// parse): never a RangeError, TypeError, hang or giant allocation.

import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { memorySource } from './bytes.ts';
import { FormatError } from './errors.ts';
import { GGML_TYPE, GGUF_VALUE_TYPE as T } from './gguf/constants.ts';
import { ggufArray, ggufEntry } from './gguf/metadata.ts';
import { readGguf } from './gguf/read.ts';
import { planGguf, writeGguf } from './gguf/write.ts';
import { loadModel, readTensorF32 } from './model.ts';
import { collect, rawSafetensors } from './testing.ts';

let gguf: Uint8Array;
let safetensors: Uint8Array;

beforeAll(async () => {
  const layout = planGguf({
    metadata: [
      ggufEntry('general.architecture', T.STRING, 'llama'),
      ggufEntry('llama.block_count', T.UINT32, 1),
      ggufEntry('tokenizer.ggml.tokens', T.ARRAY, ggufArray(T.STRING, ['<unk>', '<s>', 'a', 'b'])),
      ggufEntry('tokenizer.ggml.scores', T.ARRAY, ggufArray(T.FLOAT32, new Float32Array([0, 0, -1, -2]))),
      ggufEntry('nested', T.ARRAY, ggufArray(T.ARRAY, [ggufArray(T.INT64, new BigInt64Array([1n]))])),
    ],
    tensors: [
      { name: 'a', type: GGML_TYPE.F32, ne: [4, 2] },
      { name: 'b', type: GGML_TYPE.Q4_0, ne: [32] },
      { name: 'c', type: GGML_TYPE.F16, ne: [8] },
    ],
  });
  gguf = await collect(writeGguf(layout, (t) => new Uint8Array(t.nbytes).fill(0x3c)));
  const header = {
    __metadata__: { format: 'pt' },
    w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] },
    b: { dtype: 'BF16', shape: [4], data_offsets: [16, 24] },
  };
  safetensors = rawSafetensors(header, 24);
});

const mutations = (size: () => number) =>
  fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }).map((list) =>
    list.map(([at, value]) => [at % size(), value] as const),
  );

function mutate(bytes: Uint8Array, changes: readonly (readonly [number, number])[]): Uint8Array {
  const copy = bytes.slice();
  for (const [at, value] of changes) copy[at] = value;
  return copy;
}

/** Parses, reads every tensor as f32 where possible; only FormatError may come out. */
async function parseOnlyFormatErrors(bytes: Uint8Array, name: string): Promise<void> {
  try {
    const model = await loadModel([memorySource(bytes, name)]);
    for (const t of model.tensors) {
      if (t.ggmlType === undefined || t.dtype === 'f32' || t.dtype === 'f16') await readTensorF32(model, t);
    }
  } catch (error) {
    if (!(error instanceof FormatError)) throw error;
  }
}

describe('fuzz: mutated files throw only FormatError', () => {
  it('the valid seeds parse', async () => {
    expect((await readGguf(memorySource(gguf, 'seed.gguf'))).tensors).toHaveLength(3);
    expect((await loadModel([memorySource(safetensors, 'seed.safetensors')])).tensors).toHaveLength(2);
  });

  it('GGUF with random byte changes', async () => {
    await fc.assert(fc.asyncProperty(mutations(() => gguf.length), (changes) => parseOnlyFormatErrors(mutate(gguf, changes), 'm.gguf')), { numRuns: 1500 });
  });

  it('GGUF with random byte changes in the preamble and first key (where the lengths are)', async () => {
    await fc.assert(fc.asyncProperty(mutations(() => 64), (changes) => parseOnlyFormatErrors(mutate(gguf, changes), 'm.gguf')), { numRuns: 500 });
  });

  it('GGUF cut anywhere', async () => {
    await fc.assert(fc.asyncProperty(fc.nat({ max: 10_000 }), (cut) => parseOnlyFormatErrors(gguf.slice(0, cut % gguf.length), 'cut.gguf')), { numRuns: 300 });
  });

  it('safetensors with random byte changes', async () => {
    await fc.assert(fc.asyncProperty(mutations(() => safetensors.length), (changes) => parseOnlyFormatErrors(mutate(safetensors, changes), 'm.safetensors')), { numRuns: 1000 });
  });
});
