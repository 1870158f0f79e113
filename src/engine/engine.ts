// The engine: one API for the UI (inside a Web Worker) and the CLI (in Node). It owns the
// loaded model's byte sources, reads tensors on demand, and runs every job on WebGPU when
// it can, on the CPU reference codecs otherwise; each result says which did the work.
import { CancelledError } from './cancelled.ts';
import { fastCodecsInstalled } from '../quant/fast/wasm-codecs.ts';
import { memorySource, type ByteSource } from '../formats/bytes.ts';
import { elementCount, loadModel, readTensorF32, type ModelIndex, type ModelTensor } from '../formats/model.ts';
import { GpuDeviceLostError, type GpuContext } from '../gpu/device.ts';
import { histogram, metricsFromSums, sharedErrorRange, type ErrorSums } from '../quant/metrics.ts';
import { blockFields } from '../quant/block-fields.ts';
import { bitsPerWeight, dequantizeGgml, quantType, whyNotApplicable, type QuantType } from '../quant/types.ts';
import { cpuCompute, gpuCompute, type Compute } from '../gpu/compute.ts';
import { checkImatrix, planExport, type ExportRequest } from '../export/plan.ts';
import { exportGguf, writeStream, type ExportOptions, type ExportProgress } from '../export/write.ts';
import { exportSourceFor } from '../export/source.ts';
import { readImatrix } from '../formats/imatrix.ts';
import { imatrixFileForText } from '../calibrate/imatrix.ts';
import { BUILTIN_CALIBRATION_DATASET, CALIBRATION_STORY_TEXT } from '../calibrate/calibration-text.ts';
import { randomVector, runMatmulCheck, type MatmulRequest, type MatmulResult } from './matmul-job.ts';
import { errorsByLayer, planModel, presetSizes, type LayerError, type OverrideSpec, type PlanSummary, type PresetSize } from '../quant/plan.ts';
import type { PlanMode, TensorTypeOverride } from '../quant/presets.ts';
import { summarizeModel } from './summary.ts';
import { evaluateModel, type EvalOptions, type ModelEval } from '../model/eval.ts';
import { openCalibrationModel } from '../calibrate/activations.ts';
import { compareCalibration, CPU_GPTQ, type CalibrationComparison, type GptqRunner } from '../calibrate/compare.ts';
import { gptqQuantizeGpu } from '../calibrate/gptq-gpu.ts';
import { gptqExport, type GptqExport, type GptqExportOptions } from '../calibrate/gptq-export.ts';
import { awqExport, type AwqExportOptions } from '../calibrate/awq-export.ts';
import { gpuLinear, sumGpuLinearStats, type GpuLinear } from '../model/gpu-linear.ts';
import { llamaConfig } from '../model/llama.ts';
import { ggufView } from '../model/weights.ts';
import { type BudgetTarget, llamaQuantizeCommand, planOverrides, planToJson, smallestPlanBytes } from '../budget/budget.ts';
import { type BudgetSession, openBudgetSession, planForTarget, planReport, presetPoints } from '../budget/session.ts';
import type { BlockView, CalibrationCompareOptions, CompareRequest, CompareResult, GpuStatus, ImatrixSummary, ModelSummary, Progress, TypeResult } from './types.ts';

/** Dequantized copies kept between the two passes of a comparison, at most (bytes). */
const MAX_KEPT_DEQUANTIZED_BYTES = 512 << 20;
/**
 * Values a comparison reads at most (64 MiB as f32). A bigger tensor is compared on evenly
 * spaced runs of its rows: measured in Node, comparing all 525M values of Llama 3.1 8B's
 * token embedding in two types peaked at 13 GB, which no browser tab survives.
 */
export const MAX_COMPARE_VALUES = 1 << 24;
const COMPARE_SAMPLE_RUNS = 16;
const DEFAULT_HISTOGRAM_BINS = 121;
const WEIGHT_HISTOGRAM_BINS = 101;
/** Elements shown by the block inspector for types without blocks (per-row / per-tensor scales). */
const INSPECT_ELEMENTS_UNBLOCKED = 32;
/** The block inspector's index counts windows of this many elements (a K-quant super-block). */
const INSPECT_WINDOW = 256;
/** Positions per forward call of the model-output eval. */
const EVAL_GPU_CHUNK = 64;
const EVAL_CPU_CHUNK = 8;

export { CancelledError };

export type ProgressListener = (p: Progress) => void;

export class Engine {
  private model: ModelIndex | null = null;
  private gpu: GpuContext | null = null;
  private gpuError: string | null = null;
  private gpuOpening: Promise<void> | null = null;
  private generation = 0;
  private exportAbort: AbortController | null = null;
  /** Told when the GPU goes away (device lost): the UI shows that jobs now run on the CPU. */
  private readonly gpuListeners = new Set<(status: GpuStatus) => void>();
  private evalAbort: AbortController | null = null;
  private calibrationAbort: AbortController | null = null;
  /** The loaded model's budget session (costs and sensitivity scan), kept for re-planning. */
  private budget: { model: ModelIndex; session: BudgetSession } | null = null;
  private budgetAbort: AbortController | null = null;

  /** `openGpu` opens WebGPU (navigator.gpu in the browser, Dawn in Node); null for CPU only. */
  constructor(private readonly openGpu: (() => Promise<GpuContext>) | null) {}

  private async ensureGpu(): Promise<void> {
    this.gpuOpening ??= (async () => {
      if (!this.openGpu) {
        this.gpuError = 'CPU backend requested';
        return;
      }
      try {
        this.gpu = await this.openGpu();
        this.gpu.onLost((info) => {
          this.gpuError = `GPU device lost (${info.reason}): ${info.message}`;
          for (const listener of this.gpuListeners) listener({ backend: 'cpu', detail: this.gpuError });
        });
      } catch (e) {
        this.gpuError = e instanceof Error ? e.message : String(e);
      }
    })();
    await this.gpuOpening;
  }

  async gpuStatus(): Promise<GpuStatus> {
    await this.ensureGpu();
    const cpuCodecs = fastCodecsInstalled() ? 'webassembly' : 'reference';
    return this.gpu && !this.gpu.isLost()
      ? { backend: 'webgpu', detail: this.gpu.description, cpuCodecs }
      : { backend: 'cpu', detail: this.gpuError ?? 'no GPU', cpuCodecs };
  }

  /** Calls `listener` with the new status when the GPU is lost; returns an unsubscribe. */
  watchGpu(listener: (status: GpuStatus) => void): () => void {
    this.gpuListeners.add(listener);
    return () => this.gpuListeners.delete(listener);
  }

  /** The GPU while its device lives. */
  private liveGpu(): GpuContext | undefined {
    return this.gpu && !this.gpu.isLost() ? this.gpu : undefined;
  }

  /** The compute for the next step: WebGPU while the device lives, else the CPU. */
  private compute(): Compute {
    const gpu = this.liveGpu();
    return gpu ? gpuCompute(gpu) : cpuCompute;
  }

  /**
   * GPTQ's blocks for an export of the loaded model in `mode` (calibrate/gptq-export.ts), on
   * the GPU while it lives: what exportGguf's `gptq` option computes, for a caller that
   * reports on them (`quantlab quantize --gptq`) and passes them on as `precomputed`.
   */
  async gptqBlocks(mode: PlanMode, overrides: readonly TensorTypeOverride[], options: Omit<GptqExportOptions, 'gpu'>): Promise<GptqExport> {
    await this.ensureGpu();
    const source = await exportSourceFor(this.loadedModel());
    return gptqExport(this.loadedModel(), source, planExport(source, { mode, overrides }), { ...options, gpu: this.liveGpu() });
  }

  /** Reads the files' headers; the previous model stays loaded if they are bad. */
  async load(sources: readonly ByteSource[]): Promise<ModelSummary> {
    const model = await loadModel(sources);
    this.model = model;
    return summarizeModel(model);
  }

  loadedModel(): ModelIndex {
    if (!this.model) throw new Error('no model loaded');
    return this.model;
  }

  /** Stops the running job at its next step (it rejects with CancelledError). */
  cancel(): void {
    this.generation++;
    this.exportAbort?.abort(new CancelledError());
    this.evalAbort?.abort(new CancelledError());
    this.calibrationAbort?.abort(new CancelledError());
    this.budgetAbort?.abort(new CancelledError());
  }

  private tensor(name: string): ModelTensor {
    const t = this.loadedModel().tensors.find((x) => x.name === name);
    if (!t) throw new Error(`no tensor named '${name}' in this model`);
    return t;
  }

  async readF32(tensor: ModelTensor): Promise<Float32Array> {
    return readTensorF32(this.loadedModel(), tensor, { dequantize: dequantizeGgml });
  }

  /**
   * Runs `step` on the GPU when it can, on the CPU otherwise; a device lost mid-step
   * is retried on the CPU, so the job completes with the same result.
   */
  private async run<T>(type: QuantType, step: (c: Compute) => Promise<T>): Promise<{ value: T; backend: Compute['backend'] }> {
    const c = this.compute();
    const compute = c.supports(type) ? c : cpuCompute;
    try {
      return { value: await step(compute), backend: compute.backend };
    } catch (e) {
      if (!(e instanceof GpuDeviceLostError) || compute === cpuCompute) throw e;
      this.gpuError = e.message;
      return { value: await step(cpuCompute), backend: 'cpu' };
    }
  }

  /**
   * The model as llama.cpp's quantizer sees it (GGUF names and keys; a safetensors Llama
   * under the names convert_hf_to_gguf.py gives), with each tensor's tensor in the files.
   */
  private planView(): { view: ModelIndex; fileTensor: (name: string) => ModelTensor } {
    const model = this.loadedModel();
    if (model.format === 'gguf') return { view: model, fileTensor: (name) => this.tensor(name) };
    const config = llamaConfig(model);
    const sourceName = new Map(config.ggufNames);
    return { view: ggufView(model, config), fileTensor: (name) => this.tensor(sourceName.get(name)!) };
  }

  /** `hasImatrix`: the export will have an importance matrix, which changes some presets' types (as in llama-quantize). */
  plan(mode: PlanMode, overrides: readonly OverrideSpec[] = [], options: { hasImatrix?: boolean } = {}): PlanSummary {
    return planModel(this.planView().view, mode, overrides, options);
  }

  presetSizes(): PresetSize[] {
    return presetSizes(this.planView().view);
  }

  /** The error of every tensor the plan converts, and per layer (weighted by size). */
  async planErrors(mode: PlanMode, overrides: readonly OverrideSpec[] = [], onProgress?: ProgressListener): Promise<{ tensors: { name: string; type: string; sums: ErrorSums }[]; layers: LayerError[]; backend: Compute['backend'] }> {
    await this.ensureGpu();
    const generation = ++this.generation;
    const { view, fileTensor } = this.planView();
    const rows = planModel(view, mode, overrides).rows.filter((r) => r.converted && quantType(r.type));
    const tensors: { name: string; type: string; sums: ErrorSums }[] = [];
    let allGpu = true;
    for (const [i, row] of rows.entries()) {
      const type = quantType(row.type)!;
      const data = await this.readF32(fileTensor(row.name));
      const rowLength = row.shape[row.shape.length - 1] ?? 1;
      const { value, backend } = await this.run(type, async (c) => {
        const bytes = await c.quantize(type, data, rowLength);
        return (await c.errors(data, await c.dequantize(type, bytes, data.length / rowLength, rowLength))).sums;
      });
      allGpu &&= backend === 'webgpu';
      if (generation !== this.generation) throw new CancelledError();
      tensors.push({ name: row.name, type: row.type, sums: value });
      onProgress?.({ done: i + 1, total: rows.length, label: `${row.name} → ${row.type}` });
    }
    return { tensors, layers: errorsByLayer(tensors), backend: allGpu ? 'webgpu' : 'cpu' };
  }

  /** y = W x with W packed in each type: product error, kernel exactness, time and GB/s. */
  async matmulCheck(request: MatmulRequest, onProgress?: ProgressListener): Promise<MatmulResult> {
    await this.ensureGpu();
    const tensor = this.tensor(request.tensor);
    if (tensor.shape.length !== 2) throw new Error(`${tensor.name} is not a matrix (shape ${tensor.shape.join(' x ')})`);
    const [rows, cols] = tensor.shape;
    const w = await this.readF32(tensor);
    let x: Float32Array, input: string;
    if (request.input.kind === 'random') {
      x = randomVector(cols, request.input.seed);
      input = `random normal x (seed ${request.input.seed})`;
    } else {
      const source = this.tensor(request.input.tensor);
      const n = source.shape[source.shape.length - 1];
      if (n !== cols) throw new Error(`rows of ${source.name} have ${n} values; ${tensor.name} needs ${cols}`);
      const row = Math.min(request.input.row, elementCount(source) / n - 1);
      x = await readTensorF32(this.loadedModel(), source, { elementOffset: row * n, elementCount: n, dequantize: dequantizeGgml });
      input = `row ${row} of ${source.name}`;
    }
    let done = 0;
    const gpu = this.liveGpu() ?? null;
    const check = (on: GpuContext | null) =>
      runMatmulCheck(w, rows, cols, x, request.types, on, (type) =>
        onProgress?.({ done: ++done, total: request.types.length, label: `${type}: y = W x` }),
      );
    let results: MatmulResult['results'];
    try {
      results = await check(gpu);
    } catch (e) {
      // The device lost mid-check: run it again on the CPU (which then says so per type).
      if (!(e instanceof GpuDeviceLostError) || !gpu) throw e;
      this.gpuError = e.message;
      done = 0;
      results = await check(null);
    }
    return { tensor: tensor.name, rows, cols, input, results };
  }

  /**
   * What each preset does to the model's output (KL against F32, perplexity, top-1
   * agreement, greedy text) on the built-in text or `text`.
   */
  async evalModel(
    presets: readonly string[],
    onProgress?: ProgressListener,
    options: Pick<EvalOptions, 'text' | 'prompt' | 'greedyTokens'> = {},
  ): Promise<Omit<ModelEval, 'results'> & { results: Omit<ModelEval['results'][number], 'kl'>[]; backend: Compute['backend']; products: { gpu: number; cpu: number } | null }> {
    await this.ensureGpu();
    this.evalAbort = new AbortController();
    let gpu = this.liveGpu() ?? null;
    const linears: GpuLinear[] = [];
    const signal = this.evalAbort.signal;
    const attempt = (on: GpuContext | null) =>
      evaluateModel(this.loadedModel(), {
        ...options,
        presets,
        onProgress,
        signal,
        // On the GPU each product takes a chunk of positions at once; the CPU checks cancel more often.
        chunk: on ? EVAL_GPU_CHUNK : EVAL_CPU_CHUNK,
        linear: on
          ? (_config, weights, quantized) => {
              const l = gpuLinear(on, weights, quantized);
              linears.push(l);
              return l;
            }
          : undefined,
      });
    let r: ModelEval;
    try {
      r = await attempt(gpu);
    } catch (e) {
      // The device lost mid-eval: the whole eval again on the CPU (its numbers are the same).
      if (!(e instanceof GpuDeviceLostError) || !gpu) throw e;
      this.gpuError = e.message;
      gpu = null;
      r = await attempt(null);
    }
    const stats = sumGpuLinearStats(linears.map((l) => l.stats()));
    // Per-position KL stays here: the caller gets the summary figures.
    return {
      ...r,
      results: r.results.map(({ kl: _kl, ...rest }) => rest),
      backend: gpu && stats.cpu === 0 ? 'webgpu' : 'cpu',
      // On WebGPU: matrix products run on the GPU, and on the CPU (types without a GPU matmul).
      products: gpu ? { gpu: stats.gpu, cpu: stats.cpu } : null,
    };
  }

  /**
   * The Calibration tab: per-layer held-out output MSE of RTN, Q4_K (with and without the
   * calibration text's imatrix), AWQ and GPTQ at ~4 bits (src/calibrate/compare.ts), on the
   * CPU but for GPTQ, which runs on WebGPU while the device lives (the result says where;
   * act-order runs on the CPU). `calibrationText` replaces the built-in calibration stories.
   */
  async compareCalibration(onProgress?: ProgressListener, options: CalibrationCompareOptions = {}): Promise<CalibrationComparison> {
    this.calibrationAbort = new AbortController();
    const signal = this.calibrationAbort.signal;
    await this.ensureGpu();
    const cm = await openCalibrationModel(this.loadedModel());
    return compareCalibration(cm, { ...options, gptq: this.gptqRunner(), signal, onProgress });
  }

  /**
   * llama-imatrix's importance matrix of the loaded model over a calibration text (default:
   * the built-in stories), as the imatrix GGUF file `quantlab calibrate -o` writes for it.
   */
  async computeImatrix(onProgress?: ProgressListener, options: { text?: string; dataset?: string } = {}): Promise<{ bytes: Uint8Array; summary: ImatrixSummary }> {
    this.calibrationAbort = new AbortController();
    const cm = await openCalibrationModel(this.loadedModel());
    const { bytes } = await imatrixFileForText(cm, {
      text: options.text ?? CALIBRATION_STORY_TEXT,
      dataset: options.dataset ?? BUILTIN_CALIBRATION_DATASET,
      signal: this.calibrationAbort.signal,
      onProgress,
    });
    const name = `${this.model?.files[0]?.source.name.replace(/\.(gguf|safetensors)$/, '') ?? 'model'}.imatrix.gguf`;
    return { bytes, summary: await this.checkImatrix(memorySource(bytes, name)) };
  }

  /**
   * An importance matrix file (llama-imatrix's GGUF or legacy .dat) read and checked
   * against the loaded model as an export would check it: what it holds, or the error.
   */
  async checkImatrix(file: ByteSource): Promise<ImatrixSummary> {
    const matrix = await readImatrix(file);
    checkImatrix(await exportSourceFor(this.loadedModel()), { matrix, fileArgument: file.name });
    return { name: file.name, entries: matrix.entries.size, datasets: [...matrix.datasets], chunkCount: matrix.chunkCount };
  }

  /** GPTQ on the GPU (calibrate/gptq-gpu.ts) while the device lives, then on the CPU; act-order on the CPU (the GPU walk keeps GPTQ's order). */
  private gptqRunner(): GptqRunner {
    const gpu = this.liveGpu();
    if (!gpu) return CPU_GPTQ;
    return {
      device: gpu.description,
      quantize: async (w, rows, cols, h, grid, order) => {
        if (!gpu.isLost() && !order?.actOrder) {
          try {
            return { values: (await gptqQuantizeGpu(gpu, w, rows, cols, h, { grid })).values, backend: 'webgpu' };
          } catch (e) {
            if (!(e instanceof GpuDeviceLostError)) throw e;
            this.gpuError = e.message;
          }
        }
        return CPU_GPTQ.quantize(w, rows, cols, h, grid, order);
      },
    };
  }

  /**
   * The sensitivity scan of the Budget tab (src/budget): every quantizable tensor in every
   * candidate type, its cost and damage (KL of that tensor alone where the forward pass
   * runs the model). Kept for budgetPlan; a second scan of the same model reads the cache.
   */
  async budgetScan(onProgress?: ProgressListener) {
    const model = this.loadedModel();
    const abort = new AbortController();
    this.budgetAbort = abort;
    try {
      const session = await openBudgetSession(model, { onProgress, signal: abort.signal });
      this.budget = { model, session };
      return {
        kind: session.kind,
        tensors: session.budget.tensors.length,
        smallestBytes: smallestPlanBytes(session.budget).fileBytes,
        presets: presetPoints(session).map(({ types: _types, ...p }) => p),
      };
    } finally {
      if (this.budgetAbort === abort) this.budgetAbort = null;
    }
  }

  /** The plan for a target after budgetScan, with the presets beside it, per-layer bits and the llama-quantize command. */
  async budgetPlan(target: BudgetTarget) {
    const b = this.budget;
    if (!b || b.model !== this.model) throw new Error('run the sensitivity scan first');
    const plan = planForTarget(b.session, target);
    const name = b.model.files[0]?.source.name ?? 'model.gguf';
    return {
      plan: planToJson(name, plan, b.session.kind, b.session.imatrix?.fileArgument ?? null, b.session.errors),
      report: await planReport(b.session, plan),
      base: plan.base,
      overrides: planOverrides(plan).map((o) => ({ pattern: String(o.pattern), type: o.type })),
      command: llamaQuantizeCommand(plan, name, name.replace(/\.gguf$/i, '') + '-budget.gguf'),
    };
  }

  /** Quantize one tensor into each type and measure the error (two passes: stats, then histograms on a shared range). */
  async compare(request: CompareRequest, onProgress?: ProgressListener): Promise<CompareResult> {
    await this.ensureGpu();
    const generation = ++this.generation;
    const check = () => {
      if (generation !== this.generation) throw new CancelledError();
    };
    const tensor = this.tensor(request.tensor);
    const rowLength = tensor.shape[tensor.shape.length - 1] ?? 1;
    const { data, rowsTotal } = await this.readForCompare(tensor, rowLength);
    check();
    const rows = data.length / rowLength;
    const types = request.types.map((id) => {
      const t = quantType(id);
      if (!t) throw new Error(`unknown type '${id}'`);
      return t;
    });
    const total = types.length * 2;
    let done = 0;
    const step = (label: string) => onProgress?.({ done: ++done, total, label });

    interface Pass1 {
      type: QuantType;
      bytes: Uint8Array;
      deq: Float32Array | null;
      backend: Compute['backend'];
      ms: number;
      sums: ErrorSums | null;
      error?: string;
    }
    const keep = data.byteLength * types.length <= MAX_KEPT_DEQUANTIZED_BYTES;
    const first: Pass1[] = [];
    for (const type of types) {
      const why = whyNotApplicable(type, rowLength);
      if (why) {
        first.push({ type, bytes: new Uint8Array(), deq: null, backend: 'cpu', ms: 0, sums: null, error: why });
        step(`${type.id}: skipped`);
        continue;
      }
      const t0 = performance.now();
      const { value, backend } = await this.run(type, async (c) => {
        const bytes = await c.quantize(type, data, rowLength);
        const deq = await c.dequantize(type, bytes, rows, rowLength);
        const report = await c.errors(data, deq);
        return { bytes, deq, report };
      });
      const ms = performance.now() - t0;
      first.push({ type, bytes: value.bytes, deq: keep ? value.deq : null, backend, ms, sums: value.report.sums });
      check();
      step(`${type.id}: quantized`);
    }

    const maxErrors = first.flatMap((p) => (p.sums ? [p.sums.maxAbsErr] : []));
    const [lo, hi] = sharedErrorRange(maxErrors);
    const bins = request.histogramBins ?? DEFAULT_HISTOGRAM_BINS;
    const results: TypeResult[] = [];
    for (const p of first) {
      if (p.error) {
        results.push(emptyResult(p.type, p.error));
        continue;
      }
      const { value: report, backend } = await this.run(p.type, async (c) => {
        const deq = p.deq ?? (await c.dequantize(p.type, p.bytes, rows, rowLength));
        return { deq, ...(await c.errors(data, deq, { lo, hi, bins })) };
      });
      check();
      step(`${p.type.id}: histogram`);
      results.push({
        type: p.type.id,
        bpw: (p.bytes.length * 8) / data.length,
        bytes: rows === rowsTotal ? p.bytes.length : p.type.bytesFor(rowsTotal, rowLength),
        metrics: metricsFromSums(report.sums),
        sums: report.sums,
        histogram: report.histogram!,
        block: blockView(p.type, data, report.deq, p.bytes, request.blockIndex ?? 0),
        backend: p.backend === 'webgpu' && backend === 'webgpu' ? 'webgpu' : 'cpu',
        ms: p.ms,
      });
    }
    const [wlo, whi] = weightRange(data);
    return {
      tensor: tensor.name,
      shape: [...tensor.shape],
      backend: results.length && results.every((r) => r.error || r.backend === 'webgpu') ? 'webgpu' : 'cpu',
      weightHistogram: histogram(data, wlo, whi, WEIGHT_HISTOGRAM_BINS),
      results,
      ...(rows === rowsTotal ? {} : { sampledRows: { rows, of: rowsTotal } }),
    };
  }

  /** The tensor as f32, or above MAX_COMPARE_VALUES evenly spaced runs of its rows. */
  private async readForCompare(tensor: ModelTensor, rowLength: number): Promise<{ data: Float32Array; rowsTotal: number }> {
    const total = elementCount(tensor);
    const rowsTotal = total / rowLength;
    const rowsWanted = Math.floor(MAX_COMPARE_VALUES / rowLength);
    // Old files whose blocks run across rows are read whole (row ranges would split blocks).
    if (total <= MAX_COMPARE_VALUES || rowsWanted < 1 || tensor.flat) return { data: await this.readF32(tensor), rowsTotal };
    const runs = Math.min(COMPARE_SAMPLE_RUNS, rowsWanted);
    const perRun = Math.floor(rowsWanted / runs);
    const data = new Float32Array(runs * perRun * rowLength);
    for (let i = 0; i < runs; i++) {
      const first = Math.floor((i * (rowsTotal - perRun)) / Math.max(1, runs - 1));
      const values = await readTensorF32(this.loadedModel(), tensor, { elementOffset: first * rowLength, elementCount: perRun * rowLength, dequantize: dequantizeGgml });
      data.set(values, i * perRun * rowLength);
    }
    return { data, rowsTotal };
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
  async exportGguf(
    mode: PlanMode,
    overrides: readonly TensorTypeOverride[] = [],
    sink: (chunk: Uint8Array) => void | Promise<void>,
    onProgress?: (p: ExportProgress) => void,
    more: Omit<ExportRequest, 'mode' | 'overrides'> & Pick<ExportOptions, 'cpu' | 'onTensor' | 'measure'> & { gptq?: GptqExportOptions; awq?: AwqExportOptions } = {},
  ): Promise<number> {
    await this.ensureGpu();
    let source = await exportSourceFor(this.loadedModel());
    const abort = new AbortController();
    this.exportAbort = abort;
    const gpu = this.compute();
    try {
      let precomputed = more.precomputed;
      const calibrated = more.gptq ? 'GPTQ' : more.awq ? 'AWQ' : null;
      if (calibrated) {
        const rtn = planExport(source, { mode, overrides, options: more.options });
        const step = (p: Progress) => onProgress?.({ ...p, label: `${calibrated}: ${p.label}`, tensorsDone: 0, tensorCount: rtn.tensors.length });
        if (more.gptq) precomputed = await gptqExport(this.loadedModel(), source, rtn, { ...more.gptq, gpu: this.liveGpu(), signal: abort.signal, onProgress: step });
        if (more.awq) {
          const awq = await awqExport(this.loadedModel(), source, rtn, { ...more.awq, signal: abort.signal, onProgress: step });
          source = awq.source;
          precomputed = awq.precomputed;
        }
      }
      const plan = planExport(source, { mode, overrides, options: more.options, imatrix: more.imatrix, precomputed });
      const chunks = exportGguf(source, plan, {
        gpu: gpu.backend === 'webgpu' ? gpu : undefined,
        cpu: more.cpu,
        measure: more.measure,
        onTensor: more.onTensor,
        onProgress,
        signal: abort.signal,
      });
      return await writeStream(chunks, sink);
    } finally {
      if (this.exportAbort === abort) this.exportAbort = null;
    }
  }
}

function emptyResult(type: QuantType, error: string): TypeResult {
  const sums = { count: 0, sumSqErr: 0, sumAbsErr: 0, maxAbsErr: 0, sumSqRef: 0, sumSqDeq: 0, dot: 0 };
  return {
    type: type.id,
    bpw: bitsPerWeight(type),
    bytes: 0,
    metrics: metricsFromSums(sums),
    sums,
    histogram: { min: 0, max: 0, counts: [], below: 0, above: 0 },
    block: null,
    backend: 'cpu',
    ms: 0,
    error,
  };
}

function weightRange(data: Float32Array): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!(hi > lo)) return [lo - 1e-6 || -1e-6, hi + 1e-6 || 1e-6];
  return [lo, hi + (hi - lo) * 1e-6];
}

/** The type's block holding element windowIndex·256: original, dequantized, levels used. */
export function blockView(type: QuantType, ref: Float32Array, deq: Float32Array, bytes: Uint8Array, windowIndex: number): BlockView {
  const size = type.blockSize > 1 ? type.blockSize : INSPECT_ELEMENTS_UNBLOCKED;
  const blocks = Math.max(1, Math.floor(ref.length / size));
  const index = Math.min(Math.floor((windowIndex * INSPECT_WINDOW) / size), blocks - 1);
  const start = index * size;
  const original = Array.from(ref.subarray(start, start + size));
  const dequantized = Array.from(deq.subarray(start, start + size));
  const levels = [...new Set(dequantized)].sort((a, b) => a - b);
  // Blocks never cross rows, so block i of the flat tensor is at i·typeSize, where the layout is plain blocks.
  const plainBlocks = type.blockSize > 1 && bytes.length === (ref.length / type.blockSize) * type.typeSize;
  const fields = plainBlocks ? blockFields(type.id, bytes.subarray(index * type.typeSize, (index + 1) * type.typeSize)) : {};
  return { index, original, dequantized, levels, fields: { ...fields, 'levels used': levels.length } };
}
