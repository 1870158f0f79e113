import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter, blobSource, memorySource, readWhole } from './bytes.ts';
import { FormatError } from './errors.ts';

const bytes = Uint8Array.from({ length: 100 }, (_, i) => i);

describe('byte sources', () => {
  it('memory and Blob sources read exact ranges and refuse ranges outside the file', async () => {
    for (const source of [memorySource(bytes, 'm.bin'), blobSource(new Blob([bytes]), 'b.bin')]) {
      expect(source.size).toBe(100);
      expect(Array.from(await source.read(10, 3))).toEqual([10, 11, 12]);
      expect(await source.read(100, 0)).toHaveLength(0);
      const error = await source.read(98, 5).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FormatError);
      expect((error as FormatError).message).toBe(`${source.name}: at byte 98: read needs 5 bytes but the file ends 2 bytes later (file is 100 bytes)`);
      await expect(source.read(-1, 1)).rejects.toThrow(FormatError);
    }
  });

  it('takes a File name from the File', () => {
    expect(blobSource(new File([bytes], 'model.gguf')).name).toBe('model.gguf');
  });

  it('readWhole refuses files above its limit', async () => {
    await expect(readWhole(memorySource(bytes, 'big.json'), 50, 'config file')).rejects.toThrow('big.json: at byte 0: config file is 100 bytes, above the limit of 50');
  });
});

describe('ByteReader', () => {
  it('reads little-endian values across chunk boundaries', async () => {
    const w = new ByteWriter();
    w.u8(1); w.i16(-2); w.u32(0xdeadbeef); w.i64(-5n); w.f32(1.5); w.f64(Math.PI); w.u64(2n ** 64n - 1n);
    const source = memorySource(w.finish(), 'v.bin');
    const reads: number[] = [];
    const spy = { ...source, read: (o: number, n: number) => (reads.push(n), source.read(o, n)) };
    const r = new ByteReader(spy, 0, 3); // tiny chunks: every value straddles a refill
    await r.need(1); expect(r.u8()).toBe(1);
    await r.need(2); expect(r.i16()).toBe(-2);
    await r.need(4); expect(r.u32()).toBe(0xdeadbeef);
    await r.need(8); expect(r.i64()).toBe(-5n);
    await r.need(4); expect(r.f32()).toBe(1.5);
    await r.need(8); expect(r.f64()).toBe(Math.PI);
    await r.need(8); expect(r.u64()).toBe(2n ** 64n - 1n);
    expect(r.remaining).toBe(0);
    expect(Math.max(...reads)).toBeLessThanOrEqual(8);
  });

  it('refuses to read past the end before reading anything', async () => {
    const r = new ByteReader(memorySource(bytes, 'short.bin'), 96);
    await expect(r.need(8, 'tensor count')).rejects.toThrow('short.bin: at byte 96: tensor count needs 8 bytes but the file ends 4 bytes later (file is 100 bytes)');
  });

  it('keeps a leading byte-order mark in text (a real token in Llama vocabularies)', async () => {
    const r = new ByteReader(memorySource(new Uint8Array([0xef, 0xbb, 0xbf]), 'bom.bin'));
    await r.need(3);
    expect(r.text(3)).toBe('\ufeff');
  });
});

describe('ByteWriter', () => {
  it('grows past its first buffer without losing bytes', () => {
    const w = new ByteWriter();
    for (let i = 0; i < 1000; i++) w.u32(i);
    const view = new DataView(w.finish().buffer, 0, 4000);
    expect(view.getUint32(999 * 4, true)).toBe(999);
    expect(w.length).toBe(4000);
  });
});
