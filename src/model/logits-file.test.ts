import { describe, expect, it } from 'vitest';
import { FormatError } from '../formats/errors.ts';
import { compressLogProbs, logProbRowLength } from './kl-report.ts';
import { checkLogitsBase, readLogitsFile, scoredPerChunk, writeLogitsFile, type LogitsFile } from './logits-file.ts';
import { rng } from '../testing/random.ts';

const N_CTX = 10;
const N_VOCAB = 7; // odd: each row carries one padding entry
const N_CHUNK = 2;

function sample(seed: number) {
  const r = rng(seed);
  const tokens = Array.from({ length: N_CHUNK * N_CTX }, () => Math.floor(r() * N_VOCAB));
  // One logits vector per scored position, in file order (chunk, then position n_ctx/2 … n_ctx − 2).
  const logits = Array.from({ length: N_CHUNK * scoredPerChunk(N_CTX) }, () => Array.from({ length: N_VOCAB }, () => Math.fround(6 * r() - 3)));
  logits[3][2] = -40; // below max − 16: stored as 0
  logits[4] = logits[4].map(() => 1.5); // flat: scale 0
  return { tokens, logits };
}

function quantlabFile({ tokens, logits }: ReturnType<typeof sample>): LogitsFile {
  const nv = logProbRowLength(N_VOCAB);
  const logProbs = new Uint16Array(logits.length * nv);
  const first = N_CTX / 2;
  logits.forEach((l, k) => {
    const chunk = Math.floor(k / scoredPerChunk(N_CTX));
    const j = first + (k % scoredPerChunk(N_CTX));
    compressLogProbs(l, 0, N_VOCAB, tokens[chunk * N_CTX + j + 1], logProbs, k * nv);
  });
  return { nCtx: N_CTX, nVocab: N_VOCAB, nChunk: N_CHUNK, tokens: Int32Array.from(tokens), logProbs };
}

/**
 * The test's own writer, field by field as perplexity.cpp's perplexity() writes with
 * --kl-divergence-base: "_logits_", int32 n_ctx, n_vocab, n_chunk, the tokens, then per
 * scored position log_softmax's row: f32 scale = (max − min)/65535 with min ≥ max − 16,
 * f32 min_log_prob = min − max − log Σexp(l − max), uint16 nearest_int((l − min)/scale) for
 * l > min else 0, zero padding to an even count. f32 arithmetic via a Float32Array cell.
 */
function referenceWriter({ tokens, logits }: ReturnType<typeof sample>): Uint8Array {
  const parts: Buffer[] = [Buffer.from('_logits_', 'latin1')];
  const i32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    return b;
  };
  parts.push(i32(N_CTX), i32(N_VOCAB), i32(N_CHUNK));
  for (const t of tokens) parts.push(i32(t));
  const c = new Float32Array(1);
  const r32 = (v: number) => ((c[0] = v), c[0]);
  for (const l of logits) {
    const max = l.reduce((a, b) => (b > a ? b : a));
    const min = Math.max(l.reduce((a, b) => (b < a ? b : a)), r32(max - 16));
    let sum = 0;
    for (const v of l) sum += r32(Math.exp(r32(v - max)));
    const lse = r32(Math.log(sum));
    const scale = r32(r32(max - min) / 65535);
    const head = Buffer.alloc(8);
    head.writeFloatLE(scale, 0);
    head.writeFloatLE(r32(r32(min - max) - lse), 4);
    parts.push(head);
    const q = Buffer.alloc(2 * (N_VOCAB + 1)); // the padding entry stays 0
    if (scale !== 0) {
      const inv = r32(1 / scale);
      l.forEach((v, i) => {
        if (v <= min) return;
        const x = r32(inv * r32(v - min));
        const fl = Math.floor(x);
        const n = x - fl > 0.5 || (x - fl === 0.5 && fl % 2 === 1) ? fl + 1 : fl; // half to even
        q.writeUInt16LE(n & 0xffff, 2 * i);
      });
    }
    parts.push(q);
  }
  return new Uint8Array(Buffer.concat(parts));
}

describe('llama-perplexity _logits_ file', () => {
  const data = sample(5);
  const file = quantlabFile(data);
  const bytes = writeLogitsFile(file);

  it('has perplexity.cpp\'s size: 20 + 4·n_chunk·n_ctx + 2·n_chunk·(n_ctx − 1 − n_ctx/2)·(2⌈n_vocab/2⌉ + 4)', () => {
    expect(bytes.length).toBe(20 + 4 * 2 * 10 + 2 * 2 * 4 * 12);
  });

  it('reads back what quantlab writes, identically', () => {
    const back = readLogitsFile(bytes, 'base.kld');
    expect(back.nCtx).toBe(N_CTX);
    expect(back.nVocab).toBe(N_VOCAB);
    expect(back.nChunk).toBe(N_CHUNK);
    expect(Array.from(back.tokens)).toEqual(Array.from(file.tokens));
    expect(Array.from(back.logProbs)).toEqual(Array.from(file.logProbs));
    expect(writeLogitsFile(back)).toEqual(bytes);
  });

  it('equals, byte for byte, an independent writer following perplexity.cpp\'s field order, and the reader accepts that writer\'s file', () => {
    const reference = referenceWriter(data);
    expect(bytes).toEqual(reference);
    expect(() => readLogitsFile(reference, 'ref.kld')).not.toThrow();
  });

  it('refuses a truncated file, naming the offset and the chunk', () => {
    const cut = bytes.subarray(0, bytes.length - 5);
    expect(() => readLogitsFile(cut, 'base.kld')).toThrow(FormatError);
    expect(() => readLogitsFile(cut, 'base.kld')).toThrow(`base.kld: at byte ${cut.length}: truncated: chunk 2 of 2's log-probs`);
    expect(() => readLogitsFile(bytes.subarray(0, 30), 'base.kld')).toThrow('at byte 30: truncated: 2·10 tokens end at byte 100');
    expect(() => readLogitsFile(bytes.subarray(0, 14), 'base.kld')).toThrow('at byte 14: the file ends after 14 bytes, inside the header');
    const bad = bytes.slice();
    bad[1] = 0x4c;
    expect(() => readLogitsFile(bad, 'base.kld')).toThrow('base.kld: at byte 0: not a llama-perplexity log-probs file');
    const extra = new Uint8Array(bytes.length + 3);
    extra.set(bytes);
    expect(() => readLogitsFile(extra, 'base.kld')).toThrow(`at byte ${bytes.length}: 3 bytes after the last chunk`);
  });

  it('refuses another vocabulary size and other tokens than the text\'s', () => {
    expect(() => checkLogitsBase(file, 'base.kld', 512, data.tokens)).toThrow('base.kld: at byte 12: n_vocab is 7, the model has 512 tokens');
    const other = [...data.tokens];
    other[13] = (other[13] + 1) % N_VOCAB;
    expect(() => checkLogitsBase(file, 'base.kld', N_VOCAB, other)).toThrow(`base.kld: at byte ${20 + 4 * 13}: token 13 (chunk 2, position 3) is ${data.tokens[13]}, the text gives ${other[13]}`);
    expect(() => checkLogitsBase(file, 'base.kld', N_VOCAB, data.tokens.slice(0, 15))).toThrow('at byte 80: the file holds 20 tokens (2 chunks of 10), the text only 15');
    expect(() => checkLogitsBase(file, 'base.kld', N_VOCAB, [...data.tokens, 1, 2])).not.toThrow(); // text longer than the chunks: fine
  });
});
