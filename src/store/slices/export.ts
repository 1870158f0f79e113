// Exports: a GGUF streamed from the engine into a sink the page chose (a file on disk or a
// download). Each place that exports has its own slot, so the Whole model tab's export and
// the Budget tab's each keep their own progress and message.
import { engine } from '../../engine/client.ts';
import type { ExportJobOptions } from '../../engine/types.ts';
import { idleJob, runJob, type Job } from '../job.ts';
import type { OverrideSpec, PlanMode } from '../types.ts';
import { patcherOf, tickets, type Slice } from './shared.ts';

/** Where the export's bytes go. */
export interface Sink {
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<void>;
  abort(): Promise<void>;
}

export type ExportSlot = 'wholeModel' | 'budget' | 'calibration';

export interface ExportJob extends Job<number> {
  fileName: string | null;
  /** performance.now() when it started, for the time-left estimate. */
  startedAt: number;
}

export interface ExportRequest {
  mode: PlanMode;
  overrides: OverrideSpec[];
  fileName: string;
  sink: Sink;
  /** What the first progress says it will write (bytes, or 1 step when unknown). */
  total: number;
  firstLabel?: string;
  /** GPTQ's or AWQ's calibration; the importance matrix in use is added here. */
  options?: Omit<ExportJobOptions, 'imatrix'>;
  /** Quantize with the importance matrix in use (the Whole model and Budget tabs do). */
  withImatrix?: boolean;
}

export interface ExportSlice {
  exports: Record<ExportSlot, ExportJob>;
  /** Writes the GGUF into the sink; the sink is closed when all of it is written, aborted otherwise. */
  startExport: (slot: ExportSlot, request: ExportRequest) => Promise<void>;
}

const idleExport = (): ExportJob => ({ ...idleJob<number>(), fileName: null, startedAt: 0 });

export const exportSlice: Slice<ExportSlice> = (set, get) => ({
  exports: { wholeModel: idleExport(), budget: idleExport(), calibration: idleExport() },
  startExport: (slot, r) => {
    const patch = patcherOf(set, (s) => s.exports[slot], (s, job) => ({ exports: { ...s.exports, [slot]: job } }));
    patch({ fileName: r.fileName, startedAt: performance.now() });
    const imatrix = r.withImatrix ? get().imatrix?.file : undefined;
    return runJob(tickets, `export:${slot}`, {
      patch,
      first: { done: 0, total: r.total, label: r.firstLabel ?? 'Starting…' },
      work: async (onProgress) => {
        try {
          const written = await engine.exportGguf(r.mode, r.overrides, (chunk) => r.sink.write(chunk), onProgress, { ...r.options, imatrix });
          await r.sink.close();
          return written;
        } catch (e) {
          // Nothing half-written is left looking complete.
          await r.sink.abort();
          throw e;
        }
      },
    });
  },
});
