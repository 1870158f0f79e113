// forward/act_round.wgsl (the resident pass's --activations ggml) against the CPU's
// roundActivations (llamacpp-linear.ts, what the per-product path feeds its products): bit
// for bit, for every vec_dot_type, on values with ties, zero blocks and subnormal-free mixes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapRead, submit } from '../gpu/counters.ts';
import type { GpuContext } from '../gpu/device.ts';
import { createTestGpu } from '../gpu/gpu-test-setup.ts';
import { getPipeline } from '../gpu/pipelines.ts';
import { composeShader } from '../gpu/shaders.ts';
import type { VecDotType } from '../quant/types.ts';
import { mulberry32Uint } from '../testing/random.ts';
import { roundActivations } from './llamacpp-linear.ts';

let gpu: GpuContext;
beforeAll(async () => {
  gpu = await createTestGpu();
});
afterAll(() => gpu?.destroy());

const KINDS: [VecDotType, number, number][] = [
  ['f16', 1, 1],
  ['bf16', 2, 1],
  ['q8_0', 3, 32],
  ['q8_K', 4, 256],
];

async function roundOnGpu(x: Float32Array<ArrayBuffer>, kind: number, per: number): Promise<Float32Array> {
  const { device } = gpu;
  const pipeline = await getPipeline(device, {
    name: 'forward.act_round',
    code: () => composeShader(['lib/rounding.wgsl', 'lib/f16.wgsl', 'lib/bf16.wgsl', 'forward/act_round.wgsl']),
    constants: { WG_SIZE: 64 },
  });
  const make = (size: number, usage: number) => device.createBuffer({ size, usage });
  const xb = make(x.byteLength, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
  device.queue.writeBuffer(xb, 0, x);
  const out = make(x.byteLength, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
  const p = make(16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  const units = x.length / per;
  device.queue.writeBuffer(p, 0, new Uint32Array([units, kind, 0, 0]));
  const rb = make(x.byteLength, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
  try {
    const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [xb, out, p].map((buffer, binding) => ({ binding, resource: { buffer } })) });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(Math.ceil(units / 64));
    pass.end();
    enc.copyBufferToBuffer(out, 0, rb, 0, x.byteLength);
    submit(device, [enc.finish()]);
    await mapRead(device, rb, 0, x.byteLength);
    const r = new Float32Array(rb.getMappedRange().slice(0));
    rb.unmap();
    return r;
  } finally {
    for (const b of [xb, out, p, rb]) b.destroy();
  }
}

describe('forward/act_round.wgsl', () => {
  it('rounds as roundActivations, bit for bit, for f16, bf16, q8_0 and q8_K', async () => {
    const next = mulberry32Uint(5);
    const cols = 512;
    const rows = 6;
    const x = Float32Array.from({ length: rows * cols }, () => ((next() / 2 ** 32 - 0.5) * 2) ** 3 * 8);
    x.fill(0, cols, 2 * cols); // a zero row: zero blocks (q8_K's amax 0, q8_0's id 0)
    // Ties: in a block whose amax is 127, x * id lands on k + 0.5 (half to even decides).
    x[2 * cols] = 127;
    for (let j = 1; j < 32; j++) x[2 * cols + j] = j + 0.5;
    x[3 * cols] = -100; // q8_K: the value of largest |x| is negative (iscale's sign)
    for (const [vecDot, kind, per] of KINDS) {
      const want = roundActivations(x, cols, vecDot);
      const got = await roundOnGpu(x, kind, per);
      let differ = 0;
      for (let i = 0; i < x.length; i++) if (!Object.is(got[i], want[i]) && !(got[i] === 0 && want[i] === 0)) differ++;
      expect(differ, vecDot).toBe(0);
      expect(got.some((v, i) => v !== x[i]), vecDot).toBe(true); // it did round
    }
  }, 60_000);
});
