// A SentencePiece vocabulary as llama.cpp's tokenizer.ggml.* keys, following
// convert_hf_to_gguf.py (conversion/base.py _create_vocab_sentencepiece and
// _set_vocab_sentencepiece, conversion/llama.py LlamaModel.set_vocab) and gguf-py's
// SpecialVocab (gguf/vocab.py), which reads special ids from config.json and the
// add_*_token flags, chat template and added tokens from tokenizer_config.json.

import { GGUF_VALUE_TYPE } from '../formats/gguf/constants.ts';
import { type GgufMetadataEntry, ggufArray, ggufEntry } from '../formats/gguf/metadata.ts';
import { type HfConfig, specialTokenId } from './config.ts';
import { SENTENCEPIECE_TYPE, type SentencePieceModel } from './sentencepiece.ts';

/** llama.cpp's token types (llama_token_type; gguf-py TokenType): SentencePiece's numbers. */
export const TOKEN_TYPE = SENTENCEPIECE_TYPE;

export interface LlamaVocab {
  readonly tokens: string[];
  readonly scores: Float32Array;
  readonly tokenTypes: Int32Array;
}

/** What tokenizer_config.json / added_tokens.json say, already parsed (each may be absent). */
export interface TokenizerSideFiles {
  readonly tokenizerConfig?: Readonly<Record<string, unknown>>;
  readonly addedTokens?: Readonly<Record<string, unknown>>;
}

// Scores convert_hf_to_gguf.py gives padding and added tokens.
const PAD_SCORE = -10000;
const ADDED_TOKEN_SCORE = -1000;

/**
 * tokens / scores / token types for `vocabSize` ids (config's vocab_size, else the
 * tokenizer's size): ids the tokenizer lacks become unused "[PADi]" tokens, pieces past
 * vocabSize are dropped (with a warning). SentencePiece's USER_DEFINED pieces come out
 * NORMAL, as in convert_hf_to_gguf.py, which checks only unknown/control/unused/byte.
 */
export function llamaVocab(sp: SentencePieceModel, vocabSize: number, side: TokenizerSideFiles, warnings: string[]): LlamaVocab {
  const tokens = Array.from({ length: vocabSize }, (_, i) => `[PAD${i}]`);
  const scores = new Float32Array(vocabSize).fill(PAD_SCORE);
  const tokenTypes = new Int32Array(vocabSize).fill(TOKEN_TYPE.UNUSED);
  if (sp.pieces.length > vocabSize) {
    warnings.push(`tokenizer has ${sp.pieces.length} pieces but the model ${vocabSize} token ids: pieces from id ${vocabSize} on are left out`);
  }
  const count = Math.min(sp.pieces.length, vocabSize);
  for (let id = 0; id < count; id++) {
    tokens[id] = sp.pieces[id];
    tokenTypes[id] = ggufTokenType(sp.types[id]);
  }
  // Scores bit for bit (a round trip through a JS number could change a NaN payload).
  new Uint32Array(scores.buffer, 0, count).set(new Uint32Array(sp.scores.buffer, sp.scores.byteOffset, count));
  applyAddedTokens({ tokens, scores, tokenTypes }, side, warnings);
  return { tokens, scores, tokenTypes };
}

function ggufTokenType(pieceType: number): number {
  switch (pieceType) {
    case SENTENCEPIECE_TYPE.UNKNOWN:
    case SENTENCEPIECE_TYPE.CONTROL:
    case SENTENCEPIECE_TYPE.UNUSED:
    case SENTENCEPIECE_TYPE.BYTE:
      return pieceType;
    default:
      return TOKEN_TYPE.NORMAL;
  }
}

/** added_tokens.json, then tokenizer_config.json's added_tokens_decoder, as the script. */
function applyAddedTokens(vocab: LlamaVocab, side: TokenizerSideFiles, warnings: string[]): void {
  const n = vocab.tokens.length;
  const inRange = (id: number, token: string) => {
    if (Number.isInteger(id) && id >= 0 && id < n) return true;
    warnings.push(`added token ${JSON.stringify(token)} has id ${id}, outside the vocabulary of ${n}: left out`);
    return false;
  };
  for (const [token, id] of Object.entries(side.addedTokens ?? {})) {
    if (typeof id !== 'number' || !inRange(id, token)) continue;
    setToken(vocab, id, token, TOKEN_TYPE.USER_DEFINED);
  }
  const decoder = side.tokenizerConfig?.added_tokens_decoder;
  if (typeof decoder !== 'object' || decoder === null) return;
  for (const [key, data] of Object.entries(decoder as Record<string, unknown>)) {
    const id = Number(key);
    if (typeof data !== 'object' || data === null) continue;
    const { content, special } = data as { content?: unknown; special?: unknown };
    if (typeof content !== 'string' || !inRange(id, content)) continue;
    if (special === true || looksSpecial(content)) setToken(vocab, id, content, TOKEN_TYPE.CONTROL);
    else setToken(vocab, id, content.replaceAll('\u2581', ' '), TOKEN_TYPE.USER_DEFINED); // pre-normalized spaces
  }
}

function setToken(vocab: LlamaVocab, id: number, token: string, type: number): void {
  vocab.tokens[id] = token;
  vocab.scores[id] = ADDED_TOKEN_SCORE;
  vocab.tokenTypes[id] = type;
}

/** Added tokens that models mark non-special but are control tokens (base.py does_token_look_special). */
function looksSpecial(token: string): boolean {
  return (
    ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(token) ||
    (token.startsWith('<|') && token.endsWith('|>')) ||
    (token.startsWith('<\uff5c') && token.endsWith('\uff5c>')) ||
    (token.startsWith('<unused') && token.endsWith('>'))
  );
}

// SpecialVocab's token kinds that GGUFWriter has a key for (cls has none: skipped).
const SPECIAL_KINDS = [
  ['bos', 'tokenizer.ggml.bos_token_id'],
  ['eos', 'tokenizer.ggml.eos_token_id'],
  ['unk', 'tokenizer.ggml.unknown_token_id'],
  ['sep', 'tokenizer.ggml.seperator_token_id'], // sic: gguf-py's key
  ['pad', 'tokenizer.ggml.padding_token_id'],
  ['mask', 'tokenizer.ggml.mask_token_id'],
] as const;

/**
 * Special token ids: config.json's `<kind>_token_id` when it is an id in the vocabulary (as
 * SpecialVocab), else, for bos/eos/unk/pad, the id in tokenizer.model's trainer spec. The fallback is ours: the
 * script leaves unk unset when config.json lacks it; llama.cpp then assumes 0 for a
 * SentencePiece vocabulary, so writing the tokenizer's own id is the same or better.
 */
export function specialTokenIds(config: HfConfig | null, sp: SentencePieceModel, vocabSize: number): Map<string, number> {
  const fromTokenizer: Record<string, number> = {
    bos: sp.trainer.bosId, eos: sp.trainer.eosId, unk: sp.trainer.unkId, pad: sp.trainer.padId,
  };
  const ids = new Map<string, number>();
  for (const [kind, key] of SPECIAL_KINDS) {
    const fromConfig = config ? specialTokenId(config, `${kind}_token_id`) : undefined;
    const id = [fromConfig, fromTokenizer[kind]].find((c) => c !== undefined && c >= 0 && c < vocabSize);
    if (id !== undefined) ids.set(key, id);
  }
  return ids;
}

/** The tokenizer.ggml.* entries, in the order convert_hf_to_gguf.py writes them. */
export function sentencePieceVocabEntries(
  sp: SentencePieceModel,
  config: HfConfig | null,
  vocabSize: number,
  side: TokenizerSideFiles,
  warnings: string[],
): GgufMetadataEntry[] {
  const { STRING, FLOAT32, INT32, UINT32, BOOL, ARRAY } = GGUF_VALUE_TYPE;
  const vocab = llamaVocab(sp, vocabSize, side, warnings);
  const tokenizerConfig = side.tokenizerConfig ?? {};
  const entries: GgufMetadataEntry[] = [];
  const spacePrefix = addSpacePrefix(sp, tokenizerConfig);
  if (spacePrefix !== undefined) entries.push(ggufEntry('tokenizer.ggml.add_space_prefix', BOOL, spacePrefix));
  entries.push(
    ggufEntry('tokenizer.ggml.model', STRING, 'llama'),
    ggufEntry('tokenizer.ggml.pre', STRING, 'default'),
    ggufEntry('tokenizer.ggml.tokens', ARRAY, ggufArray(STRING, vocab.tokens)),
    ggufEntry('tokenizer.ggml.scores', ARRAY, ggufArray(FLOAT32, vocab.scores)),
    ggufEntry('tokenizer.ggml.token_type', ARRAY, ggufArray(INT32, vocab.tokenTypes)),
  );
  for (const [key, id] of specialTokenIds(config, sp, vocabSize)) entries.push(ggufEntry(key, UINT32, id));
  for (const [kind, fallback] of [['bos', true], ['eos', false], ['sep', undefined]] as const) {
    const flag = tokenizerConfig[`add_${kind}_token`];
    // Without tokenizer_config.json the script writes no flag; we write HF LlamaTokenizer's
    // defaults (add BOS, not EOS), which are also llama.cpp's for this vocabulary type.
    const value = typeof flag === 'boolean' ? flag : fallback;
    if (value !== undefined) entries.push(ggufEntry(`tokenizer.ggml.add_${kind}_token`, BOOL, value));
  }
  const template = tokenizerConfig.chat_template;
  if (typeof template === 'string') entries.push(ggufEntry('tokenizer.chat_template', STRING, template));
  return entries;
}

/**
 * tokenizer_config.json's add_prefix_space, as LlamaModel.set_vocab writes it; failing
 * that, false when the SentencePiece normalizer adds no dummy prefix (our addition:
 * llama.cpp otherwise assumes one and would tokenize differently from SentencePiece).
 */
function addSpacePrefix(sp: SentencePieceModel, tokenizerConfig: Readonly<Record<string, unknown>>): boolean | undefined {
  const flag = tokenizerConfig.add_prefix_space;
  if (typeof flag === 'boolean') return flag;
  return sp.normalizer.addDummyPrefix ? undefined : false;
}
