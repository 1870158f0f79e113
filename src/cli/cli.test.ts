import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { runInProcess } from './testing.ts';

const ROOT = join(import.meta.dirname, '../..');
const run = promisify(execFile);
const model = (name: string) => join(FIXTURE_MODELS, name);

/** Runs the real launcher; resolves with the exit code and output, never rejects. */
async function quantlab(args: string[], command = ['node', join(ROOT, 'bin/quantlab.js')]) {
  try {
    const { stdout, stderr } = await run(command[0], [...command.slice(1), ...args], { cwd: ROOT, maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quantlab-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true });
});

describe('npx quantlab inspect', () => {
  it('runs through npx from the repository (no build step) and prints the docs/contracts.md JSON', async () => {
    const { code, stdout } = await quantlab(['inspect', model('stories260K.gguf'), '--json'], ['npx', '--no-install', 'quantlab']);
    expect(code).toBe(0);
    const json = JSON.parse(stdout);
    expect(Object.keys(json)).toEqual(['format', 'version', 'metadata', 'tensors']);
    expect(json).toMatchObject({ format: 'gguf', version: 3 });
    expect(json.metadata['llama.embedding_length']).toBe(64);
    expect(json.metadata['tokenizer.ggml.tokens']).toHaveLength(512); // arrays are kept whole
    expect(json.metadata['tokenizer.ggml.padding_token_id']).toBe(4294967295);
    expect(json.tensors).toHaveLength(48);
    expect(json.tensors[0]).toEqual({ name: 'token_embd.weight', dtype: 'f32', shape: [512, 64], file: 'stories260K.gguf', offset: 14176, nbytes: 131072 });
  });

  it('the F16 GGUF with its 32000-token vocabulary', async () => {
    const { code, stdout } = await quantlab(['inspect', '--json', model('llama-2-tiny-random.gguf')]);
    expect(code).toBe(0);
    const json = JSON.parse(stdout);
    expect(json.tensors.filter((t: { dtype: string }) => t.dtype === 'f16')).toHaveLength(9);
    expect(json.metadata['tokenizer.ggml.tokens']).toHaveLength(32000);
    expect(json.metadata['tokenizer.ggml.scores']).toHaveLength(32000);
  });

  it('every safetensors fixture, the shards with their side files', async () => {
    for (const files of [
      ['mnist-mlp-dfdx.safetensors'],
      ['stories260K.f32.safetensors', 'stories260K.config.json', 'tok512.model'],
      ['stories260K.bf16.safetensors'],
      ['stories260K-sharded/model-00001-of-00002.safetensors', 'stories260K-sharded/model-00002-of-00002.safetensors', 'stories260K-sharded/model.safetensors.index.json', 'stories260K.config.json'],
    ]) {
      const { code, stdout, stderr } = await runInProcess(['inspect', ...files.map(model), '--json']);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      const json = JSON.parse(stdout);
      expect(json.format).toBe('safetensors');
      expect(json.version).toBeNull();
      expect(json.tensors.length).toBeGreaterThan(0);
      for (const t of json.tensors) expect(Object.keys(t)).toEqual(['name', 'dtype', 'shape', 'file', 'offset', 'nbytes']);
    }
  });

  it('prints a readable table without --json', async () => {
    const { code, stdout } = await runInProcess(['inspect', model('stories260K.gguf')]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^GGUF v3: 48 tensors/);
    expect(stdout).toMatch(/tokenizer\.ggml\.tokens\s+string\[\]\s+\[512 items\] "<unk>", "<s>", "<\/s>", "<0x00>", \.\.\./);
    expect(stdout).toMatch(/blk\.0\.ffn_down\.weight\s+f32\s+\[64, 172\]/);
  });

  it('writes 64-bit values past 2^53 as decimal strings', async () => {
    const { planGguf, writeGguf } = await import('../formats/gguf/write.ts');
    const { ggufEntry, ggufArray } = await import('../formats/gguf/metadata.ts');
    const { collect } = await import('../formats/testing.ts');
    const layout = planGguf({
      metadata: [ggufEntry('big', 10, 2n ** 60n + 1n), ggufEntry('small', 11, -5n), ggufEntry('list', 9, ggufArray(10, new BigUint64Array([1n, 2n ** 63n]))), ggufEntry('nan', 6, NaN)],
      tensors: [],
    });
    const path = join(dir, 'big.gguf');
    await writeFile(path, await collect(writeGguf(layout, () => new Uint8Array(0))));
    const { code, stdout } = await runInProcess(['inspect', path, '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout).metadata).toEqual({ big: '1152921504606846977', small: -5, list: [1, '9223372036854775808'], nan: 'NaN' });
  });
});

describe('quantlab on bad input', () => {
  it('a truncated GGUF exits 1 with file, byte offset and reason on one stderr line', async () => {
    const { readFile } = await import('node:fs/promises');
    const path = join(dir, 'truncated.gguf');
    await writeFile(path, (await readFile(model('stories260K.gguf'))).subarray(0, 5000));
    const { code, stdout, stderr } = await quantlab(['inspect', path]);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^truncated\.gguf: at byte \d+: .*file ends.*\n$/);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });

  it('a safetensors header length past the end', async () => {
    const path = join(dir, 'bad.safetensors');
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setBigUint64(0, 1000n, true);
    await writeFile(path, bytes);
    const { code, stderr } = await runInProcess(['inspect', path]);
    expect(code).toBe(1);
    expect(stderr).toBe('bad.safetensors: at byte 0: header length 1000 runs past the end of the file (16 bytes)\n');
  });

  it('a missing file, no file, an unknown option, an unknown command', async () => {
    expect(await runInProcess(['inspect', join(dir, 'nope.gguf')])).toMatchObject({ code: 1, stderr: expect.stringMatching(/nope\.gguf: at byte 0: cannot open the file \(ENOENT\)\n$/) });
    expect(await runInProcess(['inspect'])).toMatchObject({ code: 1, stderr: expect.stringMatching(/^quantlab inspect: no FILE given/) });
    expect(await runInProcess(['inspect', '--frobnicate', 'x'])).toMatchObject({ code: 1, stderr: expect.stringMatching(/^quantlab inspect: Unknown option '--frobnicate'/) });
    expect(await runInProcess(['frobnicate'])).toMatchObject({ code: 1, stderr: "quantlab: unknown command 'frobnicate' (try 'quantlab help')\n" });
  });

  it('help lists the commands', async () => {
    const { code, stdout } = await runInProcess(['help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/inspect\s+list the tensors/);
  });
});
