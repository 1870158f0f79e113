import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../formats/errors.ts';
import { ProtoReader } from './protobuf.ts';
import { pb, varint } from './testing.ts';

/** Reads every top-level field with the reader matching its wire type. */
function readAll(bytes: ArrayLike<number>): unknown[] {
  const reader = new ProtoReader(Uint8Array.from(bytes), 'test.pb');
  const out: unknown[] = [];
  for (const field of reader.fields()) {
    if (field.wireType === 0) out.push(reader.int32(field));
    else if (field.wireType === 5) out.push(reader.float32Bits(field));
    else if (field.wireType === 2) out.push(Array.from(reader.bytesField(field)));
  }
  return out;
}

function formatError(bytes: ArrayLike<number>): FormatError {
  try {
    readAll(bytes);
  } catch (e) {
    if (e instanceof FormatError) return e;
    throw e;
  }
  throw new Error('no error');
}

describe('ProtoReader', () => {
  it('reads varints up to 64 bits; int32 keeps the low 32 bits (negatives are 10 bytes)', () => {
    expect(varint(-1)).toHaveLength(10);
    expect(readAll([...pb.varint(1, 0), ...pb.varint(1, 300), ...pb.varint(1, 2 ** 31 - 1), ...pb.varint(1, -1), ...pb.varint(1, -(2 ** 31))]))
      .toEqual([0, 300, 2 ** 31 - 1, -1, -(2 ** 31)]);
    const reader = new ProtoReader(Uint8Array.from(pb.varint(7, 2n ** 63n)), 'big.pb');
    for (const field of reader.fields()) expect(reader.bool(field)).toBe(true);
  });

  it('reads floats as raw bits, strings, nested messages, and skips unread fields of every wire type', () => {
    const nested = pb.message(3, pb.string(1, 'héllo'), pb.float(2, -1.5));
    const bytes = Uint8Array.from([...pb.varint(9, 5), ...[0x51, 1, 2, 3, 4, 5, 6, 7, 8] /* field 10, i64 */, ...pb.float(11, 1), ...nested]);
    const reader = new ProtoReader(bytes, 'mixed.pb');
    const seen: unknown[] = [];
    for (const field of reader.fields()) {
      if (field.number !== 3) continue; // skipped by the reader
      const inner = reader.message(field);
      for (const f of inner.fields()) seen.push(f.number === 1 ? inner.string(f) : inner.float32Bits(f).toString(16));
    }
    expect(seen).toEqual(['héllo', 'bfc00000']);
  });

  it.each([
    ['a truncated varint', [0x08, 0x80], /varint runs past the end/, 1],
    ['a truncated tag', [0x80], /a field tag: varint runs past the end/, 0],
    ['a varint over 10 bytes', [0x08, ...Array(10).fill(0x80), 0x01], /longer than 10 bytes/, 1],
    ['a varint over 64 bits', [0x08, ...Array(9).fill(0xff), 0x02], /larger than 64 bits/, 1],
    ['a length past the end', [0x12, 0x05, 1, 2], /claims 5 bytes but its message has 2 left/, 1],
    ['a huge length', [0x12, ...varint(2n ** 40n)], /claims over 2\^32 bytes/, 1],
    ['a truncated fixed32', [0x15, 1, 2], /needs 4 bytes/, 1],
    ['a group', [0x1b, 0x1c], /wire type 3 \(start group\)/, 0],
    ['wire type 7', [0x0f], /wire type 7 \(invalid\)/, 0],
    ['field number 0', [0x00, 0x01], /field number 0/, 0],
  ])('refuses %s with a FormatError at its offset', (_, bytes, reason, offset) => {
    const error = formatError(bytes);
    expect(error.file).toBe('test.pb');
    expect(error.reason).toMatch(reason);
    expect(error.offset).toBe(offset);
  });

  it('refuses a field of the wrong wire type', () => {
    const reader = new ProtoReader(Uint8Array.from(pb.float(4, 1)), 'test.pb');
    expect(() => {
      for (const field of reader.fields()) reader.int32(field);
    }).toThrow(/field 4 has wire type 5 \(i32\), expected 0 \(varint\)/);
  });

  it('never reads past a nested message into its parent', () => {
    // The inner message claims 2 bytes; its varint would continue into the parent's next field.
    const bytes = [0x1a, 0x02, 0x08, 0x80, ...pb.varint(1, 1)];
    const reader = new ProtoReader(Uint8Array.from(bytes), 'test.pb');
    expect(() => {
      for (const field of reader.fields()) {
        const inner = reader.message(field);
        for (const f of inner.fields()) inner.int32(f);
      }
    }).toThrow(/varint runs past the end/);
  });

  it('random bytes give a parse or a FormatError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          readAll(bytes);
        } catch (e) {
          if (!(e instanceof FormatError)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });
});
