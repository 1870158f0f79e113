// Test helpers for formats/ (imported by *.test.ts only): fixture paths, sources that
// record their reads, and a raw GGUF byte builder that writes whatever it is told, so
// tests can build hostile files by hand.

import { join } from 'node:path';
import { type ByteSource, ByteWriter, memorySource } from './bytes.ts';
import { GGUF_MAGIC, GGUF_VALUE_TYPE } from './gguf/constants.ts';
import { fileSource } from './node-source.ts';

/** ../shared/fixtures/models beside the repository root. */
export const FIXTURE_MODELS = join(import.meta.dirname, '../../../shared/fixtures/models');

export function fixture(relativePath: string): Promise<ByteSource> {
  return fileSource(join(FIXTURE_MODELS, relativePath));
}

/** A memory source that remembers the largest single read it was asked for. */
export function spySource(bytes: Uint8Array, name = 'hostile.bin'): ByteSource & { largestRead: number } {
  const inner = memorySource(bytes, name);
  const spy = {
    name,
    size: bytes.length,
    largestRead: 0,
    read(offset: number, length: number) {
      spy.largestRead = Math.max(spy.largestRead, length);
      return inner.read(offset, length);
    },
  };
  return spy;
}

export { collectBytes as collect } from './bytes.ts';

/** Writes GGUF fields one by one, valid or not. */
export class RawGguf {
  readonly w = new ByteWriter();

  preamble(version = 3, tensorCount: number | bigint = 0, kvCount: number | bigint = 0): this {
    this.w.u32(GGUF_MAGIC);
    this.w.u32(version);
    this.w.u64(BigInt(tensorCount));
    this.w.u64(BigInt(kvCount));
    return this;
  }

  /** A string with its u64 length (or a claimed length that differs). */
  string(text: string, claimedLength?: number | bigint): this {
    const bytes = new TextEncoder().encode(text);
    this.w.u64(BigInt(claimedLength ?? bytes.length));
    this.w.bytes(bytes);
    return this;
  }

  kvU32(key: string, value: number): this {
    this.string(key);
    this.w.u32(GGUF_VALUE_TYPE.UINT32);
    this.w.u32(value);
    return this;
  }

  tensorInfo(name: string, ne: readonly (number | bigint)[], type: number, offset: number | bigint, nDims = ne.length): this {
    this.string(name);
    this.w.u32(nDims);
    for (const d of ne) this.w.i64(BigInt(d));
    this.w.u32(type);
    this.w.u64(BigInt(offset));
    return this;
  }

  padTo(alignment = 32): this {
    this.w.zeros((alignment - (this.w.length % alignment)) % alignment);
    return this;
  }

  zeros(n: number): this {
    this.w.zeros(n);
    return this;
  }

  bytes(): Uint8Array {
    return this.w.finish().slice();
  }
}

/** A safetensors file from a header object (or raw header text) and a data length. */
export function rawSafetensors(header: unknown, dataBytes = 0, claimedLength?: bigint): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, claimedLength ?? BigInt(json.length), true);
  out.set(json, 8);
  return out;
}
