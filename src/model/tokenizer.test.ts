import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../formats/model.ts';
import { FIXTURE_MODELS, fixture } from '../formats/testing.ts';
import { runLlamaCpp } from '../testing/llama-cpp-peer.ts';
import { SpmTokenizer, spmVocabFromGguf, spmVocabFromModelProto, TOKEN_TYPE, type SpmVocab } from './tokenizer.ts';

const STORIES = join(FIXTURE_MODELS, 'stories260K.gguf');
const LLAMA2 = join(FIXTURE_MODELS, 'llama-2-tiny-random.gguf');

/** Strings that exercise the dummy prefix, spaces, byte fallback, merges and newlines. */
const SAMPLES = [
  'Once upon a time',
  'Hello world',
  ' leading space',
  'two  spaces   three',
  'trailing space ',
  'line one\nline two\n\n',
  'Tim said, "Mom, my ball is gone!"',
  "It's 12:30, isn't it? 3.14159",
  'été, naïve café — 日本語 🙂',
  'tab\tand\u00a0nbsp',
  '<s> and </s> are text here',
  'a',
  ' ',
];

async function tokenizerOf(path: string): Promise<SpmTokenizer> {
  const model = await loadModel([await fixture(path.slice(FIXTURE_MODELS.length + 1))]);
  return new SpmTokenizer(spmVocabFromGguf(model.metadata));
}

describe('SentencePiece vocabulary', () => {
  it('reads the same vocabulary from GGUF metadata and from tok512.model', async () => {
    const model = await loadModel([await fixture('stories260K.gguf')]);
    const gguf = spmVocabFromGguf(model.metadata);
    const proto = spmVocabFromModelProto(readFileSync(join(FIXTURE_MODELS, 'tok512.model')));
    expect(proto.tokens).toEqual(gguf.tokens);
    expect(Array.from(proto.scores)).toEqual(Array.from(gguf.scores));
    expect(Array.from(proto.types)).toEqual(Array.from(gguf.types));
    expect([proto.bosId, proto.eosId, proto.unkId, proto.addSpacePrefix]).toEqual([1, 2, 0, true]);
    expect([gguf.bosId, gguf.eosId, gguf.unkId, gguf.addBos, gguf.addEos, gguf.addSpacePrefix]).toEqual([1, 2, 0, true, false, true]);
  });

  it('refuses a non-SentencePiece vocabulary and a bad tokenizer.model', () => {
    expect(() => spmVocabFromGguf({ 'tokenizer.ggml.model': 'gpt2', 'tokenizer.ggml.tokens': ['a'] })).toThrow(/only SentencePiece/);
    expect(() => spmVocabFromModelProto(Uint8Array.of(0x0a, 0x05, 0x01))).toThrow(/tokenizer.model/);
  });
});

describe('SpmTokenizer (stories260K vocabulary)', () => {
  let tok: SpmTokenizer;
  beforeAll(async () => {
    tok = await tokenizerOf(STORIES);
  });

  it('encodes as llama.cpp: BOS, dummy prefix, merges by score', () => {
    // ▁Once ▁upon ▁a ▁time (ids as llama.cpp gives them; see the peer test below)
    expect(tok.encode('Once upon a time')).toEqual([1, 403, 407, 261, 378]);
    expect(tok.encode('Once upon a time', { addSpecial: false })).toEqual([403, 407, 261, 378]);
    expect(tok.encode('')).toEqual([1]);
    expect(tok.encode('', { addSpecial: false })).toEqual([]);
  });

  it('falls back to bytes for characters outside the vocabulary', () => {
    const ids = tok.encode('日', { addSpecial: false });
    // ▁ then the three UTF-8 bytes of 日 (E6 97 A5) as <0xE6> <0x97> <0xA5>
    expect(ids.slice(-3).map((i) => tok.vocab.tokens[i])).toEqual(['<0xE6>', '<0x97>', '<0xA5>']);
    expect(ids.slice(-3).every((i) => tok.vocab.types[i] === TOKEN_TYPE.BYTE)).toBe(true);
  });

  it('decodes back to the text (llama_detokenize: the dummy prefix is dropped without BOS)', () => {
    for (const s of SAMPLES) {
      expect(tok.detokenize(tok.encode(s, { addSpecial: false }))).toBe(s);
      // With BOS kept, llama.cpp keeps the prefix space.
      expect(tok.detokenize(tok.encode(s))).toBe(` ${s}`);
      // remove_special drops BOS and, as llama.cpp does, then keeps the space too.
      expect(tok.detokenize(tok.encode(s), { removeSpecial: true })).toBe(` ${s}`);
    }
    expect(tok.detokenize([1, 2], { unparseSpecial: true })).toBe('<s></s>');
    expect(() => tok.detokenize([512])).toThrow(RangeError);
  });
});

describe('user-defined tokens', () => {
  it('are cut out of the text before SentencePiece runs (tokenizer_st_partition)', () => {
    const vocab: SpmVocab = {
      tokens: ['<unk>', '<s>', '</s>', '▁', 'a', 'b', '▁a', '<sep>', ...Array.from({ length: 256 }, (_, i) => `<0x${i.toString(16).toUpperCase().padStart(2, '0')}>`)],
      scores: new Float32Array(264),
      types: Int32Array.from([2, 3, 3, 1, 1, 1, 1, 4, ...new Array(256).fill(6)]),
      bosId: 1,
      eosId: 2,
      unkId: 0,
      addBos: true,
      addEos: false,
      addSpacePrefix: true,
    };
    const tok = new SpmTokenizer(vocab);
    // "a<sep>b" -> ▁a <sep> ▁b: llama.cpp's is_prev_special gives every text fragment after a
    // special token the dummy prefix too ('▁b' is not in this vocabulary: '▁', 'b').
    expect(tok.encode('a<sep>b')).toEqual([1, 6, 7, 3, 5]);
    // CONTROL tokens stay text unless parseSpecial.
    expect(tok.encode('<s>', { addSpecial: false })).not.toContain(1);
    expect(tok.encode('<s>', { addSpecial: false, parseSpecial: true })).toEqual([1]);
  });
});

describe('agrees with llama.cpp (node-llama-cpp in a child process)', () => {
  // node-llama-cpp's model.tokenize(text) = llama_tokenize(add_special = false, parse_special = false).
  for (const [label, path] of [['stories260K (512 tokens)', STORIES], ['Llama-2 vocabulary (32000 tokens)', LLAMA2]] as const) {
    it(`encodes and decodes like llama.cpp: ${label}`, async () => {
      const tok = await tokenizerOf(path);
      const ours = SAMPLES.map((s) => tok.encode(s, { addSpecial: false }));
      const peer = await runLlamaCpp({ model: path, tokenize: SAMPLES, detokenize: ours });
      expect(ours).toEqual(peer.tokenize);
      expect(ours.map((ids) => tok.detokenize(ids))).toEqual(peer.detokenize);
    });
  }
});
