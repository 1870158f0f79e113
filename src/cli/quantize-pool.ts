// The export's CPU quantizer in Node: `threads` threads (this one and threads - 1 workers),
// each given a share of a slab's rows. Rows quantize independently (quantize-rows.ts), so
// the bytes are the same as one thread's; llama-quantize splits its work the same way.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { TensorQuantizer } from '../export/write.ts';
import { type QuantizeJob, type QuantizeResult, joinResults, quantizeRows, splitJob } from '../quant/quantize-rows.ts';
import type { WorkerReply, WorkerRequest } from './quantize-worker.ts';

/** Below this many values per worker, posting the rows costs more than it saves: one thread does it. */
const MIN_ELEMENTS_PER_WORKER = 1 << 15;
/**
 * Parts per thread a job is cut into, taken from one queue by this thread and the workers
 * alike: a thread that is slower (a worker still starting, this thread writing the file)
 * takes fewer, so neither waits long for the other.
 */
const PARTS_PER_THREAD = 4;
/**
 * Values per millisecond at which this thread quantizes (and measures) a type faster than a
 * worker's start and the posting back and forth repay: such types (Q8_0, Q4_0, ... in
 * WebAssembly) stay in this thread, and no worker is started for them. (Measured on the
 * 322 MiB synthetic Llama's Q8_0, 2 cores: a worker, even with the rows in shared memory,
 * added ~0.2 s of CPU time and saved no wall time.)
 */
const INLINE_ELEMENTS_PER_MS = 100_000;
/**
 * Parts of a type this thread times before any worker is started for it: the first runs
 * WebAssembly's baseline code (Liftoff: Q8_0 at a fifth of its speed) until the optimized
 * code, compiled in the background, takes over (on a loaded machine, a part or two later),
 * so a type fast enough to stay here never starts the workers at all. For a slow type the
 * workers start a few milliseconds later.
 */
const TIMED_PARTS = 4;

/**
 * tsx's ESM API (the `import` target of its "./esm/api" export), which the workers use to
 * load TypeScript: loader hooks do not carry over to worker threads, and in Node 20 a
 * `--import tsx` in a worker's execArgv does not reach its entry either.
 */
export function tsxEsmApiUrl(): string {
  const pkgJson = createRequire(import.meta.url).resolve('tsx/package.json');
  const { exports } = JSON.parse(readFileSync(pkgJson, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  return pathToFileURL(join(dirname(pkgJson), exports['./esm/api'].import.default)).href;
}

/**
 * A worker's main script. In the CLI bundle (scripts/build-cli.mjs) this module is a .mjs
 * chunk beside the bundled worker, which starts in a few milliseconds. From the sources, a
 * .ts file cannot be a Worker's main script: a one-line script imports it through tsx (which
 * compiles the codecs first: about a second).
 */
function workerScript(): { main: string | URL; eval: boolean } {
  if (import.meta.url.endsWith('.mjs')) return { main: new URL('./quantize-worker.mjs', import.meta.url), eval: false };
  const entry = JSON.stringify(new URL('./quantize-worker.ts', import.meta.url).href);
  return { main: `import(${JSON.stringify(tsxEsmApiUrl())}).then((tsx) => tsx.tsImport(${entry}, ${entry}))`, eval: true };
}

function isShared(data: Float32Array): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && data.buffer instanceof SharedArrayBuffer;
}

export class WorkerPool implements TensorQuantizer {
  private workers: Worker[] | null = null;
  /** Set when a worker dies: every later job fails with it instead of waiting forever. */
  private failure: Error | null = null;
  private readonly pending = new Map<number, { resolve: (r: QuantizeResult) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  /** Values per millisecond this thread quantized each type at, from its first part. */
  private readonly rates = new Map<string, number>();
  /** Parts of each type this thread has timed. */
  private readonly timed = new Map<string, number>();
  /** Resolves when the worker has answered once (is loaded). */
  private readonly loaded = new Map<Worker, Promise<unknown>>();

  constructor(readonly threads = availableParallelism()) {}

  /** The threads, started on first need. */
  private start(): Worker[] {
    if (this.workers) return this.workers;
    const script = workerScript();
    this.workers = Array.from({ length: this.threads - 1 }, (_, i) => {
      const worker = new Worker(script.main, { eval: script.eval, name: `quantlab-quantize-${i}` });
      this.loaded.set(worker, new Promise((resolve) => worker.once('message', resolve)));
      worker.on('message', (reply: WorkerReply) => this.settle(reply));
      worker.on('error', (error) => this.failAll(error));
      worker.on('exit', (code) => {
        if (this.workers) this.failAll(new Error(`quantize worker ${i} stopped (exit code ${code})`));
      });
      return worker;
    });
    return this.workers;
  }

  async quantize(job: QuantizeJob, signal?: AbortSignal): Promise<QuantizeResult> {
    signal?.throwIfAborted();
    const minRows = Math.ceil(MIN_ELEMENTS_PER_WORKER / job.rowLength);
    const fast = () => (this.rates.get(job.type) ?? 0) >= INLINE_ELEMENTS_PER_MS;
    // A type known to be fast here is done in one piece (one pass, no parts to join).
    if (fast() || splitJob(job, 2, minRows).length === 1) return quantizeRows(job);
    const parts = splitJob(job, this.threads * PARTS_PER_THREAD, Math.ceil(minRows / PARTS_PER_THREAD));
    const results: QuantizeResult[] = new Array(parts.length);
    let next = 0;
    // A type's first parts are timed here, before any worker is involved.
    while (next < parts.length && !fast() && (this.timed.get(job.type) ?? 0) < TIMED_PARTS) {
      results[next] = this.quantizeTimed(parts[next]);
      next++;
    }
    if (fast() || next === parts.length) {
      for (; next < parts.length; next++) results[next] = quantizeRows(parts[next]);
      return joinResults(results);
    }
    const workers = this.start();
    // Each worker has up to two parts in hand once loaded (the next one waits in its queue,
    // so it never idles while this thread finishes a part before reading its reply), one
    // while loading (this thread takes the rest meanwhile), and takes another as soon as it
    // sends one back.
    const posted = Promise.all(
      workers.flatMap((worker) => [0, 1].map(async (lane) => {
        if (lane === 1) await this.loaded.get(worker);
        while (next < parts.length) {
          const i = next++;
          results[i] = await this.post(worker, parts[i]);
        }
      })),
    );
    posted.catch(() => undefined); // awaited below; this only keeps a throw from quantizeRows from orphaning it
    // This thread takes parts too, letting the workers' replies in between.
    while (next < parts.length) {
      const i = next++;
      results[i] = this.quantizeTimed(parts[i]);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await posted;
    return joinResults(results);
  }

  /**
   * quantizeRows in this thread, keeping the best rate seen for the type: a first call can
   * be slow (WebAssembly's baseline compiler runs first), so later parts may lift it above
   * INLINE_ELEMENTS_PER_MS.
   */
  private quantizeTimed(part: QuantizeJob): QuantizeResult {
    const t0 = performance.now();
    const result = quantizeRows(part);
    const rate = part.data.length / Math.max(performance.now() - t0, 1e-3);
    this.rates.set(part.type, Math.max(rate, this.rates.get(part.type) ?? 0));
    this.timed.set(part.type, (this.timed.get(part.type) ?? 0) + 1);
    return result;
  }

  /** Ends the threads (the process cannot exit while they run). */
  async close(): Promise<void> {
    const workers = this.workers ?? [];
    this.workers = null;
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private post(worker: Worker, part: QuantizeJob): Promise<QuantizeResult> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    // Rows in shared memory go as they are; others are copied, since posting a view would
    // clone its whole buffer (the entire tensor), and the copy is handed over.
    const data = isShared(part.data) ? part.data : part.data.slice();
    const importance = part.importance?.slice() ?? null;
    const request: WorkerRequest = { id, job: { ...part, data, importance } };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage(request, isShared(data) ? [] : [data.buffer as ArrayBuffer]);
    });
  }

  private settle(reply: WorkerReply): void {
    const waiter = this.pending.get(reply.id);
    if (!waiter) return;
    this.pending.delete(reply.id);
    if ('error' in reply) waiter.reject(new Error(reply.error));
    else waiter.resolve({ bytes: reply.bytes, sums: reply.sums });
  }

  private failAll(error: Error): void {
    this.failure ??= error;
    for (const { reject } of this.pending.values()) reject(error);
    this.pending.clear();
  }
}
