import { describe, expect, it } from 'vitest';
import { memorySource } from '../bytes.ts';
import { FormatError } from '../errors.ts';
import { MAX_STRING_BYTES, MAX_TENSOR_COUNT, READ_CHUNK_BYTES } from '../limits.ts';
import { RawGguf, collect, fixture, spySource } from '../testing.ts';
import { GGML_TYPE, GGUF_VALUE_TYPE } from './constants.ts';
import { findEntry, ggufArray, ggufEntry } from './metadata.ts';
import { readGguf } from './read.ts';
import { planGguf, writeGguf } from './write.ts';

describe('readGguf on the fixtures', () => {
  it('reads stories260K.gguf: v3, 48 f32 tensors, llama metadata, 512-token vocab', async () => {
    const header = await readGguf(await fixture('stories260K.gguf'));
    expect(header.version).toBe(3);
    expect(header.alignment).toBe(32);
    expect(header.dataOffset).toBe(14176);
    expect(header.tensors).toHaveLength(48);
    expect(header.tensors.every((t) => t.typeName === 'f32' && !t.flat)).toBe(true);
    expect(header.metadata.map((e) => e.key)).toContain('llama.embedding_length');
    expect(findEntry(header.metadata, 'llama.embedding_length')).toEqual({ key: 'llama.embedding_length', type: GGUF_VALUE_TYPE.UINT32, value: 64 });
    expect(findEntry(header.metadata, 'llama.feed_forward_length')?.value).toBe(172);
    expect(findEntry(header.metadata, 'llama.block_count')?.value).toBe(5);
    expect(findEntry(header.metadata, 'llama.attention.head_count')?.value).toBe(8);
    expect(findEntry(header.metadata, 'llama.attention.head_count_kv')?.value).toBe(4);
    const tokens = findEntry(header.metadata, 'tokenizer.ggml.tokens')!.value as { itemType: number; items: string[] };
    expect(tokens.itemType).toBe(GGUF_VALUE_TYPE.STRING);
    expect(tokens.items).toHaveLength(512);
    expect(tokens.items.slice(0, 3)).toEqual(['<unk>', '<s>', '</s>']);
    const scores = findEntry(header.metadata, 'tokenizer.ggml.scores')!.value as { items: unknown };
    expect(scores.items).toBeInstanceOf(Float32Array);
    const q = header.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!;
    expect(q).toMatchObject({ ne: [64, 64], type: GGML_TYPE.F32, nbytes: 64 * 64 * 4 });
    const down = header.tensors.find((t) => t.name === 'blk.0.ffn_down.weight')!;
    expect(down.ne).toEqual([172, 64]);
  });

  it('reads llama-2-tiny-random.gguf: 9 f16 + 3 f32 tensors and a 32000-token vocab', async () => {
    const header = await readGguf(await fixture('llama-2-tiny-random.gguf'));
    expect(header.tensors).toHaveLength(12);
    expect(header.tensors.filter((t) => t.typeName === 'f16')).toHaveLength(9);
    expect(header.tensors.filter((t) => t.typeName === 'f32')).toHaveLength(3);
    const tokens = findEntry(header.metadata, 'tokenizer.ggml.tokens')!.value as unknown as { items: string[] };
    expect(tokens.items).toHaveLength(32000);
    expect(findEntry(header.metadata, 'llama.embedding_length')?.value).toBe(8);
    expect(header.tensors.find((t) => t.name === 'token_embd.weight')).toMatchObject({ ne: [8, 32000], nbytes: 8 * 32000 * 2 });
  });
});

describe('readGguf on a big header', () => {
  it('reads a 262k-token vocabulary (a multi-MB header) in chunks of at most 1 MiB', async () => {
    const tokens = Array.from({ length: 262_144 }, (_, i) => `tok_${i}_▁ünï`);
    const metadata = [
      ggufEntry('tokenizer.ggml.tokens', GGUF_VALUE_TYPE.ARRAY, ggufArray(GGUF_VALUE_TYPE.STRING, tokens)),
      ggufEntry('tokenizer.ggml.scores', GGUF_VALUE_TYPE.ARRAY, ggufArray(GGUF_VALUE_TYPE.FLOAT32, Float32Array.from(tokens, (_, i) => -i))),
    ];
    const layout = planGguf({ metadata, tensors: [{ name: 'w', type: GGML_TYPE.F32, ne: [4] }] });
    const bytes = await collect(writeGguf(layout, (t) => new Uint8Array(t.nbytes)));
    expect(layout.dataOffset).toBeGreaterThan(4 * READ_CHUNK_BYTES);
    const source = spySource(bytes, 'big-vocab.gguf');
    const header = await readGguf(source);
    expect(source.largestRead).toBeLessThanOrEqual(READ_CHUNK_BYTES);
    expect(header.metadata).toEqual(metadata);
    expect(header.dataOffset).toBe(layout.dataOffset);
  });
});

/** Expects a FormatError naming the file and a byte offset, with the reason matching. */
async function expectRefused(bytes: Uint8Array, reason: RegExp, offset?: number) {
  const source = spySource(bytes, 'hostile.gguf');
  const error = await readGguf(source).then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(FormatError);
  const fe = error as FormatError;
  expect(fe.file).toBe('hostile.gguf');
  expect(fe.message).toMatch(/^hostile\.gguf: at byte \d+: /);
  expect(fe.reason).toMatch(reason);
  if (offset !== undefined) expect(fe.offset).toBe(offset);
  // Refused before any large allocation: no read bigger than one header chunk.
  expect(source.largestRead).toBeLessThanOrEqual(READ_CHUNK_BYTES);
  return fe;
}

function oneTensorFile(type: number, ne: readonly (number | bigint)[], offset: number | bigint, dataBytes: number) {
  return new RawGguf().preamble(3, 1, 0).tensorInfo('w', ne, type, offset).padTo().zeros(dataBytes).bytes();
}

describe('readGguf refuses hostile files', () => {
  it('an empty file and a truncated preamble', async () => {
    await expectRefused(new Uint8Array(0), /needs 8 bytes/, 0);
    await expectRefused(new RawGguf().preamble().bytes().slice(0, 12), /tensor count needs 8 bytes/, 8);
  });

  it('a file that is not GGUF', async () => {
    await expectRefused(new TextEncoder().encode('PK\x03\x04 not a model at all'), /not a GGUF file: starts with 'PK\?\?'/, 0);
  });

  it('GGUF v1, a future version, and a big-endian file, by version', async () => {
    await expectRefused(new RawGguf().preamble(1).bytes(), /version 1 .*not supported/, 4);
    await expectRefused(new RawGguf().preamble(4).bytes(), /version 4 is not supported/, 4);
    await expectRefused(new RawGguf().preamble(0x03000000).bytes(), /big-endian/, 4);
  });

  it('a 2^60 tensor count', async () => {
    await expectRefused(new RawGguf().preamble(3, 2n ** 60n, 0).bytes(), new RegExp(`tensor count ${2n ** 60n} is above the limit of ${MAX_TENSOR_COUNT}`), 8);
  });

  it('counts the rest of the file cannot hold', async () => {
    await expectRefused(new RawGguf().preamble(3, 1000, 0).bytes(), /tensor count 1000 cannot fit/, 8);
    await expectRefused(new RawGguf().preamble(3, 0, 1000).bytes(), /metadata key count 1000 cannot fit/, 16);
  });

  it('a string longer than the file, and one above the limit', async () => {
    const long = new RawGguf().preamble(3, 0, 1).string('general.name', 1_000_000).bytes();
    await expectRefused(long, /metadata key 0 is 1000000 bytes long but only \d+ bytes are left/, 24);
    const huge = new RawGguf().preamble(3, 0, 1).string('k', 2n ** 62n).zeros(16).bytes();
    await expectRefused(huge, new RegExp(`above the limit of ${MAX_STRING_BYTES}`), 24);
  });

  it('an array longer than the file', async () => {
    const raw = new RawGguf().preamble(3, 0, 1).string('tokens');
    raw.w.u32(GGUF_VALUE_TYPE.ARRAY);
    raw.w.u32(GGUF_VALUE_TYPE.UINT32);
    raw.w.u64(1_000_000n);
    await expectRefused(raw.zeros(16).bytes(), /array of 1000000 uint32 items cannot fit/);
  });

  it('arrays nested past the limit', async () => {
    const raw = new RawGguf().preamble(3, 0, 1).string('deep');
    raw.w.u32(GGUF_VALUE_TYPE.ARRAY);
    for (let i = 0; i < 20; i++) {
      raw.w.u32(GGUF_VALUE_TYPE.ARRAY);
      raw.w.u64(1n);
    }
    await expectRefused(raw.zeros(64).bytes(), /nested 9 deep, above the limit of 8/);
  });

  it('an unknown value type, an empty key and a duplicate key', async () => {
    const unknown = new RawGguf().preamble(3, 0, 1).string('k');
    unknown.w.u32(13);
    await expectRefused(unknown.zeros(8).bytes(), /unknown GGUF value type 13/);
    await expectRefused(new RawGguf().preamble(3, 0, 1).kvU32('', 1).bytes(), /key 0 is empty/);
    await expectRefused(new RawGguf().preamble(3, 0, 2).kvU32('a', 1).kvU32('a', 2).bytes(), /'a' appears twice/);
  });

  it('a bad alignment', async () => {
    await expectRefused(new RawGguf().preamble(3, 0, 1).kvU32('general.alignment', 48).bytes(), /general.alignment' is 48; it must be a power of two/);
    const i32 = new RawGguf().preamble(3, 0, 1).string('general.alignment');
    i32.w.u32(GGUF_VALUE_TYPE.INT32);
    i32.w.i32(32);
    await expectRefused(i32.bytes(), /must be uint32, not int32/);
  });

  it('unknown and removed ggml types, by id and by name', async () => {
    await expectRefused(oneTensorFile(99, [32], 0, 128), /tensor 'w' has unknown ggml type 99/);
    await expectRefused(oneTensorFile(4, [32], 0, 128), /ggml type 4, Q4_2 \(removed/);
    await expectRefused(oneTensorFile(31, [32], 0, 128), /Q4_0_4_4 \(removed/);
  });

  it('too many dimensions, negative and huge dimensions, a product past int64', async () => {
    await expectRefused(oneTensorFile(GGML_TYPE.F32, [1, 1, 1, 1, 1], 0, 4), /5 dimensions; ggml allows at most 4/);
    await expectRefused(oneTensorFile(GGML_TYPE.F32, [-1n], 0, 4), /dimension 0 is negative/);
    await expectRefused(oneTensorFile(GGML_TYPE.F32, [2n ** 60n], 0, 4), /dimension 0 is .* above 2\^53 - 1/);
    await expectRefused(oneTensorFile(GGML_TYPE.F32, [2 ** 40, 2 ** 40], 0, 4), /elements, more than int64 can count/);
  });

  it('a product that fits int64 but whose data runs past the end of the file', async () => {
    const fe = await expectRefused(oneTensorFile(GGML_TYPE.F32, [2 ** 20, 2 ** 20], 0, 4), /tensor 'w' data runs past the end of the file \(ends at \d+, file is \d+ bytes\)/);
    expect(fe.offset).toBeGreaterThan(24);
  });

  it('rows that are not whole blocks, unless the whole tensor is (old flat files)', async () => {
    await expectRefused(oneTensorFile(GGML_TYPE.Q4_0, [33], 0, 64), /not a whole number of 32-element blocks/);
    const flat = await readGguf(memorySource(oneTensorFile(GGML_TYPE.Q4_0, [16, 4], 0, 64), 'flat.gguf'));
    expect(flat.tensors[0]).toMatchObject({ flat: true, nbytes: 2 * 18 });
  });

  it('misaligned, overlapping and gapped data offsets', async () => {
    const two = (offsetB: number) =>
      new RawGguf().preamble(3, 2, 0).tensorInfo('a', [8], GGML_TYPE.F32, 0).tensorInfo('b', [8], GGML_TYPE.F32, offsetB).padTo().zeros(128).bytes();
    await expectRefused(two(4), /tensor 'b' data offset 4 is not a multiple of the alignment \(32\)/);
    await expectRefused(two(0), /overlaps the previous tensor's data, which ends at 32/);
    await expectRefused(two(64), /leaves a gap: ggml expects 32/);
  });

  it('a tensor name too long for ggml, and a duplicate one', async () => {
    const long = new RawGguf().preamble(3, 1, 0).tensorInfo('x'.repeat(64), [1], 0, 0).padTo().zeros(32).bytes();
    await expectRefused(long, /longer than ggml's 63 bytes/);
    const dup = new RawGguf().preamble(3, 2, 0).tensorInfo('a', [8], 0, 0).tensorInfo('a', [8], 0, 32).padTo().zeros(64).bytes();
    await expectRefused(dup, /tensor 'a' appears twice/);
  });

  it('a data section that would start past the end', async () => {
    const bytes = new RawGguf().preamble(3, 1, 0).tensorInfo('w', [0], GGML_TYPE.F32, 0).bytes();
    await expectRefused(bytes, /data section would start at byte \d+, past the end/);
  });
});
