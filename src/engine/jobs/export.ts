// The export jobs: the loaded model quantized to a GGUF file (src/export: byte-identical to
// llama-quantize), streamed to a sink chunk by chunk, with the GPU quantizing the types it
// has codecs for while the device lives; and the calibrated exports' first step: GPTQ's
// blocks (--gptq, on the GPU while the device lives) or AWQ's scaled model (--awq). The
// calibration modules load only when a calibrated export asks for them, so a plain export
// (the CLI's common case) starts without them.
import type { AwqExport, AwqExportOptions } from '../../calibrate/awq-export.ts';
import type { CalibrationProgress } from '../../calibrate/activations.ts';
import type { GptqExport, GptqExportOptions } from '../../calibrate/gptq-export.ts';
import { planExport, type ExportPlan, type ExportRequest } from '../../export/plan.ts';
import { exportSourceFor, type ExportSource } from '../../export/source.ts';
import { exportGguf, writeStream, type ExportOptions, type ExportProgress } from '../../export/write.ts';
import type { PlanMode, TensorTypeOverride } from '../../quant/presets.ts';
import type { Session } from '../session.ts';
import type { JobContext } from './job.ts';

/** What an export plans from: the mode, --tensor-type overrides and the plan's options. */
export interface ExportPlanRequest {
  mode: PlanMode;
  overrides?: readonly TensorTypeOverride[];
  options?: ExportRequest['options'];
}

export interface ExportJobRequest extends ExportPlanRequest, Pick<ExportRequest, 'imatrix' | 'precomputed'>, Pick<ExportOptions, 'cpu' | 'onTensor' | 'measure'> {
  /** Takes the file chunk by chunk, in order. */
  sink: (chunk: Uint8Array) => void | Promise<void>;
  /** The model to export in place of the loaded one's source (AWQ's scaled model: awqModelJob). */
  source?: ExportSource;
  /** GPTQ's blocks from this calibration text first (gptqBlocksJob), as `quantlab quantize --gptq`. */
  gptq?: Omit<GptqExportOptions, 'gpu' | 'signal' | 'onProgress'>;
  /** AWQ's scaled model from this calibration text first (awqModelJob), as `quantlab quantize --awq`. */
  awq?: Omit<AwqExportOptions, 'signal' | 'onProgress'>;
}

/** Writes the file to the sink; resolves with the bytes written. */
export async function exportJob(session: Session, request: ExportJobRequest, ctx: JobContext<ExportProgress>): Promise<number> {
  // The GPU open before the first read: the exporter's read buffers are not shared memory where it may upload them.
  await session.ready();
  let source = request.source ?? (await exportSourceFor(session.loadedModel()));
  let precomputed = request.precomputed;
  const planRequest: ExportPlanRequest = { mode: request.mode, overrides: request.overrides, options: request.options };
  const calibrated = request.gptq ? 'GPTQ' : request.awq ? 'AWQ' : null;
  if (calibrated) {
    const tensorCount = rtnPlan(source, planRequest).tensors.length;
    const onProgress = (p: CalibrationProgress) => ctx.onProgress?.({ ...p, label: `${calibrated}: ${p.label}`, tensorsDone: 0, tensorCount });
    const step = { signal: ctx.signal, onProgress };
    if (request.gptq) precomputed = await gptqBlocksJob(session, { ...planRequest, ...request.gptq }, step);
    if (request.awq) ({ source, precomputed } = await awqModelJob(session, { ...planRequest, ...request.awq }, step));
  }
  const plan = planExport(source, { ...planRequest, imatrix: request.imatrix, precomputed });
  const chunks = exportGguf(source, plan, {
    gpu: session,
    cpu: request.cpu,
    measure: request.measure,
    onTensor: request.onTensor,
    onProgress: ctx.onProgress,
    signal: ctx.signal,
  });
  return writeStream(chunks, request.sink);
}

/** The export's plan without calibration: what GPTQ and AWQ read the types from. */
function rtnPlan(source: ExportSource, request: ExportPlanRequest): ExportPlan {
  return planExport(source, { mode: request.mode, overrides: request.overrides, options: request.options });
}

/**
 * GPTQ's blocks for the q4_0/q4_K tensors of the export's plan that a calibration pass sees
 * (calibrate/gptq-export.ts), on the GPU while it lives: what exportJob's `gptq` computes,
 * for a caller that reports on them (`quantlab quantize --gptq`) and passes them on as `precomputed`.
 */
export async function gptqBlocksJob(
  session: Session,
  request: ExportPlanRequest & Omit<GptqExportOptions, 'gpu' | 'signal' | 'onProgress'>,
  ctx: JobContext<CalibrationProgress>,
): Promise<GptqExport> {
  const { mode, overrides, options, ...gptq } = request;
  const [{ gptqExport }, source] = await Promise.all([import('../../calibrate/gptq-export.ts'), exportSourceFor(session.loadedModel()), session.ready()]);
  const plan = rtnPlan(source, { mode, overrides, options });
  return gptqExport(session.loadedModel(), source, plan, { ...gptq, gpu: session, signal: ctx.signal, onProgress: ctx.onProgress });
}

/** AWQ's scaled model (its export source and the keys it adds) for the types of the export's plan (calibrate/awq-export.ts). */
export async function awqModelJob(
  session: Session,
  request: ExportPlanRequest & Omit<AwqExportOptions, 'signal' | 'onProgress'>,
  ctx: JobContext<CalibrationProgress>,
): Promise<AwqExport> {
  const { mode, overrides, options, ...awq } = request;
  const [{ awqExport }, source] = await Promise.all([import('../../calibrate/awq-export.ts'), exportSourceFor(session.loadedModel())]);
  return awqExport(session.loadedModel(), source, rtnPlan(source, { mode, overrides, options }), { ...awq, signal: ctx.signal, onProgress: ctx.onProgress });
}
