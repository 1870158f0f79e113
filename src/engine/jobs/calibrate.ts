// The calibration jobs: llama-imatrix's importance matrix of the loaded model over a text
// (the GGUF file `quantlab calibrate -o` writes, the Calibration tab's download), and the
// comparison of RTN, Q4_K (with and without that imatrix), AWQ and GPTQ at ~4 bits on
// held-out text (src/calibrate/compare.ts), with GPTQ on the GPU while the device lives
// (act-order on the CPU: the GPU walk keeps GPTQ's column order).
import { memorySource, type ByteSource } from '../../formats/bytes.ts';
import { readImatrix } from '../../formats/imatrix.ts';
import { openCalibrationModel, type CalibrationModel, type CalibrationProgress } from '../../calibrate/activations.ts';
import { BUILTIN_CALIBRATION_DATASET, CALIBRATION_STORY_TEXT } from '../../calibrate/calibration-text.ts';
import { compareCalibration, CPU_GPTQ, type CalibrationComparison, type GptqRunner } from '../../calibrate/compare.ts';
import { gptqQuantizeGpu } from '../../calibrate/gptq-gpu.ts';
import { imatrixFileForText, type ImatrixStats } from '../../calibrate/imatrix.ts';
import { checkImatrix } from '../../export/plan.ts';
import { exportSourceFor } from '../../export/source.ts';
import { withGpuUsage } from '../gpu-usage.ts';
import type { Session } from '../session.ts';
import type { CalibrationCompareOptions, GpuUsage, ImatrixSummary } from '../types.ts';
import type { JobContext } from './job.ts';

/** Both jobs run the model in f32 (activations.ts); a caller running both may open it once and pass it. */
interface CalibrationRequest {
  calibrationModel?: CalibrationModel;
  /** Calibration chunk (default as llama-imatrix's, for the text). */
  chunk?: number;
}

export interface CompareCalibrationRequest extends CalibrationCompareOptions, CalibrationRequest {
  /** Default: the eval text (model/eval-text.ts). */
  heldOutText?: string;
}

export interface ImatrixRequest extends CalibrationRequest {
  /** Default: the built-in calibration stories. */
  text?: string;
  /** imatrix.datasets: the text's file name as given (default: the built-in text's name). */
  dataset?: string;
  /**
   * Run the forward pass resident on the session's GPU, the sums accumulated there
   * (`calibrate -o --backend webgpu`); the page keeps the CPU pass, whose file e2e/imatrix
   * holds byte for byte to the CLI's default (CPU) one.
   */
  onGpu?: boolean;
}

/** The loaded model opened for calibration (f32 weights, tokenizer). */
export function calibrationModel(session: Session): Promise<CalibrationModel> {
  return openCalibrationModel(session.loadedModel());
}

export async function compareCalibrationJob(
  session: Session,
  request: CompareCalibrationRequest,
  ctx: JobContext<CalibrationProgress>,
): Promise<CalibrationComparison & { gpu: GpuUsage | null }> {
  const { calibrationModel: given, ...options } = request;
  const { value, gpu } = await withGpuUsage(session, async () => {
    const gptq = await gptqRunner(session);
    const cm = given ?? (await calibrationModel(session));
    return compareCalibration(cm, { ...options, gptq, signal: ctx.signal, onProgress: ctx.onProgress });
  });
  // What the comparison cost the GPU (engine/gpu-usage.ts); null on the CPU backend.
  return { ...value, gpu };
}

/** GPTQ on the GPU (calibrate/gptq-gpu.ts) while the device lives, then on the CPU; act-order on the CPU. */
async function gptqRunner(session: Session): Promise<GptqRunner> {
  await session.ready();
  const gpu = session.liveGpu();
  if (!gpu) return CPU_GPTQ;
  return {
    device: gpu.description,
    quantize: async (w, rows, cols, h, grid, order) => {
      const onCpu = () => CPU_GPTQ.quantize(w, rows, cols, h, grid, order);
      if (order?.actOrder) return onCpu();
      const { value } = await session.withFallback(
        async (on) => ({ values: (await gptqQuantizeGpu(on, w, rows, cols, h, { grid })).values, backend: 'webgpu' as const }),
        onCpu,
      );
      return value;
    },
  };
}

/** llama-imatrix's statistics of the loaded model over the text, and its GGUF imatrix file. */
export async function imatrixJob(session: Session, request: ImatrixRequest, ctx: JobContext<CalibrationProgress>): Promise<{ stats: ImatrixStats; bytes: Uint8Array }> {
  const cm = request.calibrationModel ?? (await calibrationModel(session));
  const options = {
    text: request.text ?? CALIBRATION_STORY_TEXT,
    dataset: request.dataset ?? BUILTIN_CALIBRATION_DATASET,
    chunk: request.chunk,
    signal: ctx.signal,
    onProgress: ctx.onProgress,
  };
  if (!request.onGpu) return imatrixFileForText(cm, options);
  // On the GPU while the device lives; a device lost mid-way runs the whole text again on the CPU.
  const { value } = await session.withFallback(
    (gpu) => imatrixFileForText(cm, { ...options, gpu }),
    () => imatrixFileForText(cm, options),
  );
  return value;
}

/**
 * An importance matrix file (llama-imatrix's GGUF or legacy .dat) read and checked against
 * the loaded model as an export would check it: what it holds, or the error.
 */
export async function imatrixSummary(session: Session, file: ByteSource): Promise<ImatrixSummary> {
  const matrix = await readImatrix(file);
  checkImatrix(await exportSourceFor(session.loadedModel()), { matrix, fileArgument: file.name });
  return { name: file.name, entries: matrix.entries.size, datasets: [...matrix.datasets], chunkCount: matrix.chunkCount };
}

/** The summary of an imatrix file just computed for the loaded model, named after the model. */
export function computedImatrixSummary(session: Session, bytes: Uint8Array): Promise<ImatrixSummary> {
  const name = `${session.loadedModel().files[0]?.source.name.replace(/\.(gguf|safetensors)$/, '') ?? 'model'}.imatrix.gguf`;
  return imatrixSummary(session, memorySource(bytes, name));
}
