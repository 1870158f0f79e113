// A recorded list of compute dispatches over buffers that stay on the GPU: the training
// step (or a held-out forward pass) is built once per sequence length, with its bind groups
// and per-dispatch uniforms made up front, and each run encodes the whole list into one
// compute pass of one command buffer. WebGPU orders the dispatches of a pass, each seeing the
// writes of the ones before, so a scratch buffer may be reused by consecutive dispatches.
import type { GpuContext } from '../../gpu/device.ts';
import { dispatchSize } from '../../gpu/dispatch.ts';
import { getPipeline } from '../../gpu/pipelines.ts';
import { composeShader } from '../../gpu/shaders.ts';

/** The kernels of shaders/train/ (each file's `main`). */
export const TRAIN_KERNELS = [
  'linear',
  'linear_dx',
  'linear_dw',
  'embed',
  'embed_back',
  'rmsnorm',
  'rmsnorm_dx',
  'rmsnorm_dw',
  'rope',
  'attention',
  'attn_ds',
  'attn_dq',
  'attn_dkv',
  'swiglu',
  'swiglu_back',
  'add',
  'loss',
  'sumsq',
  'finalize',
  'adamw',
] as const;
export type TrainKernel = (typeof TRAIN_KERNELS)[number];

/** Invocations per workgroup of the elementwise and per-row kernels (WebGPU allows at least 256). */
export const TRAIN_WG = 64;

export type TrainPipelines = Record<TrainKernel, GPUComputePipeline>;

/** Every training kernel compiled for this device (cached per device by gpu/pipelines.ts). */
export async function trainPipelines(gpu: GpuContext): Promise<TrainPipelines> {
  const built = await Promise.all(
    TRAIN_KERNELS.map((k) =>
      getPipeline(gpu.device, {
        name: `train.${k}`,
        code: () => composeShader(['train/common.wgsl', `train/${k}.wgsl`]),
        // The one-workgroup reductions have fixed sizes and never read WG_SIZE.
        constants: k === 'sumsq' || k === 'finalize' ? {} : { WG_SIZE: TRAIN_WG },
      }),
    ),
  );
  return Object.fromEntries(TRAIN_KERNELS.map((k, i) => [k, built[i]])) as TrainPipelines;
}

/** A uniform of up to four u32 then up to four f32 values (the kernels' Params). */
export function uniformWords(u: readonly number[], f: readonly number[] = []): ArrayBuffer {
  const data = new ArrayBuffer(32);
  new Uint32Array(data, 0, 4).set(u.slice(0, 4));
  const rest = u.slice(4);
  // Kernels with more than four u32 fields take them in the second half.
  if (rest.length > 0) new Uint32Array(data, 16, 4).set(rest);
  else new Float32Array(data, 16, 4).set(f);
  return data;
}

interface Dispatch {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: [number, number];
}

export class Program {
  private readonly dispatches: Dispatch[] = [];
  /** Buffers zeroed at the start of every run (gradients). */
  private readonly cleared: GPUBuffer[] = [];
  private readonly owned: GPUBuffer[] = [];

  constructor(
    readonly gpu: GpuContext,
    readonly pipes: TrainPipelines,
    readonly label: string,
  ) {}

  /** A storage buffer of `floats` f32 values owned by this program. */
  buffer(floats: number, what: string, clearEachRun = false): GPUBuffer {
    const b = this.gpu.device.createBuffer({
      label: `${this.label}.${what}`,
      size: Math.max(16, Math.ceil((floats * 4) / 16) * 16),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    this.owned.push(b);
    if (clearEachRun) this.cleared.push(b);
    return b;
  }

  /** Zero `b` at the start of every run. */
  clearEachRun(b: GPUBuffer): void {
    this.cleared.push(b);
  }

  /** One dispatch of a training kernel over `buffers` (bindings 0, 1, ...; a uniform last), `invocations` of them. */
  kernel(kernel: TrainKernel, buffers: readonly GPUBuffer[], uniform: ArrayBuffer | null, invocations: number): void {
    const wg = kernel === 'sumsq' ? invocations : Math.ceil(invocations / TRAIN_WG);
    this.raw(this.pipes[kernel], uniform ? [...buffers, this.uniform(uniform, kernel)] : buffers, wg);
  }

  /** A uniform buffer holding `data`, owned by this program. */
  uniform(data: ArrayBuffer, what: string): GPUBuffer {
    const b = this.gpu.device.createBuffer({ label: `${this.label}.${what}.params`, size: data.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.gpu.device.queue.writeBuffer(b, 0, data);
    this.owned.push(b);
    return b;
  }

  /** A dispatch of any pipeline (the codecs' quantize / dequantize kernels) over `workgroups` workgroups. */
  raw(pipeline: GPUComputePipeline, buffers: readonly GPUBuffer[], workgroups: number): void {
    if (workgroups <= 0) return;
    const bindGroup = this.gpu.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    this.dispatches.push({ pipeline, bindGroup, workgroups: dispatchSize(workgroups, this.gpu.limits) });
  }

  get size(): number {
    return this.dispatches.length;
  }

  /** Clears, then every dispatch in one compute pass. */
  encode(enc: GPUCommandEncoder): void {
    for (const b of this.cleared) enc.clearBuffer(b);
    const pass = enc.beginComputePass({ label: `${this.label}.pass` });
    for (const d of this.dispatches) {
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(...d.workgroups);
    }
    pass.end();
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
  }
}
