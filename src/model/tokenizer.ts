// The SentencePiece (SPM) tokenizer as llama.cpp runs it (llama.cpp src/llama-vocab.cpp,
// the pinned commit of docs/contracts.md):
//   llama_vocab::impl::tokenize, case LLAMA_VOCAB_TYPE_SPM  -> encode
//   llm_tokenizer_spm_session (bigram merges by score)     -> spmSegment
//   llama_vocab::impl::tokenizer_st_partition              -> partition
//   llama_vocab::impl::detokenize / token_to_piece         -> detokenize / piece
// The vocabulary comes from GGUF `tokenizer.ggml.*` metadata (spmVocabFromGguf) or from a
// SentencePiece tokenizer.model (spmVocabFromModelProto: pieces, scores, types, ids).
// Also the Tokenizer interface every kind implements: byte-level BPE is tokenizer-bpe.ts,
// the entry points tokenizer-gguf.ts (tokenizerFromGguf) and tokenizer-hf.ts (tokenizer.json);
// docs/tokenizers.md.

import { concatBytes } from '../formats/bytes.ts';
import { TOKEN_ATTR, TOKEN_TYPE, partitionSpecial, specialTokenOrder, tokenAttributes } from './tokenizer-special.ts';

export { TOKEN_TYPE };

export interface TokenizeOptions {
  /** Add BOS/EOS as the vocabulary says (llama_tokenize's add_special). Default true. */
  addSpecial?: boolean;
  /** Control tokens' texts in the text are those tokens (parse_special). Default false. */
  parseSpecial?: boolean;
}

export interface DetokenizeOptions {
  /** Drop a leading BOS and a trailing EOS (llama.cpp's remove_special). Default false. */
  removeSpecial?: boolean;
  /** Print control/unknown tokens' text (unparse_special). Default false. */
  unparseSpecial?: boolean;
  /** llama.cpp's clean_spaces passes (" ," -> ","...); default: as the vocabulary says. */
  cleanSpaces?: boolean;
}

/**
 * What every tokenizer here offers, as llama.cpp's llama_tokenize / llama_detokenize do it
 * for the model's vocabulary (tokenizer-gguf.ts tokenizerFromGguf picks the kind).
 */
export interface Tokenizer {
  readonly kind: 'spm' | 'bpe';
  /** The vocabulary as read (SpmVocab or BpeVocab); what every kind has is typed here. */
  readonly vocab: { readonly tokens: readonly string[]; readonly bosId: number | null; readonly eosId: number | null; readonly addBos: boolean; readonly addEos: boolean };
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  /** tokenize() with addSpecial puts BOS first / EOS last. */
  readonly addBos: boolean;
  readonly addEos: boolean;
  tokenize(text: string, options?: TokenizeOptions): number[];
  /** Same as tokenize. */
  encode(text: string, options?: TokenizeOptions): number[];
  detokenize(tokens: readonly number[], options?: DetokenizeOptions): string;
  /** The vocabulary entry of a token, as stored. */
  tokenText(token: number): string;
}

export interface SpmVocab {
  readonly tokens: readonly string[];
  readonly scores: ArrayLike<number>;
  readonly types: ArrayLike<number>;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly unkId: number | null;
  /** tokenizer.ggml.add_bos_token (llama.cpp's SPM default: true). */
  readonly addBos: boolean;
  /** tokenizer.ggml.add_eos_token (default false). */
  readonly addEos: boolean;
  /** tokenizer.ggml.add_space_prefix: the "dummy prefix" ▁ before the text (default true; Gemma: false). */
  readonly addSpacePrefix: boolean;
  /** general.name (llama.cpp sets some token attributes by model name, e.g. Phi-3's RSTRIP). */
  readonly modelName?: string;
  /** tokenizer.ggml.*_token_id keys the file sets (llama.cpp skips its text detection for those). */
  readonly setIds?: ReadonlySet<string>;
}

const SPACE_MARK = '\u2581'; // ▁, SentencePiece's escaped space

function scalar(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

/** The vocabulary of a GGUF (metadata as formats/gguf/metadata.ts metadataToObject gives it). */
export function spmVocabFromGguf(metadata: Readonly<Record<string, unknown>>): SpmVocab {
  const model = metadata['tokenizer.ggml.model'];
  if (model !== 'llama') {
    throw new Error(`tokenizer.ggml.model is ${JSON.stringify(model)}: only SentencePiece ('llama') vocabularies are supported`);
  }
  const tokens = metadata['tokenizer.ggml.tokens'];
  if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== 'string')) throw new Error('tokenizer.ggml.tokens is missing or not a string list');
  const n = tokens.length;
  const scores = (metadata['tokenizer.ggml.scores'] as ArrayLike<number> | undefined) ?? new Float32Array(n);
  const types = (metadata['tokenizer.ggml.token_type'] as ArrayLike<number> | undefined) ?? new Int32Array(n).fill(TOKEN_TYPE.NORMAL);
  if (scores.length !== n || types.length !== n) throw new Error(`tokenizer.ggml.scores/token_type do not have ${n} entries`);
  const setIds = new Set<string>();
  for (const key of ['eot_token_id', 'eom_token_id', 'fim_pre_token_id', 'fim_suf_token_id', 'fim_mid_token_id', 'fim_pad_token_id', 'fim_rep_token_id', 'fim_sep_token_id']) {
    if (scalar(metadata[`tokenizer.ggml.${key}`]) !== undefined) setIds.add(key);
  }
  const id = (key: string, fallback: number | null) => {
    const v = scalar(metadata[`tokenizer.ggml.${key}`]);
    // llama.cpp reads these as u32; 0xFFFFFFFF (and anything out of range) means none.
    if (v === undefined) return fallback;
    setIds.add(key);
    return v >= 0 && v < n ? v : null;
  };
  const flag = (key: string, fallback: boolean) => {
    const v = metadata[`tokenizer.ggml.${key}`];
    return typeof v === 'boolean' ? v : fallback;
  };
  return {
    tokens: tokens as string[],
    scores,
    types,
    // llama.cpp's SPM defaults (llama_vocab::impl::load): bos 1, eos 2, unk 0.
    bosId: id('bos_token_id', 1),
    eosId: id('eos_token_id', 2),
    unkId: id('unknown_token_id', 0),
    addBos: flag('add_bos_token', true),
    addEos: flag('add_eos_token', false),
    addSpacePrefix: flag('add_space_prefix', true),
    modelName: typeof metadata['general.name'] === 'string' ? metadata['general.name'] : undefined,
    setIds,
  };
}

// --- SentencePiece ModelProto (tokenizer.model) ------------------------------------------
// Only what the tokenizer needs: ModelProto.pieces (1) {piece 1, score 2, type 3},
// trainer_spec (2) {unk_id 40, bos_id 41, eos_id 42}, normalizer_spec (3) {add_dummy_prefix 3}.

interface ProtoField {
  field: number;
  wire: number;
  value: number | Uint8Array;
}

function* protoFields(bytes: Uint8Array): Generator<ProtoField> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const varint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (at >= bytes.length) throw new Error('tokenizer.model: truncated varint');
      const b = bytes[at++];
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) throw new Error('tokenizer.model: varint too long');
    }
  };
  while (at < bytes.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) yield { field, wire, value: varint() };
    else if (wire === 1) {
      if (at + 8 > bytes.length) throw new Error('tokenizer.model: truncated fixed64');
      yield { field, wire, value: view.getFloat64(at, true) };
      at += 8;
    } else if (wire === 2) {
      const length = varint();
      if (at + length > bytes.length) throw new Error(`tokenizer.model: field ${field} runs past the end`);
      yield { field, wire, value: bytes.subarray(at, at + length) };
      at += length;
    } else if (wire === 5) {
      if (at + 4 > bytes.length) throw new Error('tokenizer.model: truncated fixed32');
      yield { field, wire, value: view.getFloat32(at, true) };
      at += 4;
    } else throw new Error(`tokenizer.model: unsupported wire type ${wire}`);
  }
}

/** int32 fields are varints of the two's complement: -1 comes as 2^64 - 1. */
function int32(v: number): number {
  return v >= 2 ** 31 ? v - 2 ** 64 : v;
}

/** The vocabulary of a SentencePiece tokenizer.model (as llama.cpp's converter reads it). */
export function spmVocabFromModelProto(bytes: Uint8Array): SpmVocab {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const tokens: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  let unkId = 0;
  let bosId: number | null = 1;
  let eosId: number | null = 2;
  let addSpacePrefix = true;
  for (const f of protoFields(bytes)) {
    if (f.field === 1 && f.wire === 2) {
      let piece = '';
      let score = 0;
      let type: number = TOKEN_TYPE.NORMAL;
      for (const p of protoFields(f.value as Uint8Array)) {
        if (p.field === 1 && p.wire === 2) piece = decoder.decode(p.value as Uint8Array);
        else if (p.field === 2 && p.wire === 5) score = p.value as number;
        else if (p.field === 3 && p.wire === 0) type = p.value as number;
      }
      tokens.push(piece);
      scores.push(score);
      types.push(type);
    } else if (f.field === 2 && f.wire === 2) {
      for (const p of protoFields(f.value as Uint8Array)) {
        if (p.wire !== 0) continue;
        if (p.field === 40) unkId = int32(p.value as number);
        else if (p.field === 41) bosId = int32(p.value as number);
        else if (p.field === 42) eosId = int32(p.value as number);
      }
    } else if (f.field === 3 && f.wire === 2) {
      for (const p of protoFields(f.value as Uint8Array)) if (p.field === 3 && p.wire === 0) addSpacePrefix = p.value !== 0;
    }
  }
  if (tokens.length === 0) throw new Error('tokenizer.model: no pieces (not a SentencePiece model?)');
  const inRange = (id: number | null) => (id !== null && id >= 0 && id < tokens.length ? id : null);
  return {
    tokens,
    scores: Float32Array.from(scores),
    types: Int32Array.from(types),
    bosId: inRange(bosId),
    eosId: inRange(eosId),
    unkId: inRange(unkId),
    addBos: true,
    addEos: false,
    addSpacePrefix,
  };
}

// --- the tokenizer --------------------------------------------------------------------

interface Symbol {
  /** Byte range in the UTF-8 text. */
  start: number;
  n: number;
  prev: number;
  next: number;
}

interface Bigram {
  left: number;
  right: number;
  score: number;
  size: number;
}

/** std::priority_queue with llm_bigram_spm::comparator: highest score first, then leftmost. */
class BigramQueue {
  private heap: Bigram[] = [];
  private static before(a: Bigram, b: Bigram): boolean {
    return a.score > b.score || (a.score === b.score && a.left < b.left);
  }
  get size(): number {
    return this.heap.length;
  }
  push(b: Bigram): void {
    const h = this.heap;
    h.push(b);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!BigramQueue.before(h[i], h[parent])) break;
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
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < h.length && BigramQueue.before(h[l], h[best])) best = l;
        if (r < h.length && BigramQueue.before(h[r], h[best])) best = r;
        if (best === i) break;
        [h[i], h[best]] = [h[best], h[i]];
        i = best;
      }
    }
    return top;
  }
}

/** Bytes of the UTF-8 sequence led by byte `b` (unicode_len_utf8). */
function utf8Length(b: number): number {
  const lookup = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4];
  return lookup[b >> 4];
}

export class SpmTokenizer implements Tokenizer {
  readonly kind = 'spm' as const;
  private readonly byText = new Map<string, number>();
  /** llama_token_attr of every token (types, then llama.cpp's overrides by text). */
  readonly attributes: Uint16Array;
  /** CONTROL, USER_DEFINED and UNKNOWN tokens, longest text first (cache_special_tokens). */
  private readonly special: number[];
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();

  constructor(readonly vocab: SpmVocab) {
    // token_to_id: the last of equal texts wins (llama.cpp assigns in id order).
    vocab.tokens.forEach((t, id) => this.byText.set(t, id));
    this.attributes = tokenAttributes(vocab.tokens, vocab.types, { setIds: vocab.setIds, modelName: vocab.modelName });
    this.special = specialTokenOrder(vocab.tokens, this.attributes);
  }

  get size(): number {
    return this.vocab.tokens.length;
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

  /** Same as encode: the name of the common Tokenizer interface. */
  tokenize(text: string, options: TokenizeOptions = {}): number[] {
    return this.encode(text, options);
  }

  tokenText(token: number): string {
    return this.vocab.tokens[token];
  }

  /**
   * Token ids of `text` as llama_tokenize(add_special = true, parse_special) gives them:
   * BOS first (when the vocabulary adds it), the dummy-prefix space, byte fallback.
   */
  encode(text: string, options: TokenizeOptions = {}): number[] {
    const addSpecial = options.addSpecial ?? true;
    const v = this.vocab;
    const out: number[] = [];
    let prevSpecial = true; // prefix with a space if the first fragment is text
    if (addSpecial && v.addBos) {
      if (v.bosId === null) throw new Error('the vocabulary adds BOS but has no BOS token');
      out.push(v.bosId);
    }
    if (text.length > 0) {
      for (const fragment of partitionSpecial(text, v.tokens, this.attributes, this.special, options.parseSpecial ?? false)) {
        if (typeof fragment === 'number') {
          out.push(fragment);
          prevSpecial = true;
          continue;
        }
        const withPrefix = v.addSpacePrefix && prevSpecial ? ` ${fragment}` : fragment;
        this.spmSegment(withPrefix.replaceAll(' ', SPACE_MARK), out);
        prevSpecial = false;
      }
    }
    if (addSpecial && v.addEos) {
      if (v.eosId === null) throw new Error('the vocabulary adds EOS but has no EOS token');
      out.push(v.eosId);
    }
    return out;
  }

  /** llm_tokenizer_spm_session::tokenize on escaped text. */
  private spmSegment(escaped: string, out: number[]): void {
    const bytes = this.encoder.encode(escaped);
    const symbols: Symbol[] = [];
    for (let offs = 0; offs < bytes.length; ) {
      const n = Math.min(utf8Length(bytes[offs]), bytes.length - offs);
      const index = symbols.length;
      offs += n;
      symbols.push({ start: offs - n, n, prev: index - 1, next: offs === bytes.length ? -1 : index + 1 });
    }
    const textOf = (start: number, n: number) => this.decoder.decode(bytes.subarray(start, start + n));
    const queue = new BigramQueue();
    const revMerge = new Map<string, [number, number]>();
    const tryAddBigram = (left: number, right: number) => {
      if (left === -1 || right === -1) return;
      const text = textOf(symbols[left].start, symbols[left].n + symbols[right].n);
      const token = this.byText.get(text);
      if (token === undefined) return;
      queue.push({ left, right, score: this.vocab.scores[token], size: symbols[left].n + symbols[right].n });
      revMerge.set(text, [left, right]);
    };
    for (let i = 1; i < symbols.length; i++) tryAddBigram(i - 1, i);
    while (queue.size > 0) {
      const b = queue.pop();
      const left = symbols[b.left];
      const right = symbols[b.right];
      if (left.n === 0 || right.n === 0 || left.n + right.n !== b.size) continue;
      left.n += right.n;
      right.n = 0;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = b.left;
      tryAddBigram(left.prev, b.left);
      tryAddBigram(b.left, left.next);
    }
    const resegment = (s: Symbol) => {
      const text = textOf(s.start, s.n);
      const token = this.byText.get(text);
      if (token !== undefined) {
        out.push(token);
        return;
      }
      const merge = revMerge.get(text);
      if (!merge) {
        for (let j = 0; j < s.n; j++) out.push(this.byteToken(bytes[s.start + j]));
        return;
      }
      resegment(symbols[merge[0]]);
      resegment(symbols[merge[1]]);
    };
    if (symbols.length === 0) return;
    for (let i = 0; i !== -1; i = symbols[i].next) resegment(symbols[i]);
  }

  /** byte_to_token: <0xXX>, else the byte itself as a token. */
  private byteToken(byte: number): number {
    const hex = `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
    const id = this.byText.get(hex) ?? this.byText.get(String.fromCharCode(byte));
    if (id === undefined) throw new Error(`the vocabulary has no token for byte 0x${byte.toString(16)}`);
    return id;
  }

  /** token_to_piece: the bytes a token stands for (special tokens give none unless asked). */
  pieceBytes(token: number, unparseSpecial = false): Uint8Array {
    if (!Number.isInteger(token) || token < 0 || token >= this.size) throw new RangeError(`token ${token} is outside the vocabulary of ${this.size}`);
    const attr = this.attributes[token];
    const text = this.vocab.tokens[token];
    if (attr & (TOKEN_ATTR.CONTROL | TOKEN_ATTR.UNKNOWN)) return unparseSpecial ? this.encoder.encode(text) : new Uint8Array();
    if (attr & TOKEN_ATTR.USER_DEFINED) return this.encoder.encode(text);
    if (attr & TOKEN_ATTR.NORMAL) return this.encoder.encode(text.replaceAll(SPACE_MARK, ' '));
    if (attr & TOKEN_ATTR.BYTE) return Uint8Array.of(Number.parseInt(text.slice(3, 5), 16));
    return new Uint8Array(); // UNUSED / UNDEFINED: suppressed like control tokens
  }

  /**
   * llama_detokenize: the pieces joined as bytes, then UTF-8 decoded. The leading space
   * of the first piece is dropped (the dummy prefix) unless a BOS was removed first
   * (llama.cpp's own rule: remove_space = add_space_prefix, cleared by a removed BOS).
   */
  detokenize(tokens: readonly number[], options: DetokenizeOptions = {}): string {
    const v = this.vocab;
    let list = tokens;
    let removeSpace = v.addSpacePrefix;
    if (options.removeSpecial && v.addBos && list.length > 0 && list[0] === v.bosId) {
      removeSpace = false;
      list = list.slice(1);
    }
    if (options.removeSpecial && v.addEos && list.length > 0 && list[list.length - 1] === v.eosId) list = list.slice(0, -1);
    const parts: Uint8Array[] = [];
    for (const t of list) {
      let piece = this.pieceBytes(t, options.unparseSpecial ?? false);
      if (removeSpace && piece.length > 0 && piece[0] === 0x20) piece = piece.subarray(1);
      removeSpace = false;
      parts.push(piece);
    }
    return this.decoder.decode(concatBytes(parts));
  }
}
