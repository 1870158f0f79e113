// The app's state as zustand slices. It holds metadata, settings and results, never
// tensor bytes (house rule 7): those stay in the engine's worker.
import { create, type StateCreator } from 'zustand';
import type { CompareResult, GpuStatus, ImatrixSummary, ModelSummary, Progress } from '../engine/types.ts';

export const DEFAULT_COMPARE_TYPES = ['f16', 'bf16', 'q8_0', 'int8', 'q4_0', 'q4_K', 'nf4', 'q2_K'];

export interface LoadError {
  file: string;
  message: string;
}

/** The first 2-D tensor past the embeddings (a typical weight to look at), else the first 2-D one. */
function firstMatrix(model: ModelSummary): string | null {
  const matrices = model.tensors.filter((t) => t.shape.length === 2);
  return (matrices.find((t) => /attn|proj|ffn|mlp/.test(t.name)) ?? matrices[0])?.name ?? null;
}

export interface ModelSlice {
  model: ModelSummary | null;
  loading: Progress | null;
  loadErrors: LoadError[];
  setModel: (model: ModelSummary) => void;
  setLoading: (p: Progress | null) => void;
  addLoadError: (e: LoadError) => void;
  dismissLoadErrors: () => void;
}

export interface SelectionSlice {
  tensor: string | null;
  types: string[];
  preset: string;
  selectTensor: (name: string | null) => void;
  toggleType: (id: string) => void;
  setTypes: (ids: string[]) => void;
  setPreset: (p: string) => void;
}

export interface ResultsSlice {
  compare: CompareResult | null;
  comparing: Progress | null;
  compareError: string | null;
  setCompare: (r: CompareResult | null) => void;
  setComparing: (p: Progress | null) => void;
  setCompareError: (e: string | null) => void;
}

export interface EnvSlice {
  gpu: GpuStatus | null;
  setGpu: (g: GpuStatus) => void;
}

/**
 * The importance matrix exports quantize with (llama-quantize --imatrix): a file the user
 * gave, or one computed in the Calibration tab. The page keeps the File, not its numbers:
 * the engine reads it for each export (a restarted engine worker gets it again that way).
 */
export interface ImatrixSlice {
  imatrix: { file: File; summary: ImatrixSummary; computed: boolean } | null;
  setImatrix: (imatrix: ImatrixSlice['imatrix']) => void;
}

export type AppState = ModelSlice & SelectionSlice & ResultsSlice & EnvSlice & ImatrixSlice;

const modelSlice: StateCreator<AppState, [], [], ModelSlice> = (set) => ({
  model: null,
  loading: null,
  loadErrors: [],
  // A new model replaces the old one only once it has loaded: a bad file loses nothing.
  // The first matrix is selected at once, so the first chart needs no extra click.
  // Its importance matrix belonged to the old model.
  setModel: (model) => set({ model, tensor: firstMatrix(model), compare: null, compareError: null, loadErrors: [], imatrix: null }),
  setLoading: (loading) => set({ loading }),
  addLoadError: (e) => set((s) => ({ loadErrors: [...s.loadErrors, e] })),
  dismissLoadErrors: () => set({ loadErrors: [] }),
});

const selectionSlice: StateCreator<AppState, [], [], SelectionSlice> = (set) => ({
  tensor: null,
  types: DEFAULT_COMPARE_TYPES,
  preset: 'Q4_K_M',
  // The row already selected keeps its results: clearing them would not start a new comparison
  // (nothing the comparison depends on changed), so the charts would just vanish.
  selectTensor: (tensor) => set((s) => (s.tensor === tensor ? {} : { tensor, compare: null, compareError: null })),
  toggleType: (id) => set((s) => ({ types: s.types.includes(id) ? s.types.filter((t) => t !== id) : [...s.types, id] })),
  setTypes: (types) => set({ types }),
  setPreset: (preset) => set({ preset }),
});

const resultsSlice: StateCreator<AppState, [], [], ResultsSlice> = (set) => ({
  compare: null,
  comparing: null,
  compareError: null,
  setCompare: (compare) => set({ compare }),
  setComparing: (comparing) => set({ comparing }),
  setCompareError: (compareError) => set({ compareError }),
});

const envSlice: StateCreator<AppState, [], [], EnvSlice> = (set) => ({
  gpu: null,
  setGpu: (gpu) => set({ gpu }),
});

const imatrixSlice: StateCreator<AppState, [], [], ImatrixSlice> = (set) => ({
  imatrix: null,
  setImatrix: (imatrix) => set({ imatrix }),
});

export const useApp = create<AppState>()((...a) => ({
  ...modelSlice(...a),
  ...selectionSlice(...a),
  ...resultsSlice(...a),
  ...envSlice(...a),
  ...imatrixSlice(...a),
}));
