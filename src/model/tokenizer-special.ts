// What llama.cpp's vocabulary does around the tokenizer proper, shared by the SentencePiece
// (tokenizer.ts) and byte-level BPE (tokenizer-bpe.ts) tokenizers. From llama.cpp
// src/llama-vocab.cpp:
//   llama_vocab::impl::load            -> tokenAttributes (token types -> attributes, and
//                                          the overrides llama.cpp applies by token text)
//   cache_special_tokens                -> specialTokenOrder
//   llama_vocab::impl::tokenizer_st_partition -> partitionSpecial
//   llama_vocab::impl::detokenize (clean_spaces passes) -> cleanSpaces

/** llama_token_type as GGUF stores it (tokenizer.ggml.token_type) = SentencePiece's piece type. */
export const TOKEN_TYPE = { UNDEFINED: 0, NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** llama_token_attr: a bit set, as llama.cpp keeps it per token. */
export const TOKEN_ATTR = {
  UNDEFINED: 0,
  UNKNOWN: 1 << 0,
  UNUSED: 1 << 1,
  NORMAL: 1 << 2,
  CONTROL: 1 << 3,
  USER_DEFINED: 1 << 4,
  BYTE: 1 << 5,
  NORMALIZED: 1 << 6,
  LSTRIP: 1 << 7,
  RSTRIP: 1 << 8,
  SINGLE_WORD: 1 << 9,
} as const;

const ATTR_OF_TYPE: Record<number, number> = {
  [TOKEN_TYPE.UNKNOWN]: TOKEN_ATTR.UNKNOWN,
  [TOKEN_TYPE.UNUSED]: TOKEN_ATTR.UNUSED,
  [TOKEN_TYPE.NORMAL]: TOKEN_ATTR.NORMAL,
  [TOKEN_TYPE.CONTROL]: TOKEN_ATTR.CONTROL,
  [TOKEN_TYPE.USER_DEFINED]: TOKEN_ATTR.USER_DEFINED,
  [TOKEN_TYPE.BYTE]: TOKEN_ATTR.BYTE,
};

// Texts llama.cpp treats as control tokens whatever their type (load(): the EOT/EOM/FIM
// auto-detection, and the end-of-generation list).
const EOT_TEXTS = ['<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>', '<EOT>', '_<EOT>', '[EOT]', '<｜end▁of▁sentence｜>', '<end_of_utterance>'];
const FIM_TEXTS: Record<string, string[]> = {
  fim_pre_token_id: ['<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<｜fim▁begin｜>', '<PRE>', '▁<PRE>', '<|code_prefix|>', '<|prefix|>'],
  fim_suf_token_id: ['<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<｜fim▁hole｜>', '<SUF>', '▁<SUF>', '<|code_suffix|>', '<|suffix|>'],
  fim_mid_token_id: ['<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<｜fim▁end｜>', '<MID>', '▁<MID>', '<|code_middle|>', '<|middle|>'],
  fim_pad_token_id: ['<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>', '[PAD]'],
  fim_rep_token_id: ['<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>'],
  fim_sep_token_id: ['<|file_sep|>'],
};
const EOG_TEXTS = [
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<|return|>', '<|call|>', '<|flush|>', '<|calls|>', '<end_of_turn>', '<|endoftext|>',
  '</s>', '<|eom_id|>', '<EOT>', '_<EOT>', '[EOT]', '[EOS]', '<|end_of_text|>', '<end_of_utterance>', '<eos>', '<turn|>',
  '<|tool_response>', '<｜end▁of▁sentence｜>', '[e~[',
];
/** gpt-oss: always rendered (load(): "quick hack for gpt-oss"). */
const ALWAYS_USER_DEFINED = ['<|channel|>', '<|message|>', '<|start|>', '<|constrain|>'];

export interface AttributeOptions {
  /** Metadata keys (tokenizer.ggml.*) present in the file: llama.cpp skips its text detection for an id the file sets. */
  readonly setIds?: ReadonlySet<string>;
  /** general.name: llama.cpp gives Phi-3's special tokens RSTRIP by the model's name. */
  readonly modelName?: string;
}

/**
 * Each token's llama_token_attr, as llama_vocab::impl::load leaves it: the type's
 * attribute, then the overrides llama.cpp makes by token text.
 */
export function tokenAttributes(tokens: readonly string[], types: ArrayLike<number> | undefined, options: AttributeOptions = {}): Uint16Array {
  const n = tokens.length;
  const attr = new Uint16Array(n);
  for (let i = 0; i < n; i++) attr[i] = types ? (ATTR_OF_TYPE[types[i]] ?? TOKEN_ATTR.UNDEFINED) : TOKEN_ATTR.NORMAL;
  const byText = tokenIds(tokens);
  const setIds = options.setIds ?? new Set<string>();
  const control = (text: string) => {
    const id = byText.get(text);
    if (id !== undefined) attr[id] |= TOKEN_ATTR.CONTROL;
  };
  if (!setIds.has('eot_token_id')) EOT_TEXTS.forEach(control);
  if (!setIds.has('eom_token_id')) control('<|eom_id|>');
  for (const [key, texts] of Object.entries(FIM_TEXTS)) if (!setIds.has(key)) texts.forEach(control);
  // Control tokens named "unused" are unused.
  tokens.forEach((t, i) => {
    if (attr[i] & TOKEN_ATTR.CONTROL && t.includes('unused')) attr[i] |= TOKEN_ATTR.UNUSED;
  });
  EOG_TEXTS.forEach(control);
  for (const t of ALWAYS_USER_DEFINED) {
    const id = byText.get(t);
    if (id !== undefined) attr[id] = TOKEN_ATTR.USER_DEFINED;
  }
  // o200k_harmony / solar-open: <|end|> is not end-of-generation there, and renders.
  const has = (t: string) => byText.has(t);
  if (has('<|end|>') && ((has('<|return|>') && has('<|call|>')) || (has('<|calls|>') && has('<|flush|>')))) attr[byText.get('<|end|>')!] = TOKEN_ATTR.USER_DEFINED;
  // gemma4 / paddleocr: </s> is a normal token when <|tool_response> exists.
  if (has('<|tool_response>') && has('</s>')) attr[byText.get('</s>')!] = TOKEN_ATTR.NORMAL;
  const name = (options.modelName ?? '').toLowerCase();
  if (name.includes('phi-3') || name.includes('phi3')) {
    // Phi-3: special tokens swallow the whitespace after them, except these three.
    for (const id of specialTokenOrder(tokens, attr)) attr[id] |= TOKEN_ATTR.RSTRIP;
    const set = (t: string, on: boolean) => {
      const id = byText.get(t);
      if (id !== undefined) attr[id] = on ? attr[id] | TOKEN_ATTR.RSTRIP : attr[id] & ~TOKEN_ATTR.RSTRIP;
    };
    set('</s>', true);
    for (const t of ['<unk>', '<s>', '<|endoftext|>']) set(t, false);
  }
  return attr;
}

/** token_to_id: text -> id; of equal texts the last wins (llama.cpp's map assignment in id order). */
export function tokenIds(tokens: readonly string[]): Map<string, number> {
  const map = new Map<string, number>();
  tokens.forEach((t, id) => map.set(t, id));
  return map;
}

const utf8Length = (s: string) => new TextEncoder().encode(s).length;

/** cache_special_tokens: CONTROL, USER_DEFINED and UNKNOWN tokens, longest text (in bytes) first. */
export function specialTokenOrder(tokens: readonly string[], attr: ArrayLike<number>): number[] {
  const ids: number[] = [];
  for (let id = 0; id < tokens.length; id++) {
    if (attr[id] & (TOKEN_ATTR.CONTROL | TOKEN_ATTR.USER_DEFINED | TOKEN_ATTR.UNKNOWN)) ids.push(id);
  }
  const length = new Map(ids.map((id) => [id, utf8Length(tokens[id])]));
  return ids.sort((a, b) => length.get(b)! - length.get(a)! || a - b);
}

/** C's isspace in the "C" locale: what LSTRIP/RSTRIP strip. */
const isCSpace = (c: string) => c === ' ' || (c >= '\t' && c <= '\r');

/**
 * tokenizer_st_partition: the special tokens' texts cut the text into fragments (strings)
 * and token ids. CONTROL and UNKNOWN tokens count only when parseSpecial; USER_DEFINED
 * always. LSTRIP/RSTRIP tokens eat the whitespace before/after them.
 */
export function partitionSpecial(
  text: string,
  tokens: readonly string[],
  attr: ArrayLike<number>,
  order: readonly number[],
  parseSpecial: boolean,
): (string | number)[] {
  let fragments: (string | number)[] = text.length > 0 ? [text] : [];
  for (const id of order) {
    const a = attr[id];
    if (!parseSpecial && a & (TOKEN_ATTR.CONTROL | TOKEN_ATTR.UNKNOWN)) continue;
    const t = tokens[id];
    if (t.length === 0) continue;
    const next: (string | number)[] = [];
    for (const f of fragments) {
      if (typeof f === 'number' || !f.includes(t)) {
        next.push(f);
        continue;
      }
      let from = 0;
      for (let at = f.indexOf(t); at >= 0; at = f.indexOf(t, from)) {
        let left = f.slice(from, at);
        if (a & TOKEN_ATTR.LSTRIP) while (left.length > 0 && isCSpace(left[left.length - 1])) left = left.slice(0, -1);
        if (left.length > 0) next.push(left);
        next.push(id);
        from = at + t.length;
        if (a & TOKEN_ATTR.RSTRIP) while (from < f.length && isCSpace(f[from])) from++;
      }
      if (from < f.length) next.push(f.slice(from));
    }
    fragments = next;
  }
  return fragments;
}

const SPACE = 0x20;
const APOSTROPHE = 0x27;
const ch = (c: string) => c.charCodeAt(0);

/**
 * llama_vocab::impl::detokenize's clean_spaces passes on the detokenized bytes, literally
 * (in place, as the C code runs them): " ?", " !", " .", " ," lose the space; " ' " loses
 * both; " 's", " 'm", " 're", " 've" lose the space.
 */
export function cleanSpaces(input: Uint8Array): Uint8Array {
  const text = input.slice();
  let total = text.length;
  // first pass: characters ?!.,
  const total1 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total1; ++i) {
    const x = text[i];
    if (text[i - 1] === SPACE && (x === ch('?') || x === ch('!') || x === ch('.') || x === ch(','))) total--;
    text[total++] = x;
  }
  // second pass: strip single apostrophe between spaces
  const total2 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total2; ++i) {
    const x = text[i];
    if (x === APOSTROPHE && i + 1 < total2 && text[i - 1] === SPACE && text[i + 1] === SPACE) {
      total--;
      text[++i] = 0;
    }
    text[total++] = x;
  }
  // third pass: apostrophe contractions
  const total3 = total;
  total = total ? 1 : 0;
  for (let i = 1; i < total3; ++i) {
    const x = text[i];
    if (text[i - 1] === SPACE && x === APOSTROPHE && i + 1 < total3) {
      const x1 = text[i + 1];
      if (x1 === ch('s') || x1 === ch('m')) total--;
      else if (i + 2 < total3) {
        const x2 = text[i + 2];
        if ((x1 === ch('r') && x2 === ch('e')) || (x1 === ch('v') && x2 === ch('e'))) total--;
      }
    }
    text[total++] = x;
  }
  return text.subarray(0, total);
}
