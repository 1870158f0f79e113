// SentencePiece's tokenizer.model: a serialized ModelProto (google/sentencepiece,
// src/sentencepiece_model.proto). Only what a GGUF vocabulary needs is read:
//   ModelProto      1 pieces (repeated SentencePiece), 2 trainer_spec, 3 normalizer_spec
//   SentencePiece   1 piece (string), 2 score (float), 3 type (enum, default NORMAL)
//   TrainerSpec     3 model_type, 4 vocab_size, 35 byte_fallback,
//                   40 unk_id (default 0), 41 bos_id (1), 42 eos_id (2), 43 pad_id (-1)
//   NormalizerSpec  1 name, 3 add_dummy_prefix (default true),
//                   4 remove_extra_whitespaces (true), 5 escape_whitespaces (true)
// Everything else (self-test data, charsmaps, training options) is skipped unread.

import { type ByteSource, readWhole } from '../formats/bytes.ts';
import { MAX_ARRAY_LENGTH } from '../formats/limits.ts';
import { type ProtoField, ProtoReader } from './protobuf.ts';

/** A tokenizer.model is a few hundred KB (Llama 2: 500 KB, Gemma: 4 MB); a file far
 *  beyond that is not one, and it is read whole. */
export const MAX_SENTENCEPIECE_MODEL_BYTES = 64 << 20;

/** ModelProto.SentencePiece.Type. llama.cpp's token types use the same numbers. */
export const SENTENCEPIECE_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export const SENTENCEPIECE_MODEL_TYPE = { UNIGRAM: 1, BPE: 2, WORD: 3, CHAR: 4 } as const;

export interface SentencePieceTrainerSpec {
  readonly modelType: number;
  readonly vocabSize: number;
  readonly byteFallback: boolean;
  /** -1 means none. */
  readonly unkId: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
}

export interface SentencePieceNormalizerSpec {
  readonly name: string;
  readonly addDummyPrefix: boolean;
  readonly removeExtraWhitespaces: boolean;
  readonly escapeWhitespaces: boolean;
}

export interface SentencePieceModel {
  /** Piece strings by id. */
  readonly pieces: readonly string[];
  /** Scores by id, bit for bit as stored. */
  readonly scores: Float32Array;
  /** SENTENCEPIECE_TYPE values by id. */
  readonly types: Uint8Array;
  readonly trainer: SentencePieceTrainerSpec;
  readonly normalizer: SentencePieceNormalizerSpec;
}

const TRAINER_DEFAULTS: SentencePieceTrainerSpec = {
  modelType: SENTENCEPIECE_MODEL_TYPE.UNIGRAM, vocabSize: 8000, byteFallback: false,
  unkId: 0, bosId: 1, eosId: 2, padId: -1,
};

const NORMALIZER_DEFAULTS: SentencePieceNormalizerSpec = {
  name: '', addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true,
};

/** Reads and parses a tokenizer.model file. */
export async function readSentencePieceModel(source: ByteSource): Promise<SentencePieceModel> {
  const bytes = await readWhole(source, MAX_SENTENCEPIECE_MODEL_BYTES, 'SentencePiece model');
  return parseSentencePieceModel(bytes, source.name);
}

/** Parses a serialized ModelProto. Throws FormatError (file, offset) on anything bad. */
export function parseSentencePieceModel(bytes: Uint8Array, file: string): SentencePieceModel {
  const reader = new ProtoReader(bytes, file);
  const pieces: string[] = [];
  const scoreBits: number[] = [];
  const types: number[] = [];
  const offsets: number[] = [];
  let trainer = TRAINER_DEFAULTS;
  let normalizer = NORMALIZER_DEFAULTS;
  for (const field of reader.fields()) {
    if (field.number === 1) {
      if (pieces.length >= MAX_ARRAY_LENGTH) throw reader.error(`more than ${MAX_ARRAY_LENGTH} pieces`, field.offset);
      const piece = readPiece(reader.message(field), field, pieces.length);
      pieces.push(piece.piece);
      scoreBits.push(piece.scoreBits);
      types.push(piece.type);
      offsets.push(field.offset);
    } else if (field.number === 2) {
      trainer = readTrainerSpec(reader.message(field), trainer);
    } else if (field.number === 3) {
      normalizer = readNormalizerSpec(reader.message(field), normalizer);
    }
  }
  checkPieces(reader, pieces, offsets);
  return {
    pieces,
    scores: new Float32Array(Uint32Array.from(scoreBits).buffer),
    types: Uint8Array.from(types),
    trainer,
    normalizer,
  };
}

interface Piece {
  piece: string;
  scoreBits: number;
  type: number;
}

const KNOWN_TYPES = new Set<number>(Object.values(SENTENCEPIECE_TYPE));

function readPiece(reader: ProtoReader, at: ProtoField, id: number): Piece {
  const piece: Piece = { piece: '', scoreBits: 0, type: SENTENCEPIECE_TYPE.NORMAL };
  for (const field of reader.fields()) {
    if (field.number === 1) piece.piece = reader.string(field);
    else if (field.number === 2) piece.scoreBits = reader.float32Bits(field);
    else if (field.number === 3) {
      piece.type = reader.int32(field);
      if (!KNOWN_TYPES.has(piece.type)) throw reader.error(`piece ${id} has unknown type ${piece.type}`, field.offset);
    }
  }
  // SentencePiece refuses such a model too (model_interface.cc: "piece must not be empty").
  if (piece.piece === '') throw reader.error(`piece ${id} is empty`, at.offset);
  return piece;
}

function readTrainerSpec(reader: ProtoReader, base: SentencePieceTrainerSpec): SentencePieceTrainerSpec {
  const spec = { ...base };
  for (const field of reader.fields()) {
    switch (field.number) {
      case 3: spec.modelType = reader.int32(field); break;
      case 4: spec.vocabSize = reader.int32(field); break;
      case 35: spec.byteFallback = reader.bool(field); break;
      case 40: spec.unkId = reader.int32(field); break;
      case 41: spec.bosId = reader.int32(field); break;
      case 42: spec.eosId = reader.int32(field); break;
      case 43: spec.padId = reader.int32(field); break;
    }
  }
  return spec;
}

function readNormalizerSpec(reader: ProtoReader, base: SentencePieceNormalizerSpec): SentencePieceNormalizerSpec {
  const spec = { ...base };
  for (const field of reader.fields()) {
    switch (field.number) {
      case 1: spec.name = reader.string(field); break;
      case 3: spec.addDummyPrefix = reader.bool(field); break;
      case 4: spec.removeExtraWhitespaces = reader.bool(field); break;
      case 5: spec.escapeWhitespaces = reader.bool(field); break;
    }
  }
  return spec;
}

/** SentencePiece refuses a model without pieces or with a piece twice (model_interface.cc). */
function checkPieces(reader: ProtoReader, pieces: readonly string[], offsets: readonly number[]): void {
  if (pieces.length === 0) throw reader.error('the model has no pieces', 0);
  const seen = new Map<string, number>();
  for (const [id, piece] of pieces.entries()) {
    const first = seen.get(piece);
    if (first !== undefined) throw reader.error(`piece ${id} ${JSON.stringify(piece)} repeats piece ${first}`, offsets[id]);
    seen.set(piece, id);
  }
}
