// Random damage to valid files must only ever give a FormatError (or a good parse): never
// a RangeError, TypeError, hang or giant allocation. fast-check properties on two small
// files, then the seeded mutation fuzzer (src/testing/fuzz.ts) over every fixture model
// and hand-built corner cases.

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
import { allSeeds, checkInput, emptyTally, fuzzRange, PARSE_MEMORY_FIXED_BYTES } from '../testing/fuzz.ts';
import { dequantizeGgml } from '../quant/types.ts';

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

// ---- the seeded mutation fuzzer (src/testing/fuzz.ts; `npm run fuzz` is the long run) -------

describe('seeded mutation fuzzer over the fixtures and hand-built corner cases', () => {
  /** Fixed, so that a failure here can be replayed: makeInput(seeds, RUN_SEED, index). */
  const RUN_SEED = 20261123;
  const INPUTS = 6000;

  it(`${INPUTS} mutated files: each parses or throws a FormatError naming the file and an offset inside it`, async () => {
    const seeds = await allSeeds();
    expect(seeds.filter((s) => s.format === 'gguf').length).toBeGreaterThanOrEqual(5);
    expect(seeds.filter((s) => s.format === 'safetensors').length).toBeGreaterThanOrEqual(5);
    const tally = emptyTally();
    await fuzzRange(seeds, RUN_SEED, 0, INPUTS, tally);
    expect(tally.findings.map((f) => `#${f.index} (${f.seed}: ${f.mutations}) ${f.outcome.problem}: ${f.outcome.message}`)).toEqual([]);
    expect(tally.inputs).toBe(INPUTS);
    // The mutations reach deep: many inputs still parse, and the refusals are of many kinds.
    expect(tally.parsed).toBeGreaterThan(INPUTS / 50);
    expect(tally.formatErrors).toBeGreaterThan(INPUTS / 2);
    expect(tally.reasons.size).toBeGreaterThan(150);
  }, 120_000);

  it('the harness itself catches a stray exception, an error without its place, and a giant allocation', async () => {
    const bytes = new Uint8Array(100);
    const stray = await checkInput(bytes, 'x.gguf', async () => {
      throw new RangeError('offset out of bounds');
    });
    expect(stray).toMatchObject({ kind: 'finding', problem: 'exception' });
    const offPlace = await checkInput(bytes, 'x.gguf', async () => {
      throw new FormatError('x.gguf', 101, 'past the end');
    });
    expect(offPlace).toMatchObject({ kind: 'finding', problem: 'bad-error' });
    const otherFile = await checkInput(bytes, 'x.gguf', async () => {
      throw new FormatError('y.gguf', 3, 'wrong file named');
    });
    expect(otherFile).toMatchObject({ kind: 'finding', problem: 'bad-error' });
    let kept: Uint8Array | null = null;
    const greedy = await checkInput(bytes, 'x.gguf', async (source) => {
      kept = new Uint8Array(PARSE_MEMORY_FIXED_BYTES + 64 * source.size).fill(1);
      await source.read(0, 8);
    });
    expect(kept).not.toBeNull();
    expect(greedy).toMatchObject({ kind: 'finding', problem: 'memory' });
    const fine = await checkInput(bytes, 'x.gguf', async () => {
      throw new FormatError('x.gguf', 100, 'ends here');
    });
    expect(fine).toEqual({ kind: 'format-error', offset: 100, reason: 'ends here' });
  });

  it('the GGUF field map finds every count, length, type, dim and offset of a fixture header', async () => {
    const seeds = await allSeeds();
    const stories = seeds.find((s) => s.name === 'stories260K.gguf')!;
    const header = await readGguf(memorySource(stories.bytes, 'stories260K.gguf'));
    // per tensor: name length, n_dims, each dim, type, offset
    const tensorFields = header.tensors.reduce((n, t) => n + 4 + t.ne.length, 0);
    expect(stories.fields.length).toBeGreaterThan(tensorFields + 3 + 2 * header.metadata.length);
    const view = new DataView(stories.bytes.buffer, stories.bytes.byteOffset);
    const last = stories.fields.at(-1)!;
    // The last field is the last tensor's data offset.
    expect(Number(view.getBigUint64(last.at, true))).toBe(header.tensors.at(-1)!.offset);
  });

  it('a zero-element block-quantized tensor (found by the fuzzer) reads as an empty array', async () => {
    const layout = planGguf({ metadata: [], tensors: [{ name: 'empty', type: GGML_TYPE.Q8_0, ne: [0, 3] }, { name: 'k', type: GGML_TYPE.Q4_K, ne: [256, 0] }] });
    const model = await loadModel([memorySource(await collect(writeGguf(layout, () => new Uint8Array(0))), 'zero.gguf')]);
    for (const t of model.tensors) expect(await readTensorF32(model, t, { dequantize: dequantizeGgml })).toEqual(new Float32Array(0));
  });
});
