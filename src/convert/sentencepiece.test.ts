import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { memorySource } from '../formats/bytes.ts';
import { FormatError } from '../formats/errors.ts';
import { fixture } from '../formats/testing.ts';
import { SENTENCEPIECE_MODEL_TYPE, SENTENCEPIECE_TYPE as T, parseSentencePieceModel, readSentencePieceModel } from './sentencepiece.ts';
import { pb, sentencePieceBytes } from './testing.ts';

let tok512: Uint8Array;

beforeAll(async () => {
  const source = await fixture('tok512.model');
  tok512 = await source.read(0, source.size);
});

function parseError(bytes: Uint8Array): FormatError {
  try {
    parseSentencePieceModel(bytes, 'bad.model');
  } catch (e) {
    if (e instanceof FormatError) return e;
    throw e;
  }
  throw new Error('parsed');
}

describe('tok512.model (stories260K)', () => {
  it('has 512 pieces: <unk>, <s>, </s>, 256 byte pieces, then BPE merges with falling scores', async () => {
    const model = await readSentencePieceModel(await fixture('tok512.model'));
    expect(model.pieces).toHaveLength(512);
    expect(model.pieces.slice(0, 4)).toEqual(['<unk>', '<s>', '</s>', '<0x00>']);
    expect(model.pieces[258]).toBe('<0xFF>');
    expect(model.pieces[259]).toBe('\u2581t');
    expect(Array.from(model.types.slice(0, 4))).toEqual([T.UNKNOWN, T.CONTROL, T.CONTROL, T.BYTE]);
    expect(model.types.slice(259).every((t) => t === T.NORMAL)).toBe(true);
    expect(Array.from(model.scores.slice(260, 263))).toEqual([-1, -2, -3]);
    expect(model.trainer).toEqual({
      modelType: SENTENCEPIECE_MODEL_TYPE.BPE, vocabSize: 512, byteFallback: true, unkId: 0, bosId: 1, eosId: 2, padId: -1,
    });
    expect(model.normalizer).toMatchObject({ name: 'identity', addDummyPrefix: true, removeExtraWhitespaces: true });
  });
});

describe('parseSentencePieceModel', () => {
  it('applies proto2 defaults: type NORMAL, score 0, trainer and normalizer defaults', () => {
    const model = parseSentencePieceModel(sentencePieceBytes([{ piece: 'a' }, { piece: 'b', score: -2, type: T.USER_DEFINED }]), 'x.model');
    expect(model.pieces).toEqual(['a', 'b']);
    expect(Array.from(model.scores)).toEqual([0, -2]);
    expect(Array.from(model.types)).toEqual([T.NORMAL, T.USER_DEFINED]);
    expect(model.trainer).toMatchObject({ unkId: 0, bosId: 1, eosId: 2, padId: -1, byteFallback: false });
    expect(model.normalizer).toMatchObject({ addDummyPrefix: true });
  });

  it('reads negative ids (-1 = none) and normalizer flags', () => {
    const bytes = sentencePieceBytes(
      [{ piece: '<unk>', type: T.UNKNOWN }],
      [pb.varint(41, -1), pb.varint(42, -1), pb.varint(43, 0), pb.varint(35, true)],
      [pb.varint(3, false), pb.string(1, 'nmt_nfkc')],
    );
    const model = parseSentencePieceModel(bytes, 'x.model');
    expect(model.trainer).toMatchObject({ unkId: 0, bosId: -1, eosId: -1, padId: 0, byteFallback: true });
    expect(model.normalizer).toMatchObject({ name: 'nmt_nfkc', addDummyPrefix: false });
  });

  it('keeps score bits exactly (NaN payloads, -0)', () => {
    const nan = [0x01, 0x00, 0xc0, 0x7f]; // 0x7fc00001
    const bytes = Uint8Array.from([...pb.message(1, pb.string(1, 'a'), [0x15, ...nan]), ...pb.message(1, pb.string(1, 'b'), pb.float(2, -0))]);
    const bits = new Uint32Array(parseSentencePieceModel(bytes, 'x.model').scores.buffer);
    expect(Array.from(bits, (b) => b.toString(16))).toEqual(['7fc00001', '80000000']);
  });

  it.each([
    ['no pieces', new Uint8Array(0), /has no pieces/],
    ['an empty piece', sentencePieceBytes([{ piece: 'a' }, { piece: '' }]), /piece 1 is empty/],
    ['a repeated piece', sentencePieceBytes([{ piece: 'a' }, { piece: 'b' }, { piece: 'a' }]), /piece 2 "a" repeats piece 0/],
    ['an unknown piece type', sentencePieceBytes([{ piece: 'a', type: 9 }]), /piece 0 has unknown type 9/],
    ['a piece that is not UTF-8', Uint8Array.from(pb.message(1, pb.bytes(1, [0xff, 0xfe]))), /not valid UTF-8/],
    ['a score of the wrong wire type', Uint8Array.from(pb.message(1, pb.string(1, 'a'), pb.varint(2, 1))), /field 2 has wire type 0/],
    ['a trainer spec that is not a message', Uint8Array.from([...pb.message(1, pb.string(1, 'a')), ...pb.varint(2, 5)]), /field 2 has wire type 0/],
  ])('refuses %s', (_, bytes, reason) => {
    const error = parseError(bytes);
    expect(error.file).toBe('bad.model');
    expect(error.reason).toMatch(reason);
  });

  it('a truncated tok512.model gives a FormatError inside the cut (or, cut between fields, fewer pieces)', () => {
    let refused = 0;
    for (let length = 1; length < tok512.length; length += 29) {
      try {
        parseSentencePieceModel(tok512.subarray(0, length), 'cut.model');
      } catch (e) {
        if (!(e instanceof FormatError)) throw e;
        expect(e.offset).toBeLessThanOrEqual(length);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(0);
  });

  it('damaged tok512.model bytes give a model or a FormatError, nothing else', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(tok512.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (edits) => {
        const bytes = tok512.slice();
        for (const [at, value] of edits) bytes[at] = value;
        try {
          parseSentencePieceModel(bytes, 'damaged.model');
        } catch (e) {
          if (!(e instanceof FormatError)) throw e;
        }
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a file above the size limit before reading it', async () => {
    const huge = { ...memorySource(new Uint8Array(0), 'huge.model'), size: 2 ** 40 };
    await expect(readSentencePieceModel(huge)).rejects.toThrow(/above the limit/);
  });
});
