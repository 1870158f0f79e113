// The Training tab's slice, with the engine stubbed: the form's settings become the options
// `quantlab train` takes, each step's loss grows the live curve, and a failed or cancelled
// run keeps the result (and so the downloads) the user had.
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { ModelSummary } from '../engine/types.ts';
import type { TrainingSummary, TrainProgress } from '../engine/jobs/train.ts';

const engine = vi.hoisted(() => ({ train: vi.fn(), trainingFile: vi.fn(), cancel: vi.fn() }));
vi.mock('../engine/client.ts', () => ({ engine, onEngineEvent: () => () => {} }));

const { useApp } = await import('./store.ts');
const { trainCommand, trainRequest, DEFAULT_TRAINING_SETTINGS } = await import('./slices/training.ts');

const model = { tensors: [], files: [{ name: 'm.gguf', size: 1 }] } as unknown as ModelSummary;
const summary = (after: number) => ({ method: 'qat', after: { kl: after, ppl: 3 }, records: [] }) as unknown as TrainingSummary;
const step = (n: number, loss: number): TrainProgress => ({ done: n, total: 3, label: `Step ${n}`, record: { step: n, steps: 3, loss, lr: 1e-4, gradNorm: 1 }, stepsPerSecond: 2 });

beforeEach(() => {
  vi.clearAllMocks();
  useApp.getState().setModel(model);
  useApp.getState().setTrainingSettings(DEFAULT_TRAINING_SETTINGS);
});

describe('training settings', () => {
  it('become the CLI options: the method default rate stays unset, alpha defaults to the rank', () => {
    expect(trainRequest({ ...DEFAULT_TRAINING_SETTINGS, qat: { preset: 'Q4_K_M' }, steps: 7 })).toEqual({ method: 'qat', mode: { preset: 'Q4_K_M' }, steps: 7, lr: undefined, loss: 'kl' });
    const qlora = { ...DEFAULT_TRAINING_SETTINGS, method: 'qlora' as const, rank: 8, lr: 2e-3, loss: 'ce' as const };
    expect(trainRequest(qlora)).toEqual({ method: 'qlora', rank: 8, alpha: undefined, baseType: 'nf4', targetModules: ['q_proj', 'v_proj'], steps: 20, lr: 2e-3, loss: 'ce' });
    expect(trainCommand(qlora, 'm.gguf')).toBe('quantlab train m.gguf --lora 8 --base-type nf4 --targets q_proj,v_proj --steps 20 --lr 0.002 --loss ce -o ADAPTER.gguf --peft PEFT_DIR');
    expect(trainCommand(DEFAULT_TRAINING_SETTINGS, 'm.gguf')).toBe('quantlab train m.gguf --qat q4_0 --steps 20 -o OUT.gguf');
  });
});

describe('runTraining', () => {
  it('grows the live curve one loss a step, then holds the result', async () => {
    const seen: number[][] = [];
    engine.train.mockImplementation(async (_request, onProgress: (p: TrainProgress) => void) => {
      // A run that starts over at step 1 (rerun on the CPU after a lost GPU) starts the curve over.
      for (const [n, loss] of [[1, 0.9], [2, 0.8], [1, 0.3], [2, 0.2], [3, 0.1]]) {
        onProgress(step(n, loss));
        seen.push(useApp.getState().training.progress!.losses);
      }
      return summary(0.05);
    });
    await useApp.getState().runTraining();
    expect(engine.train.mock.calls[0][0]).toEqual(trainRequest(DEFAULT_TRAINING_SETTINGS));
    expect(seen).toEqual([[0.9], [0.9, 0.8], [0.3], [0.3, 0.2], [0.3, 0.2, 0.1]]);
    expect(useApp.getState().training).toMatchObject({ status: 'done', progress: null, error: null, result: summary(0.05) });
  });

  it('a diverged or cancelled run keeps the previous result', async () => {
    engine.train.mockResolvedValueOnce(summary(0.05));
    await useApp.getState().runTraining();
    for (const message of ['training diverged at step 2: the loss is not a number (try a smaller learning rate); nothing was written', 'cancelled']) {
      engine.train.mockRejectedValueOnce(new Error(message));
      await useApp.getState().runTraining();
      expect(useApp.getState().training).toMatchObject({ status: 'error', error: message, result: summary(0.05), progress: null });
    }
  });

  it('a new model drops the old model’s result, not the settings', async () => {
    engine.train.mockResolvedValueOnce(summary(0.05));
    useApp.getState().setTrainingSettings({ steps: 5 });
    await useApp.getState().runTraining();
    useApp.getState().setModel(model);
    expect(useApp.getState().training).toMatchObject({ status: 'idle', result: null });
    expect(useApp.getState().training.settings.steps).toBe(5);
  });
});

describe('downloadTrainingFile', () => {
  it('streams the engine file into the sink and closes it; a failure aborts it', async () => {
    const sink = { write: vi.fn(async () => {}), close: vi.fn(async () => {}), abort: vi.fn(async () => {}) };
    engine.trainingFile.mockImplementationOnce(async (_name: string, write: (c: Uint8Array) => Promise<void>) => {
      await write(new Uint8Array([1, 2]));
      return 2;
    });
    await useApp.getState().downloadTrainingFile('x.gguf', sink);
    expect(sink.write).toHaveBeenCalledWith(new Uint8Array([1, 2]));
    expect(sink.close).toHaveBeenCalled();
    expect(useApp.getState().training.download).toEqual({ status: 'done', file: 'x.gguf', bytes: 2, error: null });
    engine.trainingFile.mockRejectedValueOnce(new Error('no training run to download: train first'));
    await useApp.getState().downloadTrainingFile('x.gguf', sink);
    expect(sink.abort).toHaveBeenCalled();
    expect(useApp.getState().training.download).toMatchObject({ status: 'error', error: 'no training run to download: train first' });
  });
});
