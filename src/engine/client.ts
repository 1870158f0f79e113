// The page's handle on the engine worker.
import { proxy, wrap } from 'comlink';
import type { WorkerApi } from './worker.ts';
import type { PlanMode } from '../quant/presets.ts';
import type { OverrideSpec } from './plan.ts';
import type { MatmulRequest } from './matmul-job.ts';
import type { CompareRequest, Progress } from './types.ts';

const worker = wrap<WorkerApi>(new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'quantlab-engine' }));

export const engine = {
  gpuStatus: () => worker.gpuStatus(),
  load: (files: File[]) => worker.load(files),
  compare: (request: CompareRequest, onProgress?: (p: Progress) => void) =>
    worker.compare(request, onProgress ? proxy(onProgress) : undefined),
  plan: (mode: PlanMode, overrides: OverrideSpec[]) => worker.plan(mode, overrides),
  presetSizes: () => worker.presetSizes(),
  planErrors: (mode: PlanMode, overrides: OverrideSpec[], onProgress?: (p: Progress) => void) =>
    worker.planErrors(mode, overrides, onProgress ? proxy(onProgress) : undefined),
  matmulCheck: (request: MatmulRequest, onProgress?: (p: Progress) => void) =>
    worker.matmulCheck(request, onProgress ? proxy(onProgress) : undefined),
  exportGguf: (mode: PlanMode, overrides: OverrideSpec[], sink: (chunk: Uint8Array) => Promise<void>, onProgress?: (p: Progress) => void) =>
    worker.exportGguf(mode, overrides, proxy(sink), onProgress ? proxy(onProgress) : undefined),
  evalModel: (presets: string[], onProgress?: (p: Progress) => void) => worker.evalModel(presets, onProgress ? proxy(onProgress) : undefined),
  cancel: () => worker.cancel(),
};
