// A minimal reader for the protobuf wire format (protobuf.dev/programming-guides/encoding):
// walk a message's fields, read the scalars and nested messages a schema asks for, skip
// the rest. Enough for SentencePiece's ModelProto without a protobuf library. Every read
// is bounds-checked against its message's end; a bad byte gives a FormatError naming the
// file and the absolute offset.

import { FormatError } from '../formats/errors.ts';

export const WIRE_TYPE = { VARINT: 0, I64: 1, LEN: 2, START_GROUP: 3, END_GROUP: 4, I32: 5 } as const;

const WIRE_TYPE_NAMES = ['varint', 'i64', 'len', 'start group', 'end group', 'i32'];

/** A varint can carry at most 64 bits: 10 bytes of 7 bits. */
const MAX_VARINT_BYTES = 10;

export interface ProtoField {
  readonly number: number;
  readonly wireType: number;
  /** Absolute offset of the field's tag. */
  readonly offset: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A cursor over one message: bytes[start, end) of a file's bytes. */
export class ProtoReader {
  private position: number;

  constructor(
    private readonly bytes: Uint8Array,
    /** File name for errors. */
    readonly file: string,
    start = 0,
    private readonly end = bytes.length,
  ) {
    this.position = start;
  }

  error(reason: string, offset = this.position): FormatError {
    return new FormatError(this.file, offset, reason);
  }

  /**
   * The message's fields in order. The loop body reads the value of a field it knows
   * (with the reader below); a value it leaves alone is skipped when the loop moves on.
   */
  *fields(): Generator<ProtoField> {
    while (this.position < this.end) {
      const offset = this.position;
      const { lo, hi } = this.varint('a field tag');
      const number = (lo >>> 3) + hi * 2 ** 29;
      const wireType = lo & 7;
      if (number === 0 || number >= 2 ** 29) throw this.error(`field number ${number} is outside protobuf's 1 to 2^29 - 1`, offset);
      const valueStart = this.position;
      yield { number, wireType, offset };
      // Every value takes at least one byte, so an unmoved cursor means "not read".
      if (this.position === valueStart) this.skip({ number, wireType, offset });
    }
  }

  /** An int32 / enum field (negative values come as 10-byte varints: keep the low 32 bits). */
  int32(field: ProtoField): number {
    this.expectWireType(field, WIRE_TYPE.VARINT);
    return this.varint(`field ${field.number}`).lo | 0;
  }

  bool(field: ProtoField): boolean {
    this.expectWireType(field, WIRE_TYPE.VARINT);
    const { lo, hi } = this.varint(`field ${field.number}`);
    return lo !== 0 || hi !== 0;
  }

  /** A float field as its raw IEEE bits, so that NaN payloads survive. */
  float32Bits(field: ProtoField): number {
    this.expectWireType(field, WIRE_TYPE.I32);
    const at = this.take(4, `field ${field.number} (float)`);
    const b = this.bytes;
    return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
  }

  bytesField(field: ProtoField): Uint8Array {
    const { start, length } = this.lengthDelimited(field);
    return this.bytes.subarray(start, start + length);
  }

  string(field: ProtoField): string {
    const { start, length } = this.lengthDelimited(field);
    try {
      return utf8.decode(this.bytes.subarray(start, start + length));
    } catch {
      throw this.error(`field ${field.number} is not valid UTF-8`, start);
    }
  }

  /** A nested message: a reader over its bytes. */
  message(field: ProtoField): ProtoReader {
    const { start, length } = this.lengthDelimited(field);
    return new ProtoReader(this.bytes, this.file, start, start + length);
  }

  skip(field: ProtoField): void {
    switch (field.wireType) {
      case WIRE_TYPE.VARINT: this.varint(`field ${field.number}`); return;
      case WIRE_TYPE.I64: this.take(8, `field ${field.number} (i64)`); return;
      case WIRE_TYPE.I32: this.take(4, `field ${field.number} (i32)`); return;
      case WIRE_TYPE.LEN: this.lengthDelimited(field); return;
      default:
        // Groups were deprecated before SentencePiece existed; no model file has one.
        throw this.error(`field ${field.number} has wire type ${field.wireType} (${WIRE_TYPE_NAMES[field.wireType] ?? 'invalid'}), which this reader does not accept`, field.offset);
    }
  }

  private expectWireType(field: ProtoField, wireType: number): void {
    if (field.wireType !== wireType) {
      throw this.error(
        `field ${field.number} has wire type ${field.wireType} (${WIRE_TYPE_NAMES[field.wireType] ?? 'invalid'}), expected ${wireType} (${WIRE_TYPE_NAMES[wireType]})`,
        field.offset,
      );
    }
  }

  private lengthDelimited(field: ProtoField): { start: number; length: number } {
    this.expectWireType(field, WIRE_TYPE.LEN);
    const lengthOffset = this.position;
    const { lo, hi } = this.varint(`the length of field ${field.number}`);
    const left = this.end - this.position;
    if (hi !== 0 || lo > left) {
      throw this.error(`field ${field.number} claims ${hi ? 'over 2^32' : lo} bytes but its message has ${left} left`, lengthOffset);
    }
    return { start: this.take(lo, `field ${field.number}`), length: lo };
  }

  /** Advances past n bytes and returns where they start. */
  private take(n: number, what: string): number {
    if (n > this.end - this.position) {
      throw this.error(`${what} needs ${n} bytes but its message ends ${this.end - this.position} bytes later`);
    }
    const at = this.position;
    this.position += n;
    return at;
  }

  /** A varint as its low and high 32 bits (unsigned). */
  private varint(what: string): { lo: number; hi: number } {
    const start = this.position;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      if (this.position >= this.end) throw this.error(`${what}: varint runs past the end of its message`, start);
      const b = this.bytes[this.position++];
      const bits = b & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= bits << 28; // the low 4 bits; << keeps only what fits in 32
        hi = bits >>> 4;
      } else if (i < 9) hi |= bits << (7 * i - 32);
      else if (bits > 1) throw this.error(`${what}: varint is larger than 64 bits`, start);
      else hi |= bits << 31;
      if ((b & 0x80) === 0) return { lo: lo >>> 0, hi: hi >>> 0 };
    }
    throw this.error(`${what}: varint is longer than ${MAX_VARINT_BYTES} bytes`, start);
  }
}
