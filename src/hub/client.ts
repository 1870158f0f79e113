// The Hub's HTTP side: JSON from its API and byte ranges of its files, with what a long
// transfer over the internet needs. Retries with backoff on 429 (honouring Retry-After),
// 5xx and dropped connections; a range that ends short is resumed where it stopped; a file
// whose ETag changes between reads stops with an error instead of mixing two versions; a
// server that ignores Range is cut off at once, not buffered. Redirects are followed here
// (at most MAX_REDIRECTS) where the platform lets us see them (Node), so the token goes to
// the Hub's own origin only; a browser follows them itself, and drops the Authorization
// header on a redirect to another origin (the fetch standard).
//
// The token: requests go without one; only when the Hub answers 401 or 403 is the token
// (if the caller has one) sent, and from then on to the Hub's origin, never elsewhere. It
// lives in this object only: never stored, never in a message.

import { FormatError } from '../formats/errors.ts';
import { DEFAULT_HUB_ENDPOINT } from './ref.ts';

export const MAX_REDIRECTS = 10;
/** Tries of one request or range after the first, on 429, 5xx, a dropped connection or a short body. */
export const DEFAULT_RETRIES = 5;
/** First backoff; it doubles with each retry. */
export const DEFAULT_BACKOFF_MS = 500;
/** A Retry-After longer than this is not waited out: the error says so instead. */
export const MAX_RETRY_AFTER_MS = 120_000;

export interface HubProgress {
  /** Bytes received so far in this session. */
  readonly read: number;
  /** Bytes asked for so far (every read adds its length when it starts). */
  readonly needed: number;
  /** The file being read. */
  readonly file: string;
}

export interface HubClientOptions {
  /** The Hub (HF_ENDPOINT); https://huggingface.co by default. */
  readonly endpoint?: string;
  /** Sent only after the Hub answers 401/403, and only to the Hub's origin. */
  readonly token?: string;
  readonly signal?: AbortSignal;
  readonly retries?: number;
  readonly backoffMs?: number;
  readonly onProgress?: (p: HubProgress) => void;
  /** For tests: the fetch and the wait to use. */
  readonly fetch?: typeof fetch;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** The Hub answered 401/403 and no token (or a refused one) was sent: the page asks for one. */
export class HubAuthError extends FormatError {
  constructor(
    file: string,
    readonly status: number,
    tokenSent: boolean,
  ) {
    super(
      file,
      0,
      tokenSent
        ? `the Hub refused the token (${status}): it has no access to this repository`
        : `the Hub answered ${status}: the repository does not exist, or it is gated or private and needs an access token (HF_TOKEN)`,
    );
    // The name survives a trip through the engine worker (comlink sends name and message).
    Object.defineProperty(this, 'name', { value: 'HubAuthError' });
  }
}

/** A status the Hub answered with that is not retried (404, 416, ...): `status` for callers that recover. */
export class HubStatusError extends FormatError {
  constructor(
    file: string,
    offset: number,
    readonly status: number,
    reason: string,
  ) {
    super(file, offset, reason);
  }
}

/** A file on the Hub as the client reads it. */
export interface HubFileHandle {
  /** What errors call it: hf://org/name@commit/path. */
  readonly label: string;
  /** {endpoint}/{repo}/resolve/{commit}/{path}. */
  readonly url: string;
  readonly size: number;
  /** The ETag of the first answer; every later answer must carry the same. */
  etag?: string;
  /** Where the Hub's redirect led (a CDN's signed URL), reused until it stops working. */
  location?: string;
}

interface Attempt {
  readonly label: string;
  readonly offset: number;
  readonly range?: readonly [number, number];
}

const defaultSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', abort);
      resolve();
    }
    function abort() {
      clearTimeout(timer);
      reject(signal!.reason);
    }
    signal?.addEventListener('abort', abort, { once: true });
  });

export class HubClient {
  readonly endpoint: string;
  private readonly origin: string;
  private readonly token: string | undefined;
  /** Set once the Hub asked for the token: from then on it goes with every Hub request. */
  private sendToken = false;
  /** Set when fetch hides redirects (a browser): it then follows them itself. */
  private browserRedirects = false;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly fetchImpl: typeof fetch;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly signal: AbortSignal | undefined;
  private readonly onProgress: ((p: HubProgress) => void) | undefined;
  /** Bytes of file data received and asked for, and HTTP requests sent. */
  bytesRead = 0;
  bytesNeeded = 0;
  requests = 0;

  constructor(options: HubClientOptions = {}) {
    this.endpoint = (options.endpoint || DEFAULT_HUB_ENDPOINT).replace(/\/+$/, '');
    let origin: string;
    try {
      origin = new URL(this.endpoint).origin;
    } catch {
      throw new Error(`HF_ENDPOINT '${this.endpoint}' is not a URL`);
    }
    this.origin = origin;
    this.token = options.token || undefined;
    this.retries = options.retries ?? DEFAULT_RETRIES;
    this.backoffMs = options.backoffMs ?? DEFAULT_BACKOFF_MS;
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
    this.sleep = options.sleep ?? defaultSleep;
    this.signal = options.signal;
    this.onProgress = options.onProgress;
  }

  /** GET an API path (`/api/models/...`) as JSON; `label` names what errors are about. */
  async json(path: string, label: string): Promise<{ value: unknown; response: Response }> {
    let response: Response;
    let text: string;
    for (let attempt = 0; ; attempt++) {
      response = await this.request(`${this.endpoint}${path}`, { label, offset: 0 });
      try {
        text = await response.text();
        break;
      } catch (e) {
        // The connection dropped mid-answer: ask again, as for a failed request.
        if (this.signal?.aborted) throw e;
        if (attempt >= this.retries) throw new FormatError(label, 0, `the Hub's answer to ${path} broke off (${(e as Error).message}) ${this.retries + 1} times`);
        await this.sleep(this.backoffMs * 2 ** attempt, this.signal);
      }
    }
    const type = response.headers.get('content-type') ?? '';
    if (/html/i.test(type) || /^\s*</.test(text)) {
      throw new FormatError(label, 0, `the Hub answered ${path} with an HTML page, not JSON (${type || 'no content type'}): is HF_ENDPOINT a Hub?`);
    }
    try {
      return { value: JSON.parse(text), response };
    } catch (e) {
      throw new FormatError(label, 0, `the Hub's answer to ${path} is not JSON (${(e as Error).message})`);
    }
  }

  /** Exactly `length` bytes of `file` from `offset`, into `into` when given. */
  async readRange(file: HubFileHandle, offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const out = into && into.length >= length ? into.subarray(0, length) : new Uint8Array(length);
    if (length === 0) return out;
    this.bytesNeeded += length;
    this.report(file.label);
    let got = 0;
    for (let attempt = 0; got < length; attempt++) {
      const before = got;
      const { received, dropped } = await this.readOnce(file, offset + got, length - got, out.subarray(got));
      got += received;
      if (got === length) break;
      // A resume that got bytes resets the count: only a range that keeps failing gives up.
      if (got > before) {
        attempt = -1;
        continue;
      }
      if (attempt >= this.retries) {
        throw new FormatError(file.label, offset + got, `the range ${offset}+${length} stopped after ${got} bytes${dropped ? ` (${dropped})` : ''}; ${this.retries} resumes got no further`);
      }
      await this.sleep(this.backoffMs * 2 ** attempt, this.signal);
    }
    return out;
  }

  /** One ranged GET, copied into `out` as it streams; returns the bytes received and why it stopped short. */
  private async readOnce(file: HubFileHandle, offset: number, length: number, out: Uint8Array): Promise<{ received: number; dropped?: string }> {
    const response = await this.rangeResponse(file, offset, length);
    const whole = offset === 0 && length === file.size;
    const type = response.headers.get('content-type') ?? '';
    if (/text\/html/i.test(type)) {
      await response.body?.cancel().catch(() => undefined);
      throw new FormatError(file.label, offset, `the server answered with an HTML page (${response.status}) instead of the file's bytes`);
    }
    if (response.status === 200 && !whole) {
      await response.body?.cancel().catch(() => undefined);
      throw new FormatError(file.label, offset, `the server ignored the Range request (answered 200 with the whole file, ${response.headers.get('content-length') ?? 'unknown'} bytes); stopped reading`);
    }
    if (response.status === 206) this.checkContentRange(file, response, offset, length);
    this.checkEtag(file, response, offset);
    if (!response.body) throw new FormatError(file.label, offset, `the answer (${response.status}) has no body`);
    const reader = response.body.getReader();
    let received = 0;
    try {
      while (received < length) {
        const { done, value } = await reader.read();
        if (done) break;
        const take = Math.min(value.length, length - received);
        out.set(value.subarray(0, take), received);
        received += take;
        this.bytesRead += take;
        this.report(file.label);
        if (take < value.length) {
          throw new FormatError(file.label, offset + received, `the server sent more than the ${length} bytes asked for`);
        }
      }
    } catch (e) {
      if (e instanceof FormatError || this.signal?.aborted) throw e;
      return { received, dropped: `connection dropped: ${(e as Error).message}` };
    } finally {
      reader.cancel().catch(() => undefined);
    }
    return { received };
  }

  /** The answer to a range request: from the CDN URL the last one was redirected to, or from the Hub again when that stops working. */
  private async rangeResponse(file: HubFileHandle, offset: number, length: number): Promise<Response> {
    const attempt: Attempt = { label: file.label, offset, range: [offset, offset + length - 1] };
    if (file.location) {
      try {
        return await this.request(file.location, attempt);
      } catch (e) {
        // A signed CDN URL expires (403/410) or is gone (404): ask the Hub for a new one.
        if (!(e instanceof HubStatusError || e instanceof HubAuthError)) throw e;
        file.location = undefined;
      }
    }
    const response = await this.request(file.url, attempt);
    if (response.url && response.url !== file.url && new URL(response.url).origin !== this.origin) file.location = response.url;
    return response;
  }

  private checkContentRange(file: HubFileHandle, response: Response, offset: number, length: number): void {
    const header = response.headers.get('content-range');
    const match = header && /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header.trim());
    if (!match) return; // hidden by CORS: the body's length is still checked
    const [start, end, total] = [Number(match[1]), Number(match[2]), match[3] === '*' ? null : Number(match[3])];
    if (total !== null && total !== file.size) {
      throw new FormatError(file.label, offset, `the server says the file is ${total} bytes, the Hub's listing says ${file.size} (Content-Range: ${header})`);
    }
    if (start !== offset || end > offset + length - 1) {
      throw new FormatError(file.label, offset, `asked for bytes ${offset}-${offset + length - 1}, the server sent ${start}-${end}`);
    }
  }

  private checkEtag(file: HubFileHandle, response: Response, offset: number): void {
    const etag = response.headers.get('etag')?.replace(/^W\//, '');
    if (!etag) return;
    if (file.etag === undefined) file.etag = etag;
    else if (etag !== file.etag) {
      throw new FormatError(file.label, offset, `the file changed on the Hub while it was being read (ETag ${file.etag}, now ${etag}); open the model again`);
    }
  }

  /**
   * A GET with retries: 429 waits Retry-After (or the backoff), 5xx and network errors back
   * off; 401/403 sends the token once if there is one; other failures are errors at once.
   */
  private async request(url: string, what: Attempt): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.follow(url, what);
      } catch (e) {
        if (e instanceof FormatError || this.signal?.aborted) throw e;
        if (attempt >= this.retries) throw new FormatError(what.label, what.offset, `cannot reach ${new URL(url).host} (${(e as Error).message}) after ${this.retries} retries`);
        await this.sleep(this.backoffMs * 2 ** attempt, this.signal);
        continue;
      }
      const status = response.status;
      if (status >= 200 && status < 300) return response;
      await response.body?.cancel().catch(() => undefined);
      const sameOrigin = new URL(response.url || url).origin === this.origin;
      if ((status === 401 || status === 403) && sameOrigin) {
        if (this.token && !this.sendToken) {
          this.sendToken = true;
          attempt--;
          continue;
        }
        throw new HubAuthError(what.label, status, this.sendToken);
      }
      if (status === 429 || status >= 500) {
        const wait = status === 429 ? retryAfterMs(response.headers.get('retry-after')) : null;
        if (wait !== null && wait > MAX_RETRY_AFTER_MS) {
          throw new FormatError(what.label, what.offset, `the Hub asks to wait ${Math.round(wait / 1000)} s (429 Retry-After); try again later`);
        }
        if (attempt >= this.retries) {
          throw new FormatError(what.label, what.offset, `the Hub answered ${status}${status === 429 ? ' (too many requests)' : ''} ${this.retries + 1} times`);
        }
        await this.sleep(wait ?? this.backoffMs * 2 ** attempt, this.signal);
        continue;
      }
      const detail = response.headers.get('x-error-message');
      if (status === 416) {
        throw new HubStatusError(what.label, what.offset, status, `the server cannot serve bytes ${what.range?.join('-')} (416 Range Not Satisfiable); the listing says the file is larger than it is`);
      }
      if (status === 404) {
        throw new HubStatusError(what.label, what.offset, status, `not found on the Hub (404)${detail ? `: ${detail}` : ''}`);
      }
      throw new HubStatusError(what.label, what.offset, status, `the server answered ${status} ${response.statusText}${detail ? `: ${detail}` : ''}`);
    }
  }

  /** One GET, following redirects ourselves where fetch shows them (Node) so the token stays on the Hub's origin. */
  private async follow(start: string, what: Attempt): Promise<Response> {
    let url = start;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const headers: Record<string, string> = {};
      if (what.range) headers.Range = `bytes=${what.range[0]}-${what.range[1]}`;
      const toHub = new URL(url).origin === this.origin;
      if (this.sendToken && this.token && toHub) headers.Authorization = `Bearer ${this.token}`;
      this.requests++;
      const response = await this.fetchImpl(url, { headers, redirect: this.browserRedirects ? 'follow' : 'manual', signal: this.signal, credentials: 'omit' });
      if (response.type === 'opaqueredirect') {
        // A browser: it hides the redirect's target from us, so let it follow (its fetch
        // drops the Authorization header on a redirect to another origin).
        this.browserRedirects = true;
        hop--;
        continue;
      }
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        await response.body?.cancel().catch(() => undefined);
        url = new URL(location, url).href;
        continue;
      }
      if (!response.url) Object.defineProperty(response, 'url', { value: url });
      return response;
    }
    throw new FormatError(what.label, what.offset, `more than ${MAX_REDIRECTS} redirects (a redirect loop?), the last to ${url}`);
  }

  private report(file: string): void {
    this.onProgress?.({ read: this.bytesRead, needed: this.bytesNeeded, file });
  }
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date; null when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | null {
  if (header === null || header.trim() === '') return null;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}
