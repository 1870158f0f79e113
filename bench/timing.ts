// GPU timing for the bench: timestamp queries when the device has 'timestamp-query' (two
// empty marker passes around the work, so copies and dispatches are timed alike), else wall
// time around submit + onSubmittedWorkDone. Warm-up runs are never counted.
import type { GpuContext } from '../src/gpu/device.ts';

export type TimingMethod = 'timestamp-query' | 'wall';

export interface TimeOptions {
  /** A timed run lasts at least this long when the work is short (repetitions are added). */
  minSeconds?: number;
  maxReps?: number;
  /** Timed runs after the first; the fastest counts (the least disturbed by the host). */
  runs?: number;
  /** A first run at least this long is taken as it is (slow software adapters). */
  enoughSeconds?: number;
}

/**
 * Encodes the work `reps` times into one command buffer. reps = 0 is the warm-up: the
 * least work that uses the same pipelines and buffers (one workgroup, a few bytes), so a
 * slow kernel is not run in full just to be thrown away.
 */
export type RecordWork = (enc: GPUCommandEncoder, reps: number) => void;

export interface GpuTimer {
  readonly method: TimingMethod;
  /**
   * Seconds per repetition of the work: a warm-up (reps = 0, not counted), a first run of
   * one repetition, then, when that was short, `runs` runs of enough repetitions to last
   * minSeconds; the fastest run counts.
   */
  time(label: string, record: RecordWork, options?: TimeOptions): Promise<number>;
  destroy(): void;
}

export function createGpuTimer(gpu: GpuContext, forceWall = false): GpuTimer {
  const { device } = gpu;
  const useTimestamps = !forceWall && gpu.features.has('timestamp-query');
  const querySet = useTimestamps ? device.createQuerySet({ label: 'bench.timestamps', type: 'timestamp', count: 2 }) : undefined;
  const resolve = useTimestamps
    ? device.createBuffer({ label: 'bench.timestamps.resolve', size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC })
    : undefined;
  const read = useTimestamps
    ? device.createBuffer({ label: 'bench.timestamps.read', size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST })
    : undefined;

  async function once(label: string, record: RecordWork, reps: number): Promise<number> {
    const enc = device.createCommandEncoder({ label: `bench.${label}.encoder` });
    if (querySet) enc.beginComputePass({ label: `bench.${label}.start`, timestampWrites: { querySet, endOfPassWriteIndex: 0 } }).end();
    record(enc, reps);
    if (querySet) {
      enc.beginComputePass({ label: `bench.${label}.end`, timestampWrites: { querySet, beginningOfPassWriteIndex: 1 } }).end();
      enc.resolveQuerySet(querySet, 0, 2, resolve!, 0);
      enc.copyBufferToBuffer(resolve!, 0, read!, 0, 16);
    }
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    const wall = (performance.now() - t0) / 1000;
    if (!querySet) return wall / Math.max(reps, 1);
    await read!.mapAsync(GPUMapMode.READ);
    const [a, b] = new BigUint64Array(read!.getMappedRange());
    read!.unmap();
    const s = Number(b - a) / 1e9;
    // A timestamp pair that makes no sense (0, wrapped, or beyond the wall time) falls back to wall time.
    return (s > 0 && s <= wall * 1.5 ? s : wall) / Math.max(reps, 1);
  }

  return {
    method: useTimestamps ? 'timestamp-query' : 'wall',
    async time(label, record, options = {}) {
      const { minSeconds = 0.15, maxReps = 200, runs = 2, enoughSeconds = 0.5 } = options;
      await once(`${label}.warmup`, record, 0);
      const first = await once(label, record, 1);
      if (first >= enoughSeconds) return first;
      const reps = Math.max(1, Math.min(maxReps, Math.ceil(minSeconds / Math.max(first, 1e-7))));
      let best = first;
      for (let i = 0; i < runs; i++) best = Math.min(best, await once(label, record, reps));
      return best;
    },
    destroy() {
      querySet?.destroy();
      resolve?.destroy();
      read?.destroy();
    },
  };
}
