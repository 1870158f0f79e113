// forwardModel: a safetensors checkpoint of a family the forward pass cannot read directly
// runs as its GGUF conversion (what an export writes, what llama.cpp runs).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { convertHf } from '../convert/hf.ts';
import { writeSourceGguf } from '../convert/source-model.ts';
import { collectBytes } from '../formats/bytes.ts';
import { loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { HF_CASES, writeHfCheckpoint } from '../testing/hf-checkpoint.ts';
import { forwardModel } from './converted.ts';
import { evaluateModel } from './eval.ts';
import { hfTokenizerToGguf } from './tokenizer-hf.ts';

const dir = mkdtempSync(join(tmpdir(), 'quantlab-converted-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('forwardModel', () => {
  it('a Gemma 2 safetensors checkpoint evaluates exactly as its F32 GGUF conversion', async () => {
    const c = HF_CASES.find((x) => x.family === 'gemma2')!;
    const { files } = writeHfCheckpoint(join(dir, 'gemma2'), c);
    const checkpoint = await loadModel(await Promise.all(files.map((f) => fileSource(f))));
    const view = await forwardModel(checkpoint);
    expect(view.format).toBe('gguf');
    expect(view.metadata['general.architecture']).toBe('gemma2');
    const gguf = join(dir, 'gemma2.gguf');
    writeFileSync(gguf, await collectBytes(writeSourceGguf(await convertHf(checkpoint, { outtype: 'f32', hfTokenizer: hfTokenizerToGguf }))));
    const options = { presets: ['F32', 'Q8_0'], text: 'Once upon a time there was a cat.', prompt: 'Once', greedyTokens: 4 };
    const fromCheckpoint = await evaluateModel(checkpoint, options);
    const fromGguf = await evaluateModel(await loadModel([await fileSource(gguf)]), options);
    expect(fromCheckpoint.model).toMatch(/model\.safetensors$/);
    expect(fromCheckpoint.f32.ppl).toBe(fromGguf.f32.ppl);
    expect(fromCheckpoint.results.map((r) => r.ppl)).toEqual(fromGguf.results.map((r) => r.ppl));
    expect(fromCheckpoint.f32.greedy.tokens).toEqual(fromGguf.f32.greedy.tokens);
  }, 120_000);

  it('a plain Llama checkpoint is read as it is; a broken one says why', async () => {
    const mistral = HF_CASES.find((x) => x.family === 'mistral')!;
    const { files } = writeHfCheckpoint(join(dir, 'mistral'), { ...mistral, config: { architectures: ['LlamaForCausalLM'], model_type: 'llama' } });
    const checkpoint = await loadModel(await Promise.all(files.map((f) => fileSource(f))));
    expect(await forwardModel(checkpoint)).toBe(checkpoint);
    const gemma = HF_CASES.find((x) => x.family === 'gemma2')!;
    const bad = writeHfCheckpoint(join(dir, 'bad'), { ...gemma, config: { sliding_window: 'six' } });
    const broken = await loadModel(await Promise.all(bad.files.map((f) => fileSource(f))));
    await expect(forwardModel(broken)).rejects.toThrow(/config\.json.*"sliding_window" is "six", not a number/);
  }, 120_000);
});
