// evaluateModel with perplexity.cpp's chunking (--ctx) and a `_logits_` base: the F32 pass
// saved as a base file, read back, and a base made from llama.cpp's own F32 logits.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type ModelIndex } from '../formats/model.ts';
import { FormatError } from '../formats/errors.ts';
import { FIXTURE_MODELS, fixture } from '../formats/testing.ts';
import { runLlamaCpp } from '../testing/llama-cpp-peer.ts';
import { CALIBRATION_STORY_TEXT } from '../calibrate/calibration-text.ts';
import { evaluateModel, modelTokenizer, perplexityChunks, type ModelEval } from './eval.ts';
import { compressLogProbs, logProbRowLength } from './kl-report.ts';
import { readLogitsFile, scoredPerChunk, writeLogitsFile, type LogitsFile } from './logits-file.ts';

const N_CTX = 128;
const TEXT = CALIBRATION_STORY_TEXT;

describe('eval --ctx and --kl-divergence-base on stories260K', () => {
  let model: ModelIndex;
  let tokens: number[];
  let chunked: ModelEval;
  let saved: Uint8Array;
  beforeAll(async () => {
    model = await loadModel([await fixture('stories260K.gguf')]);
    tokens = (await modelTokenizer(model)).encode(TEXT);
    chunked = await evaluateModel(model, { presets: ['F32', 'Q4_K_M'], text: TEXT, ctx: N_CTX, saveLogits: true, greedyTokens: 0, chunk: N_CTX });
    saved = writeLogitsFile(chunked.logitsFile!);
  }, 120_000);

  it('chunks as perplexity.cpp: floor(tokens/n_ctx) windows, BOS first, the second half less the last scored', () => {
    const nChunk = Math.floor(tokens.length / N_CTX);
    expect(chunked.chunking).toEqual({ nCtx: N_CTX, nChunk, base: 'F32 pass' });
    expect(chunked.positions).toBe(nChunk * (N_CTX - 1 - N_CTX / 2));
    const w = perplexityChunks(tokens, N_CTX, 1);
    expect(w[1][0]).toBe(1);
    expect(w[1].slice(1)).toEqual(tokens.slice(N_CTX + 1, 2 * N_CTX));
    const r = chunked.results[1].report!;
    expect(r.count).toBe(chunked.positions);
    expect(r.chunks).toHaveLength(nChunk);
    expect(chunked.results[1].klMean).toBe(r.kldMean.value);
    expect(chunked.results[1].top1Agree).toBe(r.sameTop.value);
  });

  it('F32 against its own compressed log-probs: KLD at the uint16 step only, same top 100%, PPL(Q) = PPL(base)', () => {
    const r = chunked.results[0].report!;
    expect(Math.abs(r.kldMean.value)).toBeLessThan(1e-6);
    expect(r.sameTop.value).toBe(1);
    expect(Math.abs(r.pplRatio.value - 1)).toBeLessThan(1e-4);
    // PPL(base) from the rows, PPL(Q) from the logits: the same perplexity.
    expect(Math.abs(r.pplQ.value / chunked.f32.ppl - 1)).toBeLessThan(1e-6);
    const q = chunked.results[1].report!;
    expect(q.kldMean.value).toBeGreaterThan(1e-3);
    expect(q.pplBase.value).toBeCloseTo(r.pplBase.value, 10);
  });

  it('the saved base: perplexity.cpp\'s layout, read back identically, and a run against it gives the same report', async () => {
    const file = readLogitsFile(saved, 'stories.kld');
    expect(saved.length).toBe(20 + 4 * file.nChunk * N_CTX + 2 * chunked.positions * logProbRowLength(512));
    expect(Array.from(file.tokens)).toEqual(tokens.slice(0, file.nChunk * N_CTX));
    expect(file.tokens[0]).toBe(1);
    const again = await evaluateModel(model, { presets: ['Q4_K_M'], text: TEXT, klBase: { file, name: 'stories.kld' }, greedyTokens: 0, chunk: N_CTX });
    expect(again.chunking!.base).toBe('stories.kld');
    expect(again.results[0].report).toEqual(chunked.results[1].report);
  });

  it('without --ctx: figures as before, and the report over the whole text from the same per-position values', async () => {
    const whole = await evaluateModel(model, { presets: ['Q4_K_M'], greedyTokens: 0, chunk: 64 });
    const p = whole.results[0];
    const r = p.report!;
    expect(whole.chunking).toBeUndefined();
    expect(r.count).toBe(whole.positions);
    expect(r.kldMean.value).toBeCloseTo(p.klMean, 15);
    expect(r.sameTop.value).toBe(p.top1Agree);
    expect(r.pplQ.value).toBeCloseTo(p.ppl, 10);
    expect(r.pplBase.value).toBeCloseTo(whole.f32.ppl, 10);
    expect(r.kldHistogram.reduce((s, b) => s + b.count, 0)).toBe(whole.positions);
  });

  it('refuses a base made from another text, naming the file and the offset', async () => {
    const file = readLogitsFile(saved, 'stories.kld');
    const err = await evaluateModel(model, { presets: ['F32'], text: `Tom ${TEXT}`, klBase: { file, name: 'stories.kld' }, greedyTokens: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).message).toMatch(/^stories\.kld: at byte 24: token 1 \(chunk 1, position 1\) is \d+, the text gives \d+/);
    await expect(evaluateModel(model, { presets: ['F32'], ctx: 512, greedyTokens: 0 })).rejects.toThrow(/tokenizes to \d+ tokens; a context of 512 needs at least 1024/);
  });

  it('against a base from llama.cpp\'s own F32 logits (same windows, BOS first): F32 agrees to f32 rounding, Q4_K_M\'s report as against our base', async () => {
    const windows = perplexityChunks(tokens, N_CTX, 1);
    const theirs = (await runLlamaCpp({ model: join(FIXTURE_MODELS, 'stories260K.gguf'), logits: windows, contextSize: N_CTX })).logits;
    const V = 512;
    const nv = logProbRowLength(V);
    const per = scoredPerChunk(N_CTX);
    const logProbs = new Uint16Array(windows.length * per * nv);
    windows.forEach((w, c) => {
      for (let j = N_CTX / 2; j < N_CTX - 1; j++) compressLogProbs(theirs[c][j], 0, V, w[j + 1], logProbs, (c * per + j - N_CTX / 2) * nv);
    });
    const base: LogitsFile = { nCtx: N_CTX, nVocab: V, nChunk: windows.length, tokens: Int32Array.from(tokens.slice(0, windows.length * N_CTX)), logProbs };
    const bytes = writeLogitsFile(base);
    const r = await evaluateModel(model, { presets: ['F32', 'Q4_K_M'], text: TEXT, klBase: { file: readLogitsFile(bytes, 'llama.kld'), name: 'llama.kld' }, greedyTokens: 0, chunk: N_CTX });
    const f32 = r.results[0].report!;
    const q4 = r.results[1].report!;
    const ours = chunked.results[1].report!;
    console.log(
      `stories260K, ${r.positions} positions (n_ctx ${N_CTX}, ${r.chunking!.nChunk} chunks): F32 vs llama.cpp F32 base: KLD ${f32.kldMean.value.toExponential(3)}, same top ${(100 * f32.sameTop.value).toFixed(2)}%; ` +
        `Q4_K_M vs llama.cpp base: KLD ${q4.kldMean.value.toExponential(4)}, PPL ${q4.pplQ.value.toFixed(4)} / ${q4.pplBase.value.toFixed(4)}; vs our base: KLD ${ours.kldMean.value.toExponential(4)}`,
    );
    expect(Math.abs(f32.kldMean.value)).toBeLessThan(1e-5);
    expect(f32.sameTop.value).toBeGreaterThan(0.995);
    expect(Math.abs(q4.kldMean.value / ours.kldMean.value - 1)).toBeLessThan(0.02);
    expect(Math.abs(q4.pplBase.value / ours.pplBase.value - 1)).toBeLessThan(1e-3);
  }, 120_000);
});
