// The engine: the API the page's Web Worker exposes (worker.ts, client.ts), a thin facade
// over a Session (session.ts: the loaded model, the GPU and its CPU fallback) and the jobs
// (jobs/*.ts), which the CLI runs too. Each call is a job with its own cancellation token;
// cancel() aborts the running ones, which reject with CancelledError. Each result says
// which backend did the work.
import { CancelledError } from './cancelled.ts';
import type { ByteSource } from '../formats/bytes.ts';
import type { ModelIndex, ModelTensor } from '../formats/model.ts';
import type { GpuContext } from '../gpu/device.ts';
import type { ExportProgress } from '../export/write.ts';
import { presetSizes, planModel, type OverrideSpec, type PlanSummary, type PresetSize } from '../quant/plan.ts';
import type { PlanMode, TensorTypeOverride } from '../quant/presets.ts';
import { type BudgetTarget, llamaQuantizeCommand, planOverrides } from '../budget/budget.ts';
import type { BudgetSession } from '../budget/session.ts';
import type { CalibrationComparison } from '../calibrate/compare.ts';
import type { GptqExport, GptqExportOptions } from '../calibrate/gptq-export.ts';
import { Session } from './session.ts';
import { planView } from './plan-view.ts';
import type { JobContext } from './jobs/job.ts';
import { compareJob, planErrorsJob, type PlanErrors } from './jobs/compare.ts';
import { matmulJob } from './jobs/matmul.ts';
import { evalJob, type EvalRequest, type EvalResult } from './jobs/eval.ts';
import { compareCalibrationJob, computedImatrixSummary, imatrixJob, imatrixSummary } from './jobs/calibrate.ts';
import type { Imatrix } from '../formats/imatrix.ts';
import { budgetPlanJob, budgetScanJob, scanSummary } from './jobs/budget.ts';
import { exportJob, gptqBlocksJob, type ExportJobRequest } from './jobs/export.ts';
import { trainJob, writeTrainingFile, type TrainingRun, type TrainingSummary, type TrainProgress, type TrainRequest } from './jobs/train.ts';
import { activationStatsJob, smoothQuantSweepJob, type ActivationStatsRequest, type SmoothQuantSweepRequest } from './jobs/activations.ts';
import type { MatmulRequest, MatmulResult } from './matmul-job.ts';
import type { CalibrationCompareOptions, CompareRequest, CompareResult, GpuStatus, ImatrixSummary, ModelSummary, Progress } from './types.ts';

export { CancelledError };
export { MAX_COMPARE_VALUES } from './jobs/compare.ts';

export type ProgressListener = (p: Progress) => void;

export class Engine {
  private readonly session: Session;
  /** The running jobs' tokens. */
  private readonly running = new Set<AbortController>();
  /** The running compare or plan-errors job: the next one supersedes it (the page asks again as the selection changes). */
  private measuring: AbortController | null = null;
  /** The loaded model's budget scan (costs and sensitivity), kept for re-planning. */
  private budget: { model: ModelIndex; scan: BudgetSession } | null = null;
  /** The last finished training run, for its downloads (a failed or cancelled run keeps the one before). */
  private training: TrainingRun | null = null;

  /** `openGpu` opens WebGPU (navigator.gpu in the browser, Dawn in Node); null for CPU only. */
  constructor(openGpu: (() => Promise<GpuContext>) | null) {
    this.session = new Session(openGpu);
  }

  gpuStatus(): Promise<GpuStatus> {
    return this.session.status();
  }

  /** Calls `listener` with the new status when the GPU is lost; returns an unsubscribe. */
  watchGpu(listener: (status: GpuStatus) => void): () => void {
    return this.session.watchGpu(listener);
  }

  /** Reads the files' headers; the previous model stays loaded if they are bad. */
  async load(sources: readonly ByteSource[]): Promise<ModelSummary> {
    const summary = await this.session.load(sources);
    this.training = null; // the old model's
    return summary;
  }

  loadedModel(): ModelIndex {
    return this.session.loadedModel();
  }

  readF32(tensor: ModelTensor): Promise<Float32Array> {
    return this.session.readF32(tensor);
  }

  /** Stops the running jobs at their next step (they reject with CancelledError). */
  cancel(): void {
    for (const token of this.running) token.abort(new CancelledError());
  }

  /** Runs a job with a token of its own, which cancel() aborts. */
  private async job<T, P = Progress>(work: (ctx: JobContext<P>) => Promise<T>, onProgress?: (p: P) => void, token = new AbortController()): Promise<T> {
    this.running.add(token);
    try {
      return await work({ signal: token.signal, onProgress });
    } finally {
      this.running.delete(token);
    }
  }

  /** A compare or plan-errors job: it cancels the one still running. */
  private measure<T>(work: (ctx: JobContext) => Promise<T>, onProgress?: ProgressListener): Promise<T> {
    this.measuring?.abort(new CancelledError());
    const token = new AbortController();
    this.measuring = token;
    return this.job(work, onProgress, token);
  }

  /**
   * GPTQ's blocks for an export of the loaded model in `mode` (calibrate/gptq-export.ts), on
   * the GPU while it lives: what exportGguf's `gptq` option computes, for a caller that
   * reports on them and passes them on as `precomputed`.
   */
  gptqBlocks(mode: PlanMode, overrides: readonly TensorTypeOverride[], options: Omit<GptqExportOptions, 'gpu' | 'signal'>): Promise<GptqExport> {
    const { onProgress, ...gptq } = options;
    return this.job((ctx) => gptqBlocksJob(this.session, { mode, overrides, ...gptq }, ctx), onProgress);
  }

  /** `hasImatrix`: the export will have an importance matrix, which changes some presets' types (as in llama-quantize). */
  plan(mode: PlanMode, overrides: readonly OverrideSpec[] = [], options: { hasImatrix?: boolean } = {}): PlanSummary {
    return planModel(planView(this.session).view, mode, overrides, options);
  }

  presetSizes(): PresetSize[] {
    return presetSizes(planView(this.session).view);
  }

  /** The error of every tensor the plan converts, and per layer (weighted by size). */
  planErrors(mode: PlanMode, overrides: readonly OverrideSpec[] = [], onProgress?: ProgressListener): Promise<PlanErrors> {
    return this.measure((ctx) => planErrorsJob(this.session, { mode, overrides }, ctx), onProgress);
  }

  /** y = W x with W packed in each type: product error, kernel exactness, time and GB/s. */
  matmulCheck(request: MatmulRequest, onProgress?: ProgressListener): Promise<MatmulResult> {
    return this.job((ctx) => matmulJob(this.session, request, ctx), onProgress);
  }

  /**
   * What each preset does to the model's output (KL against F32, perplexity, top-1
   * agreement, greedy text) on the built-in text or `text`.
   */
  evalModel(presets: readonly string[], onProgress?: ProgressListener, options: Omit<EvalRequest, 'presets'> = {}): Promise<EvalResult> {
    return this.job((ctx) => evalJob(this.session, { ...options, presets }, ctx), onProgress);
  }

  /**
   * The Calibration tab: per-layer held-out output MSE of RTN, Q4_K (with and without the
   * calibration text's imatrix), AWQ and GPTQ at ~4 bits (src/calibrate/compare.ts), on the
   * CPU but for GPTQ, which runs on WebGPU while the device lives (the result says where;
   * act-order runs on the CPU). `calibrationText` replaces the built-in calibration stories.
   */
  compareCalibration(onProgress?: ProgressListener, options: CalibrationCompareOptions = {}): Promise<CalibrationComparison> {
    return this.job((ctx) => compareCalibrationJob(this.session, options, ctx), onProgress);
  }

  /**
   * The Activations view: every blk.* linear's per-channel max |x|, per-token range and its
   * weights' per-channel max |W| over the calibration text (calibrate/smoothquant.ts), on the CPU.
   */
  activationStats(onProgress?: ProgressListener, options: ActivationStatsRequest = {}) {
    return this.job((ctx) => activationStatsJob(this.session, options, ctx), onProgress);
  }

  /** W8A8 (Q8_0 weights, per-token INT8 inputs) KL to F32 without SmoothQuant and at each α (0, 0.1, ..., 1), on the CPU. */
  smoothQuantSweep(onProgress?: ProgressListener, options: SmoothQuantSweepRequest = {}) {
    return this.job((ctx) => smoothQuantSweepJob(this.session, options, ctx), onProgress);
  }

  /**
   * llama-imatrix's importance matrix of the loaded model over a calibration text (default:
   * the built-in stories), as the imatrix GGUF file `quantlab calibrate -o` writes for it.
   */
  async computeImatrix(onProgress?: ProgressListener, options: { text?: string; dataset?: string } = {}): Promise<{ bytes: Uint8Array; summary: ImatrixSummary }> {
    const { bytes } = await this.job((ctx) => imatrixJob(this.session, options, ctx), onProgress);
    return { bytes, summary: await computedImatrixSummary(this.session, bytes) };
  }

  /**
   * An importance matrix file (llama-imatrix's GGUF or legacy .dat) read and checked
   * against the loaded model as an export would check it: what it holds, or the error.
   */
  checkImatrix(file: ByteSource): Promise<ImatrixSummary> {
    return imatrixSummary(this.session, file);
  }

  /**
   * The sensitivity scan of the Budget tab (src/budget): every quantizable tensor in every
   * candidate type, its cost and damage (KL of that tensor alone where the forward pass
   * runs the model). Kept for budgetPlan; a second scan of the same model reads the cache.
   */
  async budgetScan(onProgress?: ProgressListener) {
    const model = this.loadedModel();
    const scan = await this.job((ctx) => budgetScanJob(this.session, {}, ctx), onProgress);
    this.budget = { model, scan };
    return scanSummary(scan);
  }

  /** The plan for a target after budgetScan, with the presets beside it, per-layer bits and the llama-quantize command. */
  async budgetPlan(target: BudgetTarget) {
    const b = this.budget;
    if (!b || b.model !== this.session.loadedModel()) throw new Error('run the sensitivity scan first');
    const name = b.model.files[0]?.source.name ?? 'model.gguf';
    const { plan, json, report } = await budgetPlanJob(b.scan, { target, model: name });
    return {
      plan: json,
      report,
      base: plan.base,
      overrides: planOverrides(plan).map((o) => ({ pattern: String(o.pattern), type: o.type })),
      command: llamaQuantizeCommand(plan, name, name.replace(/\.gguf$/i, '') + '-budget.gguf'),
    };
  }

  /**
   * The Training tab: QAT or QLoRA of the loaded model (engine/jobs/train.ts), on the GPU the
   * session has when the trainer runs there; progress per step with its loss. The run is kept
   * for trainingFile; a failed or cancelled one leaves the previous run as it was.
   */
  async train(request: TrainRequest, onProgress?: (p: TrainProgress) => void): Promise<TrainingSummary> {
    const { run, summary } = await this.job((ctx) => trainJob(this.session, request, ctx), onProgress);
    this.training = run;
    return summary;
  }

  /** One of the last training run's files (TrainingSummary.files), streamed to `sink`: the bytes `quantlab train -o` writes. */
  trainingFile(name: string, sink: (chunk: Uint8Array) => void | Promise<void>): Promise<number> {
    const run = this.training;
    if (!run) return Promise.reject(new Error('no training run to download: train first'));
    return this.job((ctx) => writeTrainingFile(run, name, sink, ctx.signal));
  }

  /** Quantize one tensor into each type and measure the error (two passes: stats, then histograms on a shared range). */
  compare(request: CompareRequest, onProgress?: ProgressListener, imatrix?: Imatrix): Promise<CompareResult> {
    return this.measure((ctx) => compareJob(this.session, request, ctx, imatrix), onProgress);
  }

  /**
   * Quantizes the loaded model to a GGUF file (export/: byte-identical to llama-quantize),
   * handing the file to `sink` chunk by chunk; resolves with the bytes written. The GPU
   * quantizes the types it has codecs for; cancel() stops it with CancelledError.
   * `gptq`: the q4_0/q4_K tensors a calibration pass sees get GPTQ's blocks from that text
   * (default: the built-in one; calibrate/gptq-export.ts), as `quantlab quantize --gptq`.
   * `awq`: AWQ's scales from that text, folded into the previous operations, then the usual
   * export of the scaled model (calibrate/awq-export.ts), as `quantlab quantize --awq`.
   */
  exportGguf(
    mode: PlanMode,
    overrides: readonly TensorTypeOverride[] = [],
    sink: (chunk: Uint8Array) => void | Promise<void>,
    onProgress?: (p: ExportProgress) => void,
    more: Omit<ExportJobRequest, 'mode' | 'overrides' | 'sink'> = {},
  ): Promise<number> {
    return this.job((ctx) => exportJob(this.session, { ...more, mode, overrides, sink }, ctx), onProgress);
  }
}
