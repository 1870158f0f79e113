import { describe, expect, it } from 'vitest';
import { BPE_PRE_NAMES, BYTE_TO_UNICODE, BpeTokenizer, bpeVocabFromGguf, byteEncode, jsRegex, preTokenizer, splitWords } from './tokenizer-bpe.ts';
import { TOKEN_ATTR, TOKEN_TYPE, cleanSpaces, partitionSpecial, tokenAttributes } from './tokenizer-special.ts';

const words = (pre: string, text: string) => splitWords(text, preTokenizer(pre).regexes.map(jsRegex));

describe("GPT-2's byte-level alphabet", () => {
  it('maps the 256 bytes to 256 distinct printable characters, as unicode_byte_to_utf8_map', () => {
    expect(new Set(BYTE_TO_UNICODE).size).toBe(256);
    expect(BYTE_TO_UNICODE[0x41]).toBe('A');
    expect(BYTE_TO_UNICODE[0x20]).toBe('\u0120'); // Ġ
    expect(BYTE_TO_UNICODE[0x0a]).toBe('\u010a'); // Ċ
    expect(BYTE_TO_UNICODE[0xad]).toBe('\u0143'); // the last of the remapped bytes
    expect(byteEncode(' é')).toBe('\u0120\u00c3\u00a9');
  });
});

describe('pre-tokenizer regexes (llama.cpp llm_tokenizer_bpe)', () => {
  it('translates \\s to llama.cpp whitespace and (?i:...) to character classes', () => {
    const re = jsRegex(String.raw`(?i:'s|'ll)|\s+(?!\S)|\s+`);
    expect("'S".match(re)).toEqual(["'S"]);
    expect("'lL".match(re)).toEqual(["'lL"]);
    // U+0085 is whitespace for llama.cpp (JavaScript's \s says no); U+FEFF is not (JavaScript says yes).
    expect('\u0085'.match(re)).toEqual(['\u0085']);
    expect('\ufeff'.match(re)).toBeNull();
  });

  it('llama-bpe: digits in threes, letters with one leading non-letter, newlines kept together', () => {
    expect(words('llama-bpe', "Hello world, it's 1234567!\n\n  ok")).toEqual(['Hello', ' world', ',', ' it', "'s", ' ', '123', '456', '7', '!\n\n', ' ', ' ok']);
    expect(words('llama-bpe', 'a  \tb')).toEqual(['a', '  ', '\tb']);
  });

  it('qwen2: single digits; gpt-2: runs of digits with a space; smollm: digits split first', () => {
    expect(words('qwen2', 'x 123')).toEqual(['x', ' ', '1', '2', '3']);
    expect(words('gpt-2', 'x 123 ab')).toEqual(['x', ' 123', ' ab']);
    expect(words('smollm', 'x 123 ab')).toEqual(['x', ' ', '1', '2', '3', ' ab']);
  });

  it('every pre-tokenizer compiles and cuts a text into pieces that join back to it', () => {
    const text = "Hello World, it's 12345 ÉTÉ été 日本 🙂\n\n  x\t y… 'RE";
    for (const pre of BPE_PRE_NAMES) {
      const pieces = words(pre, text);
      expect(pieces.join(''), pre).toBe(text);
      expect(pieces.length, pre).toBeGreaterThan(5);
    }
    // tekken / gpt-4o: a capitalised word stays whole, a lower-case run after capitals splits off.
    expect(words('tekken', 'HelloWORLDfoo')).toEqual(['Hello', 'WORLDfoo']);
  });

  it('refuses a pre-tokenizer it does not implement, naming it', () => {
    expect(() => preTokenizer('deepseek-llm')).toThrow(/"deepseek-llm".*not implemented/);
  });
});

/** A small byte-level vocabulary: the 256 byte characters, merges of "hello", specials. */
function tinyVocab(extra: Record<string, unknown> = {}) {
  const tokens = [...BYTE_TO_UNICODE, 'he', 'll', 'hell', 'hello', '\u0120hello', '<|bos|>', '<|eot_id|>', '<sep>'];
  const types = [...new Array(261).fill(TOKEN_TYPE.NORMAL), TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL, TOKEN_TYPE.USER_DEFINED];
  return bpeVocabFromGguf({
    'tokenizer.ggml.model': 'gpt2',
    'tokenizer.ggml.pre': 'gpt-2',
    'tokenizer.ggml.tokens': tokens,
    'tokenizer.ggml.token_type': Int32Array.from(types),
    // 'he' + 'll' first, then 'hell' + 'o' (ranks by position).
    'tokenizer.ggml.merges': ['h e', 'l l', 'he ll', 'hell o', '\u0120 hello'],
    'tokenizer.ggml.bos_token_id': 261,
    'tokenizer.ggml.eos_token_id': 262,
    ...extra,
  });
}

describe('BpeTokenizer', () => {
  it('merges by rank within each word, then maps the pieces to ids', () => {
    const tok = new BpeTokenizer(tinyVocab());
    expect(tok.tokenize('hello hello', { addSpecial: false })).toEqual([259, 260]);
    // 'helo': he + l + o; no merge makes 'helo'.
    expect(tok.tokenize('helo', { addSpecial: false })).toEqual([256, 0x6c, 0x6f]) // token b is byte b here;
    expect(tok.detokenize(tok.tokenize('hello hello, helo!', { addSpecial: false }))).toBe('hello hello, helo!');
  });

  it('adds BOS/EOS as the metadata says, and knows the gpt2 defaults', () => {
    expect(new BpeTokenizer(tinyVocab()).tokenize('hello')).toEqual([259]); // gpt-2: no BOS by default
    const both = new BpeTokenizer(tinyVocab({ 'tokenizer.ggml.add_bos_token': true, 'tokenizer.ggml.add_eos_token': true }));
    expect(both.tokenize('hello')).toEqual([261, 259, 262]);
    expect(both.detokenize([261, 259, 262], { removeSpecial: true, unparseSpecial: true })).toBe('hello');
    expect(both.detokenize([261, 259, 262], { unparseSpecial: true })).toBe('<|bos|>hello<|eot_id|>');
    expect(both.detokenize([261, 259, 262])).toBe('hello');
    // llama-bpe adds BOS unless the file says otherwise.
    expect(new BpeTokenizer(tinyVocab({ 'tokenizer.ggml.pre': 'llama-bpe' })).tokenize('hello')).toEqual([261, 259]);
  });

  it('cuts special tokens out: user-defined always, control only with parseSpecial', () => {
    const tok = new BpeTokenizer(tinyVocab());
    expect(tok.tokenize('hello<sep>hello', { addSpecial: false })).toEqual([259, 263, 259]);
    expect(tok.tokenize('<|eot_id|>', { addSpecial: false })).not.toContain(262);
    expect(tok.tokenize('<|eot_id|>', { addSpecial: false, parseSpecial: true })).toEqual([262]);
  });

  it('refuses metadata llama.cpp refuses, naming the key', () => {
    expect(() => tinyVocab({ 'tokenizer.ggml.model': 'llama' })).toThrow(/tokenizer.ggml.model/);
    expect(() => tinyVocab({ 'tokenizer.ggml.merges': undefined })).toThrow(/tokenizer.ggml.merges/);
    expect(() => tinyVocab({ 'tokenizer.ggml.pre': 'no-such-pre' })).toThrow(/tokenizer.ggml.pre is "no-such-pre"/);
    expect(() => tinyVocab({ 'tokenizer.ggml.pre': 'glm4', 'tokenizer.ggml.bos_token_id': undefined, 'tokenizer.ggml.add_bos_token': true })).toThrow(/add_bos_token is true, but tokenizer.ggml.bos_token_id is not set/);
    expect(() => new BpeTokenizer(tinyVocab()).detokenize([264])).toThrow(RangeError);
  });
});

describe('llama.cpp vocabulary rules', () => {
  it('clean_spaces drops the spaces llama.cpp drops, pass by pass', () => {
    const clean = (s: string) => new TextDecoder().decode(cleanSpaces(new TextEncoder().encode(s)));
    expect(clean('Hello , world . ok ? yes !')).toBe('Hello, world. ok? yes!');
    expect(clean("isn ' t")).toBe("isn't");
    expect(clean("he 's, I 'm, we 're, they 've, I 'll, I 'd, don 't")).toBe("he's, I'm, we're, they've, I 'll, I 'd, don 't");
    expect(clean('')).toBe('');
  });

  it('control-looking and end-of-generation texts become control tokens; "unused" ones unused', () => {
    const tokens = ['a', '<|im_end|>', '<|fim_prefix|>', '<unused0>', '<|channel|>'];
    const attr = tokenAttributes(tokens, Int32Array.from([1, 1, 4, 3, 3]));
    expect(attr[0]).toBe(TOKEN_ATTR.NORMAL);
    expect(attr[1] & TOKEN_ATTR.CONTROL).toBeTruthy();
    expect(attr[2] & TOKEN_ATTR.CONTROL).toBeTruthy();
    expect(attr[3] & TOKEN_ATTR.UNUSED).toBeTruthy();
    expect(attr[4]).toBe(TOKEN_ATTR.USER_DEFINED);
    // A file that sets the FIM ids keeps its own types.
    expect(tokenAttributes(tokens, Int32Array.from([1, 1, 4, 3, 3]), { setIds: new Set(['fim_pre_token_id']) })[2]).toBe(TOKEN_ATTR.USER_DEFINED);
  });

  it("Phi-3's special tokens eat the whitespace after them (RSTRIP by model name)", () => {
    const tokens = ['<s>', '<|user|>', 'x'];
    const attr = tokenAttributes(tokens, Int32Array.from([3, 4, 1]), { modelName: 'Phi-3 mini' });
    expect(partitionSpecial('<|user|>  x', tokens, attr, [1, 0], false)).toEqual([1, 'x']);
    const plain = tokenAttributes(tokens, Int32Array.from([3, 4, 1]));
    expect(partitionSpecial('<|user|>  x', tokens, plain, [1, 0], false)).toEqual([1, '  x']);
  });
});
