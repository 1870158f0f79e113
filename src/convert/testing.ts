// Test helpers for convert/ (imported by *.test.ts only): a protobuf encoder that writes
// whatever it is told, so tests can build SentencePiece models, good and hostile, by hand.

import { WIRE_TYPE } from './protobuf.ts';

/** Varint bytes of a non-negative integer below 2^64 (bigint) or a JS number. */
export function varint(value: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(value)); // negative int32 -> 10-byte two's complement, as protobuf
  const out: number[] = [];
  do {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v ? b | 0x80 : b);
  } while (v);
  return out;
}

const tag = (field: number, wireType: number) => varint(field * 8 + wireType);

/** Protobuf field encoders: each gives the bytes of one field. */
export const pb = {
  varint: (field: number, value: number | bigint | boolean) => [...tag(field, WIRE_TYPE.VARINT), ...varint(typeof value === 'boolean' ? Number(value) : value)],
  float: (field: number, value: number) => [...tag(field, WIRE_TYPE.I32), ...new Uint8Array(new Float32Array([value]).buffer)],
  bytes: (field: number, bytes: ArrayLike<number>) => [...tag(field, WIRE_TYPE.LEN), ...varint(bytes.length), ...Array.from(bytes)],
  string: (field: number, text: string) => pb.bytes(field, new TextEncoder().encode(text)),
  message: (field: number, ...fields: number[][]) => pb.bytes(field, fields.flat()),
};

export interface PieceSpec {
  piece: string;
  score?: number;
  type?: number;
}

/** A ModelProto: the pieces, then trainer_spec and normalizer_spec fields as given. */
export function sentencePieceBytes(pieces: readonly PieceSpec[], trainer: number[][] = [], normalizer: number[][] = []): Uint8Array {
  const fields = pieces.map(({ piece, score, type }) =>
    pb.message(1, pb.string(1, piece), ...(score === undefined ? [] : [pb.float(2, score)]), ...(type === undefined ? [] : [pb.varint(3, type)])),
  );
  if (trainer.length) fields.push(pb.message(2, ...trainer));
  if (normalizer.length) fields.push(pb.message(3, ...normalizer));
  return Uint8Array.from(fields.flat());
}
