// The Training tab's job: QAT or QLoRA of the loaded model (engine/jobs/train.ts), its live
// loss curve (each step's loss as it arrives), the result (held-out comparison, where it ran)
// and the downloads of its files, which the engine keeps and streams on demand. A failed or
// cancelled run keeps the previous result, and the engine keeps that run's files.
import { engine } from '../../engine/client.ts';
import type { TrainingSummary, TrainProgress, TrainRequest } from '../../engine/jobs/train.ts';
import { LORA_MODULE_NAMES } from '../../train/lora/adapter.ts';
import type { QatLoss } from '../../train/qat.ts';
import { errorMessage, idleJob, runJob, type Job } from '../job.ts';
import type { AppState } from '../store.ts';
import { patcher, tickets, type Slice } from './shared.ts';

export type { TrainingSummary };
export { LORA_MODULE_NAMES };

export type TrainingMethod = 'qat' | 'qlora';

/** What the tab's form holds; `lr: null` is the method's default (QAT 1e-4, QLoRA 1e-3). */
export interface TrainingSettings {
  method: TrainingMethod;
  /** QAT's plan: a pure type or a llama.cpp preset (the CLI's --qat TYPE or --preset P). */
  qat: { type: string } | { preset: string };
  steps: number;
  lr: number | null;
  loss: QatLoss;
  rank: number;
  /** null: alpha = rank (the CLI's default). */
  alpha: number | null;
  baseType: string;
  targets: string[];
}

/** The loss curve while a run goes: every step's loss so far, and the rate. */
export interface TrainingProgress extends TrainProgress {
  losses: number[];
}

export interface TrainingJob extends Omit<Job<TrainingSummary>, 'progress'> {
  progress: TrainingProgress | null;
  settings: TrainingSettings;
  /** The download in progress or its outcome (a file name and its size, or why it failed). */
  download: { status: 'idle' | 'running' | 'done' | 'error'; file: string | null; bytes: number | null; error: string | null };
}

export interface TrainingSlice {
  training: TrainingJob;
  setTrainingSettings: (s: Partial<TrainingSettings>) => void;
  runTraining: () => Promise<void>;
  /** Streams one of the last run's files into `sink` (the page's download); the sink is aborted on failure. */
  downloadTrainingFile: (name: string, sink: { write(chunk: Uint8Array): Promise<void>; close(): Promise<void>; abort(): Promise<void> }) => Promise<void>;
}

export const DEFAULT_TRAINING_SETTINGS: TrainingSettings = {
  method: 'qat',
  qat: { type: 'q4_0' },
  steps: 20,
  lr: null,
  loss: 'kl',
  rank: 4,
  alpha: null,
  baseType: 'nf4',
  targets: ['q_proj', 'v_proj'],
};

/** The engine's request for the form's settings (exactly the options the CLI's flags give). */
export function trainRequest(s: TrainingSettings): TrainRequest {
  const common = { steps: s.steps, lr: s.lr ?? undefined, loss: s.loss };
  if (s.method === 'qat') return { ...common, method: 'qat', mode: 'type' in s.qat ? { type: s.qat.type } : { preset: s.qat.preset } };
  return { ...common, method: 'qlora', rank: s.rank, alpha: s.alpha ?? undefined, baseType: s.baseType, targetModules: s.targets };
}

/** The `quantlab train` command line that writes the same files (FILE stands for the model). */
export function trainCommand(s: TrainingSettings, file: string): string {
  const r = trainRequest(s);
  const common = `--steps ${r.steps}${r.lr !== undefined ? ` --lr ${r.lr}` : ''}${r.loss !== 'kl' ? ` --loss ${r.loss}` : ''}`;
  if (r.method === 'qat') return `quantlab train ${file} ${'type' in r.mode ? `--qat ${r.mode.type}` : `--preset ${r.mode.preset}`} ${common} -o OUT.gguf`;
  const alpha = r.alpha !== undefined ? ` --alpha ${r.alpha}` : '';
  return `quantlab train ${file} --lora ${r.rank}${alpha} --base-type ${r.baseType} --targets ${(r.targetModules ?? []).join(',')} ${common} -o ADAPTER.gguf --peft PEFT_DIR`;
}

const idleDownload = (): TrainingJob['download'] => ({ status: 'idle', file: null, bytes: null, error: null });

export const TRAINING_SLOTS = ['training'];
export const trainingReset = (s: AppState): Pick<TrainingSlice, 'training'> => ({
  training: { ...idleJob<TrainingSummary>(), progress: null, settings: s.training.settings, download: idleDownload() },
});

export const trainingSlice: Slice<TrainingSlice> = (set, get) => ({
  training: { ...idleJob<TrainingSummary>(), progress: null, settings: DEFAULT_TRAINING_SETTINGS, download: idleDownload() },
  setTrainingSettings: (patch) => set((s) => ({ training: { ...s.training, settings: { ...s.training.settings, ...patch } } })),
  runTraining: () => {
    const settings = get().training.settings;
    const patch = patcher(set, 'training');
    const losses: number[] = [];
    return runJob<TrainingSummary>(tickets, 'training', {
      patch: (p) => patch(p as Partial<TrainingJob>),
      first: { done: 0, total: settings.steps, label: 'Reading the weights…' },
      // The last run's result (and its files in the engine) stay until this one is done.
      keepResult: true,
      work: (onProgress) =>
        engine.train(trainRequest(settings), (p) => {
          // Step 1 again: the run started over (a lost GPU or a crashed worker reruns it on the CPU).
          if (p.record?.step === 1) losses.length = 0;
          if (p.record) losses.push(p.record.loss);
          onProgress({ ...p, losses: losses.slice() } as TrainingProgress);
        }),
    });
  },
  downloadTrainingFile: async (name, sink) => {
    const write = (d: Partial<TrainingJob['download']>) => set((s) => ({ training: { ...s.training, download: { ...s.training.download, ...d } } }));
    write({ status: 'running', file: name, bytes: null, error: null });
    try {
      const bytes = await engine.trainingFile(name, (chunk) => sink.write(chunk));
      await sink.close();
      write({ status: 'done', bytes });
    } catch (e) {
      await sink.abort();
      write({ status: 'error', error: errorMessage(e) });
    }
  },
});
