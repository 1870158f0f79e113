import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { runInProcess } from './testing.ts';

const model = (name: string) => join(FIXTURE_MODELS, name);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quantlab-eval-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true });
});

describe('quantlab eval', () => {
  it('--json prints the docs/contracts.md shape (+ f32_ppl and greedy)', async () => {
    const { code, stdout, stderr } = await runInProcess(['eval', model('stories260K.gguf'), '--presets', 'Q8_0,q4_k,Q2_K', '--json', '--tokens', '8']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const json = JSON.parse(stdout);
    expect(Object.keys(json)).toEqual(['model', 'text_tokens', 'results', 'f32_ppl', 'greedy', 'activations']);
    expect(json.activations).toBe('f32');
    expect(json.model).toBe('stories260K.gguf');
    expect(json.text_tokens).toBe(216);
    expect(json.results.map((r: { preset: string }) => r.preset)).toEqual(['Q8_0', 'Q4_K_M', 'Q2_K']);
    for (const r of json.results) {
      expect(Object.keys(r)).toEqual(['preset', 'bytes', 'bpw', 'ppl', 'kl_mean', 'kl_median', 'kl_p99', 'top1_agree']);
      expect(r.ppl).toBeGreaterThan(json.f32_ppl);
      expect(r.top1_agree).toBeGreaterThan(0.8);
    }
    const kl = json.results.map((r: { kl_mean: number }) => r.kl_mean);
    expect(kl[0]).toBeLessThan(kl[1]);
    expect(kl[1]).toBeLessThan(kl[2]);
    expect(json.greedy.prompt).toBe('Once upon a time');
    expect(json.greedy.F32).toBe(', there was a little girl');
  });

  it('prints a table and the greedy continuations, on a text from --text', async () => {
    const text = join(dir, 'story.txt');
    await writeFile(text, 'Lily saw a big red ball in the park. She was happy.');
    const { code, stdout } = await runInProcess(['eval', model('stories260K.gguf'), '--presets', 'F32,Q8_0', '--text', text, '--tokens', '4']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/preset\s+bytes\s+bpw\s+ppl\s+kl_mean\s+kl_median\s+kl_p99\s+top1_agree/);
    expect(stdout).toMatch(/^F32 .* 0\.000e\+0 .* 100\.0%$/m);
    expect(stdout).toMatch(/^Q8_0 /m);
    expect(stdout).toMatch(/greedy continuation of "Once upon a time":/);
  });

  it('runs safetensors with config.json and tokenizer.model', async () => {
    const { code, stdout } = await runInProcess([
      'eval', model('stories260K.f32.safetensors'), model('stories260K.config.json'), model('tok512.model'), '--presets', 'Q8_0', '--json', '--tokens', '4',
    ]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout).text_tokens).toBe(216);
  });

  it('--activations ggml: the JSON names the mode; Q8_0 KL differs from f32 mode (llama.cpp rounds Q8_0 inputs to q8_0)', async () => {
    const run = async (extra: string[]) => JSON.parse((await runInProcess(['eval', model('stories260K.gguf'), '--presets', 'Q8_0', '--json', '--tokens', '0', ...extra])).stdout);
    const [ggml, f32] = [await run(['--activations', 'ggml']), await run([])];
    expect(ggml.activations).toBe('ggml');
    expect(f32.activations).toBe('f32');
    expect(ggml.results[0].kl_mean).toBeGreaterThan(1.5 * f32.results[0].kl_mean);
    const text = await runInProcess(['eval', model('stories260K.gguf'), '--presets', 'F32', '--tokens', '0', '--activations', 'int8']);
    expect(text.stdout).toMatch(/^activations: int8 /m);
    const bad = await runInProcess(['eval', model('stories260K.gguf'), '--presets', 'Q8_0', '--activations', 'int9']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/unknown --activations mode 'int9'.*one of f32 ggml int8 int8-static fp8_e4m3 llm\.int8/);
  });

  it('fails with one line on bad input', async () => {
    for (const args of [
      ['eval', model('stories260K.gguf')],
      ['eval', model('stories260K.gguf'), '--presets', 'Q9_9'],
      ['eval', '--presets', 'Q8_0'],
      ['eval', model('stories260K.gguf'), '--presets', 'Q8_0', '--text', join(dir, 'missing.txt')],
      ['eval', model('stories260K.f32.safetensors'), model('stories260K.config.json'), '--presets', 'Q8_0'],
      ['eval', model('mnist-mlp-dfdx.safetensors'), '--presets', 'Q8_0'],
    ]) {
      const { code, stdout, stderr } = await runInProcess(args);
      expect(code, args.join(' ')).toBe(1);
      expect(stdout).toBe('');
      expect(stderr.trim().split('\n'), stderr).toHaveLength(1);
    }
    expect((await runInProcess(['eval', model('stories260K.gguf'), '--presets', 'Q9_9'])).stderr).toMatch(/unknown preset 'Q9_9'/);
    expect((await runInProcess(['eval', model('stories260K.f32.safetensors'), model('stories260K.config.json'), '--presets', 'Q8_0'])).stderr).toMatch(/tokenizer.model/);
  });
});
