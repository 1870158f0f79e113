// Byte-level BPE (GGUF tokenizer.ggml.model = "gpt2": Llama 3, Qwen2/2.5/3, SmolLM, GPT-2,
// Mistral Nemo's tekken...) as llama.cpp runs it (llama.cpp src/llama-vocab.cpp, src/unicode.cpp):
//   llm_tokenizer_bpe (regex_exprs per LLAMA_VOCAB_PRE_TYPE_*) -> PRE_TOKENIZERS
//   unicode_regex_split (each regex splits the pieces of the one before; the text between
//     matches stays a piece of its own), unicode_byte_encoding_process -> splitWords, byteEncode
//   llm_tokenizer_bpe_session::tokenize (merges by rank)         -> BpeTokenizer.bpeWord
//   llama_vocab::impl::load for "gpt2" (defaults, flags per pre) -> bpeVocabFromGguf
//   token_to_piece / detokenize (llama_decode_text, clean_spaces) -> BpeTokenizer.detokenize
// llama.cpp runs the Llama 3 and GPT-2 regexes as hand-written code and the others through
// std::regex on "collapsed" text (every non-ASCII code point replaced by one byte per
// Unicode category); both behave as the same regex run with real Unicode classes, which is
// what JavaScript's /u regexes give, with \s spelled out as llama.cpp's whitespace set.

import { concatBytes } from '../formats/bytes.ts';
import type { DetokenizeOptions, TokenizeOptions, Tokenizer } from './tokenizer.ts';
import { TOKEN_ATTR, cleanSpaces, partitionSpecial, specialTokenOrder, tokenAttributes, tokenIds } from './tokenizer-special.ts';

// --- GPT-2's byte <-> unicode mapping (unicode_byte_to_utf8_map) -----------------------

/** Byte b as the printable character GPT-2's byte-level vocabularies spell it with. */
export const BYTE_TO_UNICODE: readonly string[] = (() => {
  const map: string[] = new Array(256);
  const direct = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  for (let b = 0; b < 256; b++) map[b] = direct(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + n++);
  return map;
})();

const UNICODE_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_UNICODE.map((c, b) => [c, b]));

const encoder = new TextEncoder();

/** A word's UTF-8 bytes as byte-level characters (unicode_byte_encoding_process). */
export function byteEncode(word: string): string {
  let out = '';
  for (const b of encoder.encode(word)) out += BYTE_TO_UNICODE[b];
  return out;
}

// --- pre-tokenizer regexes ------------------------------------------------------------

/** llama.cpp's whitespace (Unicode White_Space): what \s means in its regexes. */
const WS = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

/**
 * A regex as llama.cpp (or tokenizer.json) writes it, as a JavaScript /gu regex: \s and \S
 * become llama.cpp's whitespace set, (?i:...) over ASCII becomes [xX] classes (Node 20
 * has no inline modifiers).
 */
export function jsRegex(source: string): RegExp {
  let out = '';
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\' && i + 1 < source.length) {
      const e = source[i + 1];
      i++;
      if (e === 's') out += inClass ? WS : `[${WS}]`;
      else if (e === 'S') {
        if (inClass) throw new Error(`regex ${JSON.stringify(source)}: \\S inside a class is not supported`);
        out += `[^${WS}]`;
      } else out += `\\${e}`;
      continue;
    }
    if (!inClass && source.startsWith('(?i:', i)) {
      const end = findGroupEnd(source, i);
      out += `(?:${caseless(source.slice(i + 4, end))})`;
      i = end;
      continue;
    }
    if (c === '[' && !inClass) inClass = true;
    else if (c === ']' && inClass) inClass = false;
    out += c;
  }
  return new RegExp(out, 'gu');
}

function findGroupEnd(source: string, open: number): number {
  let depth = 0;
  for (let i = open; i < source.length; i++) {
    if (source[i] === '\\') i++;
    else if (source[i] === '(') depth++;
    else if (source[i] === ')' && --depth === 0) return i;
  }
  throw new Error(`regex ${JSON.stringify(source)}: unclosed group at ${open}`);
}

/** Letters of a (?i:...) body as [xX]; only plain ASCII alternations are expected there. */
function caseless(body: string): string {
  if (/[[\\(]/.test(body)) throw new Error(`regex: (?i:${body}) is not supported`);
  return body.replace(/[A-Za-z]/g, (l) => `[${l.toLowerCase()}${l.toUpperCase()}]`);
}

const CONTRACTIONS = String.raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])`;
const RE_GPT2 = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`;
const RE_LLAMA3 = String.raw`${CONTRACTIONS}|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const RE_QWEN2 = String.raw`${CONTRACTIONS}|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const RE_QWEN35 = String.raw`${CONTRACTIONS}|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const RE_TEKKEN = String.raw`[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const RE_GPT4O = String.raw`[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+${CONTRACTIONS}?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*${CONTRACTIONS}?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const RE_PORO = String.raw` ?[^(\s|.,!?…。，、।۔،)]+`;

interface PreTokenizer {
  readonly regexes: readonly string[];
  /** tokenizer_ignore_merges: a word that is a token is not merged. */
  readonly ignoreMerges?: boolean;
  /** tokenizer_add_bos before tokenizer.ggml.add_bos_token (default false). */
  readonly addBos?: boolean;
  /** clean_spaces (default true for BPE). */
  readonly cleanSpaces?: boolean;
  /** glm4 / chatglm-bpe: no default BOS. */
  readonly noBos?: boolean;
}

const LLAMA3: PreTokenizer = { regexes: [RE_LLAMA3], ignoreMerges: true, addBos: true };
const GPT2: PreTokenizer = { regexes: [RE_GPT2] };
const SMOLLM: PreTokenizer = { regexes: [String.raw`\p{N}`, RE_GPT2] };
const QWEN2: PreTokenizer = { regexes: [RE_QWEN2], cleanSpaces: false };

/** tokenizer.ggml.pre -> what llama_vocab::impl::load and llm_tokenizer_bpe make of it. */
const PRE_TOKENIZERS: Readonly<Record<string, PreTokenizer>> = {
  default: { regexes: [String.raw`[\p{P}\$\+<=>\^~\|]+`, RE_GPT2, String.raw`\p{N}+`, '[0-9][0-9][0-9]'] },
  llama3: LLAMA3, 'llama-v3': LLAMA3, 'llama-bpe': LLAMA3, falcon3: LLAMA3, 'falcon-h1': LLAMA3, pixtral: LLAMA3, 'midm-2.0': LLAMA3, lfm2: LLAMA3,
  dbrx: { regexes: [RE_LLAMA3] }, 'smaug-bpe': { regexes: [RE_LLAMA3] },
  'chatglm-bpe': { regexes: [RE_LLAMA3], noBos: true }, glm4: { regexes: [RE_LLAMA3], noBos: true },
  falcon: { regexes: [String.raw`[\p{P}\$\+<=>\^~\|\x60]+`, RE_GPT2, '[0-9][0-9][0-9]'] },
  'gpt-2': GPT2, 'phi-2': GPT2, 'jina-es': GPT2, 'jina-de': GPT2, gigachat: GPT2, 'jina-v2-es': GPT2, 'jina-v2-de': GPT2,
  'a.x-4.0': GPT2, mellum: GPT2, mpt: GPT2, olmo: GPT2, jais: GPT2, exaone4: GPT2,
  trillion: { regexes: [RE_GPT2], cleanSpaces: false }, 'granite-docling': { regexes: [RE_GPT2], cleanSpaces: false },
  smollm: { ...SMOLLM, cleanSpaces: false }, starcoder: SMOLLM, refact: SMOLLM, 'command-r': { ...SMOLLM, cleanSpaces: false },
  codeshell: SMOLLM, exaone: SMOLLM, 'minerva-7b': SMOLLM, mellum2: SMOLLM,
  qwen2: QWEN2, 'deepseek-r1-qwen': QWEN2, kormo: QWEN2, f2llmv2: QWEN2, megrez: { regexes: [RE_QWEN2] }, stablelm2: { regexes: [RE_QWEN2] },
  qwen35: { regexes: [RE_QWEN35], cleanSpaces: false },
  tekken: { regexes: [RE_TEKKEN], ignoreMerges: true, addBos: true, cleanSpaces: false },
  'gpt-4o': { regexes: [RE_GPT4O], cleanSpaces: false }, llama4: { regexes: [RE_GPT4O], cleanSpaces: false },
  'poro-chat': { regexes: [RE_PORO], cleanSpaces: false }, bloom: { regexes: [RE_PORO] }, 'gpt3-finnish': { regexes: [RE_PORO] },
};

/** The tokenizer.ggml.pre names this tokenizer implements. */
export const BPE_PRE_NAMES: readonly string[] = Object.keys(PRE_TOKENIZERS);

const compiled = new Map<string, RegExp>();
function compile(source: string): RegExp {
  let re = compiled.get(source);
  if (!re) compiled.set(source, (re = jsRegex(source)));
  return re;
}

/**
 * unicode_regex_split without the byte encoding: each regex cuts every piece into its
 * matches and the text between them, in order.
 */
export function splitWords(text: string, regexes: readonly RegExp[]): string[] {
  let pieces = [text];
  for (const re of regexes) {
    const next: string[] = [];
    for (const piece of pieces) {
      let from = 0;
      for (const m of piece.matchAll(re)) {
        if (m[0].length === 0) continue;
        if (m.index > from) next.push(piece.slice(from, m.index));
        next.push(m[0]);
        from = m.index + m[0].length;
      }
      if (from < piece.length) next.push(piece.slice(from));
    }
    pieces = next;
  }
  return pieces;
}

// --- the vocabulary -------------------------------------------------------------------

export interface BpeVocab {
  readonly tokens: readonly string[];
  /** tokenizer.ggml.token_type (absent: every token NORMAL). */
  readonly types?: ArrayLike<number>;
  /** tokenizer.ggml.merges: "left right", rank = index. */
  readonly merges: readonly string[];
  /** tokenizer.ggml.pre. */
  readonly pre: string;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly ignoreMerges: boolean;
  readonly cleanSpaces: boolean;
  /** The word splitter; by default the regexes of `pre`. */
  readonly regexes: readonly string[];
  /** general.name (llama.cpp sets some token attributes by model name). */
  readonly modelName?: string;
  /** tokenizer.ggml.*_token_id keys the file sets. */
  readonly setIds?: ReadonlySet<string>;
}

function scalar(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

/** The pre-tokenizer of a tokenizer.ggml.pre name, or an error naming the supported ones. */
export function preTokenizer(pre: string): PreTokenizer {
  const p = Object.hasOwn(PRE_TOKENIZERS, pre) ? PRE_TOKENIZERS[pre] : undefined;
  if (!p) throw new Error(`tokenizer.ggml.pre is ${JSON.stringify(pre)}: this pre-tokenizer is not implemented here (known: ${BPE_PRE_NAMES.join(', ')})`);
  return p;
}

/** A "gpt2" vocabulary from GGUF metadata (formats/gguf/metadata.ts metadataToObject). */
export function bpeVocabFromGguf(metadata: Readonly<Record<string, unknown>>): BpeVocab {
  const model = metadata['tokenizer.ggml.model'];
  if (model !== 'gpt2') throw new Error(`tokenizer.ggml.model is ${JSON.stringify(model)}: not a byte-level BPE ('gpt2') vocabulary`);
  const tokens = metadata['tokenizer.ggml.tokens'];
  if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== 'string')) throw new Error('tokenizer.ggml.tokens is missing or not a string list');
  const n = tokens.length;
  const merges = metadata['tokenizer.ggml.merges'];
  if (!Array.isArray(merges) || merges.some((m) => typeof m !== 'string')) throw new Error('tokenizer.ggml.merges is missing or not a string list (llama.cpp: "cannot find tokenizer merges")');
  const types = metadata['tokenizer.ggml.token_type'] as ArrayLike<number> | undefined;
  if (types !== undefined && types.length < n) throw new Error(`tokenizer.ggml.token_type has ${types.length} entries for ${n} tokens`);
  const preValue = metadata['tokenizer.ggml.pre'];
  // llama.cpp: a missing pre-tokenizer is 'default' (with a warning).
  const pre = typeof preValue === 'string' && preValue.length > 0 ? preValue : 'default';
  const p = preTokenizer(pre);
  const setIds = new Set<string>();
  const id = (key: string, fallback: number | null) => {
    // llama.cpp: a default out of range is none; a set id out of range keeps the default.
    const def = fallback !== null && fallback < n ? fallback : null;
    const v = scalar(metadata[`tokenizer.ggml.${key}`]);
    if (v === undefined) return def;
    setIds.add(key);
    return v >= 0 && v < n ? v : def;
  };
  const flag = (key: string, fallback: boolean) => {
    const v = metadata[`tokenizer.ggml.${key}`];
    return typeof v === 'boolean' ? v : fallback;
  };
  for (const key of ['eot_token_id', 'eom_token_id', 'fim_pre_token_id', 'fim_suf_token_id', 'fim_mid_token_id', 'fim_pad_token_id', 'fim_rep_token_id', 'fim_sep_token_id']) {
    if (scalar(metadata[`tokenizer.ggml.${key}`]) !== undefined) setIds.add(key);
  }
  // llama.cpp's "gpt2" defaults: BOS = EOS = 11.
  const bosId = id('bos_token_id', p.noBos ? null : 11);
  const eosId = id('eos_token_id', 11);
  const addBos = flag('add_bos_token', p.addBos ?? false);
  const addEos = flag('add_eos_token', false);
  if (addBos && bosId === null) throw new Error('tokenizer.ggml.add_bos_token is true, but tokenizer.ggml.bos_token_id is not set');
  if (addEos && eosId === null) throw new Error('tokenizer.ggml.add_eos_token is true, but tokenizer.ggml.eos_token_id is not set');
  const name = metadata['general.name'];
  return {
    tokens: tokens as string[],
    types,
    merges: merges as string[],
    pre,
    bosId,
    eosId,
    addBos,
    addEos,
    ignoreMerges: p.ignoreMerges ?? false,
    cleanSpaces: p.cleanSpaces ?? true,
    regexes: p.regexes,
    modelName: typeof name === 'string' ? name : undefined,
    setIds,
  };
}

// --- the tokenizer --------------------------------------------------------------------

interface Bigram {
  left: number;
  right: number;
  rank: number;
  text: string;
}

/** llm_bigram_bpe::comparator as a min-heap: lowest rank first, then leftmost. */
class BigramHeap {
  private readonly heap: Bigram[] = [];
  private static before(a: Bigram, b: Bigram): boolean {
    return a.rank < b.rank || (a.rank === b.rank && a.left < b.left);
  }
  get size(): number {
    return this.heap.length;
  }
  push(b: Bigram): void {
    const h = this.heap;
    h.push(b);
    for (let i = h.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!BigramHeap.before(h[i], h[parent])) break;
      [h[i], h[parent]] = [h[parent], h[i]];
      i = parent;
    }
  }
  pop(): Bigram {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < h.length && BigramHeap.before(h[l], h[best])) best = l;
        if (r < h.length && BigramHeap.before(h[r], h[best])) best = r;
        if (best === i) break;
        [h[i], h[best]] = [h[best], h[i]];
        i = best;
      }
    }
    return top;
  }
}

interface Sym {
  text: string;
  prev: number;
  next: number;
}

const decoder = new TextDecoder();

export class BpeTokenizer implements Tokenizer {
  readonly kind = 'bpe' as const;
  private readonly byText: Map<string, number>;
  /** "left\0right" -> rank (the first of duplicate merges wins, as bpe_ranks.emplace). */
  private readonly ranks = new Map<string, number>();
  private readonly regexes: RegExp[];
  /** llama_token_attr of every token. */
  readonly attributes: Uint16Array;
  private readonly special: number[];

  constructor(readonly vocab: BpeVocab) {
    this.byText = tokenIds(vocab.tokens);
    vocab.merges.forEach((m, rank) => {
      // llama.cpp splits at the first space after the first character.
      const at = m.indexOf(' ', 1);
      const key = at < 0 ? '\0' : `${m.slice(0, at)}\0${m.slice(at + 1)}`;
      if (!this.ranks.has(key)) this.ranks.set(key, rank);
    });
    this.regexes = vocab.regexes.map(compile);
    this.attributes = tokenAttributes(vocab.tokens, vocab.types, { setIds: vocab.setIds, modelName: vocab.modelName });
    this.special = specialTokenOrder(vocab.tokens, this.attributes);
  }

  get vocabSize(): number {
    return this.vocab.tokens.length;
  }
  get bosId(): number | null {
    return this.vocab.bosId;
  }
  get eosId(): number | null {
    return this.vocab.eosId;
  }
  get addBos(): boolean {
    return this.vocab.addBos;
  }
  get addEos(): boolean {
    return this.vocab.addEos;
  }

  /** llama_tokenize(text, add_special, parse_special). */
  tokenize(text: string, options: TokenizeOptions = {}): number[] {
    const addSpecial = options.addSpecial ?? true;
    const out: number[] = [];
    if (addSpecial && this.vocab.addBos) out.push(this.vocab.bosId!);
    for (const fragment of partitionSpecial(text, this.vocab.tokens, this.attributes, this.special, options.parseSpecial ?? false)) {
      if (typeof fragment === 'number') out.push(fragment);
      else for (const word of splitWords(fragment, this.regexes)) this.bpeWord(byteEncode(word), out);
    }
    if (addSpecial && this.vocab.addEos) out.push(this.vocab.eosId!);
    return out;
  }

  /** BPE of already split words (before byte encoding), appended to `out`. */
  encodeWords(words: readonly string[], out: number[] = []): number[] {
    for (const word of words) this.bpeWord(byteEncode(word), out);
    return out;
  }

  /** Same as tokenize (the name the SentencePiece tokenizer's callers use). */
  encode(text: string, options: TokenizeOptions = {}): number[] {
    return this.tokenize(text, options);
  }

  /** llm_tokenizer_bpe_session::tokenize for one byte-encoded word. */
  private bpeWord(word: string, out: number[]): void {
    if (word.length === 0) return;
    if (this.vocab.ignoreMerges) {
      const id = this.byText.get(word);
      if (id !== undefined) {
        out.push(id);
        return;
      }
    }
    const chars = Array.from(word);
    const symbols: Sym[] = chars.map((text, i) => ({ text, prev: i - 1, next: i + 1 < chars.length ? i + 1 : -1 }));
    const heap = new BigramHeap();
    const addBigram = (left: number, right: number) => {
      if (left === -1 || right === -1) return;
      const rank = this.ranks.get(`${symbols[left].text}\0${symbols[right].text}`);
      if (rank === undefined) return;
      heap.push({ left, right, rank, text: symbols[left].text + symbols[right].text });
    };
    for (let i = 1; i < symbols.length; i++) addBigram(i - 1, i);
    while (heap.size > 0) {
      const b = heap.pop();
      const left = symbols[b.left];
      const right = symbols[b.right];
      if (left.text.length === 0 || right.text.length === 0 || left.text + right.text !== b.text) continue;
      left.text = b.text;
      right.text = '';
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = b.left;
      addBigram(left.prev, b.left);
      addBigram(b.left, left.next);
    }
    for (let i = 0; i !== -1; i = symbols[i].next) {
      const text = symbols[i].text;
      const id = this.byText.get(text);
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      // Not a token: llama.cpp looks each UTF-8 byte up as a one-byte text; only ASCII can match.
      for (const byte of encoder.encode(text)) {
        const single = byte < 0x80 ? this.byText.get(String.fromCharCode(byte)) : undefined;
        if (single !== undefined) out.push(single);
      }
    }
  }

  /** token_to_piece: the bytes a token stands for (control/unknown tokens give none unless asked). */
  pieceBytes(token: number, unparseSpecial = false): Uint8Array {
    if (!Number.isInteger(token) || token < 0 || token >= this.vocabSize) throw new RangeError(`token ${token} is outside the vocabulary of ${this.vocabSize}`);
    const attr = this.attributes[token];
    const text = this.vocab.tokens[token];
    if (attr & (TOKEN_ATTR.UNKNOWN | TOKEN_ATTR.CONTROL)) return unparseSpecial ? encoder.encode(text) : new Uint8Array();
    if (attr & TOKEN_ATTR.USER_DEFINED) return encoder.encode(text);
    if (attr & TOKEN_ATTR.NORMAL) return decodeByteLevel(text);
    if (attr & TOKEN_ATTR.BYTE) return Uint8Array.of(Number.parseInt(text.slice(3, 5), 16));
    return new Uint8Array();
  }

  /** llama_detokenize: pieces joined as bytes, clean_spaces as the vocabulary says, UTF-8 decoded. */
  detokenize(tokens: readonly number[], options: DetokenizeOptions = {}): string {
    const v = this.vocab;
    let list = tokens;
    if (options.removeSpecial && v.addBos && list.length > 0 && list[0] === v.bosId) list = list.slice(1);
    if (options.removeSpecial && v.addEos && list.length > 0 && list[list.length - 1] === v.eosId) list = list.slice(0, -1);
    let bytes = concatBytes(list.map((t) => this.pieceBytes(t, options.unparseSpecial ?? false)));
    if (options.cleanSpaces ?? v.cleanSpaces) bytes = cleanSpaces(bytes);
    return decoder.decode(bytes);
  }

  /** The vocabulary entry of a token, as stored. */
  tokenText(token: number): string {
    return this.vocab.tokens[token];
  }
}

/** llama_decode_text: byte-level characters back to bytes; others as "[UNK_BYTE_0x..]". */
function decodeByteLevel(text: string): Uint8Array {
  const out: number[] = [];
  for (const c of text) {
    const b = UNICODE_TO_BYTE.get(c);
    if (b !== undefined) {
      out.push(b);
      continue;
    }
    const hex = Array.from(encoder.encode(c), (x) => x.toString(16).padStart(2, '0')).join('');
    out.push(...encoder.encode(`[UNK_BYTE_0x${hex}${text}]`));
  }
  return Uint8Array.from(out);
}
