import { describe, expect, it } from 'vitest';
import { findEntry } from '../formats/gguf/metadata.ts';
import type { HfConfig } from './config.ts';
import { SENTENCEPIECE_TYPE as T, parseSentencePieceModel } from './sentencepiece.ts';
import { pb, sentencePieceBytes } from './testing.ts';
import { TOKEN_TYPE, llamaVocab, sentencePieceVocabEntries, specialTokenIds } from './vocab.ts';

const sp = (normalizer: number[][] = [], trainer: number[][] = []) =>
  parseSentencePieceModel(
    sentencePieceBytes(
      [
        { piece: '<unk>', type: T.UNKNOWN },
        { piece: '<s>', type: T.CONTROL },
        { piece: '</s>', type: T.CONTROL },
        { piece: '<0x41>', type: T.BYTE },
        { piece: '<sep>', type: T.USER_DEFINED, score: 5 },
        { piece: 'old', type: T.UNUSED, score: -3 },
        { piece: '\u2581a', score: -1 },
      ],
      trainer,
      normalizer,
    ),
    'tok.model',
  );

const config = (values: Record<string, unknown>): HfConfig => ({ values, file: 'config.json' });

describe('llamaVocab (convert_hf_to_gguf.py _create_vocab_sentencepiece)', () => {
  it('maps piece types, USER_DEFINED to NORMAL as the script does', () => {
    const vocab = llamaVocab(sp(), 7, {}, []);
    expect(vocab.tokens).toEqual(['<unk>', '<s>', '</s>', '<0x41>', '<sep>', 'old', '\u2581a']);
    expect(Array.from(vocab.tokenTypes)).toEqual([T.UNKNOWN, T.CONTROL, T.CONTROL, T.BYTE, T.NORMAL, T.UNUSED, T.NORMAL]);
    expect(Array.from(vocab.scores)).toEqual([0, 0, 0, 0, 5, -3, -1]);
  });

  it('pads a larger model vocabulary with unused [PADi] tokens scored -10000', () => {
    const vocab = llamaVocab(sp(), 9, {}, []);
    expect(vocab.tokens.slice(7)).toEqual(['[PAD7]', '[PAD8]']);
    expect(Array.from(vocab.scores.slice(7))).toEqual([-10000, -10000]);
    expect(Array.from(vocab.tokenTypes.slice(7))).toEqual([TOKEN_TYPE.UNUSED, TOKEN_TYPE.UNUSED]);
  });

  it('drops pieces beyond the model vocabulary, with a warning', () => {
    const warnings: string[] = [];
    expect(llamaVocab(sp(), 5, {}, warnings).tokens).toHaveLength(5);
    expect(warnings[0]).toMatch(/7 pieces but the model 5 token ids/);
  });

  it('applies added_tokens.json, then tokenizer_config.json added_tokens_decoder', () => {
    const warnings: string[] = [];
    const vocab = llamaVocab(sp(), 9, {
      addedTokens: { '<extra>': 7, '<far>': 99 },
      tokenizerConfig: {
        added_tokens_decoder: {
          '0': { content: '<unk>', special: true },
          '8': { content: '<|im_end|>', special: false },
          '5': { content: '\u2581hi', special: false },
        },
      },
    }, warnings);
    expect(vocab.tokens[7]).toBe('<extra>');
    expect(vocab.tokenTypes[7]).toBe(TOKEN_TYPE.USER_DEFINED);
    expect(vocab.tokenTypes[0]).toBe(TOKEN_TYPE.CONTROL); // special: true
    expect([vocab.tokens[8], vocab.tokenTypes[8]]).toEqual(['<|im_end|>', TOKEN_TYPE.CONTROL]); // looks special
    expect([vocab.tokens[5], vocab.tokenTypes[5]]).toEqual([' hi', TOKEN_TYPE.USER_DEFINED]);
    expect(vocab.scores[5]).toBe(-1000);
    expect(warnings.join()).toMatch(/"<far>" has id 99, outside the vocabulary of 9/);
  });
});

describe('special tokens and flags', () => {
  it("config.json's ids win, the tokenizer's fill the rest, out-of-range and negative ids are left out", () => {
    const ids = specialTokenIds(config({ bos_token_id: 2, eos_token_id: [2, 3], sep_token_id: 4, pad_token_id: 100 }), sp([], [pb.varint(43, 5)]), 7);
    expect(Object.fromEntries(ids)).toEqual({
      'tokenizer.ggml.bos_token_id': 2,
      'tokenizer.ggml.eos_token_id': 2, // a list in config: the tokenizer's eos_id
      'tokenizer.ggml.unknown_token_id': 0,
      'tokenizer.ggml.seperator_token_id': 4,
      'tokenizer.ggml.padding_token_id': 5, // config's 100 is out of range: the tokenizer's
    });
  });

  it('add_bos/add_eos default to LlamaTokenizer\'s true/false; tokenizer_config.json overrides; chat template carried', () => {
    const flags = (side = {}) => {
      const entries = sentencePieceVocabEntries(sp(), null, 7, side, []);
      return ['add_bos_token', 'add_eos_token', 'add_sep_token'].map((k) => findEntry(entries, `tokenizer.ggml.${k}`)?.value);
    };
    expect(flags()).toEqual([true, false, undefined]);
    expect(flags({ tokenizerConfig: { add_bos_token: false, add_eos_token: true } })).toEqual([false, true, undefined]);
    const entries = sentencePieceVocabEntries(sp(), null, 7, { tokenizerConfig: { chat_template: '{{ x }}' } }, []);
    expect(findEntry(entries, 'tokenizer.chat_template')?.value).toBe('{{ x }}');
  });

  it('add_space_prefix: written false when SentencePiece adds no dummy prefix, else only from add_prefix_space', () => {
    const prefix = (normalizer: number[][], side = {}) =>
      findEntry(sentencePieceVocabEntries(sp(normalizer), null, 7, side, []), 'tokenizer.ggml.add_space_prefix')?.value;
    expect(prefix([])).toBeUndefined();
    expect(prefix([pb.varint(3, false)])).toBe(false);
    expect(prefix([pb.varint(3, false)], { tokenizerConfig: { add_prefix_space: true } })).toBe(true);
  });
});
