// What a job cost the GPU (src/gpu/counters.ts): the session's device's counters taken
// before the job and after it. The CLI's --json prints it as "gpu" (docs/cli.md), the page
// as a details line under a tab's results. Counters are per device: two jobs running on one
// device at once would each count the other's work too (the page runs one job per kind).
import { gpuCounters, gpuCountersSince } from '../gpu/counters.ts';
import type { Session } from './session.ts';
import type { GpuUsage } from './types.ts';

/** `job` run with the session's device's counters around it; gpu is null where no GPU is open (the CPU backend). */
export async function withGpuUsage<T>(session: Session, job: () => Promise<T>): Promise<{ value: T; gpu: GpuUsage | null }> {
  await session.ready();
  const gpu = session.liveGpu();
  if (!gpu) return { value: await job(), gpu: null };
  const before = gpuCounters(gpu.device);
  const value = await job();
  // Read from the device the job started on, even if it was lost since (its counts still stand).
  return { value, gpu: { adapter: gpu.description, ...gpuCountersSince(gpu.device, before) } };
}
