// `quantlab inspect|compare|quantize hf://...` against a local server that behaves as the
// Hub does (src/hub/testing.ts): the same output as on the same files locally, and only
// the bytes a command needs leave the server.
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_DIR, MockHub } from '../hub/testing.ts';
import { runInProcess } from './testing.ts';

let hub: MockHub;
let dir: string;
const saved = { endpoint: process.env.HF_ENDPOINT, token: process.env.HF_TOKEN };
/** The sharded repository's files, under the names the Hub has them, in the order the Hub opens them. */
const SHARDED_FILES = ['model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'config.json', 'tokenizer.model'];
let localSharded: string[];

beforeAll(async () => {
  hub = await MockHub.start();
  process.env.HF_ENDPOINT = hub.hubUrl;
  delete process.env.HF_TOKEN;
  dir = await mkdtemp(join(tmpdir(), 'quantlab-hub-cli-'));
  const from: Record<string, string> = { 'config.json': 'stories260K.config.json', 'tokenizer.model': 'tok512.model' };
  localSharded = await Promise.all(SHARDED_FILES.map(async (name) => {
    await copyFile(join(FIXTURE_DIR, from[name] ?? `stories260K-sharded/${name}`), join(dir, name));
    return join(dir, name);
  }));
});
afterAll(async () => {
  await hub.close();
  await rm(dir, { recursive: true });
  for (const [key, value] of [['HF_ENDPOINT', saved.endpoint], ['HF_TOKEN', saved.token]] as const) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
});
afterEach(() => {
  hub.faults.length = 0;
  hub.resetCounts();
  delete process.env.HF_TOKEN;
});

const shardBytes = () => SHARDED_FILES.filter((f) => f.endsWith('.safetensors')).reduce((n, f) => n + hub.served('test/stories-sharded', f), 0);
const SHARDS_SIZE = 590280 + 585888;

describe('quantlab inspect hf://', () => {
  it('prints what it prints for the same files on disk, reading only their headers', async () => {
    for (const json of [[], ['--json']]) {
      const remote = await runInProcess(['inspect', 'hf://test/stories-sharded', ...json]);
      expect(remote.stderr).toBe('');
      expect(remote.code).toBe(0);
      const local = await runInProcess(['inspect', ...localSharded, ...json]);
      expect(remote.stdout).toBe(local.stdout);
    }
    // The Hub's own URL for the repository (here: HF_ENDPOINT's) names it too.
    const byUrl = await runInProcess(['inspect', `${hub.hubUrl}/test/stories-sharded/tree/main`, '--json']);
    expect(byUrl.stdout).toBe((await runInProcess(['inspect', ...localSharded, '--json'])).stdout);
    hub.resetCounts();
    await runInProcess(['inspect', 'hf://test/stories-sharded']);
    expect(shardBytes()).toBeGreaterThan(0);
    expect(shardBytes() / SHARDS_SIZE).toBeLessThan(0.01);
  });

  it('one clear line for a repository that is not there, a bad reference, a gated one', async () => {
    const missing = await runInProcess(['inspect', 'hf://test/nothing']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('hf://test/nothing: at byte 0: not found on the Hub (404): Repository not found\n');
    const bad = await runInProcess(['inspect', 'hf://nothing']);
    expect(bad.stderr).toBe("hf://nothing: at byte 0: 'hf://nothing' does not name a repository as ORG/NAME (letters, digits, '.', '_', '-')\n");
    const gated = await runInProcess(['inspect', 'hf://test/gated']);
    expect(gated.code).toBe(1);
    expect(gated.stderr).toMatch(/^hf:\/\/test\/gated\/stories260K\.gguf: at byte 0: the Hub answered 401: .*needs an access token \(HF_TOKEN\)\n$/);
    process.env.HF_TOKEN = hub.token;
    const opened = await runInProcess(['inspect', 'hf://test/gated', '--json']);
    expect(opened.code).toBe(0);
    expect(JSON.parse(opened.stdout).tensors).toHaveLength(48);
    expect(hub.requests.filter((r) => r.authorization).every((r) => r.on === 'hub')).toBe(true);
  });
});

describe('quantlab compare hf://', () => {
  it('gives the local result, reading the headers and that tensor only', async () => {
    const tensor = 'model.layers.0.self_attn.q_proj.weight';
    const args = ['--tensor', tensor, '--types', 'q4_0,q8_0,q4_K', '--json'];
    const remote = await runInProcess(['compare', 'hf://test/stories-sharded', ...args]);
    expect(remote.code).toBe(0);
    const local = await runInProcess(['compare', ...localSharded, ...args]);
    expect(remote.stdout).toBe(local.stdout);
    // q_proj is 64x64 F32: 16384 bytes; the shards' headers are a few KB.
    expect(shardBytes()).toBeGreaterThanOrEqual(16384);
    expect(shardBytes()).toBeLessThan(16384 + 12_000);
    expect(shardBytes() / SHARDS_SIZE).toBeLessThan(0.03);
  });

  it('rides out a 429 and a dropped connection on the way', async () => {
    hub.fail({ on: 'hub', path: '/api/models/test/stories-gguf/revision', fault: { kind: 'status', status: 429, retryAfter: '1' } });
    hub.fail({ on: 'cdn', path: 'stories260K.gguf', fault: { kind: 'short', bytes: 1000 } });
    const args = ['--tensor', 'blk.0.attn_q.weight', '--types', 'q4_0', '--json'];
    const remote = await runInProcess(['compare', 'hf://test/stories-gguf', ...args]);
    expect(remote.code).toBe(0);
    expect(hub.faults.every((f) => f.times === 0)).toBe(true);
    const local = await runInProcess(['compare', join(FIXTURE_DIR, 'stories260K.gguf'), ...args]);
    expect(remote.stdout).toBe(local.stdout);
  });
});

describe('quantlab quantize hf://', () => {
  it('writes the same GGUF as from the files on disk', async () => {
    for (const [ref, local] of [['hf://test/stories-gguf', [join(FIXTURE_DIR, 'stories260K.gguf')]], ['hf://test/stories-sharded', localSharded]] as const) {
      const out = join(dir, 'remote.gguf');
      const expected = join(dir, 'local.gguf');
      const remote = await runInProcess(['quantize', ref, '-o', out, '--type', 'q8_0']);
      expect(remote.code, remote.stderr).toBe(0);
      const mine = await runInProcess(['quantize', ...local, '-o', expected, '--type', 'q8_0']);
      expect(mine.code, mine.stderr).toBe(0);
      // The per-tensor table and the summary; the last line names the output and the time taken.
      const report = (stdout: string) => stdout.replace(/^\S+\.gguf: (\d+ bytes, \d+ tensors), [\d.]+ s$/m, '$1');
      expect(report(remote.stdout)).toBe(report(mine.stdout));
      expect(report(remote.stdout)).toMatch(/^\d+ bytes, 48 tensors$/m);
      const [a, b] = await Promise.all([readFile(out), readFile(expected)]);
      expect(a.length).toBeGreaterThan(100_000);
      expect(a.equals(b)).toBe(true);
    }
  });
});
