// The Hub client against a local server that behaves as the Hub does (testing.ts): listing,
// choosing, ranged reads through the CDN redirect, and every failure the issue names.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FormatError } from '../formats/errors.ts';
import { loadModel, readTensorBytes } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { HubAuthError, HubClient, type HubProgress, retryAfterMs } from './client.ts';
import { hubRefText, isHubArgument, parseHubRef } from './ref.ts';
import { hubSource, openHubModel } from './repo.ts';
import { FIXTURE_DIR, MockHub, commitOf } from './testing.ts';

let hub: MockHub;
beforeAll(async () => {
  hub = await MockHub.start();
});
afterAll(() => hub.close());
afterEach(() => {
  hub.faults.length = 0;
  hub.resetCounts();
});

const fast = { backoffMs: 1, sleep: async () => undefined };
const open = (ref: string, options = {}) => openHubModel(ref, { endpoint: hub.hubUrl, ...fast, ...options });
const SHARDED = `${FIXTURE_DIR}stories260K-sharded/`;
const localSharded = async () =>
  Promise.all([
    ...['model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'].map((f) => fileSource(`${SHARDED}${f}`)),
  ]);

/** Byte equality (vitest's deep equality takes seconds on 200 KB). */
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));

/** The error a promise rejects with (fails the test if it resolves). */
async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('references', () => {
  it('reads hf://, ORG/NAME and huggingface.co URLs', () => {
    expect(parseHubRef('hf://org/name')).toEqual({ repo: 'org/name', revision: 'main', path: '' });
    expect(parseHubRef('org/name@v1.0/sub/model.gguf')).toEqual({ repo: 'org/name', revision: 'v1.0', path: 'sub/model.gguf' });
    expect(parseHubRef('hf://org/name@refs%2Fpr%2F3/a.gguf')).toEqual({ repo: 'org/name', revision: 'refs/pr/3', path: 'a.gguf' });
    expect(parseHubRef('https://huggingface.co/org/name/blob/abc/x/m.safetensors')).toEqual({ repo: 'org/name', revision: 'abc', path: 'x/m.safetensors' });
    expect(parseHubRef('https://huggingface.co/org/name/tree/dev')).toEqual({ repo: 'org/name', revision: 'dev', path: '' });
    expect(parseHubRef('http://127.0.0.1:9/org/name', 'http://127.0.0.1:9')).toEqual({ repo: 'org/name', revision: 'main', path: '' });
    expect(hubRefText({ repo: 'org/name', revision: 'refs/pr/3', path: 'a.gguf' })).toBe('hf://org/name@refs%2Fpr%2F3/a.gguf');
    expect(isHubArgument('hf://org/name')).toBe(true);
    expect(isHubArgument('https://huggingface.co/org/name')).toBe(true);
    expect(isHubArgument('http://127.0.0.1:9/org/name', 'http://127.0.0.1:9/')).toBe(true);
    expect(isHubArgument('model.gguf')).toBe(false);
    expect(isHubArgument('https://huggingface.com/org/name')).toBe(false);
  });

  it('refuses what is not a repository', () => {
    expect(() => parseHubRef('hf://justone')).toThrow(/does not name a repository as ORG\/NAME/);
    expect(() => parseHubRef('https://example.com/org/name')).toThrow(/is not a Hub URL/);
    expect(() => parseHubRef('org/name/../../etc')).toThrow(/bad revision or path/);
    expect(() => parseHubRef('https://huggingface.co/org/name/discussions/1')).toThrow(/expected \/ORG\/NAME/);
  });

  it('reads Retry-After as seconds or a date', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(retryAfterMs('soon')).toBeNull();
    expect(retryAfterMs(null)).toBeNull();
  });
});

describe('opening a model', () => {
  it('lists a sharded safetensors repository, picks its files and reads only the headers', async () => {
    const model = await open('hf://test/stories-sharded');
    expect(model.commit).toBe(commitOf('test/stories-sharded'));
    expect(model.files.map((f) => f.path)).toEqual([
      'model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'config.json', 'tokenizer.model',
    ]);
    const index = await loadModel(model.sources);
    const local = await loadModel([...(await localSharded()), await fileSource(`${FIXTURE_DIR}stories260K.config.json`).then((s) => ({ ...s, name: 'config.json', read: s.read }))]);
    expect(index.tensors).toEqual(local.tensors);
    expect(index.metadata).toEqual(local.metadata);
    // Headers only: the shards are 1.17 MB; their headers and the small files a few KB.
    const shardBytes = model.files.filter((f) => f.path.endsWith('.safetensors')).reduce((n, f) => n + f.size, 0);
    const shardRead = hub.served('test/stories-sharded', 'model-00001-of-00002.safetensors') + hub.served('test/stories-sharded', 'model-00002-of-00002.safetensors');
    expect(shardRead).toBeGreaterThan(0);
    expect(shardRead / shardBytes).toBeLessThan(0.01);
    expect(model.client.bytesRead).toBe(hub.totalServed());
    // Every file was read at the commit, and the shards came from the CDN.
    const resolves = hub.requests.filter((r) => r.url.includes('/resolve/'));
    expect(resolves.every((r) => r.url.includes(`/resolve/${model.commit}/`))).toBe(true);
    expect(hub.requests.some((r) => r.on === 'cdn' && r.url.includes('model-00001-of-00002.safetensors'))).toBe(true);
    // Comparing one tensor reads that tensor's range and no more.
    const tensor = index.tensors.find((t) => t.name === 'model.layers.0.attention.wq.weight' || /layers\.0\..*q_proj/.test(t.name))!;
    const before = model.client.bytesRead;
    const bytes = await readTensorBytes(index, tensor);
    expect(model.client.bytesRead - before).toBe(tensor.nbytes);
    expect(same(bytes, await readTensorBytes(local, tensor))).toBe(true);
  });

  it('pins a branch to its commit, and picks the GGUF beside a vision projector', async () => {
    const dev = await open('test/stories-sharded@dev');
    expect(dev.commit).toBe(commitOf('dev'));
    const gguf = await open(`${hub.hubUrl}/test/stories-gguf`);
    expect(gguf.files.map((f) => f.path)).toEqual(['stories260K.gguf']);
    const model = await loadModel(gguf.sources);
    expect(model.format).toBe('gguf');
    expect(model.tensors.length).toBeGreaterThan(0);
  });

  it('asks which GGUF when a folder has several, and opens the one named', async () => {
    const error = await failure(open('hf://test/many-gguf/a'));
    expect(error).toBeInstanceOf(FormatError);
    expect(error.message).toMatch(/hf:\/\/test\/many-gguf\/a: at byte 0: has 2 GGUF files \(stories260K\.gguf, tiny\.gguf\): name one/);
    const tiny = await open('hf://test/many-gguf/a/tiny.gguf');
    expect(tiny.files).toEqual([{ path: 'a/tiny.gguf', size: 1750560 }]);
    expect(tiny.sources[0].name).toBe('tiny.gguf');
  });

  it('says what is wrong with a repository, revision, path or listing', async () => {
    expect((await failure(open('hf://test/nothing'))).message).toMatch(/hf:\/\/test\/nothing: at byte 0: not found on the Hub \(404\): Repository not found/);
    expect((await failure(open('hf://test/empty@nobranch'))).message).toMatch(/hf:\/\/test\/empty@nobranch: .*404.*Invalid rev id/);
    expect((await failure(open('hf://test/empty'))).message).toMatch(/hf:\/\/test\/empty: at byte 0: has no model files \(no \.safetensors or \.gguf among its 1 files: README\.md\)/);
    expect((await failure(open('hf://test/stories-gguf/none.gguf'))).message).toMatch(/no file or folder 'none\.gguf'/);
    expect((await failure(open('hf://test/stories-gguf/README.md'))).message).toMatch(/README\.md: at byte 0: is not a model file/);
    hub.fail({ on: 'hub', path: '/api/models/test/stories-gguf/revision', fault: { kind: 'html' } });
    expect((await failure(open('hf://test/stories-gguf'))).message).toMatch(/answered .* with an HTML page, not JSON/);
  });
});

describe('transfers', () => {
  async function gguf(options = {}) {
    const model = await open('hf://test/stories-gguf', options);
    return { model, source: model.sources[0], local: await fileSource(`${FIXTURE_DIR}stories260K.gguf`) };
  }

  it('waits out a 429 as Retry-After says, and backs off on 5xx', async () => {
    const waits: number[] = [];
    const { source, local } = await gguf({ sleep: async (ms: number) => void waits.push(ms), backoffMs: 100 });
    hub.fail({ on: 'hub', path: '/resolve/', fault: { kind: 'status', status: 429, retryAfter: '7' } });
    hub.fail({ on: 'cdn', path: 'stories260K.gguf', fault: { kind: 'status', status: 503 }, times: 2 });
    expect(same(await source.read(1000, 5000), await local.read(1000, 5000))).toBe(true);
    // The backoff doubles with each try: the 429 was the first.
    expect(waits).toEqual([7000, 200, 400]);
  });

  it('asks the API again when its answer breaks off', async () => {
    hub.fail({ on: 'hub', path: '/api/models/test/stories-sharded/tree/', fault: { kind: 'short', bytes: 40 } });
    const model = await open('hf://test/stories-sharded');
    expect(model.files).toHaveLength(5);
    expect(hub.requests.filter((r) => r.url.includes('/tree/')).length).toBe(3); // two pages, the first twice
  });

  it('gives up after its retries with the status', async () => {
    const { source } = await gguf({ retries: 2 });
    hub.fail({ on: 'cdn', path: 'stories260K.gguf', fault: { kind: 'status', status: 502 }, times: 10 });
    expect((await failure(source.read(0, 100))).message).toMatch(/hf:\/\/test\/stories-gguf\/stories260K\.gguf: at byte 0: the Hub answered 502 3 times/);
  });

  it('resumes a range the connection dropped, from where it stopped', async () => {
    const { source, local } = await gguf();
    hub.fail({ on: 'cdn', path: 'stories260K.gguf', fault: { kind: 'short', bytes: 3000 } });
    expect(same(await source.read(10_000, 200_000), await local.read(10_000, 200_000))).toBe(true);
    const ranges = hub.requests.filter((r) => r.on === 'cdn').map((r) => r.range);
    expect(ranges).toEqual(['bytes=10000-209999', 'bytes=13000-209999']);
  });

  it('gives up on a range that keeps breaking off before any byte', async () => {
    const { source } = await gguf({ retries: 2 });
    hub.fail({ on: 'cdn', path: 'stories260K.gguf', fault: { kind: 'short', bytes: 0 }, times: 10 });
    expect((await failure(source.read(500, 100))).message).toMatch(/stories260K\.gguf: at byte 500: the range 500\+100 stopped after 0 bytes \(connection dropped: .*\); 2 resumes got no further/);
  });

  it('stops, without buffering, when the server ignores Range', async () => {
    const { model, source } = await gguf();
    hub.fail({ on: 'cdn', path: 'stories260K.gguf', fault: { kind: 'ignore-range' } });
    const error = await failure(source.read(4096, 100));
    expect(error.message).toMatch(/stories260K\.gguf: at byte 4096: the server ignored the Range request \(answered 200 with the whole file, 1185376 bytes\); stopped reading/);
    expect(model.client.bytesRead).toBe(0);
  });

  it('refuses a redirect loop, an HTML page, a size that lies and a range past the end', async () => {
    const { source } = await gguf();
    hub.fail({ on: 'hub', path: '/resolve/', fault: { kind: 'redirect-loop' } , times: 20 });
    expect((await failure(source.read(0, 10))).message).toMatch(/more than 10 redirects \(a redirect loop\?\)/);
    hub.faults.length = 0;
    hub.fail({ on: 'cdn', path: 'stories260K.gguf', fault: { kind: 'html' } });
    const { source: fresh } = await gguf();
    expect((await failure(fresh.read(0, 10))).message).toMatch(/at byte 0: the server answered with an HTML page \(200\)/);
    hub.fail({ on: 'cdn', path: 'stories260K.gguf', fault: { kind: 'wrong-size', size: 999 } });
    expect((await failure(fresh.read(64, 10))).message).toMatch(/at byte 64: the server says the file is 999 bytes, the Hub's listing says 1185376/);
    const client = new HubClient({ endpoint: hub.hubUrl, ...fast });
    const liar = hubSource(client, { label: 'hf://test/stories-gguf/stories260K.gguf', url: `${hub.hubUrl}/test/stories-gguf/resolve/main/stories260K.gguf`, size: 2_000_000 });
    expect((await failure(liar.read(1_500_000, 10))).message).toMatch(/at byte 1500000: the server cannot serve bytes 1500000-1500009 \(416/);
  });

  it('stops when the file changes between reads', async () => {
    const { source } = await gguf();
    await source.read(0, 100);
    const original = hub['repos']['test/stories-gguf'].files['stories260K.gguf'];
    const changed = original.slice();
    changed[5000] ^= 1;
    hub.replaceFile('test/stories-gguf', 'stories260K.gguf', changed);
    try {
      expect((await failure(source.read(200, 100))).message).toMatch(/stories260K\.gguf: at byte 200: the file changed on the Hub while it was being read \(ETag "[0-9a-f]{64}", now "[0-9a-f]{64}"\)/);
    } finally {
      hub.replaceFile('test/stories-gguf', 'stories260K.gguf', original);
    }
  });

  it('reports bytes read against bytes needed, and stops when cancelled', async () => {
    const seen: HubProgress[] = [];
    const { source } = await gguf({ onProgress: (p: HubProgress) => seen.push(p) });
    await source.read(0, 300_000);
    expect(seen.at(-1)).toEqual({ read: 300_000, needed: 300_000, file: 'hf://test/stories-gguf/stories260K.gguf' });
    expect(seen.every((p) => p.read <= p.needed)).toBe(true);
    const abort = new AbortController();
    const { source: slow } = await gguf({ signal: abort.signal, sleep: undefined, backoffMs: 60_000 });
    hub.fail({ on: 'cdn', path: 'stories260K.gguf', fault: { kind: 'status', status: 503 } });
    const reading = slow.read(0, 10);
    setTimeout(() => abort.abort(new Error('cancelled by the user')), 50);
    const started = performance.now();
    expect((await failure(reading)).message).toBe('cancelled by the user');
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

describe('gated repositories', () => {
  it('asks for a token on 401, sends it only after that and only to the Hub', async () => {
    const error = await failure(open('hf://test/gated').then((m) => m.sources[0].read(0, 4)));
    expect(error).toBeInstanceOf(HubAuthError);
    expect(error.name).toBe('HubAuthError');
    expect(error.message).toMatch(/hf:\/\/test\/gated\/stories260K\.gguf: at byte 0: the Hub answered 401: .*needs an access token/);
    hub.resetCounts();
    const model = await open('hf://test/gated', { token: hub.token });
    expect(await model.sources[0].read(0, 4)).toEqual(new TextEncoder().encode('GGUF'));
    // The API calls and the first resolve went without it; the CDN never saw it.
    const withToken = hub.requests.filter((r) => r.authorization);
    expect(hub.requests.filter((r) => r.url.includes('/api/')).every((r) => !r.authorization)).toBe(true);
    expect(withToken.length).toBeGreaterThan(0);
    expect(withToken.every((r) => r.on === 'hub' && r.authorization === `Bearer ${hub.token}`)).toBe(true);
    expect(hub.requests.some((r) => r.on === 'cdn')).toBe(true);
    expect(hub.requests.find((r) => r.url.includes('/resolve/'))!.authorization).toBeUndefined();
    const refused = await failure(open('hf://test/gated', { token: 'hf_wrong' }).then((m) => m.sources[0].read(0, 4)));
    expect(refused.message).toMatch(/the Hub refused the token \(403\)/);
  });
});
