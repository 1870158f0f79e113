// The loaded model: its summary, the load in progress and the files that failed to load.
// A new model resets every job's state: their results were the old model's.
import { engine } from '../../engine/client.ts';
import { errorMessage } from '../job.ts';
import type { AppState } from '../store.ts';
import type { HubLoadRequest, HubProgress, ModelSummary, Progress } from '../types.ts';
import { budgetReset, BUDGET_SLOTS } from './budget.ts';
import { calibrationReset, CALIBRATION_SLOTS } from './calibration.ts';
import { activationsReset, ACTIVATIONS_SLOTS } from './activations.ts';
import { compareReset, COMPARE_SLOTS } from './compare.ts';
import { imatrixReset, IMATRIX_SLOTS } from './imatrix.ts';
import { matmulReset, MATMUL_SLOTS } from './matmul.ts';
import { modelOutputReset, MODEL_OUTPUT_SLOTS } from './modelOutput.ts';
import { tickets, type Slice } from './shared.ts';
import { trainingReset, TRAINING_SLOTS } from './training.ts';
import { wholeModelReset, WHOLE_MODEL_SLOTS } from './wholeModel.ts';

export const SAMPLE_URL = './samples/stories260K.gguf';

export interface LoadError {
  file: string;
  message: string;
}

export interface ModelSlice {
  model: ModelSummary | null;
  loading: Progress | null;
  loadErrors: LoadError[];
  setModel: (model: ModelSummary) => void;
  /** Loads files into the engine; a file that fails adds an error and keeps the model already loaded. */
  loadFiles: (files: File[]) => Promise<void>;
  loadSample: () => Promise<void>;
  dismissLoadErrors: () => void;
  /** Bytes read from the Hub against bytes needed, for the Hub model loaded (or loading); null otherwise. */
  hubTransfer: HubTransfer | null;
  /**
   * Opens a model on the Hugging Face Hub (docs/hub.md). A failure adds a load error, except
   * a 401/403 ('needs-token': the caller asks for a token and tries again) and a cancel.
   */
  loadHub: (request: HubLoadRequest) => Promise<HubLoadOutcome>;
  cancelHubLoad: () => void;
}

export interface HubTransfer extends HubProgress {
  /** The model these reads are for: null while it loads. */
  readonly model: ModelSummary | null;
}

export type HubLoadOutcome = { outcome: 'loaded' } | { outcome: 'needs-token' | 'failed' | 'cancelled'; message: string };

/** Each Hub load's number: progress from an older one is dropped. */
let hubLoads = 0;

/** The first 2-D tensor past the embeddings (a typical weight to look at), else the first 2-D one. */
function firstMatrix(model: ModelSummary): string | null {
  const matrices = model.tensors.filter((t) => t.shape.length === 2);
  return (matrices.find((t) => /attn|proj|ffn|mlp/.test(t.name)) ?? matrices[0])?.name ?? null;
}

/** Jobs whose state belongs to one model (exports are not here: a running one finishes its file). */
const MODEL_SLOTS = [...COMPARE_SLOTS, ...MATMUL_SLOTS, ...MODEL_OUTPUT_SLOTS, ...CALIBRATION_SLOTS, ...ACTIVATIONS_SLOTS, ...BUDGET_SLOTS, ...WHOLE_MODEL_SLOTS, ...IMATRIX_SLOTS, ...TRAINING_SLOTS];

function jobsReset(s: AppState): Partial<AppState> {
  return { ...compareReset(s), ...matmulReset(), ...modelOutputReset(s), ...calibrationReset(s), ...activationsReset(s), ...budgetReset(), ...wholeModelReset(), ...imatrixReset(), ...trainingReset(s) };
}

export const modelSlice: Slice<ModelSlice> = (set, get) => ({
  model: null,
  loading: null,
  loadErrors: [],
  // A new model replaces the old one only once it has loaded: a bad file loses nothing.
  // The first matrix is selected at once, so the first chart needs no extra click.
  setModel: (model) => {
    for (const slot of MODEL_SLOTS) tickets.revoke(slot);
    set((s) => ({ model, tensor: firstMatrix(model), loadErrors: [], ...jobsReset(s) }));
  },
  loadFiles: async (files) => {
    set({ loading: { done: 0, total: files.length, label: `Reading ${files.length === 1 ? files[0].name : `${files.length} files`}…` } });
    try {
      get().setModel(await engine.load(files));
    } catch (e) {
      // The model already loaded stays: only the error is added.
      const error = { file: files.map((f) => f.name).join(', '), message: errorMessage(e) };
      set((s) => ({ loadErrors: [...s.loadErrors, error] }));
    } finally {
      set({ loading: null });
    }
  },
  loadSample: async () => {
    const response = await fetch(SAMPLE_URL);
    const blob = await response.blob();
    await get().loadFiles([new File([blob], 'stories260K.gguf')]);
  },
  dismissLoadErrors: () => set({ loadErrors: [] }),
  hubTransfer: null,
  loadHub: async (request) => {
    const load = ++hubLoads;
    let model: ModelSummary | null = null;
    set({ loading: { done: 0, total: 0, label: `Opening ${request.ref} on the Hub…` }, hubTransfer: null });
    const onTransfer = (p: HubProgress) => {
      if (load !== hubLoads) return;
      set((s) => ({
        hubTransfer: { read: p.read, needed: p.needed, file: p.file, model },
        ...(s.loading && model === null ? { loading: { done: p.read, total: p.needed, label: `Reading ${p.file} from the Hub…` } } : {}),
      }));
    };
    try {
      model = await engine.loadHub(request, onTransfer);
      get().setModel(model);
      set((s) => ({ hubTransfer: s.hubTransfer && { ...s.hubTransfer, model } }));
      return { outcome: 'loaded' };
    } catch (e) {
      const message = errorMessage(e);
      const name = e instanceof Error ? e.name : '';
      if (name === 'HubAuthError') return { outcome: 'needs-token', message };
      if (name === 'CancelledError') return { outcome: 'cancelled', message };
      set((s) => ({ loadErrors: [...s.loadErrors, { file: request.ref, message }] }));
      return { outcome: 'failed', message };
    } finally {
      set({ loading: null });
    }
  },
  cancelHubLoad: () => void engine.cancelHubLoad(),
});
