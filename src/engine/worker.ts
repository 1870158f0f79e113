// The engine in a Web Worker: the page stays responsive while tensors are read and
// quantized. Files (Blobs) are structured-cloned in; only summaries and results come out.
import { expose, transfer, type ProxyMarked } from 'comlink';
import { blobSource } from '../formats/bytes.ts';
import { createGpu } from '../gpu/device.ts';
import { Engine } from './engine.ts';
import { readImatrix } from '../formats/imatrix.ts';
import type { OverrideSpec } from '../quant/plan.ts';
import type { PlanMode } from '../quant/presets.ts';
import type { BudgetTarget } from '../budget/budget.ts';
import type { MatmulRequest } from './matmul-job.ts';
import { CancelledError } from './cancelled.ts';
import type { HubProgress } from '../hub/client.ts';
import type { CalibrationCompareOptions, CompareRequest, ExportJobOptions, GpuStatus, Progress } from './types.ts';
import { fastCodecsInstalled, installFastCodecs } from '../quant/fast/wasm-codecs.ts';
import type { EvalRequest } from './jobs/eval.ts';
import type { TrainProgress, TrainRequest } from './jobs/train.ts';
// Built from wasm/ by the Vite plugin (vite.config.ts) before Vite resolves this import.
import fastCodecsUrl from '../../wasm/build/quant.wasm?url';
import relaxedMatmulUrl from '../../wasm/build/matmul-relaxed.wasm?url&no-inline';

// The page names each engine worker 'quantlab-engine <id>[ cpu]' (client.ts): the id names
// the Web Lock it holds while it lives; ' cpu' marks one started again after a crash, which
// keeps off the GPU (the crash may have been the GPU's).
const [, workerId = 'main', restartedOnCpu] = self.name.split(' ');
const engine = new Engine(restartedOnCpu ? null : () => createGpu());

// The WebAssembly fast codecs (same bytes as the reference, faster); the reference codecs
// run if they cannot be installed. A model's load waits for them, so every job runs them.
// The f32-sum products take the relaxed-SIMD module (fused multiply-add, as llama.cpp) where
// the browser validates it; without it (or if it fails to load) quant.wasm's own products run.
const bytesOf = (url: string) => fetch(url).then((response) => response.arrayBuffer());
const fastCodecs = Promise.all([bytesOf(fastCodecsUrl), bytesOf(relaxedMatmulUrl).catch(() => null)])
  .then(([bytes, relaxed]) => installFastCodecs(bytes, relaxed))
  .catch((error) => console.warn('quantlab: fast codecs unavailable, using the reference codecs', error));

const api = {
  gpuStatus: async (): Promise<GpuStatus> => {
    await fastCodecs; // the status says which CPU codecs run
    if (!restartedOnCpu) return engine.gpuStatus();
    const cpuCodecs = fastCodecsInstalled() ? 'webassembly' : 'reference';
    return { backend: 'cpu', detail: 'the engine was restarted after a crash and runs on the CPU', cpuCodecs };
  },
  /** Resolves once this worker holds its life lock: the page asks for the lock and gets it when the worker is gone. */
  alive: () =>
    new Promise<void>((held) => {
      void navigator.locks.request(`quantlab-engine-${workerId}`, () => {
        held();
        return new Promise<void>(() => {});
      });
    }),
  watchGpu: (listener: ((status: GpuStatus) => void) & ProxyMarked) => void engine.watchGpu(listener),
  load: async (files: File[]) => {
    await fastCodecs;
    return engine.load(files.map((f) => blobSource(f, f.name)));
  },
  /**
   * A model on the Hugging Face Hub (src/hub): its files listed, then read by byte ranges
   * from this worker. `onTransfer` hears bytes read against bytes needed for as long as the
   * model is loaded (its reads go on in every job); `cancelHubLoad` stops the load.
   */
  loadHub: async (request: HubLoadRequest, onTransfer?: ((p: HubProgress) => void) & ProxyMarked) => {
    await fastCodecs;
    hubLoad?.abort(new CancelledError());
    const abort = (hubLoad = new AbortController());
    try {
      const { openHubModel } = await import('../hub/repo.ts');
      const model = await openHubModel(request.ref, { endpoint: request.endpoint, token: request.token, signal: abort.signal, onProgress: onTransfer && throttled(onTransfer) });
      return await engine.load(model.sources);
    } finally {
      if (hubLoad === abort) hubLoad = null;
    }
  },
  cancelHubLoad: () => hubLoad?.abort(new CancelledError()),
  /** `imatrix`: the page's importance matrix file, weighting every type that takes importance (as an export does). */
  compare: async (request: CompareRequest, onProgress?: ((p: Progress) => void) & ProxyMarked, imatrix?: File) =>
    engine.compare(request, onProgress, imatrix && (await readImatrix(blobSource(imatrix)))),
  plan: (mode: PlanMode, overrides: OverrideSpec[], options: { hasImatrix?: boolean }) => engine.plan(mode, overrides, options),
  presetSizes: () => engine.presetSizes(),
  planErrors: (mode: PlanMode, overrides: OverrideSpec[], onProgress?: ((p: Progress) => void) & ProxyMarked) =>
    engine.planErrors(mode, overrides, onProgress),
  matmulCheck: (request: MatmulRequest, onProgress?: ((p: Progress) => void) & ProxyMarked) => engine.matmulCheck(request, onProgress),
  checkImatrix: (file: File) => engine.checkImatrix(blobSource(file)),
  /** The imatrix GGUF file's bytes come out transferred. */
  computeImatrix: async (options: { text?: string; dataset?: string }, onProgress?: ((p: Progress) => void) & ProxyMarked) => {
    const result = await engine.computeImatrix(onProgress, options);
    return transfer(result, [result.bytes.buffer as ArrayBuffer]);
  },
  /** Streams the GGUF to `sink` on the page, chunk by chunk (each transferred, not copied). */
  exportGguf: async (
    mode: PlanMode,
    overrides: OverrideSpec[],
    sink: ((chunk: Uint8Array) => Promise<void>) & ProxyMarked,
    onProgress?: ((p: Progress) => void) & ProxyMarked,
    options: ExportJobOptions = {},
  ) =>
    engine.exportGguf(
      mode,
      overrides,
      (chunk) => sink(transfer(chunk, [chunk.buffer as ArrayBuffer])),
      onProgress && ((p) => onProgress({ done: p.done, total: p.total, label: p.label })),
      {
        gptq: options.gptq,
        awq: options.awq,
        // Read again for each export (it is small): the page keeps the file, so a restarted worker has it too.
        imatrix: options.imatrix && { matrix: await readImatrix(blobSource(options.imatrix)), fileArgument: options.imatrix.name },
      },
    ),
  evalModel: (presets: string[], onProgress?: ((p: Progress) => void) & ProxyMarked, options: Pick<EvalRequest, 'activations'> = {}) =>
    engine.evalModel(presets, onProgress, options),
  budgetScan: (onProgress?: ((p: Progress) => void) & ProxyMarked) => engine.budgetScan(onProgress),
  compareCalibration: (options: CalibrationCompareOptions, onProgress?: ((p: Progress) => void) & ProxyMarked) =>
    engine.compareCalibration(onProgress, options),
  budgetPlan: (target: BudgetTarget) => engine.budgetPlan(target),
  activationStats: (options: { text?: string }, onProgress?: ((p: Progress) => void) & ProxyMarked) => engine.activationStats(onProgress, options),
  /** The sweep without its statistics (activationStats gives those). */
  smoothQuantSweep: async (options: { text?: string }, onProgress?: ((p: Progress) => void) & ProxyMarked) => {
    const { stats: _stats, ...sweep } = await engine.smoothQuantSweep(onProgress, options);
    return sweep;
  },
  train: (request: TrainRequest, onProgress?: ((p: TrainProgress) => void) & ProxyMarked) => engine.train(request, onProgress),
  /** Streams one of the last training run's files to `sink` on the page: copies transferred (a chunk may be a view of the run's own weights, kept for the next download). */
  trainingFile: (name: string, sink: ((chunk: Uint8Array) => Promise<void>) & ProxyMarked) =>
    engine.trainingFile(name, (chunk) => {
      const copy = chunk.slice();
      return sink(transfer(copy, [copy.buffer]));
    }),
  cancel: () => engine.cancel(),
};

/** What the page asks of the Hub: a reference as parseHubRef reads it, the endpoint, a token (only after a 401/403). */
export interface HubLoadRequest {
  readonly ref: string;
  readonly endpoint?: string;
  readonly token?: string;
}

/** The Hub load in progress, which cancelHubLoad stops (the model's later reads are not under it). */
let hubLoad: AbortController | null = null;

/** At most one progress message per HUB_PROGRESS_MS, and always the last one (a read's end). */
const HUB_PROGRESS_MS = 200;
function throttled(listener: (p: HubProgress) => void): (p: HubProgress) => void {
  let last = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let latest: HubProgress | null = null;
  const send = () => {
    timer = null;
    last = performance.now();
    if (latest) void listener(latest);
  };
  return (p) => {
    latest = p;
    if (timer) return;
    const wait = HUB_PROGRESS_MS - (performance.now() - last);
    if (wait <= 0 && p.read === p.needed) send();
    else timer = setTimeout(send, Math.max(0, wait));
  };
}

export type WorkerApi = typeof api;

expose(api);
