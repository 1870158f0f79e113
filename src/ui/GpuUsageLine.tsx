import type { GpuUsage } from '../store/types.ts';
import { formatBytes } from './format.ts';

/**
 * What a job cost the GPU (the CLI's --json "gpu", docs/cli.md): command buffers submitted,
 * buffers read back and their bytes, forward passes. Nothing on the CPU backend.
 */
export function GpuUsageLine({ gpu }: { gpu: GpuUsage | null | undefined }) {
  if (!gpu) return null;
  return (
    <details className="gpu-usage muted" data-testid="gpu-usage" data-submits={gpu.submits} data-readbacks={gpu.readbacks} data-bytes-read-back={gpu.bytesReadBack}>
      <summary>
        GPU: {gpu.submits.toLocaleString()} submits, {gpu.readbacks.toLocaleString()} readbacks, {formatBytes(gpu.bytesReadBack)} read back,{' '}
        {gpu.forwardPasses.toLocaleString()} forward passes
      </summary>
      Adapter: {gpu.adapter}. Counted on the device from the job’s start to its end (src/gpu/counters.ts).
    </details>
  );
}
