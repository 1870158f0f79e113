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
import type { CalibrationCompareOptions, CompareRequest, ExportJobOptions, GpuStatus, Progress } from './types.ts';
import { fastCodecsInstalled, installFastCodecs } from '../quant/fast/wasm-codecs.ts';
// Built from wasm/ by the Vite plugin (vite.config.ts) before Vite resolves this import.
import fastCodecsUrl from '../../wasm/build/quant.wasm?url';

// The page names each engine worker 'quantlab-engine <id>[ cpu]' (client.ts): the id names
// the Web Lock it holds while it lives; ' cpu' marks one started again after a crash, which
// keeps off the GPU (the crash may have been the GPU's).
const [, workerId = 'main', restartedOnCpu] = self.name.split(' ');
const engine = new Engine(restartedOnCpu ? null : () => createGpu());

// The WebAssembly fast codecs (same bytes as the reference, faster); the reference codecs
// run if they cannot be installed. A model's load waits for them, so every job runs them.
const fastCodecs = fetch(fastCodecsUrl)
  .then((response) => response.arrayBuffer())
  .then((bytes) => installFastCodecs(bytes))
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
  compare: (request: CompareRequest, onProgress?: ((p: Progress) => void) & ProxyMarked) => engine.compare(request, onProgress),
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
  evalModel: (presets: string[], onProgress?: ((p: Progress) => void) & ProxyMarked) => engine.evalModel(presets, onProgress),
  budgetScan: (onProgress?: ((p: Progress) => void) & ProxyMarked) => engine.budgetScan(onProgress),
  compareCalibration: (options: CalibrationCompareOptions, onProgress?: ((p: Progress) => void) & ProxyMarked) =>
    engine.compareCalibration(onProgress, options),
  budgetPlan: (target: BudgetTarget) => engine.budgetPlan(target),
  cancel: () => engine.cancel(),
};

export type WorkerApi = typeof api;

expose(api);
