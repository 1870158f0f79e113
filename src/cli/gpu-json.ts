// The "gpu" object of `eval`, `compare` and `calibrate --compare` with --json on WebGPU
// (docs/cli.md): what the job cost the GPU (engine/gpu-usage.ts). Absent on the CPU backend.
import type { GpuUsage } from '../engine/types.ts';

export function gpuJson(u: GpuUsage) {
  return {
    adapter: u.adapter,
    forward_passes: u.forwardPasses,
    submits: u.submits,
    readbacks: u.readbacks,
    bytes_read_back: u.bytesReadBack,
  };
}

/** `{ gpu: {...} }` where the job ran with a GPU open, else nothing (spread into a --json object). */
export function gpuField(u: GpuUsage | null | undefined): { gpu?: ReturnType<typeof gpuJson> } {
  return u ? { gpu: gpuJson(u) } : {};
}
