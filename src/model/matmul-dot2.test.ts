// forward/matmul_dot2.wgsl (the resident pass's product feeding GeGLU) against the CPU
// reference's product (f64 sums of the decoded weights, rounded to f32): bit for bit, for
// F32, Q8_0 (34-byte blocks), Q4_0 (18-byte blocks: the funnel shift) and Q4_K, over
// chunks of 1 and 11 tokens (one tile of 8 and a partial one).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapRead, submit } from '../gpu/counters.ts';
import type { GpuContext } from '../gpu/device.ts';
import { createTestGpu } from '../gpu/gpu-test-setup.ts';
import { matmulParams, matmulWeightBufferBytes } from '../gpu/matmul.ts';
import { getPipeline } from '../gpu/pipelines.ts';
import { codecLibs, composeShader } from '../gpu/shaders.ts';
import { quantType } from '../quant/types.ts';
import { mulberry32Uint } from '../testing/random.ts';
import { matmulF32 } from './families/linear.ts';

let gpu: GpuContext;
beforeAll(async () => {
  gpu = await createTestGpu();
});
afterAll(() => gpu?.destroy());

function seeded(n: number, seed: number): Float32Array<ArrayBuffer> {
  const next = mulberry32Uint(seed);
  // Mixed signs and magnitudes: sums with cancellation, where an f32 tree sum loses ulps.
  return Float32Array.from({ length: n }, () => ((next() / 2 ** 32 - 0.5) * 2) ** 3 * 4);
}

async function dot2(typeId: string, packed: Uint8Array, rows: number, cols: number, x: Float32Array<ArrayBuffer>, n: number, wg: number): Promise<Float32Array> {
  const type = quantType(typeId)!;
  const { device } = gpu;
  const pipeline = await getPipeline(device, {
    name: `forward.matmul_dot2.${type.wgsl}`,
    code: () => composeShader([...codecLibs(type.wgsl), `codecs/${type.wgsl}.wgsl`, 'forward/matmul_dot2.wgsl']),
    constants: { WG_SIZE: wg },
  });
  const make = (size: number, usage: number) => device.createBuffer({ size: Math.max(16, Math.ceil(size / 4) * 4), usage });
  const w = make(matmulWeightBufferBytes(packed.length / rows, rows), GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
  const padded = new Uint8Array(w.size);
  padded.set(packed);
  device.queue.writeBuffer(w, 0, padded);
  const xb = make(x.byteLength, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
  device.queue.writeBuffer(xb, 0, x);
  const y = make(n * rows * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
  const p = make(32, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  device.queue.writeBuffer(p, 0, matmulParams(type, rows, cols, n));
  const rb = make(n * rows * 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
  try {
    const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [w, xb, y, p].map((buffer, binding) => ({ binding, resource: { buffer } })) });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(rows * Math.ceil(n / 8));
    pass.end();
    enc.copyBufferToBuffer(y, 0, rb, 0, n * rows * 4);
    submit(device, [enc.finish()]);
    await mapRead(device, rb, 0, n * rows * 4);
    const out = new Float32Array(rb.getMappedRange().slice(0));
    rb.unmap();
    return out;
  } finally {
    for (const b of [w, xb, y, p, rb]) b.destroy();
  }
}

describe('forward/matmul_dot2.wgsl', () => {
  it('equals the CPU reference product (f64 sums rounded to f32) bit for bit', async () => {
    const rows = 37;
    const cols = 512;
    for (const [typeId, seed] of [['f32', 1], ['q8_0', 2], ['q4_0', 3], ['q4_K', 4]] as const) {
      const type = quantType(typeId)!;
      const packed = type.codec.encode(seeded(rows * cols, seed), cols);
      const decoded = type.codec.decode(packed, rows, cols);
      for (const n of [1, 11]) {
        const x = seeded(n * cols, seed + 100 * n);
        const want = matmulF32(decoded, rows, cols, x, n);
        // 64 lanes (hardware adapters), 1 lane (software: gpu-forward.ts's reduceWg).
        for (const wg of [64, 1]) {
          const got = await dot2(typeId, packed, rows, cols, x, n, wg);
          let differ = 0;
          for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) differ++;
          expect(differ, `${typeId}, ${n} tokens, ${wg} lanes`).toBe(0);
        }
        // The data can tell sums apart: a plain f32 sum of the same products misses some outputs.
        let f32Misses = 0;
        for (let t = 0; t < n; t++) {
          for (let r = 0; r < rows; r++) {
            let s = 0;
            for (let c = 0; c < cols; c++) s = Math.fround(s + Math.fround(decoded[r * cols + c] * x[t * cols + c]));
            if (s !== want[t * rows + r]) f32Misses++;
          }
        }
        expect(f32Misses, `${typeId}, ${n} tokens`).toBeGreaterThan(0);
      }
    }
  }, 60_000);
});
