// A job reports what it cost the GPU (engine/gpu-usage.ts): the compare job on WebGPU reads
// back the partial sums, bins and one block, never the tensor (bytes asserted), and counts
// the same as the device's counters around it; on the CPU backend the report is null.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memorySource } from '../formats/bytes.ts';
import { GGML_TYPE } from '../formats/gguf/constants.ts';
import { planGguf, writeGguf } from '../formats/gguf/write.ts';
import { collect } from '../formats/testing.ts';
import { gpuCounters, gpuCountersSince } from '../gpu/counters.ts';
import type { GpuContext } from '../gpu/device.ts';
import { createTestGpu } from '../gpu/gpu-test-setup.ts';
import { rng } from '../testing/random.ts';
import { withGpuUsage } from './gpu-usage.ts';
import { compareJob } from './jobs/compare.ts';
import { uncancelled } from './jobs/job.ts';
import { Session } from './session.ts';

const COLS = 2048;
const ROWS = 256; // 512K values: 2 MiB of f32

async function modelBytes(): Promise<Uint8Array> {
  const layout = planGguf({ metadata: [], tensors: [{ name: 'w.weight', type: GGML_TYPE.F32, ne: [COLS, ROWS] }] });
  const r = rng(5);
  return collect(
    writeGguf(layout, () => {
      const data = new Float32Array(ROWS * COLS);
      for (let i = 0; i < data.length; i++) data[i] = (r() - 0.5) * 0.1;
      return new Uint8Array(data.buffer);
    }),
  );
}

let gpu: GpuContext;
let bytes: Uint8Array;
beforeAll(async () => {
  gpu = await createTestGpu();
  bytes = await modelBytes();
});
afterAll(() => gpu?.destroy());

describe('GPU usage of a job', () => {
  it('compare on WebGPU: only partials, bins and a block come back (bytes far below the tensor), as the device counted', async () => {
    const session = new Session(async () => gpu);
    await session.load([memorySource(bytes, 'w.gguf')]);
    await session.ready();
    const before = gpuCounters(gpu.device);
    const r = await compareJob(session, { tensor: 'w.weight', types: ['q8_0'] }, uncancelled());
    const outside = gpuCountersSince(gpu.device, before);
    expect(r.backend).toBe('webgpu');
    expect(r.gpu).toEqual({ adapter: gpu.description, ...outside });
    const g = r.gpu!;
    expect(g.forwardPasses).toBe(0);
    expect(g.submits).toBeGreaterThanOrEqual(g.readbacks);
    expect(g.readbacks).toBeGreaterThanOrEqual(1);
    const f32Bytes = ROWS * COLS * 4;
    // 8 f32 partials per 512 values (1/64 of the f32 bytes) and the bins; the round trips read back ~1.3x the f32 bytes.
    expect(g.bytesReadBack).toBeLessThan(0.02 * f32Bytes);
  }, 120_000);

  it('on the CPU backend the report is null', async () => {
    const session = new Session(null);
    await session.load([memorySource(bytes, 'w.gguf')]);
    const r = await withGpuUsage(session, async () => 7);
    expect(r).toEqual({ value: 7, gpu: null });
    const c = await compareJob(session, { tensor: 'w.weight', types: ['q8_0'] }, uncancelled());
    expect(c.gpu).toBeNull();
    expect(c.backend).toBe('cpu');
  }, 60_000);
});
