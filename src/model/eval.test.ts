import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type ModelIndex } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS, fixture } from '../formats/testing.ts';
import { runLlamaCpp } from '../testing/llama-cpp-peer.ts';
import { llamaQuantize } from '../testing/llama-peer.ts';
import { evaluateModel, klDivergence, logSoftmax, median, modelTokenizer, percentile, type ModelEval } from './eval.ts';
import { EVAL_TEXT } from './eval-text.ts';
import { argmax, generateGreedy, llamaConfig, LlamaModel } from './llama.ts';
import { mapProvider, planForModel, quantizeWeights, readLlamaWeights } from './weights.ts';

const STORIES = join(FIXTURE_MODELS, 'stories260K.gguf');

describe('metric helpers', () => {
  it('log-softmax, KL, median and percentiles as llama.cpp computes them', () => {
    const lp = logSoftmax([1, 2, 3], 0, 3, new Float64Array(3));
    expect(lp.reduce((s, v) => s + Math.exp(v), 0)).toBeCloseTo(1, 15);
    expect(klDivergence(lp, lp)).toBe(0);
    const lq = logSoftmax([3, 2, 1], 0, 3, new Float64Array(3));
    expect(klDivergence(lp, lq)).toBeGreaterThan(0);
    expect(median([1, 2, 3, 10])).toBe(2.5);
    expect(median([1, 2, 10])).toBe(2);
    // perplexity.cpp: p = fraction * (n - 1), linear between neighbours.
    expect(percentile([0, 10, 20, 30, 40], 0.99)).toBeCloseTo(39.6, 12);
    expect(percentile([5], 0.99)).toBe(5);
  });
});

describe('evaluateModel on stories260K', () => {
  let model: ModelIndex;
  let result: ModelEval;
  beforeAll(async () => {
    model = await loadModel([await fixture('stories260K.gguf')]);
    result = await evaluateModel(model, { presets: ['F32', 'Q8_0', 'Q4_K_M', 'Q2_K'], greedyTokens: 24 });
    const row = (name: string, r: { bytes: number; bpw: number; ppl: number; klMean?: number; klMedian?: number; klP99?: number; top1Agree?: number }) =>
      `${name.padEnd(7)} ${String(r.bytes).padStart(8)} B ${r.bpw.toFixed(3).padStart(7)} bpw  ppl ${r.ppl.toFixed(4)}` +
      (r.klMean === undefined ? '' : `  KL mean ${r.klMean.toExponential(3)} median ${r.klMedian!.toExponential(3)} p99 ${r.klP99!.toExponential(3)}  top1 ${(100 * r.top1Agree!).toFixed(1)}%`);
    console.log(
      [`stories260K, built-in text: ${result.textTokens} tokens, ${result.positions} positions`, row('as is', result.f32), ...result.results.map((r) => row(r.preset, r))].join('\n'),
    );
  });

  it('tokenizes the built-in text as llama.cpp does (BOS first)', async () => {
    const tok = await modelTokenizer(model);
    const tokens = tok.encode(EVAL_TEXT);
    expect(tokens[0]).toBe(1);
    expect(result.textTokens).toBe(tokens.length);
    expect(result.positions).toBe(tokens.length - 1);
    expect(result.textTokens).toBeGreaterThanOrEqual(100);
    expect(result.textTokens).toBeLessThanOrEqual(250);
  });

  it('KL is exactly 0 for F32 against F32, with the same perplexity and full top-1 agreement', () => {
    const f32 = result.results[0];
    expect(f32.preset).toBe('F32');
    expect([f32.klMean, f32.klMedian, f32.klP99]).toEqual([0, 0, 0]);
    expect(f32.kl.every((v) => v === 0)).toBe(true);
    expect(f32.ppl).toBe(result.f32.ppl);
    expect(f32.top1Agree).toBe(1);
    expect(f32.bytes).toBe(result.f32.bytes);
    expect(f32.greedy.tokens).toEqual(result.f32.greedy.tokens);
  });

  it('KL grows as bits fall: Q8_0 < Q4_K_M < Q2_K (and perplexity, size and top-1 follow)', () => {
    const [, q8, q4, q2] = result.results;
    expect([q8.preset, q4.preset, q2.preset]).toEqual(['Q8_0', 'Q4_K_M', 'Q2_K']);
    expect(q8.klMean).toBeGreaterThan(0);
    expect(q8.klMean).toBeLessThan(q4.klMean);
    expect(q4.klMean).toBeLessThan(q2.klMean);
    expect(q8.klMedian).toBeLessThan(q4.klMedian);
    expect(q4.klMedian).toBeLessThan(q2.klMedian);
    expect(q8.klP99).toBeLessThan(q4.klP99);
    expect(q4.klP99).toBeLessThan(q2.klP99);
    expect(result.f32.ppl).toBeLessThan(q8.ppl);
    expect(q8.ppl).toBeLessThan(q4.ppl);
    expect(q4.ppl).toBeLessThan(q2.ppl);
    expect(q8.top1Agree).toBeGreaterThan(q2.top1Agree);
    expect(result.f32.bytes).toBeGreaterThan(q8.bytes);
    expect(q8.bytes).toBeGreaterThan(q4.bytes);
    expect(q4.bytes).toBeGreaterThan(q2.bytes);
  });

  it('greedy continuations: F32 continues the README story; every preset gets one', () => {
    expect(result.f32.greedy.text.startsWith(', there was a little girl named Lily.')).toBe(true);
    for (const r of result.results) expect(r.greedy.tokens).toHaveLength(24);
  });

  it('reports progress and stops when cancelled (checked between positions)', async () => {
    const seen: number[] = [];
    const controller = new AbortController();
    const run = evaluateModel(model, {
      presets: ['Q8_0'],
      onProgress: (p) => {
        seen.push(p.done);
        expect(p.done).toBeLessThanOrEqual(p.total);
        if (p.done === 20) controller.abort(new Error('stop'));
      },
      signal: controller.signal,
    });
    await expect(run).rejects.toThrow('stop');
    expect(seen.at(-1)).toBe(20);

    let last = { done: 0, total: -1 };
    await evaluateModel(model, { presets: ['Q8_0'], text: 'Once upon a time, there was a cat.', greedyTokens: 2, chunk: 4, onProgress: (p) => (last = p) });
    expect(last.done).toBe(last.total);
  });

  it('refuses an unknown preset and a text with nothing to score', async () => {
    await expect(evaluateModel(model, { presets: ['Q9_9'] })).rejects.toThrow(/unknown preset 'Q9_9'/);
    await expect(evaluateModel(model, { presets: ['Q8_0'], text: '' })).rejects.toThrow(/too short/);
  });

  it('safetensors + config.json + tok512.model give the same figures as the GGUF', async () => {
    const st = await loadModel(await Promise.all(['stories260K.f32.safetensors', 'stories260K.config.json', 'tok512.model'].map((f) => fixture(f))));
    const r = await evaluateModel(st, { presets: ['Q4_K_M'], greedyTokens: 8 });
    const g = result.results[2];
    expect(r.textTokens).toBe(result.textTokens);
    expect(r.results[0].bytes).toBe(g.bytes);
    expect(r.results[0].ppl).toBeCloseTo(g.ppl, 4);
    expect(r.results[0].klMean).toBeCloseTo(g.klMean, 4);
    expect(r.results[0].greedy.tokens).toEqual(g.greedy.tokens.slice(0, 8));
  });
});

describe("a preset's model agrees with llama.cpp running llama-quantize's file", () => {
  let dir: string;
  let model: ModelIndex;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'quantlab-eval-'));
    model = await loadModel([await fixture('stories260K.gguf')]);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const preset of ['Q8_0', 'Q4_K_M', 'Q2_K']) {
    it(`${preset}: same dequantized weights, same greedy text, same top-1 nearly everywhere`, async () => {
      const config = llamaConfig(model);
      const quantized = quantizeWeights(await readLlamaWeights(model, config), config, planForModel(model, config, { preset }));
      const ours = new LlamaModel(config, mapProvider(quantized.values));

      // llama-quantize's own file holds exactly the values our codecs give.
      const file = join(dir, `stories260K-${preset}.gguf`);
      llamaQuantize(STORIES, file, preset);
      const theirs = await loadModel([await fileSource(file)]);
      const theirWeights = await readLlamaWeights(theirs, llamaConfig(theirs));
      for (const [name, values] of theirWeights) expect(values, name).toEqual(quantized.values.get(name));

      const tok = await modelTokenizer(model);
      const prompt = tok.encode('Once upon a time');
      const text = tok.encode(EVAL_TEXT);
      const greedy = await generateGreedy(ours, prompt, 40);
      const peer = await runLlamaCpp({ model: file, greedy: [{ prompt, maxTokens: 40 }], logits: [text] });
      const logits = await ours.forward(text, ours.newCache(text.length), { logits: 'all' });
      let agree = 0;
      let maxDiff = 0;
      peer.logits[0].forEach((row, i) => {
        if (argmax(row) === argmax(logits, i * 512, 512)) agree++;
        row.forEach((v, j) => (maxDiff = Math.max(maxDiff, Math.abs(v - logits[i * 512 + j]))));
      });
      console.log(
        `${preset}: ours     ${JSON.stringify(tok.detokenize(greedy))}\n${preset}: llama.cpp ${JSON.stringify(peer.greedy[0].text)}\n` +
          `${preset}: teacher-forced top-1 equal at ${agree}/${text.length} positions; max |logit difference| ${maxDiff.toFixed(3)} ` +
          `(llama.cpp multiplies with q8-rounded activations; quantlab keeps them in f32)`,
      );
      if (preset !== 'Q2_K') expect(greedy).toEqual(peer.greedy[0].tokens);
      expect(agree / text.length).toBeGreaterThanOrEqual(0.98);
    });
  }
});
