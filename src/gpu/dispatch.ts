// Dispatch helpers every GPU job shares (codec runs, byte layouts, double quantization,
// error statistics, matmul, GPTQ, the forward pass): workgroup counts that fit the device's
// limits, one chunk's byte budget, error scopes run one at a time per device, and the small
// buffer / pass / readback steps of the multi-pass kernels.
import { assertNotLost, type GpuContext, type GpuLimits } from './device.ts';
import { getPipeline } from './pipelines.ts';
import { composeShader } from './shaders.ts';
import { mapRead, submit } from './counters.ts';

/** Cap on one chunk's buffers: bounds the GPU memory a job holds (staging and readback included). */
export const MAX_CHUNK_BYTES = 64 * 1024 * 1024;
/** Invocations per workgroup of the codec and layout kernels (each does a group of blocks or values). */
const CODEC_WG_SIZE = 64;

/** Workgroup counts for `workgroups` workgroups: x up to the per-dimension limit, then y. */
export function dispatchSize(workgroups: number, limits: GpuLimits): [number, number] {
  const maxX = limits.maxComputeWorkgroupsPerDimension;
  if (workgroups <= maxX) return [Math.max(workgroups, 1), 1];
  const y = Math.ceil(workgroups / maxX);
  if (y > maxX) throw new RangeError(`${workgroups} workgroups exceed a ${maxX} x ${maxX} dispatch`);
  return [maxX, y];
}

/** Bytes one chunk's buffer may have: the binding and buffer limits and MAX_CHUNK_BYTES. */
export function chunkByteLimit(limits: GpuLimits): number {
  return Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize, MAX_CHUNK_BYTES);
}

/** Workgroup size of the codec and layout kernels on this device. */
export function kernelWgSize(limits: GpuLimits): number {
  return Math.min(CODEC_WG_SIZE, limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX);
}

export function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

const deviceQueues = new WeakMap<GPUDevice, Promise<unknown>>();

/**
 * Run fn inside validation + out-of-memory error scopes; a captured error is thrown.
 * Operations on one device run one at a time: error scopes are a per-device stack, so two
 * interleaved async operations would pop each other's scopes (and one chunk at a time
 * bounds the GPU memory in use).
 */
export function withErrorScopes<T>(gpu: GpuContext, what: string, fn: () => Promise<T>): Promise<T> {
  const prev = deviceQueues.get(gpu.device) ?? Promise.resolve();
  const next = prev.then(() => scoped(gpu, what, fn));
  deviceQueues.set(gpu.device, next.catch(() => undefined));
  return next;
}

async function scoped<T>(gpu: GpuContext, what: string, fn: () => Promise<T>): Promise<T> {
  assertNotLost(gpu);
  const { device } = gpu;
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let result: T | undefined;
  let failure: unknown;
  try {
    result = await fn();
  } catch (err) {
    failure = err;
  }
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  assertNotLost(gpu); // a loss mid-way surfaces as GpuDeviceLostError, not a map failure
  if (validation) throw new Error(`${what}: WebGPU validation error: ${validation.message}`);
  if (oom) throw new Error(`${what}: GPU out of memory: ${oom.message}`);
  if (failure !== undefined) throw failure;
  return result as T;
}

/** A pipeline of shader files composed in order, with WG_SIZE set (cached per device). */
export function kernelPipeline(device: GPUDevice, name: string, files: readonly string[], wgSize: number) {
  return getPipeline(device, { name, code: () => composeShader(files), constants: { WG_SIZE: wgSize } });
}

/** A buffer holding a whole tensor's per-row / per-column data must fit one binding. */
export function requireBinding(bytes: number, limits: GpuLimits, what: string): void {
  if (bytes > chunkByteLimit(limits)) {
    throw new RangeError(`${what}: ${bytes} bytes exceed the ${chunkByteLimit(limits)}-byte storage binding this device allows`);
  }
}

/** Run one compute pass of `invocations` invocations over `buffers` (bindings 0, 1, ...) and submit it. */
export function dispatchPass(gpu: GpuContext, label: string, pipeline: GPUComputePipeline, buffers: readonly GPUBuffer[], invocations: number, wgSize: number): void {
  const { device, limits } = gpu;
  if (invocations <= 0) return;
  const bindGroup = device.createBindGroup({
    label: `${label}.bindgroup`,
    layout: pipeline.getBindGroupLayout(0),
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const enc = device.createCommandEncoder({ label: `${label}.encoder` });
  const pass = enc.beginComputePass({ label: `${label}.pass` });
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(...dispatchSize(Math.ceil(invocations / wgSize), limits));
  pass.end();
  submit(device, [enc.finish()]);
}

/** Copy `bytes` bytes of `from` to the host (through `readback`, at least that large). */
export async function readBack(device: GPUDevice, label: string, from: GPUBuffer, readback: GPUBuffer, bytes: number): Promise<Uint8Array> {
  if (bytes === 0) return new Uint8Array(0);
  const size = align4(bytes);
  const enc = device.createCommandEncoder({ label: `${label}.readback` });
  enc.copyBufferToBuffer(from, 0, readback, 0, size);
  submit(device, [enc.finish()]);
  await mapRead(device, readback, 0, size);
  const out = new Uint8Array(readback.getMappedRange(0, size).slice(0, bytes));
  readback.unmap();
  return out;
}

export function buffer(device: GPUDevice, label: string, bytes: number, usage: number): GPUBuffer {
  return device.createBuffer({ label, size: Math.max(4, align4(bytes)), usage });
}

// Functions, not constants: in Node, Dawn installs GPUBufferUsage when the first device is made.
export const storageIn = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
export const storageOut = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
