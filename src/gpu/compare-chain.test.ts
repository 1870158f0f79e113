// The compare chain (quantize -> dequantize -> stats on resident buffers) gives the same sums,
// maximum and bins as the round trips (quantizeOnGpu, dequantizeOnGpu, errorStatsOnGpu), the
// inspected block equals the CPU codec's, chunked runs equal whole ones, and what comes back
// is the partials and bins only: far below the tensor's size.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quantType, type QuantType } from '../quant/types.ts';
import { chainRunsType, quantizeErrorsOnGpu } from './compare-chain.ts';
import { gpuCounters, gpuCountersSince } from './counters.ts';
import { restrictLimits, type GpuContext } from './device.ts';
import { errorStatsOnGpu } from './error-stats.ts';
import { createTestGpu } from './gpu-test-setup.ts';
import { dequantizeOnGpu, quantizeOnGpu } from './quantize.ts';

let gpu: GpuContext;
beforeAll(async () => {
  gpu = await createTestGpu();
});
afterAll(() => gpu?.destroy());

/** Seeded values, roughly normal, scaled like weights. */
function weights(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return Float32Array.from({ length: n }, () => (next() + next() + next() - 1.5) * 0.05);
}

const type = (id: string): QuantType => quantType(id)!;

describe('compare chain', () => {
  for (const id of ['q4_0', 'q4_k']) {
    it(`${id}: sums, max and bins equal the round trips'; the block read back is the CPU codec's`, async () => {
      const t = type(id);
      expect(chainRunsType(t)).toBe(true);
      const rowLength = 512;
      const data = weights(48 * rowLength, 7);
      const histogram = { lo: -0.01, hi: 0.01, bins: 41 };
      const bytes = await quantizeOnGpu(gpu, t, data, rowLength);
      const deq = await dequantizeOnGpu(gpu, t, bytes, data.length / rowLength, rowLength);
      const want = await errorStatsOnGpu(gpu, data, deq, { histogram });
      const blockIndex = 37;
      const inspect = { start: blockIndex * t.blockSize, count: t.blockSize, byteStart: blockIndex * t.typeSize, byteCount: t.typeSize };
      const got = await quantizeErrorsOnGpu(gpu, t, data, rowLength, { sums: true, histogram, inspect });
      expect(got).not.toBeNull();
      for (const k of ['count', 'nonFinite', 'sumSqErr', 'sumSqRef', 'sumSqApprox', 'sumAbsErr', 'dot', 'maxAbsErr'] as const) {
        expect(got!.stats[k], k).toBe(want[k]);
      }
      expect([...got!.stats.histogram!.counts]).toEqual([...want.histogram!.counts]);
      expect([got!.stats.histogram!.below, got!.stats.histogram!.above]).toEqual([want.histogram!.below, want.histogram!.above]);
      const cpuBytes = t.codec.encode(data, rowLength);
      expect([...got!.inspected!.bytes]).toEqual([...cpuBytes.subarray(inspect.byteStart, inspect.byteStart + t.typeSize)]);
      expect([...got!.inspected!.dequantized]).toEqual([...deq.subarray(inspect.start, inspect.start + t.blockSize)]);

      const maxOnly = await quantizeErrorsOnGpu(gpu, t, data, rowLength, { sums: false });
      expect(maxOnly!.stats.maxAbsErr).toBe(want.maxAbsErr);
      expect(maxOnly!.stats.count).toBe(data.length);
    });
  }

  it('in many small chunks (double-buffered), the sums and bins equal one chunk', async () => {
    const t = type('q4_0');
    const data = weights(64 * 256, 11);
    const histogram = { lo: -0.005, hi: 0.005, bins: 16 };
    // 16 KiB chunks: 4096 values, 4 chunks.
    const small = restrictLimits(gpu, { maxStorageBufferBindingSize: 16384 });
    const whole = await quantizeErrorsOnGpu(gpu, t, data, 256, { sums: true, histogram });
    const before = gpuCounters(gpu.device);
    const chunked = await quantizeErrorsOnGpu(small, t, data, 256, { sums: true, histogram });
    const used = gpuCountersSince(gpu.device, before);
    expect(used.submits).toBe(4);
    expect(used.readbacks).toBe(4); // each chunk's partials; the last with totals and bins
    expect(chunked!.stats).toEqual(whole!.stats);
  });

  it('reads back only partials and bins: under 2% of the f32 tensor with sums, 1 KiB without', async () => {
    const t = type('q8_0');
    const data = weights(512 * 1024, 3); // 2 MiB of f32
    const histogram = { lo: -0.01, hi: 0.01, bins: 121 };
    let before = gpuCounters(gpu.device);
    await quantizeErrorsOnGpu(gpu, t, data, 4096, { sums: false });
    const first = gpuCountersSince(gpu.device, before);
    before = gpuCounters(gpu.device);
    await quantizeErrorsOnGpu(gpu, t, data, 4096, { sums: true, histogram });
    const second = gpuCountersSince(gpu.device, before);
    expect(first.readbacks).toBe(1);
    expect(first.bytesReadBack).toBeLessThan(1024);
    // 8 f32 partials per 512 values (1/16 byte per value) + the bins.
    expect(second.bytesReadBack).toBeLessThan(0.02 * data.byteLength);
    expect(second.bytesReadBack).toBeGreaterThanOrEqual((data.length / 512) * 32);
  });
});
