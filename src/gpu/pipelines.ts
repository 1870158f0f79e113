// Compute pipelines, cached per device by op + type (+ override constants): a shader is
// compiled once per device, however many tensors go through it.
import { codecKernelSource, statsKernelSource, type CodecKernel } from './shaders.ts';

export interface PipelineSpec {
  /** Cache key and label: 'quantize.q4_0', 'stats'. */
  readonly name: string;
  readonly code: () => string;
  readonly constants?: Readonly<Record<string, number>>;
}

const cache = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();

/** A compiled pipeline for `spec`, from the cache when this device already built it. */
export function getPipeline(device: GPUDevice, spec: PipelineSpec): Promise<GPUComputePipeline> {
  let perDevice = cache.get(device);
  if (!perDevice) {
    perDevice = new Map();
    cache.set(device, perDevice);
  }
  const consts = Object.entries(spec.constants ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const key = spec.name + consts.map(([k, v]) => `|${k}=${v}`).join('');
  let p = perDevice.get(key);
  if (!p) {
    p = buildPipeline(device, spec, key);
    perDevice.set(key, p);
    p.catch(() => perDevice.delete(key)); // a failed build is not cached
  }
  return p;
}

async function buildPipeline(device: GPUDevice, spec: PipelineSpec, key: string): Promise<GPUComputePipeline> {
  const code = spec.code();
  const module = device.createShaderModule({ label: `${spec.name}.module`, code });
  try {
    return await device.createComputePipelineAsync({
      label: `${key}.pipeline`,
      layout: 'auto',
      compute: { module, entryPoint: 'main', constants: spec.constants as Record<string, number> | undefined },
    });
  } catch (err) {
    // Name the WGSL line, not only Dawn's message.
    const info = await module.getCompilationInfo();
    const lines = code.split('\n');
    const details = info.messages
      .filter((m) => m.type === 'error')
      .map((m) => `  ${m.lineNum}:${m.linePos} ${m.message}\n    ${lines[m.lineNum - 1] ?? ''}`)
      .join('\n');
    throw new Error(`WGSL pipeline ${key} failed: ${(err as Error).message}${details ? `\n${details}` : ''}`, { cause: err });
  }
}

/**
 * The quantize / dequantize pipeline of a codec (shaders/codecs/<wgsl>.wgsl); `weighted`:
 * the quantize pipeline that takes importance weights (kernels/quantize.wgsl's WEIGHTED).
 */
export function codecPipeline(device: GPUDevice, kernel: CodecKernel, wgsl: string, wgSize: number, weighted = false) {
  return getPipeline(device, {
    name: `${kernel}.${wgsl}`,
    code: () => codecKernelSource(kernel, wgsl),
    constants: kernel === 'quantize' ? { WG_SIZE: wgSize, WEIGHTED: weighted ? 1 : 0 } : { WG_SIZE: wgSize },
  });
}

export function statsPipeline(device: GPUDevice, wgSize: number, elemsPerThread: number) {
  return getPipeline(device, {
    name: 'stats',
    code: statsKernelSource,
    constants: { WG_SIZE: wgSize, ELEMS_PER_THREAD: elemsPerThread },
  });
}
