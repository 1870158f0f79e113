// What a job costs the GPU in round trips: command buffers submitted, buffers mapped back
// to the CPU (and their bytes), forward passes run. Kept per device so that a job reads the
// difference before and after (gpuCountersSince) and the CLI's --json / the page report it.
// Every submit and readback in quantlab goes through submit() and mapRead() below.

export interface GpuCounters {
  readonly submits: number;
  readonly readbacks: number;
  readonly bytesReadBack: number;
  readonly forwardPasses: number;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const ZERO: GpuCounters = { submits: 0, readbacks: 0, bytesReadBack: 0, forwardPasses: 0 };
const byDevice = new WeakMap<GPUDevice, Mutable<GpuCounters>>();

function countersOf(device: GPUDevice): Mutable<GpuCounters> {
  let c = byDevice.get(device);
  if (!c) byDevice.set(device, (c = { ...ZERO }));
  return c;
}

/** device.queue.submit, counted. */
export function submit(device: GPUDevice, commandBuffers: readonly GPUCommandBuffer[]): void {
  countersOf(device).submits++;
  device.queue.submit(commandBuffers);
}

/** buffer.mapAsync(READ, offset, size), counted with the bytes it brings back. */
export async function mapRead(device: GPUDevice, buffer: GPUBuffer, offset = 0, size = buffer.size - offset): Promise<void> {
  const c = countersOf(device);
  c.readbacks++;
  c.bytesReadBack += size;
  await buffer.mapAsync(GPUMapMode.READ, offset, size);
}

/** One forward pass (a chunk of positions through the whole model) ran on this device. */
export function countForwardPass(device: GPUDevice): void {
  countersOf(device).forwardPasses++;
}

/** The counters so far (all zero for a device that has done nothing). */
export function gpuCounters(device: GPUDevice): GpuCounters {
  return { ...(byDevice.get(device) ?? ZERO) };
}

/** What happened on the device since `before` (a gpuCounters snapshot). */
export function gpuCountersSince(device: GPUDevice, before: GpuCounters): GpuCounters {
  const now = gpuCounters(device);
  return {
    submits: now.submits - before.submits,
    readbacks: now.readbacks - before.readbacks,
    bytesReadBack: now.bytesReadBack - before.bytesReadBack,
    forwardPasses: now.forwardPasses - before.forwardPasses,
  };
}
