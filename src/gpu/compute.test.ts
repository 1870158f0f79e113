// gpuCompute claims a type only where the GPU encodes it: a decode-only codec (the i-quants)
// would hand the CPU codec's blocks back under the 'webgpu' label.
import { describe, expect, it } from 'vitest';
import { QUANT_TYPES } from '../quant/types.ts';
import { gpuCompute } from './compute.ts';
import type { GpuContext } from './device.ts';

describe('gpuCompute.supports', () => {
  // supports() reads the type table and the shader sources only: no device is touched.
  const compute = gpuCompute(null as unknown as GpuContext);

  it('leaves the decode-only i-quants to the CPU, and keeps the GPU encoders', () => {
    const claimed = new Set(QUANT_TYPES.filter((t) => compute.supports(t)).map((t) => t.id));
    for (const id of ['iq1_s', 'iq1_m', 'iq2_xxs', 'iq2_xs', 'iq2_s', 'iq3_xxs', 'iq3_s']) expect(claimed.has(id), id).toBe(false);
    for (const id of ['q4_0', 'q8_0', 'q4_K', 'q6_K', 'iq4_xs', 'nvfp4', 'q1_0', 'q2_0', 'nf4', 'int8']) expect(claimed.has(id), id).toBe(true);
  });
});
