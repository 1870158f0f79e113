// The Training tab's job: QAT (src/train/qat.ts) or QLoRA (src/train/qlora.ts) of the loaded
// model, step by step with its loss (the page's live curve), then the held-out comparison
// (F32, rounding to nearest / the quantized base alone, after training) and the run's files,
// produced by train/files.ts exactly as `quantlab train -o` writes them. The run is given the
// session's GPU while the device lives and the family has WGSL steps (TrainingRunOptions.gpu:
// the steps and the held-out scoring on WebGPU, src/train/gpu/; other families train on the
// CPU); a device lost mid-run reruns it on the CPU. The result says where it ran.
import type { GpuContext } from '../../gpu/device.ts';
import type { Backend } from '../../gpu/compute.ts';
import type { ModelIndex } from '../../formats/model.ts';
import type { PlanMode } from '../../quant/presets.ts';
import { qatFileChunks, qloraFiles } from '../../train/files.ts';
import { PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE } from '../../train/lora/peft.ts';
import { trainQat, type HeldOutScore, type QatResult, type StepRecord, type TrainingRunOptions } from '../../train/qat.ts';
import { trainQlora, type QloraResult } from '../../train/qlora.ts';
import { GPU_TRAINED_FAMILIES } from '../../train/gpu/trainer.ts';
import { withGpuUsage } from '../gpu-usage.ts';
import type { Session } from '../session.ts';
import type { GpuUsage, Progress } from '../types.ts';
import type { JobContext } from './job.ts';

/** What both methods take from the tab (the CLI's --steps, --lr, --loss, --seq, --seed). */
export type TrainingCommon = Pick<TrainingRunOptions, 'steps' | 'lr' | 'loss' | 'seqLen' | 'seed'>;

export type TrainRequest =
  | (TrainingCommon & { method: 'qat'; mode: PlanMode })
  | (TrainingCommon & { method: 'qlora'; rank: number; alpha?: number; baseType: string; targetModules?: string[]; dropout?: number });

/** A step as it finishes: its record and the steps per second since the first step. */
export interface TrainProgress extends Progress {
  record?: StepRecord;
  stepsPerSecond?: number;
}

/** A file the run can be downloaded as. */
export interface TrainingFile {
  name: string;
  /** What it is, for the page's button. */
  label: string;
}

/** What crosses to the page: no weights, only the figures and the files' names. */
export interface TrainingSummary {
  method: 'qat' | 'qlora';
  /** What was trained: the QAT type or preset, or the QLoRA base type. */
  target: string;
  records: StepRecord[];
  /** Held-out text: the F32 model's perplexity; PTQ (QAT) or the quantized base alone (QLoRA); after training. */
  f32Ppl: number;
  before: HeldOutScore;
  after: HeldOutScore;
  options: QatResult['options'];
  lora?: { rank: number; alpha: number; targets: string[] };
  trainTokens: number;
  evalTokens: number;
  trainSeconds: number;
  stepsPerSecond: number;
  /** Where the steps ran (the trainer's own word). */
  backend: Backend;
  /** What the run cost the GPU; null when the steps ran on the CPU (the device's counters would be other jobs'). */
  gpu: GpuUsage | null;
  files: TrainingFile[];
}

/** A finished run, kept in the engine for its downloads. */
export type TrainingRun =
  | { method: 'qat'; model: ModelIndex; mode: PlanMode; result: QatResult }
  | { method: 'qlora'; model: ModelIndex; result: QloraResult };

/** Steps per second between the first step's end and the last's (the setup before step 1 is not a step). */
export function stepRate() {
  let first = 0;
  let start = performance.now();
  return {
    restart: () => void (start = performance.now()),
    at: (step: number): number => {
      const now = performance.now();
      if (step === 1) first = now;
      return step === 1 ? 1000 / Math.max(now - start, 1e-3) : ((step - 1) * 1000) / Math.max(now - first, 1e-3);
    },
  };
}

export function trainingFileName(run: Pick<TrainingRun, 'model'>, suffix: string): string {
  const base = run.model.files[0]?.source.name.replace(/\.(gguf|safetensors)$/i, '') ?? 'model';
  return `${base}-${suffix}`;
}

function modeName(mode: PlanMode): string {
  return 'type' in mode ? mode.type : mode.preset;
}

/** The files of a run, in the order the page offers them. */
export function trainingFiles(run: TrainingRun): TrainingFile[] {
  if (run.method === 'qat') return [{ name: trainingFileName(run, `qat-${modeName(run.mode)}.gguf`), label: 'QAT model GGUF' }];
  return [
    { name: trainingFileName(run, `qlora-${run.result.baseType}-r${run.result.adapter.rank}.gguf`), label: 'LoRA adapter GGUF' },
    { name: PEFT_WEIGHTS_FILE, label: `PEFT ${PEFT_WEIGHTS_FILE}` },
    { name: PEFT_CONFIG_FILE, label: `PEFT ${PEFT_CONFIG_FILE}` },
  ];
}

/** Streams one of the run's files (by name, as trainingFiles lists them) to `sink`; resolves with its size. */
export async function writeTrainingFile(run: TrainingRun, name: string, sink: (chunk: Uint8Array) => void | Promise<void>, signal?: AbortSignal): Promise<number> {
  const [first] = trainingFiles(run);
  let chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  if (run.method === 'qat' && name === first.name) chunks = qatFileChunks(run.result, run.mode, signal);
  else if (run.method === 'qlora' && name === first.name) chunks = qloraFiles(run.result, run.model).adapterChunks();
  else if (run.method === 'qlora' && (name === PEFT_WEIGHTS_FILE || name === PEFT_CONFIG_FILE)) chunks = [qloraFiles(run.result, run.model).peft()[name]];
  else throw new Error(`the training run has no file '${name}'`);
  let bytes = 0;
  for await (const chunk of chunks) {
    await sink(chunk);
    bytes += chunk.length;
  }
  return bytes;
}

/** Trains the loaded model as the request says; the run (for its files) and its summary. */
export async function trainJob(session: Session, request: TrainRequest, ctx: JobContext<TrainProgress>): Promise<{ run: TrainingRun; summary: TrainingSummary }> {
  const model = session.loadedModel();
  const rate = stepRate();
  const t0 = performance.now();
  let lastRate = 0;
  ctx.onProgress?.({ done: 0, total: request.steps, label: 'Scoring the F32 model and the rounded one on the held-out text…' });
  const onStep = (record: StepRecord) => {
    const stepsPerSecond = (lastRate = rate.at(record.step));
    const label = `Step ${record.step}/${record.steps}: loss ${record.loss.toFixed(5)}, ${stepsPerSecond.toFixed(2)} steps/s${record.step === record.steps ? '; scoring the held-out text…' : ''}`;
    ctx.onProgress?.({ done: record.step, total: record.steps, label, record, stepsPerSecond });
  };
  const common: TrainingRunOptions = { steps: request.steps, lr: request.lr, loss: request.loss, seqLen: request.seqLen, seed: request.seed, signal: ctx.signal, onStep };
  // The session's GPU for the families whose steps have WGSL (train/gpu/), the CPU for the rest.
  const onGpu = GPU_TRAINED_FAMILIES.includes(String(model.metadata['general.architecture']));
  // Each attempt starts afresh (a GPU lost mid-run reruns it on the CPU), its rate too.
  const attempt = async (gpu: GpuContext | null): Promise<TrainingRun> => {
    rate.restart();
    const options: TrainingRunOptions = { ...common, gpu: (onGpu && gpu) || undefined };
    if (request.method === 'qat') return { method: 'qat', model, mode: request.mode, result: await trainQat(model, { ...options, mode: request.mode }) };
    const { rank, alpha, baseType, targetModules, dropout } = request;
    return { method: 'qlora', model, result: await trainQlora(model, { ...options, rank, alpha, baseType, targetModules, dropout }) };
  };
  const { value, gpu } = await withGpuUsage(session, () => session.withFallback((g) => attempt(g), () => attempt(null)));
  const run = value.value;
  const backend = run.result.backend;
  const trainSeconds = (performance.now() - t0) / 1000;
  const r = run.result;
  const summary: TrainingSummary = {
    method: run.method,
    target: run.method === 'qat' ? modeName(run.mode) : run.result.baseType,
    records: r.records,
    f32Ppl: r.f32Ppl,
    before: r.before,
    after: r.after,
    options: { ...r.options },
    ...(run.method === 'qlora' ? { lora: { rank: run.result.adapter.rank, alpha: run.result.adapter.alpha, targets: [...run.result.adapter.targetModules] } } : {}),
    trainTokens: r.trainTokens,
    evalTokens: r.evalTokens,
    trainSeconds,
    stepsPerSecond: lastRate,
    backend,
    gpu: backend === 'webgpu' ? gpu : null,
    files: trainingFiles(run),
  };
  return { run, summary };
}
