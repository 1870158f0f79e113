// The Whole model tab: the plan of a preset (llama.cpp's rules) with the user's per-tensor
// overrides, each preset's size, and the job that measures the plan's error per layer.
import { engine } from '../../engine/client.ts';
import { errorMessage, idleJob, runJob, type Job } from '../job.ts';
import type { LayerError, OverrideSpec, PlanMode, PlanSummary, PresetSize } from '../types.ts';
import { patcher, tickets, type Slice } from './shared.ts';

export interface LayerErrors {
  layers: LayerError[];
  /** Relative error ‖Ŵ − W‖ / ‖W‖ of each converted tensor. */
  perTensor: Map<string, number>;
  backend: string;
}

export interface WholeModelState {
  overrides: OverrideSpec[];
  plan: PlanSummary | null;
  planError: string | null;
  /** What the plan was made for (mode, overrides, imatrix): the same plan is not asked twice. */
  planKey: string | null;
  sizes: PresetSize[];
  sizesLoaded: boolean;
}

export interface WholeModelSlice {
  wholeModel: WholeModelState;
  layerErrors: Job<LayerErrors>;
  /** Plans `mode` with the overrides, unless that plan is already made; a new plan drops the measured errors. */
  refreshPlan: (mode: PlanMode, hasImatrix: boolean) => void;
  loadPresetSizes: () => void;
  /** `type` '' removes the tensor's override (its rule's type again). */
  setOverride: (name: string, type: string) => void;
  clearOverrides: () => void;
  measureLayers: (mode: PlanMode) => Promise<void>;
}

/** An override of exactly one tensor, as llama-quantize's --tensor-type pattern. */
export const exactPattern = (name: string) => `^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;

export const WHOLE_MODEL_SLOTS = ['plan', 'layerErrors'];
export const wholeModelReset = (): Pick<WholeModelSlice, 'wholeModel' | 'layerErrors'> => ({
  wholeModel: { overrides: [], plan: null, planError: null, planKey: null, sizes: [], sizesLoaded: false },
  layerErrors: idleJob(),
});

export const wholeModelSlice: Slice<WholeModelSlice> = (set, get) => {
  const patch = (p: Partial<WholeModelState>) => set((s) => ({ wholeModel: { ...s.wholeModel, ...p } }));
  return {
    ...wholeModelReset(),
    refreshPlan: (mode, hasImatrix) => {
      const { overrides, planKey } = get().wholeModel;
      const key = JSON.stringify([mode, overrides, hasImatrix]);
      if (key === planKey) return;
      tickets.revoke('layerErrors');
      const ticket = tickets.take('plan');
      patch({ planKey: key, planError: null });
      set({ layerErrors: idleJob() });
      engine.plan(mode, overrides, { hasImatrix }).then(
        (plan) => tickets.holds('plan', ticket) && patch({ plan }),
        (e: unknown) => tickets.holds('plan', ticket) && patch({ plan: null, planError: errorMessage(e) }),
      );
    },
    loadPresetSizes: () => {
      if (get().wholeModel.sizesLoaded) return;
      patch({ sizesLoaded: true });
      const model = get().model;
      engine.presetSizes().then(
        (sizes) => get().model === model && patch({ sizes }),
        () => get().model === model && patch({ sizes: [] }),
      );
    },
    setOverride: (name, type) => {
      const pattern = exactPattern(name);
      const overrides = [...get().wholeModel.overrides.filter((o) => o.pattern !== pattern), ...(type ? [{ pattern, type }] : [])];
      patch({ overrides });
    },
    clearOverrides: () => patch({ overrides: [] }),
    measureLayers: (mode) => {
      const { overrides } = get().wholeModel;
      return runJob(tickets, 'layerErrors', {
        patch: patcher(set, 'layerErrors'),
        first: { done: 0, total: 1, label: 'Quantizing every tensor…' },
        keepResult: true,
        work: async (onProgress) => {
          const r = await engine.planErrors(mode, overrides, onProgress);
          const perTensor = new Map(r.tensors.map((t) => [t.name, Math.sqrt(t.sums.sumSqErr / t.sums.sumSqRef)]));
          return { layers: r.layers, backend: r.backend, perTensor };
        },
      });
    },
  };
};
