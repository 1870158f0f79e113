// The importance matrix exports quantize with (llama-quantize --imatrix): a file the user
// gave (checked against the model as it is picked), or one computed from the calibration
// text. The page keeps the File, not its numbers: the engine reads it for each export (a
// restarted engine worker gets it again that way).
import { engine } from '../../engine/client.ts';
import { idleJob, runJob, type Job } from '../job.ts';
import type { ImatrixSummary } from '../types.ts';
import type { CalibrationText } from './calibration.ts';
import { patcher, tickets, type Slice } from './shared.ts';

export interface Imatrix {
  file: File;
  summary: ImatrixSummary;
  computed: boolean;
}

export interface ImatrixSlice {
  imatrix: Imatrix | null;
  /** A file being checked against the model; its error when it does not fit. */
  imatrixCheck: Job<ImatrixSummary>;
  /** The matrix being computed over the calibration text. */
  imatrixCompute: Job<Imatrix>;
  setImatrix: (imatrix: Imatrix | null) => void;
  /** Checks a file and uses it; a bad file leaves the matrix in use as it was. */
  checkImatrix: (file: File) => Promise<void>;
  computeImatrix: (text: CalibrationText | null) => Promise<void>;
}

export const IMATRIX_SLOTS = ['imatrixCheck', 'imatrixCompute'];
// The matrix belonged to the old model.
export const imatrixReset = (): Pick<ImatrixSlice, 'imatrix' | 'imatrixCheck' | 'imatrixCompute'> => ({
  imatrix: null,
  imatrixCheck: idleJob(),
  imatrixCompute: idleJob(),
});

export const imatrixSlice: Slice<ImatrixSlice> = (set) => ({
  ...imatrixReset(),
  setImatrix: (imatrix) => set({ imatrix }),
  checkImatrix: (file) =>
    runJob(tickets, 'imatrixCheck', {
      patch: patcher(set, 'imatrixCheck'),
      first: { done: 0, total: 1, label: `Checking ${file.name}…` },
      work: () => engine.checkImatrix(file),
      onResult: (summary) => set({ imatrix: { file, summary, computed: false } }),
    }),
  computeImatrix: (text) => {
    // The Calibration tab shows one error: the comparison's old one goes as this job starts.
    patcher(set, 'calibration')({ error: null });
    return runJob(tickets, 'imatrixCompute', {
      patch: patcher(set, 'imatrixCompute'),
      first: { done: 0, total: 1, label: 'Running the calibration text…' },
      work: async (onProgress) => {
        const { bytes, summary } = await engine.computeImatrix(text ? { text: text.content, dataset: text.name } : {}, onProgress);
        return { file: new File([bytes as Uint8Array<ArrayBuffer>], summary.name), summary, computed: true };
      },
      onResult: (imatrix) => set({ imatrix }),
    });
  },
});
