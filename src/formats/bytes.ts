// Byte sources (a Blob/File in the browser, a Uint8Array anywhere; a file path in Node
// lives in node-source.ts so that the browser bundle never imports node:fs) and a
// buffered little-endian cursor for parsing headers. Ranges are read on demand: a model
// is never loaded into memory whole.

import { FormatError } from './errors.ts';
import { READ_CHUNK_BYTES } from './limits.ts';

/** Typed-array views of file bytes (metadata arrays, tensor data) assume a little-endian
 *  host, as every browser platform is; code that relies on it calls this first. */
export const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function assertLittleEndianHost(): void {
  if (!HOST_IS_LITTLE_ENDIAN) throw new Error('quantlab needs a little-endian host');
}

/** Random access to the bytes of one file. */
export interface ByteSource {
  /** File name as the user gave it (no folders): shown in errors, used to match shards. */
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  /**
   * Exactly `length` bytes from `offset`; the range must lie inside the file. A source may
   * read them into the start of `into` (at least `length` bytes) and return a view of it,
   * sparing a new buffer a read (the Node file source does); others return their own.
   */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
}

/** Throws a FormatError unless [offset, offset + length) lies inside the source. */
export function checkRange(source: ByteSource, offset: number, length: number, what = 'read'): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new FormatError(source.name, Math.max(0, offset), `${what}: bad range ${offset} + ${length}`);
  }
  if (offset + length > source.size) {
    throw new FormatError(
      source.name,
      offset,
      `${what} needs ${length} bytes but the file ends ${Math.max(0, source.size - offset)} bytes later ` +
        `(file is ${source.size} bytes)`,
    );
  }
}

/** A source over bytes already in memory (tests, small side files, fetched samples). */
export function memorySource(bytes: Uint8Array, name: string): ByteSource {
  const source: ByteSource = {
    name,
    size: bytes.length,
    async read(offset, length) {
      checkRange(source, offset, length);
      return bytes.subarray(offset, offset + length);
    },
  };
  return source;
}

/** A source over a browser Blob or File: each read is one Blob.slice, nothing more is loaded. */
export function blobSource(blob: Blob, name = blobName(blob)): ByteSource {
  const source: ByteSource = {
    name,
    size: blob.size,
    async read(offset, length) {
      checkRange(source, offset, length);
      try {
        return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
      } catch (e) {
        // A File changed or removed on disk since it was picked reads as NotReadableError.
        throw new FormatError(name, offset, `cannot read ${length} bytes here (${(e as Error).name}: ${(e as Error).message}); was the file changed or moved since it was opened?`);
      }
    },
  };
  return source;
}

function blobName(blob: Blob): string {
  return 'name' in blob && typeof blob.name === 'string' && blob.name ? blob.name : 'blob';
}

/** The parts, one after another, in one new buffer. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A (small) stream's chunks in one buffer; each is copied as it comes, since writers may reuse theirs. */
export async function collectBytes(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk.slice());
  return concatBytes(parts);
}

/** Reads a whole (small) file, refusing one above `maxBytes`. */
export async function readWhole(source: ByteSource, maxBytes: number, what: string): Promise<Uint8Array> {
  if (source.size > maxBytes) {
    throw new FormatError(source.name, 0, `${what} is ${source.size} bytes, above the limit of ${maxBytes}`);
  }
  return source.read(0, source.size);
}

// ignoreBOM keeps a leading U+FEFF (a real token in Llama's vocab) instead of dropping it.
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

const SHORT_ASCII_BYTES = 32;

function isAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] >= 0x80) return false;
  return true;
}

/**
 * A little-endian cursor over a ByteSource that buffers a chunk at a time. Call
 * `need(n)` (async) before reading n bytes with the synchronous getters; `need` checks
 * the file size first, so a length read from a hostile file can never make it allocate
 * more than the file holds.
 */
export class ByteReader {
  private buffer: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(this.buffer.buffer);
  /** File offset of buffer[0]. */
  private bufferStart = 0;
  /** Current file offset. */
  position: number;

  constructor(
    readonly source: ByteSource,
    start = 0,
    private readonly chunkBytes = READ_CHUNK_BYTES,
  ) {
    this.position = start;
  }

  get remaining(): number {
    return this.source.size - this.position;
  }

  /** A FormatError at the current position (or `offset`). */
  error(reason: string, offset = this.position): FormatError {
    return new FormatError(this.source.name, offset, reason);
  }

  /** True when the next n bytes are already buffered (lets hot loops skip an await). */
  buffered(n: number): boolean {
    return this.position >= this.bufferStart && this.position + n <= this.bufferStart + this.buffer.length;
  }

  /** Makes the next n bytes available, or throws if the file ends first. */
  async need(n: number, what = 'value'): Promise<void> {
    if (this.buffered(n)) return;
    if (n > this.remaining) {
      throw this.error(
        `${what} needs ${n} bytes but the file ends ${Math.max(0, this.remaining)} bytes later ` +
          `(file is ${this.source.size} bytes)`,
      );
    }
    const length = Math.min(Math.max(n, this.chunkBytes), this.remaining);
    const bytes = await this.source.read(this.position, length);
    this.buffer = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.bufferStart = this.position;
  }

  seek(position: number): void {
    this.position = position;
  }

  private at(size: number): number {
    const index = this.position - this.bufferStart;
    this.position += size;
    return index;
  }

  u8(): number {
    return this.view.getUint8(this.at(1));
  }
  i8(): number {
    return this.view.getInt8(this.at(1));
  }
  u16(): number {
    return this.view.getUint16(this.at(2), true);
  }
  i16(): number {
    return this.view.getInt16(this.at(2), true);
  }
  u32(): number {
    return this.view.getUint32(this.at(4), true);
  }
  i32(): number {
    return this.view.getInt32(this.at(4), true);
  }
  u64(): bigint {
    return this.view.getBigUint64(this.at(8), true);
  }
  i64(): bigint {
    return this.view.getBigInt64(this.at(8), true);
  }
  f32(): number {
    return this.view.getFloat32(this.at(4), true);
  }
  f64(): number {
    return this.view.getFloat64(this.at(8), true);
  }

  /** The next n bytes as a view into the buffer (valid until the next `need`). */
  bytes(n: number): Uint8Array {
    const index = this.at(n);
    return this.buffer.subarray(index, index + n);
  }

  /** n bytes of UTF-8. Invalid sequences become U+FFFD, as in ggml's tools' printing. */
  text(n: number): string {
    const bytes = this.bytes(n);
    // Vocabularies are hundreds of thousands of short, mostly ASCII strings, for which
    // TextDecoder's per-call cost dominates.
    if (n <= SHORT_ASCII_BYTES && isAscii(bytes)) return String.fromCharCode(...bytes);
    return utf8.decode(bytes);
  }
}

const encoder = new TextEncoder();

/** A growable little-endian byte buffer for building headers. */
export class ByteWriter {
  private buffer: Uint8Array = new Uint8Array(256);
  private view: DataView = new DataView(this.buffer.buffer);
  length = 0;

  /** Makes room for n bytes and returns where they go. Call it before touching
   *  this.view/this.buffer, which it may replace. */
  private reserve(n: number): number {
    const at = this.length;
    if (at + n > this.buffer.length) {
      let capacity = this.buffer.length * 2;
      while (capacity < at + n) capacity *= 2;
      const grown = new Uint8Array(capacity);
      grown.set(this.buffer.subarray(0, at));
      this.buffer = grown;
      this.view = new DataView(grown.buffer);
    }
    this.length += n;
    return at;
  }

  u8(v: number): void {
    const at = this.reserve(1);
    this.view.setUint8(at, v);
  }
  i8(v: number): void {
    const at = this.reserve(1);
    this.view.setInt8(at, v);
  }
  u16(v: number): void {
    const at = this.reserve(2);
    this.view.setUint16(at, v, true);
  }
  i16(v: number): void {
    const at = this.reserve(2);
    this.view.setInt16(at, v, true);
  }
  u32(v: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
  }
  i32(v: number): void {
    const at = this.reserve(4);
    this.view.setInt32(at, v, true);
  }
  u64(v: bigint): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, v, true);
  }
  i64(v: bigint): void {
    const at = this.reserve(8);
    this.view.setBigInt64(at, v, true);
  }
  f32(v: number): void {
    const at = this.reserve(4);
    this.view.setFloat32(at, v, true);
  }
  f64(v: number): void {
    const at = this.reserve(8);
    this.view.setFloat64(at, v, true);
  }
  bytes(b: Uint8Array): void {
    const at = this.reserve(b.length);
    this.buffer.set(b, at);
  }
  /** A GGUF string: u64 byte length, then UTF-8 (encoded in place, no temporary). */
  string(text: string): void {
    const at = this.reserve(8 + text.length * 3); // UTF-8 takes at most 3 bytes per UTF-16 unit
    const { written } = encoder.encodeInto(text, this.buffer.subarray(at + 8));
    this.view.setBigUint64(at, BigInt(written), true);
    this.length = at + 8 + written; // the unused reserve was never written: still zeros
  }
  zeros(n: number): void {
    this.reserve(n); // new capacity is zero-filled; reused capacity never held data
  }

  /** The bytes written so far (a copy-free view). */
  finish(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }
}
