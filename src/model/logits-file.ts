// llama-perplexity's `--kl-divergence-base FILE`: the base model's log-probabilities, as
// tools/perplexity/perplexity.cpp writes them (perplexity() with --kl-divergence-base and no
// --kl-divergence) and reads them back (kl_divergence()). Little-endian, no padding:
//
//   offset 0              char[8]  "_logits_"
//   offset 8              int32    n_ctx
//   offset 12             int32    n_vocab
//   offset 16             int32    n_chunk
//   offset 20             int32    tokens[n_chunk · n_ctx]   the text's tokens as tokenized (BOS
//                                                           first where the model adds it), not
//                                                           the BOS each chunk is run with
//   then per chunk, per scored position j = n_ctx/2 … n_ctx − 2 (n_ctx − 1 − n_ctx/2 rows):
//                         f32      scale, f32 min_log_prob,
//                         uint16   q[n_vocab], padded with 0 to an even count
//                                   (nv = 2·⌈n_vocab/2⌉ + 4 uint16 per row; kl-report.ts)
//
// llama-perplexity reads n_ctx as uint32 and the rest as int32; a file whose n_vocab differs
// from the model's only gets a warning there — here it is refused, as are other tokens.
import { FormatError } from '../formats/errors.ts';
import { logProbRowLength } from './kl-report.ts';

export const LOGITS_MAGIC = '_logits_';
const HEADER_BYTES = 20;

export interface LogitsFile {
  nCtx: number;
  nVocab: number;
  nChunk: number;
  /** n_chunk · n_ctx tokens. */
  tokens: Int32Array;
  /** n_chunk · scoredPerChunk(n_ctx) rows of logProbRowLength(n_vocab) uint16 (kl-report.ts's compressed rows). */
  logProbs: Uint16Array;
}

/** Positions perplexity.cpp scores per chunk: the second half, less the last (nothing after it). */
export function scoredPerChunk(nCtx: number): number {
  return nCtx - 1 - Math.floor(nCtx / 2);
}

/** Bytes of a file with these dimensions. */
export function logitsFileBytes(nCtx: number, nVocab: number, nChunk: number): number {
  return HEADER_BYTES + 4 * nChunk * nCtx + 2 * nChunk * scoredPerChunk(nCtx) * logProbRowLength(nVocab);
}

export function writeLogitsFile(file: LogitsFile): Uint8Array {
  const { nCtx, nVocab, nChunk } = file;
  const rows = nChunk * scoredPerChunk(nCtx) * logProbRowLength(nVocab);
  if (file.tokens.length !== nChunk * nCtx) throw new Error(`${file.tokens.length} tokens for ${nChunk} chunks of ${nCtx}`);
  if (file.logProbs.length !== rows) throw new Error(`${file.logProbs.length} log-prob entries, ${rows} expected`);
  const out = new Uint8Array(logitsFileBytes(nCtx, nVocab, nChunk));
  const dv = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) out[i] = LOGITS_MAGIC.charCodeAt(i);
  dv.setInt32(8, nCtx, true);
  dv.setInt32(12, nVocab, true);
  dv.setInt32(16, nChunk, true);
  let at = HEADER_BYTES;
  for (const t of file.tokens) {
    dv.setInt32(at, t, true);
    at += 4;
  }
  for (const q of file.logProbs) {
    dv.setUint16(at, q, true);
    at += 2;
  }
  return out;
}

/** Reads a `_logits_` file; `name` is what errors call it. */
export function readLogitsFile(bytes: Uint8Array, name: string): LogitsFile {
  const fail = (offset: number, reason: string): never => {
    throw new FormatError(name, offset, reason);
  };
  if (bytes.length < 8) fail(bytes.length, `the file ends after ${bytes.length} bytes, before its 8-byte magic "${LOGITS_MAGIC}"`);
  const magic = String.fromCharCode(...bytes.subarray(0, 8));
  if (magic !== LOGITS_MAGIC) fail(0, `not a llama-perplexity log-probs file: magic ${JSON.stringify(magic)}, "${LOGITS_MAGIC}" expected`);
  if (bytes.length < HEADER_BYTES) fail(bytes.length, `the file ends after ${bytes.length} bytes, inside the header (n_ctx, n_vocab, n_chunk: ${HEADER_BYTES} bytes)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nCtx = dv.getUint32(8, true);
  const nVocab = dv.getInt32(12, true);
  const nChunk = dv.getInt32(16, true);
  if (nCtx < 4 || nCtx > 1 << 24) fail(8, `n_ctx ${nCtx} is not a context size (4 … 2^24)`);
  if (nVocab < 2 || nVocab > 1 << 24) fail(12, `n_vocab ${nVocab} is not a vocabulary size`);
  if (nChunk < 1) fail(16, `n_chunk ${nChunk}: at least one chunk expected`);
  const tokensEnd = HEADER_BYTES + 4 * nChunk * nCtx;
  if (bytes.length < tokensEnd) fail(bytes.length, `truncated: ${nChunk}·${nCtx} tokens end at byte ${tokensEnd}, the file has ${bytes.length} bytes`);
  const tokens = new Int32Array(nChunk * nCtx);
  for (let i = 0; i < tokens.length; i++) {
    const t = dv.getInt32(HEADER_BYTES + 4 * i, true);
    if (t < 0 || t >= nVocab) fail(HEADER_BYTES + 4 * i, `token ${i} is ${t}, outside the vocabulary of ${nVocab}`);
    tokens[i] = t;
  }
  const chunkBytes = 2 * scoredPerChunk(nCtx) * logProbRowLength(nVocab);
  const end = tokensEnd + nChunk * chunkBytes;
  if (bytes.length < end) {
    const chunk = Math.floor((bytes.length - tokensEnd) / chunkBytes);
    fail(bytes.length, `truncated: chunk ${chunk + 1} of ${nChunk}'s log-probs run from byte ${tokensEnd + chunk * chunkBytes} to ${tokensEnd + (chunk + 1) * chunkBytes}, the file has ${bytes.length} bytes`);
  }
  if (bytes.length > end) fail(end, `${bytes.length - end} bytes after the last chunk (n_ctx ${nCtx}, n_vocab ${nVocab}, n_chunk ${nChunk} end at byte ${end})`);
  const logProbs = new Uint16Array((end - tokensEnd) / 2);
  for (let i = 0; i < logProbs.length; i++) logProbs[i] = dv.getUint16(tokensEnd + 2 * i, true);
  return { nCtx, nVocab, nChunk, tokens, logProbs };
}

/**
 * Refuses a base file made for another model or text: its vocabulary against the model's,
 * its tokens against the text's tokens (the first n_chunk · n_ctx of them), naming the
 * offset of the first difference.
 */
export function checkLogitsBase(file: LogitsFile, name: string, nVocab: number, textTokens: readonly number[]): void {
  if (file.nVocab !== nVocab) throw new FormatError(name, 12, `n_vocab is ${file.nVocab}, the model has ${nVocab} tokens`);
  const n = file.tokens.length;
  for (let i = 0; i < Math.min(n, textTokens.length); i++) {
    if (file.tokens[i] !== textTokens[i]) {
      throw new FormatError(name, HEADER_BYTES + 4 * i, `token ${i} (chunk ${Math.floor(i / file.nCtx) + 1}, position ${i % file.nCtx}) is ${file.tokens[i]}, the text gives ${textTokens[i]}: the base was made from another text or tokenizer`);
    }
  }
  if (textTokens.length < n) throw new FormatError(name, HEADER_BYTES + 4 * textTokens.length, `the file holds ${n} tokens (${file.nChunk} chunks of ${file.nCtx}), the text only ${textTokens.length}`);
}
