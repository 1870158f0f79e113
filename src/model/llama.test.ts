import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type ModelIndex } from '../formats/model.ts';
import { FIXTURE_MODELS, fixture } from '../formats/testing.ts';
import { runLlamaCpp } from '../testing/llama-cpp-peer.ts';
import { argmax, generateGreedy, llamaConfig, LlamaModel, matmulF32, type Linear } from './llama.ts';
import { EVAL_TEXT } from './eval-text.ts';
import { SpmTokenizer, spmVocabFromGguf, spmVocabFromModelProto } from './tokenizer.ts';
import { mapProvider, readLlamaWeights } from './weights.ts';

/** The fixture README: greedy decoding of stories260K from BOS. */
const README_TEXT = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.';
/** Its tokens, and as many more as llama.cpp gives (node-llama-cpp, greedy from BOS, 60 tokens). */
const GREEDY_60 = [
  403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282,
  295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267,
  414, 270, 333, 415,
];

async function open(...names: string[]): Promise<ModelIndex> {
  return loadModel(await Promise.all(names.map((n) => fixture(n))));
}

async function f32Model(model: ModelIndex, linear?: (w: (n: string) => Float32Array) => Linear): Promise<LlamaModel> {
  const config = llamaConfig(model);
  const provider = mapProvider(await readLlamaWeights(model, config));
  return new LlamaModel(config, provider, linear?.(provider));
}

describe('matmulF32', () => {
  it("equals one f64 dot product per row and token, in column order, bit for bit, for every tile remainder (rows 1-5, tokens 1-9)", () => {
    let seed = 7;
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
    for (const cols of [1, 7, 64]) {
      for (let rows = 1; rows <= 5; rows++) {
        for (let n = 1; n <= 9; n++) {
          const w = Float32Array.from({ length: rows * cols }, random);
          const x = Float32Array.from({ length: n * cols }, () => random() * 1e3);
          const want = new Float32Array(n * rows);
          for (let t = 0; t < n; t++) {
            for (let r = 0; r < rows; r++) {
              let s = 0;
              for (let c = 0; c < cols; c++) s += w[r * cols + c] * x[t * cols + c];
              want[t * rows + r] = s;
            }
          }
          expect(Array.from(matmulF32(w, rows, cols, x, n)), `${rows} x ${cols}, ${n} tokens`).toEqual(Array.from(want));
        }
      }
    }
  });
});

describe('llamaConfig', () => {
  it('reads stories260K from GGUF metadata and from config.json alike', async () => {
    const gguf = llamaConfig(await open('stories260K.gguf'));
    const hf = llamaConfig(await open('stories260K.f32.safetensors', 'stories260K.config.json'));
    const shape = (c: typeof gguf) => [c.nLayer, c.nEmbd, c.nFf, c.nHead, c.nHeadKv, c.headDim, c.nVocab, c.nRot, c.ropeFreqBase, c.tiedOutput];
    expect(shape(gguf)).toEqual([5, 64, 172, 8, 4, 8, 512, 8, 10000, false]);
    expect(shape(hf)).toEqual(shape(gguf));
    expect(Math.fround(gguf.rmsEps)).toBe(Math.fround(1e-5));
    expect(Math.fround(hf.rmsEps)).toBe(Math.fround(1e-5));
    expect([gguf.ropeStyle, hf.ropeStyle]).toEqual(['norm', 'neox']);
    expect(hf.ggufNames.get('blk.3.ffn_down.weight')).toBe('model.layers.3.mlp.down_proj.weight');
    expect(hf.ggufNames.get('output.weight')).toBe('lm_head.weight');
    expect(hf.ggufNames.size).toBe(48);
  });

  it('says what is missing or unsupported', async () => {
    await expect(async () => llamaConfig(await open('stories260K.f32.safetensors'))).rejects.toThrow(/config.json is needed/);
    await expect(async () => llamaConfig(await open('mnist-mlp-dfdx.safetensors'))).rejects.toThrow(/config.json/);
    const m = await open('stories260K.gguf');
    expect(() => llamaConfig({ ...m, metadata: { ...m.metadata, 'general.architecture': 'falcon' } })).toThrow(/"falcon": no forward pass .*supported: llama, qwen2, qwen3, gemma3, gemma2, phi3/);
    expect(() => llamaConfig({ ...m, metadata: { ...m.metadata, 'general.architecture': 'qwen2' } })).toThrow(/GGUF metadata qwen2.block_count is missing/);
    expect(() => llamaConfig({ ...m, metadata: { ...m.metadata, 'llama.attention.head_count_kv': 3 } })).toThrow(/8 heads do not share 3 KV heads/);
    expect(() => llamaConfig({ ...m, metadata: { ...m.metadata, 'llama.attention.value_length': 16 } })).toThrow(/value_length \(16\) differs from llama.attention.key_length \(8\)/);
    expect(() => llamaConfig({ ...m, metadata: { ...m.metadata, 'llama.embedding_length': 96 } })).toThrow(/token_embd.weight' has shape \[512, 64\], expected \[n_vocab, 96\]/);
    expect(() => llamaConfig({ ...m, metadata: { ...m.metadata, 'llama.rope.scaling.type': 'yarn' } })).toThrow(/yarn/);
    expect(() => llamaConfig({ ...m, tensors: m.tensors.filter((t) => t.name !== 'blk.2.ffn_up.weight') })).toThrow(/blk.2.ffn_up.weight/);
  });
});

describe('F32 CPU forward of stories260K', () => {
  let tok: SpmTokenizer;
  beforeAll(async () => {
    tok = new SpmTokenizer(spmVocabFromGguf((await open('stories260K.gguf')).metadata));
  });

  it('GGUF: greedy from BOS reproduces the fixture README text, token for token', async () => {
    const model = await f32Model(await open('stories260K.gguf'));
    const tokens = await generateGreedy(model, [1], 60);
    const text = tok.detokenize(tokens);
    expect(text.startsWith(README_TEXT)).toBe(true);
    expect(tokens).toEqual(GREEDY_60);
  });

  it('safetensors + config.json (HF q/k order, NeoX pairs): the same tokens, decoded by tok512.model', async () => {
    const model = await f32Model(await open('stories260K.f32.safetensors', 'stories260K.config.json'));
    const tokens = await generateGreedy(model, [1], 60);
    expect(tokens).toEqual(GREEDY_60);
    const tok512 = new SpmTokenizer(spmVocabFromModelProto(readFileSync(join(FIXTURE_MODELS, 'tok512.model'))));
    expect(tok512.detokenize(tokens).startsWith(README_TEXT)).toBe(true);
  });

  it('sharded safetensors and the BF16 copy tell the same story', async () => {
    const sharded = await f32Model(
      await loadModel(
        await Promise.all(
          ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json'].map((f) => fixture(`stories260K-sharded/${f}`)),
        ).then(async (files) => [...files, await fixture('stories260K.config.json')]),
      ),
    );
    expect(await generateGreedy(sharded, [1], 60)).toEqual(GREEDY_60);
    const bf16 = await f32Model(await open('stories260K.bf16.safetensors', 'stories260K.config.json'));
    expect(tok.detokenize(await generateGreedy(bf16, [1], 30)).startsWith(README_TEXT.slice(0, 60))).toBe(true);
  });

  it('GGUF (norm rope on permuted q/k) and safetensors (neox rope) give the same logits', async () => {
    const a = await f32Model(await open('stories260K.gguf'));
    const b = await f32Model(await open('stories260K.f32.safetensors', 'stories260K.config.json'));
    const tokens = [1, ...GREEDY_60.slice(0, 40)];
    const la = await a.forward(tokens, a.newCache(64), { logits: 'all' });
    const lb = await b.forward(tokens, b.newCache(64), { logits: 'all' });
    let max = 0;
    for (let i = 0; i < la.length; i++) max = Math.max(max, Math.abs(la[i] - lb[i]));
    expect(max).toBeLessThan(1e-4);
  });

  it('a batch forward equals position-by-position forwards over the KV cache', async () => {
    const model = await f32Model(await open('stories260K.gguf'));
    const tokens = [1, ...GREEDY_60.slice(0, 20)];
    const all = await model.forward(tokens, model.newCache(32), { logits: 'all' });
    const cache = model.newCache(32);
    for (let i = 0; i < tokens.length; i++) {
      const one = await model.forward([tokens[i]], cache);
      expect(Array.from(one)).toEqual(Array.from(all.subarray(i * 512, (i + 1) * 512)));
    }
    expect(cache.length).toBe(tokens.length);
    await expect(model.forward([1], model.newCache(0))).rejects.toThrow(/exceed/);
    await expect(model.forward([512], model.newCache(4))).rejects.toThrow(/outside the vocabulary/);
  });

  it('every matrix product goes through the Linear hook (the GPU seam)', async () => {
    const calls = new Map<string, number>();
    const model = await f32Model(await open('stories260K.gguf'), (w) => async (name, x, n, rows, cols) => {
      calls.set(name, (calls.get(name) ?? 0) + 1);
      return matmulF32(w(name), rows, cols, x, n); // async, as a GPU readback would be
    });
    expect(await generateGreedy(model, [1], 10)).toEqual(GREEDY_60.slice(0, 10));
    expect(calls.size).toBe(5 * 7 + 1);
    expect(calls.get('output.weight')).toBe(10);
    expect(calls.has('token_embd.weight')).toBe(false); // embedding rows are read, not multiplied
  });

  it("matches llama.cpp's logits (node-llama-cpp, f32 KV cache) within 1e-4", async () => {
    const gguf = await open('stories260K.gguf');
    const model = await f32Model(gguf);
    const tokens = new SpmTokenizer(spmVocabFromGguf(gguf.metadata)).encode(EVAL_TEXT);
    const ours = await model.forward(tokens, model.newCache(tokens.length), { logits: 'all' });
    const peer = await runLlamaCpp({ model: join(FIXTURE_MODELS, 'stories260K.gguf'), logits: [tokens] });
    let max = 0;
    peer.logits[0].forEach((row, i) => {
      expect(row).toHaveLength(512);
      expect(argmax(row)).toBe(argmax(ours, i * 512, 512));
      row.forEach((v, j) => (max = Math.max(max, Math.abs(v - ours[i * 512 + j]))));
    });
    console.log(`stories260K F32: max |logit - llama.cpp's| over ${tokens.length} positions = ${max.toExponential(2)}`);
    expect(max).toBeLessThan(1e-4);
  });
});
