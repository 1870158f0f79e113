// The Model output tab's job: each preset's predictions against the F32 model's on a text.
import { engine } from '../../engine/client.ts';
import type { ActivationMode } from '../../model/activations.ts';
import { idleJob, runJob, type Job } from '../job.ts';
import type { AppState } from '../store.ts';
import { patcher, tickets, type Slice } from './shared.ts';

export type ModelEval = Awaited<ReturnType<typeof engine.evalModel>>;

export const DEFAULT_EVAL_PRESETS = ['Q8_0', 'Q4_K_M', 'Q2_K'];

export type { ActivationMode };
// The activation modes of the tab's selector (docs/activations.md), with what each means.
// A type-only import keeps the model code out of the page's main bundle; the Record's keys
// must be every mode (tsc), in model/activations.ts's order.
const ACTIVATION_TITLES: Record<ActivationMode, string> = {
  f32: 'Inputs of every product in f32: the weights’ effect alone',
  ggml: 'As llama.cpp’s CPU backend: each product’s input rounded to its weight type’s vec_dot_type (q8_0, q8_K, f16…)',
  int8: 'Per-token dynamic absmax INT8 inputs (W8A8 with Q8_0 weights)',
  'int8-static': 'INT8 inputs with one scale per tensor, calibrated on the built-in calibration text',
  fp8_e4m3: 'Per-token FP8 E4M3 inputs',
  'llm.int8': 'LLM.int8: input columns with any |x| ≥ 6 in f16 with f16 weights, the rest INT8 × INT8',
};
export const EVAL_ACTIVATION_MODES: readonly { mode: ActivationMode; label: string; title: string }[] = (Object.keys(ACTIVATION_TITLES) as ActivationMode[]).map(
  (mode) => ({ mode, label: mode, title: ACTIVATION_TITLES[mode] }),
);

export interface ModelOutputJob extends Job<ModelEval> {
  /** The presets the next evaluation scores. */
  presets: string[];
  /** How the presets' products see their inputs in the next evaluation. */
  activations: ActivationMode;
}

export interface ModelOutputSlice {
  modelOutput: ModelOutputJob;
  toggleEvalPreset: (preset: string) => void;
  setEvalActivations: (mode: ActivationMode) => void;
  evaluate: () => Promise<void>;
}

export const MODEL_OUTPUT_SLOTS = ['modelOutput'];
export const modelOutputReset = (s: AppState): Pick<ModelOutputSlice, 'modelOutput'> => ({
  modelOutput: { ...idleJob<ModelEval>(), presets: s.modelOutput.presets, activations: s.modelOutput.activations },
});

export const modelOutputSlice: Slice<ModelOutputSlice> = (set, get) => ({
  modelOutput: { ...idleJob<ModelEval>(), presets: DEFAULT_EVAL_PRESETS, activations: 'f32' },
  setEvalActivations: (activations) => set((s) => ({ modelOutput: { ...s.modelOutput, activations } })),
  toggleEvalPreset: (p) =>
    set((s) => {
      const presets = s.modelOutput.presets.includes(p) ? s.modelOutput.presets.filter((x) => x !== p) : [...s.modelOutput.presets, p];
      return { modelOutput: { ...s.modelOutput, presets } };
    }),
  evaluate: () => {
    const { presets, activations } = get().modelOutput;
    return runJob(tickets, 'modelOutput', {
      patch: patcher(set, 'modelOutput'),
      first: { done: 0, total: 1, label: 'Reading the weights…' },
      keepResult: true,
      work: (onProgress) => engine.evalModel(presets, onProgress, { activations }),
    });
  },
});
