// The Model output tab's job: each preset's predictions against the F32 model's on a text.
import { engine } from '../../engine/client.ts';
import { idleJob, runJob, type Job } from '../job.ts';
import type { AppState } from '../store.ts';
import { patcher, tickets, type Slice } from './shared.ts';

export type ModelEval = Awaited<ReturnType<typeof engine.evalModel>>;

export const DEFAULT_EVAL_PRESETS = ['Q8_0', 'Q4_K_M', 'Q2_K'];

export interface ModelOutputJob extends Job<ModelEval> {
  /** The presets the next evaluation scores. */
  presets: string[];
}

export interface ModelOutputSlice {
  modelOutput: ModelOutputJob;
  toggleEvalPreset: (preset: string) => void;
  evaluate: () => Promise<void>;
}

export const MODEL_OUTPUT_SLOTS = ['modelOutput'];
export const modelOutputReset = (s: AppState): Pick<ModelOutputSlice, 'modelOutput'> => ({
  modelOutput: { ...idleJob<ModelEval>(), presets: s.modelOutput.presets },
});

export const modelOutputSlice: Slice<ModelOutputSlice> = (set, get) => ({
  modelOutput: { ...idleJob<ModelEval>(), presets: DEFAULT_EVAL_PRESETS },
  toggleEvalPreset: (p) =>
    set((s) => {
      const presets = s.modelOutput.presets.includes(p) ? s.modelOutput.presets.filter((x) => x !== p) : [...s.modelOutput.presets, p];
      return { modelOutput: { ...s.modelOutput, presets } };
    }),
  evaluate: () => {
    const presets = get().modelOutput.presets;
    return runJob(tickets, 'modelOutput', {
      patch: patcher(set, 'modelOutput'),
      first: { done: 0, total: 1, label: 'Reading the weights…' },
      keepResult: true,
      work: (onProgress) => engine.evalModel(presets, onProgress),
    });
  },
});
