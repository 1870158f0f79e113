// The page's handle on the engine worker, which survives the worker's death: a worker holds
// a Web Lock while it lives, so the page learns at once when it stops (a crash, an error
// that escaped it, self.close()), however busy it was. Then every call in flight is
// rejected with EngineCrashedError, a new worker starts on the CPU (the crash may have
// been the GPU's) with the model's files loaded again, and each interrupted job is run
// again there; an export is not (its first bytes are already written: it fails, and the
// export panel discards the file). Listeners hear of restarts and of GPU loss.
import { proxy, wrap, type Remote } from 'comlink';
import type { HubLoadRequest, WorkerApi } from './worker.ts';
import type { HubProgress } from '../hub/client.ts';
import type { GpuStatus } from './types.ts';
import type { PlanMode } from '../quant/presets.ts';
import type { BudgetTarget } from '../budget/budget.ts';
import type { OverrideSpec } from '../quant/plan.ts';
import type { MatmulRequest } from './matmul-job.ts';
import type { EvalRequest } from './jobs/eval.ts';
import type { TrainProgress, TrainRequest } from './jobs/train.ts';
import type { CalibrationCompareOptions, CompareRequest, ExportJobOptions, Progress } from './types.ts';

/** The engine worker stopped while a call was in flight. */
export class EngineCrashedError extends Error {
  constructor(reason: string) {
    super(`the engine stopped (${reason})`);
    this.name = 'EngineCrashedError';
  }
}

export type EngineEvent =
  | { kind: 'gpu'; status: GpuStatus }
  | { kind: 'restarted'; reason: string };

/** Calls that must not be repeated on a new worker. */
const NO_RERUN: ReadonlySet<string> = new Set(['exportGguf', 'trainingFile', 'cancel', 'alive', 'watchGpu', 'cancelHubLoad']);

interface Live {
  readonly api: Remote<WorkerApi>;
  readonly worker: Worker;
  /** Resolves with a reason when the worker is gone. */
  readonly dead: Promise<string>;
}

const listeners = new Set<(e: EngineEvent) => void>();
const emit = (e: EngineEvent) => listeners.forEach((l) => l(e));
/** The files of the model the worker has loaded, to load them again in a new one (File handles, not bytes). */
let loadedFiles: File[] | null = null;
/** Or the Hub model it has loaded (with the token, if one was needed: kept in memory only). */
let loadedHub: { request: HubLoadRequest; onTransfer?: (p: HubProgress) => void } | null = null;

function startWorker(onCpu: boolean): Live {
  const id = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: `quantlab-engine ${id}${onCpu ? ' cpu' : ''}` });
  const api = wrap<WorkerApi>(worker);
  const dead = new Promise<string>((resolve) => {
    worker.addEventListener('error', (e) => {
      e.preventDefault();
      resolve(`an error escaped the engine worker: ${e.message || 'unknown error'}`);
    });
    worker.addEventListener('messageerror', () => resolve('a message from the engine worker could not be read'));
    if (typeof navigator.locks?.request === 'function') {
      api.alive().then(
        () => navigator.locks.request(`quantlab-engine-${id}`, () => resolve('the engine worker stopped')),
        () => resolve('the engine worker stopped'),
      );
    }
  });
  void api.watchGpu(proxy((status: GpuStatus) => emit({ kind: 'gpu', status })));
  return { api, worker, dead };
}

let live = startWorker(false);
let restarting: Promise<void> | null = null;

/** Replaces a dead worker (once, however many calls saw it die) and loads the model again. */
function restart(dead: Live, reason: string): Promise<void> {
  if (live !== dead) return restarting ?? Promise.resolve();
  dead.worker.terminate();
  live = startWorker(true);
  emit({ kind: 'restarted', reason });
  const files = loadedFiles;
  const hub = loadedHub;
  restarting = (async () => {
    if (files) await live.api.load(files);
    else if (hub) await live.api.loadHub(hub.request, hub.onTransfer && proxy(hub.onTransfer));
  })().finally(() => (restarting = null));
  return restarting;
}

async function callOn<T>(target: Live, run: (api: Remote<WorkerApi>) => Promise<T>): Promise<T> {
  const crashed = target.dead.then((reason) => {
    throw new EngineCrashedError(reason);
  });
  try {
    return await Promise.race([run(target.api), crashed]);
  } catch (e) {
    if (e instanceof EngineCrashedError) await restart(target, e.message.replace(/^the engine stopped \((.*)\)$/, '$1'));
    throw e;
  }
}

async function call<T>(method: string, run: (api: Remote<WorkerApi>) => Promise<T>): Promise<T> {
  await restarting;
  try {
    return await callOn(live, run);
  } catch (e) {
    if (!(e instanceof EngineCrashedError) || NO_RERUN.has(method)) throw e;
    return callOn(live, run); // once more, on the new worker (CPU)
  }
}

/** The worker's API, each call watched for the worker's death (see the top of this file). */
const worker = new Proxy({} as Remote<WorkerApi>, {
  get: (_, method: string) =>
    (...args: unknown[]) =>
      call(method, async (api) => {
        const result = await (api[method as keyof WorkerApi] as (...a: unknown[]) => Promise<unknown>)(...args);
        if (method === 'load') [loadedFiles, loadedHub] = [args[0] as File[], null];
        return result;
      }),
});

/** Hear of engine restarts and GPU loss; returns an unsubscribe. */
export function onEngineEvent(listener: (e: EngineEvent) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export const engine = {
  gpuStatus: () => worker.gpuStatus(),
  load: (files: File[]) => worker.load(files),
  /** A model on the Hugging Face Hub, read by byte ranges in the worker; `onTransfer` hears bytes read for as long as it is loaded. */
  loadHub: async (request: HubLoadRequest, onTransfer?: (p: HubProgress) => void) => {
    const summary = await worker.loadHub(request, onTransfer ? proxy(onTransfer) : undefined);
    [loadedFiles, loadedHub] = [null, { request, onTransfer }];
    return summary;
  },
  cancelHubLoad: () => worker.cancelHubLoad(),
  compare: (request: CompareRequest, onProgress?: (p: Progress) => void, imatrix?: File) =>
    worker.compare(request, onProgress ? proxy(onProgress) : undefined, imatrix),
  plan: (mode: PlanMode, overrides: OverrideSpec[], options: { hasImatrix?: boolean } = {}) => worker.plan(mode, overrides, options),
  presetSizes: () => worker.presetSizes(),
  planErrors: (mode: PlanMode, overrides: OverrideSpec[], onProgress?: (p: Progress) => void) =>
    worker.planErrors(mode, overrides, onProgress ? proxy(onProgress) : undefined),
  matmulCheck: (request: MatmulRequest, onProgress?: (p: Progress) => void) =>
    worker.matmulCheck(request, onProgress ? proxy(onProgress) : undefined),
  exportGguf: (
    mode: PlanMode,
    overrides: OverrideSpec[],
    sink: (chunk: Uint8Array) => Promise<void>,
    onProgress?: (p: Progress) => void,
    options?: ExportJobOptions,
  ) => worker.exportGguf(mode, overrides, proxy(sink), onProgress ? proxy(onProgress) : undefined, options),
  evalModel: (presets: string[], onProgress?: (p: Progress) => void, options: Pick<EvalRequest, 'activations'> = {}) =>
    worker.evalModel(presets, onProgress ? proxy(onProgress) : undefined, options),
  budgetScan: (onProgress?: (p: Progress) => void) => worker.budgetScan(onProgress ? proxy(onProgress) : undefined),
  compareCalibration: (options: CalibrationCompareOptions, onProgress?: (p: Progress) => void) =>
    worker.compareCalibration(options, onProgress ? proxy(onProgress) : undefined),
  budgetPlan: (target: BudgetTarget) => worker.budgetPlan(target),
  activationStats: (options: { text?: string }, onProgress?: (p: Progress) => void) =>
    worker.activationStats(options, onProgress ? proxy(onProgress) : undefined),
  smoothQuantSweep: (options: { text?: string }, onProgress?: (p: Progress) => void) =>
    worker.smoothQuantSweep(options, onProgress ? proxy(onProgress) : undefined),
  checkImatrix: (file: File) => worker.checkImatrix(file),
  computeImatrix: (options: { text?: string; dataset?: string }, onProgress?: (p: Progress) => void) =>
    worker.computeImatrix(options, onProgress ? proxy(onProgress) : undefined),
  train: (request: TrainRequest, onProgress?: (p: TrainProgress) => void) => worker.train(request, onProgress ? proxy(onProgress) : undefined),
  trainingFile: (name: string, sink: (chunk: Uint8Array) => Promise<void>) => worker.trainingFile(name, proxy(sink)),
  cancel: () => worker.cancel(),
};
