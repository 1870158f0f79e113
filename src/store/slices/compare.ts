// The Compare tab's job: one tensor quantized into each selected type, with error metrics,
// histograms and one block to inspect.
import { engine } from '../../engine/client.ts';
import { idleJob, runJob, type Job } from '../job.ts';
import type { AppState } from '../store.ts';
import type { CompareRequest, CompareResult } from '../types.ts';
import { patcher, tickets, type Slice } from './shared.ts';

export interface CompareJob extends Job<CompareResult> {
  /** The block the inspector shows (the comparison computes it, so it is part of the request). */
  blockIndex: number;
  /** The request this job runs or ran, as a key: the same request is not run twice. */
  request: string | null;
}

export interface CompareSlice {
  compare: CompareJob;
  setBlockIndex: (i: number) => void;
  /** Runs the comparison unless this very one is running or has its result (a tab shown again). */
  ensureCompare: (request: CompareRequest) => void;
}

export const COMPARE_SLOTS = ['compare'];

/** The state of a fresh comparison; the block picked stays. */
export const compareReset = (s: AppState): Pick<CompareSlice, 'compare'> => ({
  compare: { ...idleJob<CompareResult>(), blockIndex: s.compare.blockIndex, request: null },
});

// Files get an id each: a new importance matrix (computed or dropped) is a new comparison.
const fileIds = new WeakMap<File, number>();
let lastFileId = 0;
function fileId(f: File | undefined): number {
  if (!f) return 0;
  if (!fileIds.has(f)) fileIds.set(f, ++lastFileId);
  return fileIds.get(f)!;
}
const keyOf = (r: CompareRequest, imatrix: File | undefined) => JSON.stringify([r.tensor, r.types, r.blockIndex ?? 0, fileId(imatrix)]);

export const compareSlice: Slice<CompareSlice> = (set, get) => ({
  compare: { ...idleJob<CompareResult>(), blockIndex: 0, request: null },
  setBlockIndex: (blockIndex) => set((s) => ({ compare: { ...s.compare, blockIndex } })),
  ensureCompare: (request) => {
    // The importance matrix in use (Calibration tab or a dropped file) weights the types that take one, as exports do.
    const { compare, imatrix } = get();
    const key = keyOf(request, imatrix?.file);
    if (compare.request === key && (compare.status === 'running' || compare.status === 'done')) return;
    const patch = patcher(set, 'compare');
    patch({ request: key });
    // A newer comparison makes the engine drop the older one (it checks its generation).
    void runJob(tickets, 'compare', {
      patch,
      first: { done: 0, total: request.types.length, label: `Quantizing ${request.tensor}…` },
      // The charts of the last result stay up while the next one computes.
      keepResult: true,
      work: (onProgress) => engine.compare(request, onProgress, imatrix?.file),
    });
  },
});
