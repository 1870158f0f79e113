// The engine's and the domain's data types the UI shows, in one place: components import
// them from here (or from the store), never from src/engine or the layers below it, so a
// module moving underneath touches this file, not the components.
export type {
  CompareRequest,
  CompareResult,
  GpuStatus,
  GpuUsage,
  ImatrixSummary,
  ModelSummary,
  Progress,
  TensorSummary,
  TypeResult,
} from '../engine/types.ts';
export type { MatmulInput, MatmulResult } from '../engine/matmul-job.ts';
export type { LayerError, OverrideSpec, PlanSummary, PresetSize } from '../quant/plan.ts';
export type { PlanMode } from '../quant/presets.ts';
export type { HubLoadRequest } from '../engine/worker.ts';
export type { HubProgress } from '../hub/client.ts';
