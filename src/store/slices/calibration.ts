// The Calibration tab's job: every layer quantized at ~4 bits six ways (RTN, Q4_K with and
// without an imatrix, AWQ, GPTQ), scored on held-out text; and the text and settings it uses.
import { engine } from '../../engine/client.ts';
import { idleJob, runJob, type Job } from '../job.ts';
import type { AppState } from '../store.ts';
import { patcher, tickets, type Slice } from './shared.ts';

export type CalibrationComparison = Awaited<ReturnType<typeof engine.compareCalibration>>;

export interface CalibrationText {
  name: string;
  content: string;
}

export interface CalibrationJob extends Job<CalibrationComparison> {
  /** The calibration text (null: the built-in stories), the INT4 group, GPTQ in act-order. */
  text: CalibrationText | null;
  group: number;
  actOrder: boolean;
}

export interface CalibrationSlice {
  calibration: CalibrationJob;
  setCalibrationOptions: (o: Partial<Pick<CalibrationJob, 'text' | 'group' | 'actOrder'>>) => void;
  /** Reads a dropped text file as UTF-8; a file that is not says so in the tab's error. */
  pickCalibrationText: (file: File) => Promise<void>;
  runCalibration: () => Promise<void>;
}

export const CALIBRATION_SLOTS = ['calibration'];
export const calibrationReset = (s: AppState): Pick<CalibrationSlice, 'calibration'> => ({
  calibration: { ...s.calibration, ...idleJob<CalibrationComparison>() },
});

export const calibrationSlice: Slice<CalibrationSlice> = (set, get) => ({
  calibration: { ...idleJob<CalibrationComparison>(), text: null, group: 32, actOrder: false },
  setCalibrationOptions: (o) => set((s) => ({ calibration: { ...s.calibration, ...o } })),
  pickCalibrationText: async (file) => {
    const patch = patcher(set, 'calibration');
    patch({ error: null });
    patcher(set, 'imatrixCompute')({ error: null });
    try {
      const content = new TextDecoder('utf-8', { fatal: true }).decode(await file.arrayBuffer());
      patch({ text: { name: file.name, content } });
    } catch {
      patch({ error: `${file.name} is not valid UTF-8 text` });
    }
  },
  runCalibration: () => {
    const { text, group, actOrder } = get().calibration;
    // The tab shows one error: the importance matrix's old one goes as this job starts.
    patcher(set, 'imatrixCompute')({ error: null });
    return runJob(tickets, 'calibration', {
      patch: patcher(set, 'calibration'),
      first: { done: 0, total: 1, label: 'Reading the weights…' },
      keepResult: true,
      work: (onProgress) => engine.compareCalibration({ calibrationText: text?.content, group, actOrder }, onProgress),
    });
  },
});
