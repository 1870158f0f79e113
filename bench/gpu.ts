// GPU side of the bench: quantize, dequantize and matvec kernels on resident buffers, next
// to a copyBufferToBuffer of the tensor's f32 bytes timed the same way on the same device
// (the memory bound). Throughput counts the bytes a kernel must move: read + written.
//   copy:       f32 read + f32 written (2 x 4 bytes per weight)
//   quantize:   f32 read + packed written
//   dequantize: packed read + f32 written
//   matvec:     packed W read + x read + y written
import type { GpuContext } from '../src/gpu/device.ts';
import { gpuMatmulSupportsType, matmulConfig, matmulDispatch, matmulParams, matmulPipeline, MATMUL_PARAMS_BYTES, type MatmulOptions } from '../src/gpu/matmul.ts';
import { codecPipeline } from '../src/gpu/pipelines.ts';
import { groupBlocks } from '../src/gpu/block-codecs.ts';
import { dispatchSize, kernelWgSize } from '../src/gpu/dispatch.ts';
import { gpuSupportsType } from '../src/gpu/quantize.ts';
import type { QuantType } from '../src/quant/types.ts';
import type { GpuTimer, RecordWork } from './timing.ts';

/** Bindings a codec kernel may have after (src, dst, params). */
const MAX_EXTRA_BINDINGS = 4;
/** A kernel whose whole dispatch would take longer is timed on a leading share of its workgroups. */
const MAX_KERNEL_SECONDS = 1;
const PROBE_WORKGROUPS = 32;

export interface Rate {
  /** GB/s (1e9 bytes) of bytes moved. */
  gbs: number;
  /** This rate over the copy's, same device, same run. */
  ofCopy: number;
  /** Share of the tensor the timed dispatch covered (1 unless the kernel is slow: see `kernel`). */
  share: number;
}

export interface GpuResult {
  copyGBs: number;
  quantize?: Rate;
  dequantize?: Rate;
  matvec?: Rate & { gflops: number; config: string };
  /** Why GPU columns are empty. */
  skipped?: string;
}

/** A kernel that did not finish in time: the device is busy with it, so the bench stops using it. */
export class GpuStuckError extends Error {
  constructor(what: string, seconds: number) {
    super(`${what} did not finish in ${seconds} s (a kernel that never ends?); GPU columns of the remaining types are left out`);
    this.name = 'GpuStuckError';
  }
}

function withTimeout<T>(p: Promise<T>, seconds: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new GpuStuckError(what, seconds)), seconds * 1000);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** The type's blocks for rows x cols: the CPU codec's blocks of the first rows, tiled (throughput does not depend on values). */
export function packedWeights(type: QuantType, values: Float32Array, rows: number, cols: number): Uint8Array {
  const sample = Math.min(rows, 16);
  const head = type.codec.encode(values.subarray(0, sample * cols), cols);
  const out = new Uint8Array(Math.ceil((head.length / sample) * rows / 4) * 4 + 4);
  for (let r = 0; r < rows; r += sample) out.set(head.subarray(0, (Math.min(sample, rows - r) * head.length) / sample), (r * head.length) / sample);
  return out;
}

export interface BenchGpuOptions extends MatmulOptions {
  /** Seconds one measurement (compile + runs) may take before the device counts as stuck. */
  timeoutSeconds?: number;
}

export async function benchGpu(gpu: GpuContext, timer: GpuTimer, type: QuantType, values: Float32Array, cols: number, options: BenchGpuOptions = {}): Promise<GpuResult> {
  const { device, limits } = gpu;
  const timeoutSeconds = options.timeoutSeconds ?? 60;
  const rows = values.length / cols;
  const f32Bytes = values.length * 4;
  const limit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const buffers: GPUBuffer[] = [];
  const buffer = (label: string, size: number, usage: number) => {
    const b = device.createBuffer({ label: `bench.${type.id}.${label}`, size: Math.ceil(size / 4) * 4, usage });
    buffers.push(b);
    return b;
  };
  const S = GPUBufferUsage.STORAGE;
  const timed = (what: string, record: RecordWork) =>
    withTimeout(timer.time(`${type.id}.${what}`, record), timeoutSeconds, `${type.id} ${what}`);
  /**
   * Seconds per run of a kernel over `total` workgroups (x first, then rows of y: the
   * kernels' linear workgroup order), and the share of them timed: a probe of
   * PROBE_WORKGROUPS workgroups estimates the whole; when that exceeds MAX_KERNEL_SECONDS
   * (software adapters, search-heavy quantizers) only a leading share of the workgroups is
   * dispatched. Every workgroup does the same work, so the rate is the same.
   */
  const kernel = async (what: string, pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, total: number) => {
    const dispatch = (enc: GPUCommandEncoder, reps: number, wgs: number) => {
      const x = Math.min(wgs, limits.maxComputeWorkgroupsPerDimension);
      const p = enc.beginComputePass({ label: `bench.${type.id}.${what}.pass` });
      p.setPipeline(pipeline);
      p.setBindGroup(0, bindGroup);
      if (reps === 0) p.dispatchWorkgroups(1, 1); // warm-up
      for (let i = 0; i < reps; i++) p.dispatchWorkgroups(x, Math.ceil(wgs / x));
      p.end();
    };
    const probeWgs = Math.min(total, PROBE_WORKGROUPS);
    const probe = await withTimeout(timer.time(`${type.id}.${what}.probe`, (enc, reps) => dispatch(enc, reps, probeWgs), { runs: 0 }), timeoutSeconds, `${type.id} ${what}`);
    const estimate = (probe * total) / probeWgs;
    let wgs = estimate > MAX_KERNEL_SECONDS ? Math.max(probeWgs, Math.floor((total * MAX_KERNEL_SECONDS) / estimate)) : total;
    const x = Math.min(wgs, limits.maxComputeWorkgroupsPerDimension);
    wgs = Math.min(total, x * Math.ceil(wgs / x));
    const seconds = await timed(what, (enc, reps) => dispatch(enc, reps, wgs));
    return { seconds, share: wgs / total };
  };
  const bind = (what: string, pipeline: GPUComputePipeline, bufs: GPUBuffer[]) =>
    device.createBindGroup({
      label: `bench.${type.id}.${what}.bindgroup`,
      layout: pipeline.getBindGroupLayout(0),
      entries: bufs.map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
  // The codec kernels' first three bindings are (src, dst, params); bindings after them
  // (quantize.wgsl's per-group CPU-fallback flags, importance weights) get zeroed scratch
  // buffers: params ask for no importance, and the flags are not read back. Tried with
  // 0..MAX_EXTRA_BINDINGS extras, so the bench survives kernels gaining bindings.
  const bindCodec = async (what: string, pipeline: GPUComputePipeline, bufs: GPUBuffer[], scratchBytes: number) => {
    for (let extra = 0; extra <= MAX_EXTRA_BINDINGS; extra++) {
      const scratch = Array.from({ length: extra }, (_, i) => buffer(`${what}.scratch${i}`, Math.max(16, scratchBytes), S));
      device.pushErrorScope('validation');
      const bg = bind(what, pipeline, [...bufs, ...scratch]);
      if (!(await device.popErrorScope())) return bg;
    }
    throw new Error(`${what}: the kernel's bindings are not (src, dst, params, scratch...)`);
  };
  try {
    const f32Buf = buffer('f32', f32Bytes, S | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
    device.queue.writeBuffer(f32Buf, 0, values as Float32Array<ArrayBuffer>);
    const copyDst = buffer('copy', f32Bytes, GPUBufferUsage.COPY_DST);
    const copySeconds = await timed('copy', (enc, reps) => {
      if (reps === 0) enc.copyBufferToBuffer(f32Buf, 0, copyDst, 0, 4); // warm-up
      for (let i = 0; i < reps; i++) enc.copyBufferToBuffer(f32Buf, 0, copyDst, 0, f32Bytes);
    });
    const copyGBs = (2 * f32Bytes) / copySeconds / 1e9;
    if (!gpuSupportsType(type)) return { copyGBs, skipped: `no WGSL codec (shaders/codecs/${type.wgsl}.wgsl)` };
    if (f32Bytes > limit) return { copyGBs, skipped: `${f32Bytes} bytes exceed one binding (${limit}): use a smaller --size` };
    if (!gpuMatmulSupportsType(type)) return { copyGBs, skipped: 'per-tensor or per-row data, not a plain block layout: its kernels are not timed here' };

    const rate = (bytes: number, seconds: number, share = 1): Rate => {
      const gbs = bytes / seconds / 1e9;
      return { gbs, ofCopy: gbs / copyGBs, share };
    };
    const result: GpuResult = { copyGBs };
    const nBlocks = values.length / type.blockSize;
    const g = groupBlocks(type.typeSize);
    const groups = Math.ceil(nBlocks / g);
    const packedBytes = nBlocks * type.typeSize;
    // The packed tensor, padded to whole groups plus a word (the matvec's funnel shift reads it).
    const packedBuf = buffer('packed', Math.max(groups * g * type.typeSize, packedBytes + 4), S | GPUBufferUsage.COPY_DST);
    device.queue.writeBuffer(packedBuf, 0, packedWeights(type, values, rows, cols) as Uint8Array<ArrayBuffer>);
    const deqBuf = buffer('dequantized', groups * g * type.blockSize * 4, S);
    const codecParams = buffer('codec.params', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    device.queue.writeBuffer(codecParams, 0, new Uint32Array([nBlocks, 0, 0, 0]));
    // The codec kernels' workgroup size, as src/gpu/dispatch.ts chooses it for this device.
    const codecWgSize = kernelWgSize(limits);
    const codecWgs = Math.ceil(groups / codecWgSize);
    dispatchSize(codecWgs, limits); // throws when even a 2D dispatch cannot hold it
    /** Bytes of blocks a share of the codec workgroups covers (the last group may be partial). */
    const codecShare = (share: number) => Math.min(1, (Math.round(share * codecWgs) * codecWgSize * g) / nBlocks);

    // dequantize: packed blocks -> f32.
    {
      const pipeline = await withTimeout(codecPipeline(device, 'dequantize', type.wgsl, codecWgSize), timeoutSeconds, `${type.id} dequantize compile`);
      const bg = await bindCodec('dequantize', pipeline, [packedBuf, deqBuf, codecParams], groups * 4);
      const { seconds, share } = await kernel('dequantize', pipeline, bg, codecWgs);
      result.dequantize = rate(codecShare(share) * (packedBytes + f32Bytes), seconds, share);
    }

    // matvec: W resident in its packed blocks, one token.
    const config = matmulConfig(gpu, type, cols, 1, options);
    const [mx, my] = matmulDispatch(config, rows, 1);
    if (mx <= limits.maxComputeWorkgroupsPerDimension) {
      const xBuf = buffer('matvec.x', cols * 4, S | GPUBufferUsage.COPY_DST);
      device.queue.writeBuffer(xBuf, 0, values as Float32Array<ArrayBuffer>, 0, cols);
      const yBuf = buffer('matvec.y', rows * 4, S);
      const mParams = buffer('matvec.params', MATMUL_PARAMS_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      device.queue.writeBuffer(mParams, 0, matmulParams(type, rows, cols, 1));
      const pipeline = await withTimeout(matmulPipeline(device, type, config), timeoutSeconds, `${type.id} matvec compile`);
      const bg = bind('matvec', pipeline, [packedBuf, xBuf, yBuf, mParams]);
      const { seconds, share } = await kernel('matvec', pipeline, bg, mx * my);
      const rowShare = Math.min(rows, Math.round(share * mx) * config.rowsPerWg) / rows;
      result.matvec = {
        ...rate(rowShare * (packedBytes + rows * 4) + cols * 4, seconds, share),
        gflops: (2 * rowShare * rows * cols) / seconds / 1e9,
        config: `wg ${config.wgSize} x ${config.rowsPerWg} rows${config.subgroups ? ', subgroups' : ''}`,
      };
    }

    // quantize last (the heaviest kernels): f32 -> packed blocks.
    {
      // The f32 source must be whole groups: pad when the tensor is not.
      const srcBuf = groups * g === nBlocks ? f32Buf : buffer('f32.padded', groups * g * type.blockSize * 4, S | GPUBufferUsage.COPY_DST);
      if (srcBuf !== f32Buf) device.queue.writeBuffer(srcBuf, 0, values as Float32Array<ArrayBuffer>);
      const pipeline = await withTimeout(codecPipeline(device, 'quantize', type.wgsl, codecWgSize), timeoutSeconds, `${type.id} quantize compile`);
      const bg = await bindCodec('quantize', pipeline, [srcBuf, packedBuf, codecParams], groups * 4);
      const { seconds, share } = await kernel('quantize', pipeline, bg, codecWgs);
      result.quantize = rate(codecShare(share) * (f32Bytes + packedBytes), seconds, share);
    }
    return result;
  } finally {
    for (const b of buffers) b.destroy();
  }
}
