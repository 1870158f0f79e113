// Test support: a local server that answers as the Hugging Face Hub does, for the client's,
// the CLI's and the page's tests. Two origins: the Hub (model API, tree API, resolve) and a
// "CDN" that the Hub's resolve redirects large files to (302, as huggingface.co sends LFS
// files to cdn-lfs*.hf.co), both with Range/206/416, ETag and CORS. Faults are injected per
// request: 429 with Retry-After, 5xx, a dropped connection, an HTML page, a server that
// ignores Range, a redirect loop, a size that lies; files can change under a commit.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface MockRepo {
  /** path -> bytes. */
  readonly files: Record<string, Uint8Array>;
  /** Resolve answers 401 without the token (and 403 with a wrong one). */
  readonly gated?: boolean;
  /** Branches besides main, name -> commit (all serve the same files). */
  readonly branches?: Record<string, string>;
}

export type MockFault =
  | { kind: 'status'; status: number; retryAfter?: string }
  | { kind: 'short'; bytes: number }
  | { kind: 'ignore-range' }
  | { kind: 'redirect-loop' }
  | { kind: 'html' }
  | { kind: 'wrong-size'; size: number };

export interface MockFaultRule {
  /** Which server the fault is on. */
  readonly on: 'hub' | 'cdn';
  /** A substring of the request's path (and query). */
  readonly path: string;
  readonly fault: MockFault;
  /** How many requests it hits; 1 by default. */
  times?: number;
}

export interface MockRequest {
  readonly on: 'hub' | 'cdn';
  readonly url: string;
  readonly range: string | undefined;
  readonly authorization: string | undefined;
}

/** The fixture models (read-only, shared), as repositories. */
export const FIXTURE_DIR = new URL('../../../shared/fixtures/models/', import.meta.url).pathname;

export function fixtureRepos(dir = FIXTURE_DIR): Record<string, MockRepo> {
  const file = (name: string) => new Uint8Array(readFileSync(`${dir}${name}`));
  const readme = new TextEncoder().encode('# test model\n');
  const sharded = {
    'README.md': readme,
    'config.json': file('stories260K.config.json'),
    'tokenizer.model': file('tok512.model'),
    'model.safetensors.index.json': file('stories260K-sharded/model.safetensors.index.json'),
    'model-00001-of-00002.safetensors': file('stories260K-sharded/model-00001-of-00002.safetensors'),
    'model-00002-of-00002.safetensors': file('stories260K-sharded/model-00002-of-00002.safetensors'),
  };
  return {
    'test/stories-sharded': { files: sharded, branches: { dev: commitOf('dev') } },
    'test/stories-gguf': { files: { 'README.md': readme, 'stories260K.gguf': file('stories260K.gguf'), 'mmproj-stories.gguf': file('llama-2-tiny-random.gguf') } },
    'test/many-gguf': { files: { 'a/stories260K.gguf': file('stories260K.gguf'), 'a/tiny.gguf': file('llama-2-tiny-random.gguf') } },
    'test/gated': { files: { 'stories260K.gguf': file('stories260K.gguf') }, gated: true },
    'test/empty': { files: { 'README.md': readme } },
  };
}

/** A fixed commit hash per name, so tests can write it down. */
export function commitOf(name: string): string {
  return createHash('sha1').update(name).digest('hex');
}

const etagOf = (bytes: Uint8Array) => `"${createHash('sha256').update(bytes).digest('hex')}"`;

const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': 'ETag, Content-Range, Content-Length, Accept-Ranges, X-Repo-Commit, X-Linked-Etag, X-Linked-Size, X-Error-Code, X-Error-Message, Link',
};

/** A file bigger than this is "LFS": the Hub redirects it to the CDN. */
const LFS_MIN_BYTES = 10_000;

export class MockHub {
  readonly requests: MockRequest[] = [];
  /** File bytes sent, by 'org/name/path'. */
  readonly bytesServed = new Map<string, number>();
  readonly faults: MockFaultRule[] = [];
  readonly token = `hf_${randomBytes(8).toString('hex')}`;
  /** Tree API entries per page (the Hub pages its listings with a Link header). */
  pageSize = 3;
  /** Files this big or bigger are "LFS": resolve redirects them to the CDN; smaller ones it serves. */
  lfsMinBytes = LFS_MIN_BYTES;
  private etags = new Map<string, string>();

  private constructor(
    private readonly repos: Record<string, MockRepo>,
    private readonly hub: Server,
    private readonly cdn: Server,
    readonly hubUrl: string,
    readonly cdnUrl: string,
  ) {
    this.publicHubUrl = hubUrl;
    this.publicCdnUrl = cdnUrl;
  }

  /**
   * The addresses the answers name (redirects, next pages): the servers' own, or others that
   * a test routes to them (an e2e test that plays https://huggingface.co and its CDN).
   */
  publicHubUrl: string;
  publicCdnUrl: string;

  static async start(repos: Record<string, MockRepo> = fixtureRepos()): Promise<MockHub> {
    let self: MockHub | null = null;
    const hub = createServer((req, res) => self!.handle('hub', req, res));
    const cdn = createServer((req, res) => self!.handle('cdn', req, res));
    const listen = (s: Server) => new Promise<string>((resolve) => s.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)));
    const [hubUrl, cdnUrl] = await Promise.all([listen(hub), listen(cdn)]);
    self = new MockHub(repos, hub, cdn, hubUrl, cdnUrl);
    return self;
  }

  async close(): Promise<void> {
    for (const s of [this.hub, this.cdn]) s.closeAllConnections();
    await Promise.all([this.hub, this.cdn].map((s) => new Promise((r) => s.close(r))));
  }

  /** Injects a fault for the next matching request(s). */
  fail(rule: MockFaultRule): void {
    this.faults.push({ times: 1, ...rule });
  }

  /** New bytes for a file under the same commit (its ETag changes), as an upstream that changed mid-read. */
  replaceFile(repo: string, path: string, bytes: Uint8Array): void {
    this.repos[repo].files[path] = bytes;
    this.etags.delete(`${repo}/${path}`);
  }

  served(repo: string, path: string): number {
    return this.bytesServed.get(`${repo}/${path}`) ?? 0;
  }

  totalServed(): number {
    return [...this.bytesServed.values()].reduce((a, b) => a + b, 0);
  }

  resetCounts(): void {
    this.requests.length = 0;
    this.bytesServed.clear();
  }

  private etag(repo: string, path: string): string {
    const key = `${repo}/${path}`;
    if (!this.etags.has(key)) this.etags.set(key, etagOf(this.repos[repo].files[path]));
    return this.etags.get(key)!;
  }

  private takeFault(on: 'hub' | 'cdn', url: string): MockFault | null {
    const rule = this.faults.find((f) => f.on === on && url.includes(f.path) && (f.times ?? 1) > 0);
    if (!rule) return null;
    rule.times = (rule.times ?? 1) - 1;
    return rule.fault;
  }

  private handle(on: 'hub' | 'cdn', req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...CORS, 'Access-Control-Allow-Headers': 'Range, Authorization', 'Access-Control-Allow-Methods': 'GET, HEAD' }).end();
      return;
    }
    this.requests.push({ on, url, range: req.headers.range, authorization: req.headers.authorization });
    const fault = this.takeFault(on, url);
    if (fault) {
      if (fault.kind === 'status') {
        res.writeHead(fault.status, { ...CORS, 'Content-Type': 'text/plain', ...(fault.retryAfter ? { 'Retry-After': fault.retryAfter } : {}) }).end(`error ${fault.status}`);
        return;
      }
      if (fault.kind === 'html') {
        res.writeHead(200, { ...CORS, 'Content-Type': 'text/html; charset=utf-8' }).end('<!doctype html><html><body>Sign in</body></html>');
        return;
      }
      if (fault.kind === 'redirect-loop') {
        res.writeHead(302, { ...CORS, Location: url }).end();
        return;
      }
    }
    try {
      if (on === 'cdn') this.cdnFile(url, req, res, fault);
      else if (url.startsWith('/api/models/')) this.api(url, res, fault);
      else this.resolve(url, req, res, fault);
    } catch (e) {
      res.writeHead(500, CORS).end(String(e));
    }
  }

  private notFound(res: ServerResponse, code: string, message: string): void {
    res.writeHead(404, { ...CORS, 'Content-Type': 'application/json', 'X-Error-Code': code, 'X-Error-Message': message }).end(JSON.stringify({ error: message }));
  }

  /** The repository and the commit a revision names, or null after a 404. */
  private repoAt(org: string, name: string, revision: string, res: ServerResponse): { repo: string; commit: string } | null {
    const repo = `${org}/${name}`;
    const r = this.repos[repo];
    if (!r) {
      this.notFound(res, 'RepoNotFound', 'Repository not found');
      return null;
    }
    const commits = { main: commitOf(repo), ...r.branches };
    const commit = revision in commits ? commits[revision as keyof typeof commits] : Object.values(commits).includes(revision) ? revision : null;
    if (!commit) {
      this.notFound(res, 'RevisionNotFound', `Invalid rev id: ${revision}`);
      return null;
    }
    return { repo, commit };
  }

  private api(url: string, res: ServerResponse, fault: MockFault | null): void {
    const u = new URL(url, this.hubUrl);
    const parts = u.pathname.split('/').slice(3).map(decodeURIComponent); // org, name, kind, rev, ...path
    const [org, name, kind, revision, ...rest] = parts;
    const at = this.repoAt(org, name, revision ?? 'main', res);
    if (!at) return;
    const json = (value: unknown, headers: Record<string, string> = {}) => {
      const body = Buffer.from(JSON.stringify(value));
      res.writeHead(200, { ...CORS, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(body.length), ...headers });
      if (fault?.kind !== 'short') return void res.end(body);
      res.write(body.subarray(0, fault.bytes));
      setTimeout(() => res.socket?.destroy(), 20);
    };
    const files = this.repos[at.repo].files;
    if (kind === 'revision') {
      json({ id: at.repo, sha: at.commit, private: false, gated: this.repos[at.repo].gated ? 'manual' : false, siblings: Object.keys(files).map((rfilename) => ({ rfilename })) });
      return;
    }
    if (kind !== 'tree') {
      this.notFound(res, 'EntryNotFound', `no API ${kind}`);
      return;
    }
    const folder = rest.join('/');
    const prefix = folder ? `${folder}/` : '';
    const children = new Map<string, { type: string; path: string; size: number; oid: string }>();
    for (const [path, bytes] of Object.entries(files)) {
      if (!path.startsWith(prefix)) continue;
      const [first, ...deeper] = path.slice(prefix.length).split('/');
      const child = `${prefix}${first}`;
      if (deeper.length) children.set(child, { type: 'directory', path: child, size: 0, oid: commitOf(child) });
      else children.set(child, { type: 'file', path, size: bytes.length, oid: commitOf(path), ...(bytes.length >= this.lfsMinBytes ? { lfs: { oid: this.etag(at.repo, path).slice(1, -1), size: bytes.length, pointerSize: 134 } } : {}) });
    }
    if (folder && children.size === 0) {
      this.notFound(res, 'EntryNotFound', `${folder} does not exist on "${revision}"`);
      return;
    }
    const all = [...children.values()];
    const cursor = Number(u.searchParams.get('cursor') ?? 0);
    const page = all.slice(cursor, cursor + this.pageSize);
    const next = cursor + this.pageSize < all.length ? `<${this.publicHubUrl}${u.pathname}?cursor=${cursor + this.pageSize}>; rel="next"` : null;
    json(page, next ? { Link: next } : {});
  }

  /** GET /{org}/{name}/resolve/{rev}/{path}: small files here, large ones by a redirect to the CDN. */
  private resolve(url: string, req: IncomingMessage, res: ServerResponse, fault: MockFault | null): void {
    const u = new URL(url, this.hubUrl);
    const [org, name, kind, revision, ...rest] = u.pathname.split('/').slice(1).map(decodeURIComponent);
    if (kind !== 'resolve') {
      res.writeHead(200, { ...CORS, 'Content-Type': 'text/html' }).end('<!doctype html><title>Hugging Face</title>');
      return;
    }
    const at = this.repoAt(org, name, revision, res);
    if (!at) return;
    const r = this.repos[at.repo];
    if (r.gated) {
      const auth = req.headers.authorization;
      if (auth !== `Bearer ${this.token}`) {
        res.writeHead(auth ? 403 : 401, { ...CORS, 'Content-Type': 'application/json', 'X-Error-Code': 'GatedRepo' }).end('{"error":"Access to this model is restricted"}');
        return;
      }
    }
    const path = rest.join('/');
    const bytes = r.files[path];
    if (!bytes) {
      this.notFound(res, 'EntryNotFound', `${path} does not exist`);
      return;
    }
    const headers = { 'X-Repo-Commit': at.commit, 'X-Linked-Etag': this.etag(at.repo, path), 'X-Linked-Size': String(bytes.length) };
    if (bytes.length >= this.lfsMinBytes) {
      res.writeHead(302, { ...CORS, ...headers, Location: `${this.publicCdnUrl}/cdn/${at.repo}/${at.commit}/${encodeURIComponent(path)}?X-Amz-Signature=${randomBytes(4).toString('hex')}` }).end();
      return;
    }
    this.sendFile(at.repo, path, req, res, fault, headers);
  }

  private cdnFile(url: string, req: IncomingMessage, res: ServerResponse, fault: MockFault | null): void {
    const u = new URL(url, this.cdnUrl);
    const [, org, name, , path] = u.pathname.split('/').slice(1).map(decodeURIComponent);
    if (!u.searchParams.get('X-Amz-Signature')) {
      res.writeHead(403, CORS).end('no signature');
      return;
    }
    this.sendFile(`${org}/${name}`, path, req, res, fault, {});
  }

  private sendFile(repo: string, path: string, req: IncomingMessage, res: ServerResponse, fault: MockFault | null, extra: Record<string, string>): void {
    const bytes = this.repos[repo].files[path];
    const key = `${repo}/${path}`;
    const headers = { ...CORS, ...extra, 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes', ETag: this.etag(repo, path) };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const send = (status: number, body: Uint8Array, more: Record<string, string>) => {
      if (fault?.kind === 'short') {
        res.writeHead(status, { ...headers, ...more, 'Content-Length': String(body.length) });
        res.write(body.subarray(0, fault.bytes));
        this.bytesServed.set(key, (this.bytesServed.get(key) ?? 0) + Math.min(fault.bytes, body.length));
        // Dropped mid-body: the client sees the connection end before Content-Length.
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      res.writeHead(status, { ...headers, ...more, 'Content-Length': String(body.length) });
      res.end(body);
      this.bytesServed.set(key, (this.bytesServed.get(key) ?? 0) + body.length);
    };
    if (!range || fault?.kind === 'ignore-range') {
      send(200, bytes, {});
      return;
    }
    const start = Number(range[1]);
    const end = Math.min(range[2] === '' ? bytes.length - 1 : Number(range[2]), bytes.length - 1);
    if (start >= bytes.length || end < start) {
      res.writeHead(416, { ...headers, 'Content-Range': `bytes */${bytes.length}` }).end();
      return;
    }
    const total = fault?.kind === 'wrong-size' ? fault.size : bytes.length;
    send(206, bytes.subarray(start, end + 1), { 'Content-Range': `bytes ${start}-${end}/${total}` });
  }
}
