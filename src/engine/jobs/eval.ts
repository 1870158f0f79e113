// The model-output eval as a job: what each preset does to the model's predictions (KL
// against F32, perplexity, top-1 agreement, greedy text; src/model/eval.ts), with every
// matrix product on the GPU while the device lives (model/gpu-linear.ts, in each tensor's
// packed blocks); a device lost mid-eval reruns the whole eval on the CPU (same numbers).
import { CALIBRATION_STORY_TEXT } from '../../calibrate/calibration-text.ts';
import type { GpuContext } from '../../gpu/device.ts';
import type { Backend } from '../../gpu/compute.ts';
import { evaluateModel, type EvalOptions, type ModelEval } from '../../model/eval.ts';
import { gpuLinear, sumGpuLinearStats, type GpuLinear } from '../../model/gpu-linear.ts';
import { withGpuUsage } from '../gpu-usage.ts';
import type { Session } from '../session.ts';
import type { GpuUsage } from '../types.ts';
import type { JobContext } from './job.ts';

/** Positions per forward call: on the GPU each product takes a chunk at once; the CPU checks cancel more often. */
const EVAL_GPU_CHUNK = 64;
const EVAL_CPU_CHUNK = 8;

/** `activations`: the products' input mode (model/activations.ts); int8-static calibrates on the built-in calibration text unless `calibrationText` is given. */
/** `linear`: the CPU products when no GPU runs them (the CLI's forward pool, --threads), with `sharedWeights`. */
export type EvalRequest = Pick<EvalOptions, 'presets' | 'text' | 'prompt' | 'greedyTokens' | 'activations' | 'calibrationText' | 'linear' | 'sharedWeights' | 'ctx' | 'klBase' | 'saveLogits'>;

export type EvalResult = Omit<ModelEval, 'results'> & {
  results: Omit<ModelEval['results'][number], 'kl'>[];
  backend: Backend;
  /** On WebGPU: matrix products run on the GPU, and on the CPU (types without a GPU matmul); null on the CPU. */
  products: { gpu: number; cpu: number } | null;
  /** What the eval cost the GPU (engine/gpu-usage.ts); null on the CPU backend. */
  gpu?: GpuUsage | null;
};

export async function evalJob(session: Session, request: EvalRequest, ctx: JobContext): Promise<EvalResult> {
  const { value, gpu } = await withGpuUsage(session, () => runEval(session, request, ctx));
  return { ...value, gpu };
}

async function runEval(session: Session, request: EvalRequest, ctx: JobContext): Promise<EvalResult> {
  const linears: GpuLinear[] = [];
  const attempt = (gpu: GpuContext | null) =>
    evaluateModel(session.loadedModel(), {
      ...request,
      calibrationText: request.calibrationText ?? CALIBRATION_STORY_TEXT,
      onProgress: ctx.onProgress,
      signal: ctx.signal,
      chunk: gpu ? EVAL_GPU_CHUNK : EVAL_CPU_CHUNK,
      linear: gpu
        ? (_config, weights, quantized) => {
            const l = gpuLinear(gpu, weights, quantized);
            linears.push(l);
            return l;
          }
        : request.linear,
      sharedWeights: gpu ? false : request.sharedWeights,
      // The whole forward on the GPU where it can run (f32 activations): one readback per chunk.
      residentGpu: gpu ?? undefined,
    });
  const { value: r, backend } = await session.withFallback((gpu) => attempt(gpu), () => attempt(null));
  const stats = sumGpuLinearStats(linears.map((l) => l.stats()));
  // llm.int8 computes its mixed products itself, on the CPU (activations.ts): nothing ran on the GPU.
  const onGpu = backend === 'webgpu' && request.activations !== 'llm.int8';
  // Per-position KL stays here: the caller gets the summary figures.
  return {
    ...r,
    results: r.results.map(({ kl: _kl, ...rest }) => rest),
    backend: onGpu && stats.cpu === 0 ? 'webgpu' : 'cpu',
    products: onGpu ? { gpu: stats.gpu, cpu: stats.cpu } : null,
  };
}
