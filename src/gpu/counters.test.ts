// The counters see every submit and readback: a quantize then a dequantize on the GPU is
// counted, with the bytes that came back, and nothing is counted on another device.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quantType } from '../quant/types.ts';
import { gpuCompute } from './compute.ts';
import { gpuCounters, gpuCountersSince } from './counters.ts';
import type { GpuContext } from './device.ts';
import { createTestGpu } from './gpu-test-setup.ts';

let gpu: GpuContext;
beforeAll(async () => {
  gpu = await createTestGpu();
});
afterAll(() => gpu?.destroy());

describe('GPU counters', () => {
  it('count the submits and readbacks of a quantize and a dequantize, and the bytes read back', async () => {
    const compute = gpuCompute(gpu);
    const q8 = quantType('q8_0')!;
    const data = Float32Array.from({ length: 4 * 256 }, (_, i) => Math.sin(i));
    const before = gpuCounters(gpu.device);
    const bytes = await compute.quantize(q8, data, 256);
    const afterQuantize = gpuCountersSince(gpu.device, before);
    expect(afterQuantize.submits).toBeGreaterThanOrEqual(1);
    expect(afterQuantize.readbacks).toBeGreaterThanOrEqual(1);
    expect(afterQuantize.bytesReadBack).toBeGreaterThanOrEqual(bytes.length);
    const decoded = await compute.dequantize(q8, bytes, 4, 256);
    const both = gpuCountersSince(gpu.device, before);
    expect(both.readbacks).toBeGreaterThan(afterQuantize.readbacks);
    expect(both.bytesReadBack - afterQuantize.bytesReadBack).toBeGreaterThanOrEqual(decoded.byteLength);
    expect(both.forwardPasses).toBe(0);
  });
});
