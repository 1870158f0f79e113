import { describe, expect, it } from 'vitest';
import { FormatError } from './errors.ts';
import { MAX_SAFETENSORS_HEADER_BYTES } from './limits.ts';
import { SAFETENSORS_DTYPE_BITS, readSafetensors, safetensorsByteSize } from './safetensors.ts';
import { fixture, rawSafetensors, spySource } from './testing.ts';

describe('readSafetensors on the fixtures', () => {
  it('reads the dfdx MNIST MLP (written by Rust dfdx, no __metadata__)', async () => {
    const header = await readSafetensors(await fixture('mnist-mlp-dfdx.safetensors'));
    expect(header.metadata).toBeNull();
    expect(header.dataOffset).toBe(608);
    expect(header.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual([
      ['0.0.bias', 'F32', [512]],
      ['0.0.weight', 'F32', [512, 784]],
      ['1.0.bias', 'F32', [128]],
      ['1.0.weight', 'F32', [128, 512]],
      ['2.0.bias', 'F32', [32]],
      ['2.0.weight', 'F32', [32, 128]],
      ['3.bias', 'F32', [10]],
      ['3.weight', 'F32', [10, 32]],
    ]);
    expect(header.tensors[1]).toMatchObject({ offset: 608 + 2048, nbytes: 512 * 784 * 4 });
  });

  it('reads the F32 and BF16 stories260K copies', async () => {
    for (const [file, dtype, size] of [['stories260K.f32.safetensors', 'F32', 4], ['stories260K.bf16.safetensors', 'BF16', 2]] as const) {
      const header = await readSafetensors(await fixture(file));
      expect(header.metadata).toEqual({ format: 'pt' });
      expect(header.tensors).toHaveLength(48);
      expect(header.tensors.every((t) => t.dtype === dtype)).toBe(true);
      const q = header.tensors.find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight')!;
      expect(q).toMatchObject({ shape: [64, 64], nbytes: 64 * 64 * size });
      expect(header.tensors.find((t) => t.name === 'model.embed_tokens.weight')?.shape).toEqual([512, 64]);
    }
  });
});

describe('safetensors dtypes', () => {
  it('knows every dtype of the format, with sub-byte sizes', () => {
    expect([...SAFETENSORS_DTYPE_BITS.keys()].sort()).toEqual(
      ['BF16', 'BOOL', 'C64', 'F16', 'F32', 'F4', 'F64', 'F6_E2M3', 'F6_E3M2', 'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'I16', 'I32', 'I64', 'I8', 'U16', 'U32', 'U64', 'U8'].sort(),
    );
    expect(safetensorsByteSize('F4', [3, 2])).toBe(3n);
    expect(safetensorsByteSize('F6_E2M3', [4])).toBe(3n);
    expect(safetensorsByteSize('F4', [3])).toMatch(/byte boundary/);
  });
});

async function expectRefused(bytes: Uint8Array, reason: RegExp) {
  const source = spySource(bytes, 'hostile.safetensors');
  const error = await readSafetensors(source).then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(FormatError);
  const fe = error as FormatError;
  expect(fe.file).toBe('hostile.safetensors');
  expect(fe.message).toMatch(/^hostile\.safetensors: at byte \d+: /);
  expect(fe.reason).toMatch(reason);
  expect(source.largestRead).toBeLessThanOrEqual(Math.max(8, bytes.length));
  return fe;
}

const f32 = (shape: number[], begin: number, end: number) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });

describe('readSafetensors refuses hostile files', () => {
  it('a truncated file and a header length past the end', async () => {
    await expectRefused(new Uint8Array(5), /too short/);
    const fe = await expectRefused(rawSafetensors({}, 0, 1_000_000n), /header length 1000000 runs past the end of the file/);
    expect(fe.offset).toBe(0);
  });

  it('a header length above the limit, without reading it', async () => {
    const source = spySource(rawSafetensors({}, 0, 2n ** 62n), 'hostile.safetensors');
    await expect(readSafetensors(source)).rejects.toThrow(new RegExp(`above the limit of ${MAX_SAFETENSORS_HEADER_BYTES}`));
    expect(source.largestRead).toBe(8);
  });

  it('JSON that is not JSON, or not an object', async () => {
    await expectRefused(rawSafetensors('{"a": '), /header is not valid JSON/);
    await expectRefused(rawSafetensors('[1, 2]'), /header is an array, not a JSON object/);
    await expectRefused(rawSafetensors('null'), /header is null, not a JSON object/);
    await expectRefused(rawSafetensors('"x"'), /header is a string, not a JSON object/);
    const badUtf8 = rawSafetensors('{"a":1}');
    badUtf8[10] = 0xff;
    await expectRefused(badUtf8, /not valid UTF-8/);
  });

  it('an unknown dtype, by name', async () => {
    await expectRefused(rawSafetensors({ w: { dtype: 'Q4_K', shape: [1], data_offsets: [0, 1] } }, 1), /tensor 'w' has unknown dtype 'Q4_K'/);
  });

  it('bad shapes and offsets', async () => {
    await expectRefused(rawSafetensors({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /shape must be a list/);
    await expectRefused(rawSafetensors({ w: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, 4), /shape must be a list/);
    await expectRefused(rawSafetensors({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, 4), /data_offsets must be/);
    await expectRefused(rawSafetensors({ w: { dtype: 'F32', shape: [1] } }, 4), /data_offsets must be/);
    await expectRefused(rawSafetensors({ w: 7 }), /tensor 'w' is a number, not an object/);
  });

  it('a shape whose product overflows', async () => {
    const fe = await expectRefused(rawSafetensors({ w: f32([2 ** 40, 2 ** 40, 2 ** 40], 0, 4) }, 4), /too large/);
    expect(fe.offset).toBeGreaterThan(8); // points at the entry inside the header
  });

  it('bytes that disagree with the shape', async () => {
    await expectRefused(rawSafetensors({ w: f32([2], 0, 4) }, 4), /has 4 bytes of data but shape \[2\] of F32 needs 8/);
  });

  it('overlapping offsets, gaps, data past the end, and trailing bytes', async () => {
    await expectRefused(rawSafetensors({ a: f32([2], 0, 8), b: f32([1], 4, 8) }, 8), /overlaps|needs/);
    await expectRefused(rawSafetensors({ a: f32([2], 0, 8), b: f32([2], 4, 12) }, 12), /tensor 'b' data \[4, 12\) overlaps the previous tensor's, which ends at 8/);
    await expectRefused(rawSafetensors({ a: f32([1], 0, 4), b: f32([1], 8, 12) }, 12), /tensor 'b' data starts at 8, leaving a gap/);
    await expectRefused(rawSafetensors({ a: f32([1], 0, 4), b: f32([1000], 4, 4004) }, 8), /tensor 'b' data runs past the end of the file/);
    await expectRefused(rawSafetensors({ a: f32([1], 0, 4) }, 12), /8 bytes after the last tensor's data/);
  });

  it('__metadata__ that is not a string map', async () => {
    await expectRefused(rawSafetensors({ __metadata__: [1] }), /'__metadata__' is an array, not an object/);
    await expectRefused(rawSafetensors({ __metadata__: { n: 1 } }), /'__metadata__.n' is a number, not a string/);
  });

  it('accepts an empty file with padding spaces, and tensors out of name order', async () => {
    const empty = await readSafetensors(spySource(rawSafetensors('{}      '), 'empty.safetensors'));
    expect(empty.tensors).toEqual([]);
    const swapped = await readSafetensors(spySource(rawSafetensors({ b: f32([1], 4, 8), a: f32([1], 0, 4) }, 8), 'ok.safetensors'));
    expect(swapped.tensors.map((t) => t.name)).toEqual(['a', 'b']);
  });
});
