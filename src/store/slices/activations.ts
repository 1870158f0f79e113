// The Activations view's jobs: every blk.* linear's input statistics over the calibration
// text (per-channel max |x|, per-token range, the weights' per-channel max |W|), and
// SmoothQuant's α sweep of W8A8 KL. Both on the calibration text the Calibration tab uses.
import { engine } from '../../engine/client.ts';
import { idleJob, runJob, type Job } from '../job.ts';
import { patcher, tickets, type Slice } from './shared.ts';

export type ActivationStats = Awaited<ReturnType<typeof engine.activationStats>>;
export type SmoothQuantSweep = Awaited<ReturnType<typeof engine.smoothQuantSweep>>;

/** Which linears' inputs the heat maps show: q/k/v share attn_norm's output, gate/up ffn_norm's. */
export const ACTIVATION_INPUTS = [
  { id: 'attn_q', label: 'attn_q/k/v input (attn_norm output)' },
  { id: 'attn_output', label: 'attn_output input (attention)' },
  { id: 'ffn_gate', label: 'ffn_gate/up input (ffn_norm output)' },
  { id: 'ffn_down', label: 'ffn_down input (silu(gate)·up)' },
] as const;
export type ActivationInput = (typeof ACTIVATION_INPUTS)[number]['id'];

export interface ActivationsSlice {
  activations: Job<ActivationStats> & { input: ActivationInput };
  smoothQuant: Job<SmoothQuantSweep>;
  setActivationInput: (input: ActivationInput) => void;
  runActivationStats: () => Promise<void>;
  runSmoothQuantSweep: () => Promise<void>;
}

export const ACTIVATIONS_SLOTS = ['activations', 'smoothQuant'];
export const activationsReset = (s: { activations: ActivationsSlice['activations'] }): Pick<ActivationsSlice, 'activations' | 'smoothQuant'> => ({
  activations: { ...idleJob<ActivationStats>(), input: s.activations.input },
  smoothQuant: idleJob<SmoothQuantSweep>(),
});

export const activationsSlice: Slice<ActivationsSlice> = (set, get) => ({
  activations: { ...idleJob<ActivationStats>(), input: 'attn_q' },
  smoothQuant: idleJob<SmoothQuantSweep>(),
  setActivationInput: (input) => set((s) => ({ activations: { ...s.activations, input } })),
  runActivationStats: () => {
    const text = get().calibration.text?.content;
    return runJob(tickets, 'activations', {
      patch: patcher(set, 'activations'),
      first: { done: 0, total: 1, label: 'Reading the weights…' },
      keepResult: true,
      work: (onProgress) => engine.activationStats({ text }, onProgress),
    });
  },
  runSmoothQuantSweep: () => {
    const text = get().calibration.text?.content;
    return runJob(tickets, 'smoothQuant', {
      patch: patcher(set, 'smoothQuant'),
      first: { done: 0, total: 1, label: 'Reading the weights…' },
      keepResult: true,
      work: (onProgress) => engine.smoothQuantSweep({ text }, onProgress),
    });
  },
});
