// The compute backend and what happened to the engine under the user (GPU lost, worker
// restarted), as the badge and the notice show them.
import { engine, onEngineEvent } from '../../engine/client.ts';
import { errorMessage } from '../job.ts';
import type { GpuStatus } from '../types.ts';
import type { Slice } from './shared.ts';

export interface EnvSlice {
  gpu: GpuStatus | null;
  notices: string[];
  setGpu: (g: GpuStatus) => void;
  /** Asks the engine which backend it runs on. */
  probeGpu: () => Promise<void>;
  /** Hears of GPU loss and engine restarts; returns an unsubscribe. */
  watchEngine: () => () => void;
  dismissNotices: () => void;
}

export const envSlice: Slice<EnvSlice> = (set) => ({
  gpu: null,
  notices: [],
  setGpu: (gpu) => set({ gpu }),
  probeGpu: () =>
    engine.gpuStatus().then(
      (gpu) => set({ gpu }),
      (e) => set({ gpu: { backend: 'cpu', detail: errorMessage(e) } }),
    ),
  watchEngine: () =>
    onEngineEvent((e) => {
      if (e.kind === 'gpu') {
        set({ gpu: e.status });
        if (e.status.backend === 'cpu') {
          const notice = `WebGPU stopped: ${e.status.detail}. The running job finishes on the CPU, later jobs run there too; nothing was lost.`;
          set((s) => ({ notices: [...s.notices, notice] }));
        }
      } else {
        const notice = `The engine stopped (${e.reason}). It was restarted on the CPU with your model loaded again, and the interrupted job runs again there; your results were kept.`;
        set((s) => ({ gpu: { backend: 'cpu', detail: `engine restarted after a crash (${e.reason})` }, notices: [...s.notices, notice] }));
      }
    }),
  dismissNotices: () => set({ notices: [] }),
});
