// The CPU forward pass's matrix products on `threads` worker threads (forward-worker.ts),
// each computing a range of the weight's rows with the WebAssembly SIMD kernel: the same
// numbers as one thread (model/fast-linear.ts; every output row is one worker's alone).
// The weights are shared, not copied: a tensor whose values live in a SharedArrayBuffer
// (eval's `sharedWeights`) is posted to each worker once; any other tensor, and products
// too small to repay the posting, run in this thread.
import { Worker } from 'node:worker_threads';
import type { Linear, WeightProvider } from '../model/families/linear.ts';
import { accumulateOf, fastCpuLinear, type Accumulate, type Sums } from '../model/fast-linear.ts';
import type { PackedTensor } from '../model/weights.ts';
import { loadFastCodecs } from '../quant/fast/node.ts';
import type { ForwardReply, ForwardRequest } from './forward-worker.ts';
import { tsxEsmApiUrl } from './quantize-pool.ts';

/** Below this many multiply-adds a product stays in this thread (posting costs ~0.1 ms). */
const MIN_POOLED_WORK = 1 << 20;

function workerScript(): { main: string | URL; eval: boolean } {
  if (import.meta.url.endsWith('.mjs')) return { main: new URL('./forward-worker.mjs', import.meta.url), eval: false };
  const entry = JSON.stringify(new URL('./forward-worker.ts', import.meta.url).href);
  return { main: `import(${JSON.stringify(tsxEsmApiUrl())}).then((tsx) => tsx.tsImport(${entry}, ${entry}))`, eval: true };
}

function sharedBuffer(a: ArrayBufferView): SharedArrayBuffer | null {
  return typeof SharedArrayBuffer !== 'undefined' && a.buffer instanceof SharedArrayBuffer ? a.buffer : null;
}

/** A copy of `a` in a SharedArrayBuffer (what the pool can hand its workers). */
export function sharedCopy<T extends Float32Array | Uint8Array>(a: T): T {
  const copy = new (a.constructor as new (b: SharedArrayBuffer) => T)(new SharedArrayBuffer(a.byteLength));
  copy.set(a as never);
  return copy;
}

export class ForwardPool {
  private readonly workers: Worker[];
  private readonly pending = new Map<number, { resolve: (y: Float32Array) => void; reject: (e: Error) => void }>();
  private readonly ids = new WeakMap<object, number>();
  private nextJob = 0;
  private nextTensor = 0;
  private failure: Error | null = null;

  private constructor(
    readonly threads: number,
    private readonly minPooledWork: number,
  ) {
    const script = workerScript();
    this.workers = Array.from({ length: threads }, (_, i) => {
      const w = new Worker(script.main, { eval: script.eval, name: `quantlab-forward-${i}` });
      w.on('message', (m: ForwardReply) => {
        const p = this.pending.get(m.job);
        if (!p) return;
        this.pending.delete(m.job);
        if ('error' in m) p.reject(new Error(m.error));
        else p.resolve(m.y);
      });
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => code !== 0 && this.fail(new Error(`a forward worker exited with code ${code}`)));
      return w;
    });
  }

  /** A pool of `threads` workers (the WebAssembly module built first, so the workers only load it). */
  static async start(threads: number, minPooledWork = MIN_POOLED_WORK): Promise<ForwardPool> {
    if (!(await loadFastCodecs())) throw new Error('--threads needs the WebAssembly module (QUANTLAB_FAST_CODECS=0 switches it off)');
    return new ForwardPool(threads, minPooledWork);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  /** The tensor's id in the workers, posting it first; null when its values are not shared. */
  private tensorId(values: Float32Array | Uint8Array, type: string, rows: number, cols: number): number | null {
    const known = this.ids.get(values);
    if (known !== undefined) return known;
    const buffer = sharedBuffer(values);
    if (!buffer) return null;
    const id = this.nextTensor++;
    const message: ForwardRequest = { kind: 'tensor', id, type, buffer, byteOffset: values.byteOffset, length: values.length, rows, cols };
    for (const w of this.workers) w.postMessage(message);
    this.ids.set(values, id);
    return id;
  }

  private product(id: number, x: Float32Array, n: number, r0: number, r1: number, cols: number, accumulate: Accumulate, worker: Worker): Promise<Float32Array> {
    if (this.failure) return Promise.reject(this.failure);
    const job = this.nextJob++;
    return new Promise((resolve, reject) => {
      this.pending.set(job, { resolve, reject });
      worker.postMessage({ kind: 'product', job, id, x: x.slice(0, n * cols), n, r0, r1, cols, accumulate } satisfies ForwardRequest);
    });
  }

  /** y = W·x with W's rows split evenly (pairs kept together) over the workers. */
  private async split(id: number, x: Float32Array, n: number, rows: number, cols: number, accumulate: Accumulate): Promise<Float32Array> {
    const per = Math.ceil(rows / this.threads / 2) * 2;
    const ranges: [number, number][] = [];
    for (let r = 0; r < rows; r += per) ranges.push([r, Math.min(rows, r + per)]);
    const parts = await Promise.all(ranges.map(([r0, r1], i) => this.product(id, x, n, r0, r1, cols, accumulate, this.workers[i])));
    const y = new Float32Array(n * rows);
    parts.forEach((part, i) => {
      const [r0, r1] = ranges[i];
      const m = r1 - r0;
      for (let t = 0; t < n; t++) y.set(part.subarray(t * m, (t + 1) * m), t * rows + r0);
    });
    return y;
  }

  /** fastCpuLinear's products on the workers, for tensors held in shared memory (`sums`: as fastCpuLinear's). */
  linear(weights: WeightProvider, packed: ReadonlyMap<string, PackedTensor> | null, sums: Sums = 'f64'): Linear {
    const local = fastCpuLinear(weights, packed, 0, sums);
    return (name, x, n, rows, cols) => {
      if (this.threads < 2 || rows * cols * n < this.minPooledWork || cols % 4 !== 0) return local(name, x, n, rows, cols);
      const p = packed?.get(name);
      const id = p ? this.tensorId(p.bytes, p.type.id, p.rows, p.cols) : this.tensorId(weights(name), 'f32', rows, cols);
      return id === null ? local(name, x, n, rows, cols) : this.split(id, x, n, rows, cols, accumulateOf(sums, p !== undefined));
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
