// The app's state as zustand slices, one per concern and one per kind of job (see job.ts):
// the store owns every job's status, progress, result and error, and its actions call the
// engine, so a result outlives the tab that started it. Components read it through narrow
// selectors (`useApp((s) => s.compare.progress)`), never the whole store, so a progress tick
// re-renders only what shows the progress. It holds metadata, settings and results, never
// tensor bytes (house rule 7): those stay in the engine's worker.
import { create } from 'zustand';
import { activationsSlice, type ActivationsSlice } from './slices/activations.ts';
import { budgetSlice, type BudgetSlice } from './slices/budget.ts';
import { calibrationSlice, type CalibrationSlice } from './slices/calibration.ts';
import { compareSlice, type CompareSlice } from './slices/compare.ts';
import { envSlice, type EnvSlice } from './slices/env.ts';
import { exportSlice, type ExportSlice } from './slices/export.ts';
import { imatrixSlice, type ImatrixSlice } from './slices/imatrix.ts';
import { matmulSlice, type MatmulSlice } from './slices/matmul.ts';
import { modelSlice, type ModelSlice } from './slices/model.ts';
import { modelOutputSlice, type ModelOutputSlice } from './slices/modelOutput.ts';
import { selectionSlice, type SelectionSlice } from './slices/selection.ts';
import { trainingSlice, type TrainingSlice } from './slices/training.ts';
import { wholeModelSlice, type WholeModelSlice } from './slices/wholeModel.ts';
import { engine } from '../engine/client.ts';

export { DEFAULT_COMPARE_TYPES } from './slices/selection.ts';
export type { LoadError } from './slices/model.ts';
export type { Job, JobStatus } from './job.ts';

export interface EngineControl {
  /** Stops the engine's running job (the engine has one cancel: it stops what runs now). */
  cancelJob: () => void;
}

export type AppState = ModelSlice &
  SelectionSlice &
  EnvSlice &
  ImatrixSlice &
  CompareSlice &
  MatmulSlice &
  ModelOutputSlice &
  CalibrationSlice &
  ActivationsSlice &
  BudgetSlice &
  WholeModelSlice &
  ExportSlice &
  TrainingSlice &
  EngineControl;

export const useApp = create<AppState>()((...a) => ({
  ...modelSlice(...a),
  ...selectionSlice(...a),
  ...envSlice(...a),
  ...imatrixSlice(...a),
  ...compareSlice(...a),
  ...matmulSlice(...a),
  ...modelOutputSlice(...a),
  ...calibrationSlice(...a),
  ...activationsSlice(...a),
  ...budgetSlice(...a),
  ...wholeModelSlice(...a),
  ...exportSlice(...a),
  ...trainingSlice(...a),
  cancelJob: () => void engine.cancel(),
}));
