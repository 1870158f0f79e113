// The session every job runs in, in the page's worker (engine.ts) and in the CLI: the
// loaded model, the GPU device (opened once, its status, who to tell when it is lost) and
// the CPU fallback, written here once: a step runs on the GPU while the device lives (and
// has the step's codec), on the CPU otherwise; a device lost mid-step reruns that step on
// the CPU, and the status says why. Jobs (jobs/*.ts) take a Session; the domain code they
// call takes it as a GpuFallback (export/write.ts).
import { didYouMean } from '../formats/suggest.ts';
import type { ByteSource } from '../formats/bytes.ts';
import { loadModel, readTensorF32, type ModelIndex, type ModelTensor } from '../formats/model.ts';
import { GpuDeviceLostError, type GpuContext } from '../gpu/device.ts';
import { cpuCompute, gpuCompute, type Backend, type Compute } from '../gpu/compute.ts';
import { fastCodecsInstalled } from '../quant/fast/wasm-codecs.ts';
import { dequantizeGgml, type QuantType } from '../quant/types.ts';
import type { GpuFallback } from '../export/write.ts';
import { summarizeModel } from './summary.ts';
import type { GpuStatus, ModelSummary } from './types.ts';

/** A step's value and who computed it. */
export interface Ran<T> {
  value: T;
  backend: Backend;
}

export class Session implements GpuFallback {
  private model: ModelIndex | null = null;
  private gpu: GpuContext | null = null;
  private gpuError: string | null = null;
  private opening: Promise<void> | null = null;
  /** Told when the GPU goes away (device lost): the UI shows that jobs now run on the CPU. */
  private readonly gpuListeners = new Set<(status: GpuStatus) => void>();

  /** `openGpu` opens WebGPU (navigator.gpu in the browser, Dawn in Node); null for the CPU only. */
  constructor(private readonly openGpu: (() => Promise<GpuContext>) | null) {}

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

  tensor(name: string): ModelTensor {
    const t = this.loadedModel().tensors.find((x) => x.name === name);
    if (!t) throw new Error(`no tensor named '${name}' in this model${didYouMean(name, this.loadedModel().tensors.map((x) => x.name))}`);
    return t;
  }

  /** The tensor as f32 (dequantized if stored quantized), whole or `elementCount` values from `elementOffset`. */
  readF32(tensor: ModelTensor, range?: { elementOffset: number; elementCount: number }): Promise<Float32Array> {
    return readTensorF32(this.loadedModel(), tensor, { ...range, dequantize: dequantizeGgml });
  }

  /** Opens the GPU on first use (once: a failure is kept as the status's reason). */
  ready(): Promise<void> {
    this.opening ??= (async () => {
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
    return this.opening;
  }

  async status(): Promise<GpuStatus> {
    await this.ready();
    const cpuCodecs = fastCodecsInstalled() ? 'webassembly' : 'reference';
    const gpu = this.liveGpu();
    return gpu ? { backend: 'webgpu', detail: gpu.description, cpuCodecs } : { backend: 'cpu', detail: this.gpuError ?? 'no GPU', cpuCodecs };
  }

  /** Calls `listener` with the new status when the GPU is lost; returns an unsubscribe. */
  watchGpu(listener: (status: GpuStatus) => void): () => void {
    this.gpuListeners.add(listener);
    return () => this.gpuListeners.delete(listener);
  }

  /** The GPU while its device lives (after ready()). */
  liveGpu(): GpuContext | undefined {
    return this.gpu && !this.gpu.isLost() ? this.gpu : undefined;
  }

  /**
   * THE CPU fallback: `gpuStep` on the GPU while the device lives (and, given `type`, has
   * its codec; the step gets the GPU's compute), `cpuStep` otherwise. A device lost during
   * `gpuStep` runs `cpuStep` instead (jobs are written so both give the same result) and
   * records why; every later step then runs on the CPU.
   */
  async withFallback<T>(gpuStep: (gpu: GpuContext, compute: Compute) => Promise<T>, cpuStep: () => Promise<T>, type?: QuantType): Promise<Ran<T>> {
    await this.ready();
    const gpu = this.liveGpu();
    const compute = gpu && gpuCompute(gpu);
    if (!gpu || !compute || (type && !compute.supports(type))) return { value: await cpuStep(), backend: 'cpu' };
    try {
      return { value: await gpuStep(gpu, compute), backend: 'webgpu' };
    } catch (e) {
      if (!(e instanceof GpuDeviceLostError)) throw e;
      this.gpuError = e.message;
      return { value: await cpuStep(), backend: 'cpu' };
    }
  }

  /** A step written once against Compute, on `type`'s GPU codec when it can, else (or after a loss) on the CPU codecs. */
  run<T>(type: QuantType, step: (c: Compute) => Promise<T>): Promise<Ran<T>> {
    return this.withFallback((_gpu, compute) => step(compute), () => step(cpuCompute), type);
  }
}
