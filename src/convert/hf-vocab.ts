// The vocabulary of a safetensors checkpoint, from the tokenizer files that came with it:
// tokenizer.model (SentencePiece, read here: vocab.ts) or tokenizer.json (+
// tokenizer_config.json). tokenizer.json -> GGUF needs the byte-level BPE pipeline, which
// lives above this layer (src/model/tokenizer-hf.ts hfTokenizerToGguf), so the caller
// passes that function in (ConvertOptions.hfTokenizer); src/export/source.ts does.

import { FormatError } from '../formats/errors.ts';
import { type GgufArray, type GgufMetadataEntry } from '../formats/gguf/metadata.ts';
import type { ModelFile, ModelIndex } from '../formats/model.ts';
import { readJsonFile } from '../formats/safetensors.ts';
import type { HfConfig } from './config.ts';
import { type SentencePieceModel, readSentencePieceModel } from './sentencepiece.ts';
import { type TokenizerSideFiles, sentencePieceVocabEntries } from './vocab.ts';

/** hfTokenizerToGguf's shape: tokenizer.json (+ config) -> the tokenizer.* entries the script writes. */
export type HfTokenizerConverter = (
  tokenizerJson: unknown,
  tokenizerConfigJson: unknown,
  options: { vocabSize?: number; config?: Readonly<Record<string, unknown>>; tokenizerFile?: string; tokenizerConfigFile?: string },
) => Promise<GgufMetadataEntry[]>;

export interface Vocabulary {
  readonly entries: GgufMetadataEntry[];
  /** tokenizer.ggml.tokens' length. */
  readonly tokenCount: number;
  /** The file it came from, for errors. */
  readonly file: string;
}

const baseName = (name: string) => name.split(/[\\/]/).pop() ?? name;

/** The model's file with this base name (tokenizer.json, tokenizer_config.json...). */
export function fileNamed(model: ModelIndex, name: string): ModelFile | undefined {
  return model.files.find((f) => baseName(f.source.name) === name);
}

export async function readJsonNamed(model: ModelIndex, name: string): Promise<Record<string, unknown> | undefined> {
  const file = fileNamed(model, name);
  return file ? readJsonFile(file.source, name) : undefined;
}

export async function readSentencePiece(model: ModelIndex): Promise<{ sp: SentencePieceModel; file: string } | null> {
  const files = model.files.filter((f) => f.role === 'tokenizer');
  if (files.length > 1) throw new FormatError(files[1].source.name, 0, `a second tokenizer model ('${files[0].source.name}' was given too)`);
  return files.length ? { sp: await readSentencePieceModel(files[0].source), file: files[0].source.name } : null;
}

export async function readSideFiles(model: ModelIndex): Promise<TokenizerSideFiles> {
  return { tokenizerConfig: await readJsonNamed(model, 'tokenizer_config.json'), addedTokens: await readJsonNamed(model, 'added_tokens.json') };
}

/** _set_vocab_sentencepiece: tokenizer.model padded to config's vocab_size. */
export async function sentencePieceVocabulary(model: ModelIndex, config: HfConfig, vocabSize: number | undefined, warnings: string[]): Promise<Vocabulary | null> {
  const found = await readSentencePiece(model);
  if (!found) return null;
  const size = vocabSize ?? found.sp.pieces.length;
  return { entries: sentencePieceVocabEntries(found.sp, config, size, await readSideFiles(model), warnings), tokenCount: size, file: found.file };
}

/** _set_vocab_gpt2: tokenizer.json (+ tokenizer_config.json) through hfTokenizerToGguf. */
export async function bpeVocabulary(model: ModelIndex, config: HfConfig, vocabSize: number | undefined, convert: HfTokenizerConverter | undefined): Promise<Vocabulary | null> {
  const file = fileNamed(model, 'tokenizer.json');
  if (!file) return null;
  if (!convert) throw new Error('converting tokenizer.json needs ConvertOptions.hfTokenizer (src/model/tokenizer-hf.ts hfTokenizerToGguf)');
  const json = await readJsonFile(file.source, 'tokenizer.json');
  const tokenizerConfig = await readJsonNamed(model, 'tokenizer_config.json');
  const entries = await convert(json, tokenizerConfig, { vocabSize, config: config.values, tokenizerFile: file.source.name, tokenizerConfigFile: 'tokenizer_config.json' });
  const tokens = entries.find((e) => e.key === 'tokenizer.ggml.tokens');
  if (!tokens) throw new FormatError(file.source.name, 0, 'gives no tokens');
  return { entries, tokenCount: (tokens.value as GgufArray).items.length, file: file.source.name };
}
