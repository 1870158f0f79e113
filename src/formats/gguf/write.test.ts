import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf as hfGguf } from '@huggingface/gguf';
import { describe, expect, it } from 'vitest';
import { memorySource } from '../bytes.ts';
import { ggufDescriptor, loadModel, readTensorBytes } from '../model.ts';
import { FIXTURE_MODELS, collect, fixture } from '../testing.ts';
import { GGML_TYPE, GGML_TYPES, GGUF_VALUE_TYPE as T } from './constants.ts';
import { type GgufMetadataEntry, ggufArray, ggufEntry } from './metadata.ts';
import { readGguf } from './read.ts';
import { type GgufTensorDescriptor, ggufReadableStream, planGguf, writeGguf } from './write.ts';

describe('GGUF read -> write is byte-identical', () => {
  for (const name of ['stories260K.gguf', 'llama-2-tiny-random.gguf']) {
    it(name, async () => {
      const model = await loadModel([await fixture(name)]);
      // The header is rebuilt from the parsed ModelIndex; only tensor bytes come from the file.
      const layout = planGguf({ version: model.version!, metadata: model.ggufMetadata!, tensors: model.tensors.map(ggufDescriptor) });
      const written = await collect(writeGguf(layout, (_, i) => readTensorBytes(model, model.tensors[i])));
      const original = new Uint8Array(await readFile(join(FIXTURE_MODELS, name)));
      expect(layout.totalBytes).toBe(original.length);
      expect(written.length).toBe(original.length);
      expect(Buffer.compare(written, original)).toBe(0);
    });
  }
});

/** Every value type, as scalars, arrays and nested arrays. */
function everyValueType(): GgufMetadataEntry[] {
  return [
    ggufEntry('general.architecture', T.STRING, 'llama'),
    ggufEntry('t.u8', T.UINT8, 255),
    ggufEntry('t.i8', T.INT8, -128),
    ggufEntry('t.u16', T.UINT16, 65535),
    ggufEntry('t.i16', T.INT16, -32768),
    ggufEntry('t.u32', T.UINT32, 4294967295),
    ggufEntry('t.i32', T.INT32, -2147483648),
    ggufEntry('t.f32', T.FLOAT32, 0.5),
    ggufEntry('t.bool', T.BOOL, true),
    ggufEntry('t.string', T.STRING, 'héllo, wörld ✓'),
    ggufEntry('t.u64', T.UINT64, 2n ** 64n - 1n),
    ggufEntry('t.i64', T.INT64, -(2n ** 63n)),
    ggufEntry('t.f64', T.FLOAT64, Math.PI),
    ggufEntry('a.u8', T.ARRAY, ggufArray(T.UINT8, new Uint8Array([0, 1, 255]))),
    ggufEntry('a.i8', T.ARRAY, ggufArray(T.INT8, new Int8Array([-128, 0, 127]))),
    ggufEntry('a.u16', T.ARRAY, ggufArray(T.UINT16, new Uint16Array([0, 65535]))),
    ggufEntry('a.i16', T.ARRAY, ggufArray(T.INT16, new Int16Array([-32768, 32767]))),
    ggufEntry('a.u32', T.ARRAY, ggufArray(T.UINT32, new Uint32Array([0, 4294967295]))),
    ggufEntry('a.i32', T.ARRAY, ggufArray(T.INT32, new Int32Array([-1, 2]))),
    ggufEntry('a.f32', T.ARRAY, ggufArray(T.FLOAT32, new Float32Array([1.5, -0, Infinity]))),
    ggufEntry('a.bool', T.ARRAY, ggufArray(T.BOOL, [true, false, true])),
    ggufEntry('a.string', T.ARRAY, ggufArray(T.STRING, ['a', '', 'ü'])),
    ggufEntry('a.u64', T.ARRAY, ggufArray(T.UINT64, new BigUint64Array([0n, 2n ** 64n - 1n]))),
    ggufEntry('a.i64', T.ARRAY, ggufArray(T.INT64, new BigInt64Array([-(2n ** 63n), 5n]))),
    ggufEntry('a.f64', T.ARRAY, ggufArray(T.FLOAT64, new Float64Array([Math.E, -1e300]))),
    ggufEntry('a.empty', T.ARRAY, ggufArray(T.UINT32, new Uint32Array(0))),
    ggufEntry('n.u8', T.ARRAY, ggufArray(T.ARRAY, [ggufArray(T.UINT8, new Uint8Array([1, 2])), ggufArray(T.UINT8, new Uint8Array([3]))])),
    ggufEntry('n.strings', T.ARRAY, ggufArray(T.ARRAY, [ggufArray(T.STRING, ['x', 'y']), ggufArray(T.STRING, [])])),
    ggufEntry('n.deep', T.ARRAY, ggufArray(T.ARRAY, [ggufArray(T.ARRAY, [ggufArray(T.INT64, new BigInt64Array([7n]))])])),
  ];
}

const SCRATCH_TENSORS: GgufTensorDescriptor[] = [
  { name: 'a.f32', type: GGML_TYPE.F32, ne: [3] },
  { name: 'b.f16', type: GGML_TYPE.F16, ne: [5, 2] },
  { name: 'c.q4_0', type: GGML_TYPE.Q4_0, ne: [64, 2] },
  { name: 'd.q4_K', type: GGML_TYPE.Q4_K, ne: [256, 1, 2] },
  { name: 'e.empty', type: GGML_TYPE.F32, ne: [0] },
];

function patternBytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 0xff);
}

async function writeScratch(metadata = everyValueType()) {
  const layout = planGguf({ metadata, tensors: SCRATCH_TENSORS });
  const bytes = await collect(writeGguf(layout, (t, i) => patternBytes(t.nbytes, i)));
  return { layout, bytes };
}

describe('a GGUF written from scratch', () => {
  it('reads back equal: every value type, nested arrays, tensors of several types', async () => {
    const { layout, bytes } = await writeScratch();
    expect(bytes.length).toBe(layout.totalBytes);
    const header = await readGguf(memorySource(bytes, 'scratch.gguf'));
    expect(header.version).toBe(3);
    expect(header.metadata).toEqual(everyValueType());
    expect(header.tensors.map(({ name, type, ne }) => ({ name, type, ne }))).toEqual(SCRATCH_TENSORS);
    for (const [i, t] of header.tensors.entries()) {
      expect(t.offset % 32).toBe(0);
      expect(t.offset).toBe(layout.tensors[i].offset);
      const at = header.dataOffset + t.offset;
      expect(bytes.subarray(at, at + t.nbytes)).toEqual(patternBytes(t.nbytes, i));
    }
    expect(header.tensors[3].nbytes).toBe(2 * GGML_TYPES.get(GGML_TYPE.Q4_K)!.typeSize);
  });

  it('pads after every tensor, the last one included, with zeros (as gguf.cpp)', async () => {
    const { layout, bytes } = await writeScratch();
    expect(layout.totalBytes % 32).toBe(0);
    const last = layout.tensors[3];
    const end = layout.dataOffset + last.offset + last.nbytes;
    expect(bytes.subarray(end).every((b) => b === 0)).toBe(true);
  });

  it('honours general.alignment', async () => {
    const metadata = [ggufEntry('general.alignment', T.UINT32, 256)];
    const layout = planGguf({ metadata, tensors: SCRATCH_TENSORS });
    expect(layout.dataOffset % 256).toBe(0);
    expect(layout.tensors.every((t) => t.offset % 256 === 0)).toBe(true);
    const bytes = await collect(writeGguf(layout, (t) => new Uint8Array(t.nbytes)));
    const header = await readGguf(memorySource(bytes, 'aligned.gguf'));
    expect(header.alignment).toBe(256);
  });

  it('takes tensor data as chunks, sync or async, and checks the byte count', async () => {
    const layout = planGguf({ metadata: [], tensors: [{ name: 'w', type: GGML_TYPE.F32, ne: [8] }] });
    async function* halves() {
      yield new Uint8Array(16).fill(1);
      yield new Uint8Array(16).fill(2);
    }
    const bytes = await collect(writeGguf(layout, () => halves()));
    expect(bytes.subarray(layout.dataOffset)).toEqual(Uint8Array.from({ length: 32 }, (_, i) => (i < 16 ? 1 : 2)));
    await expect(collect(writeGguf(layout, () => [new Uint8Array(31)]))).rejects.toThrow(/got 31 bytes of data, expected 32/);
    await expect(collect(writeGguf(layout, () => new Uint8Array(33)))).rejects.toThrow(/expected 32/);
  });

  it('streams as a web ReadableStream', async () => {
    const { bytes } = await writeScratch();
    const layout = planGguf({ metadata: everyValueType(), tensors: SCRATCH_TENSORS });
    const stream = ggufReadableStream(layout, (t, i) => patternBytes(t.nbytes, i));
    const viaStream = new Uint8Array(await new Response(stream).arrayBuffer());
    expect(viaStream).toEqual(bytes);
  });

  it('is parsed by an independent reader, @huggingface/gguf', async () => {
    const { layout, bytes } = await writeScratch();
    const dir = await mkdtemp(join(tmpdir(), 'quantlab-gguf-'));
    try {
      const path = join(dir, 'scratch.gguf');
      await writeFile(path, bytes);
      const parsed = await hfGguf(path, { allowLocalFile: true, typedMetadata: true });
      expect(parsed.tensorDataOffset).toBe(BigInt(layout.dataOffset));
      expect(parsed.tensorInfos.map((t) => ({ name: t.name, shape: t.shape.map(Number), dtype: t.dtype, offset: Number(t.offset) }))).toEqual(
        layout.tensors.map((t) => ({ name: t.name, shape: t.ne, dtype: t.type, offset: t.offset })),
      );
      const meta = parsed.typedMetadata as unknown as Record<string, { value: unknown; type: number; subType?: number }>;
      expect(meta['t.u32']).toEqual({ value: 4294967295, type: T.UINT32 });
      expect(meta['t.i64']).toEqual({ value: -(2n ** 63n), type: T.INT64 });
      expect(meta['t.string'].value).toBe('héllo, wörld ✓');
      expect(meta['a.string']).toMatchObject({ value: ['a', '', 'ü'], type: T.ARRAY, subType: T.STRING });
      expect(meta['a.f32'].value).toEqual([1.5, -0, Infinity]);
      expect(meta['n.u8'].value).toEqual([[1, 2], [3]]);
      expect(meta['n.deep'].value).toEqual([[[7n]]]);
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  it('is parsed by @huggingface/gguf when rewritten from a fixture', async () => {
    const model = await loadModel([await fixture('llama-2-tiny-random.gguf')]);
    const layout = planGguf({ metadata: model.ggufMetadata!, tensors: model.tensors.map(ggufDescriptor) });
    const dir = await mkdtemp(join(tmpdir(), 'quantlab-gguf-'));
    try {
      const path = join(dir, 'copy.gguf');
      await writeFile(path, await collect(writeGguf(layout, (_, i) => readTensorBytes(model, model.tensors[i]))));
      const parsed = await hfGguf(path, { allowLocalFile: true });
      expect(parsed.tensorInfos).toHaveLength(12);
      expect((parsed.metadata as Record<string, unknown>)['tokenizer.ggml.tokens']).toHaveLength(32000);
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});

describe('planGguf refuses what ggml could not load', () => {
  const plan = (metadata: GgufMetadataEntry[], tensors: GgufTensorDescriptor[] = []) => () => planGguf({ metadata, tensors });

  it('values that do not fit their type', () => {
    expect(plan([ggufEntry('k', T.UINT8, 256)])).toThrow(/256 is not a uint8/);
    expect(plan([ggufEntry('k', T.INT32, 1.5)])).toThrow(/not a int32/);
    expect(plan([ggufEntry('k', T.UINT64, 5)])).toThrow(/64-bit values are bigint/);
    expect(plan([ggufEntry('k', T.ARRAY, ggufArray(T.UINT32, new Int32Array(1)))])).toThrow(/must be a Uint32Array/);
    expect(plan([ggufEntry('k', T.ARRAY, ggufArray(T.STRING, ['a', 1 as unknown as string]))])).toThrow(/not a string/);
  });

  it('duplicate and empty keys, a bad alignment', () => {
    expect(plan([ggufEntry('k', T.BOOL, true), ggufEntry('k', T.BOOL, false)])).toThrow(/appears twice/);
    expect(plan([ggufEntry('', T.BOOL, true)])).toThrow(/non-empty/);
    expect(plan([ggufEntry('general.alignment', T.UINT32, 24)])).toThrow(/power of two/);
    expect(plan([ggufEntry('general.alignment', T.UINT64, 32n)])).toThrow(/uint32/);
  });

  it('rows that are not whole blocks, removed types, bad shapes, long names', () => {
    expect(plan([], [{ name: 'w', type: GGML_TYPE.Q4_K, ne: [128] }])).toThrow(/rows of 128 are not a multiple of q4_K's block size 256/);
    expect(plan([], [{ name: 'w', type: 4, ne: [32] }])).toThrow(/ggml type 4 cannot be written/);
    expect(plan([], [{ name: 'w', type: 0, ne: [1, 1, 1, 1, 1] }])).toThrow(/5 dimensions/);
    expect(plan([], [{ name: 'w', type: 0, ne: [-1] }])).toThrow(/bad shape/);
    expect(plan([], [{ name: 'x'.repeat(64), type: 0, ne: [1] }])).toThrow(/longer than ggml's 63 bytes/);
  });

  it('accepts plain arrays for numeric items and converts them', async () => {
    const layout = planGguf({ metadata: [ggufEntry('scores', T.ARRAY, ggufArray(T.FLOAT32, [0.5, 1] as unknown as Float32Array))], tensors: [] });
    const header = await readGguf(memorySource(layout.header, 'plain.gguf'));
    expect(header.metadata[0].value).toEqual(ggufArray(T.FLOAT32, new Float32Array([0.5, 1])));
  });
});
