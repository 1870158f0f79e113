// Helpers shared by the GPU test files (src/gpu/*.test.ts): golden fixtures, the
// deterministic PRNG of their stress rows, byte comparison by block, and running a
// shaders/tests/*-ops.wgsl kernel (out[i] = op(a[i], b[i]) on bit patterns).
import { expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GpuContext } from './device.ts';
import { getPipeline } from './pipelines.ts';
import { dispatchSize } from './dispatch.ts';
import { composeShader } from './shaders.ts';
import { mapRead, submit } from './counters.ts';

/** ../shared/fixtures and its golden files (ggml's own output). */
export const FIXTURES = join(import.meta.dirname, '../../../shared/fixtures');
export const GOLDEN = join(FIXTURES, 'golden');
/** The golden input sets. */
export const SETS = ['edge', 'realistic', 'real'] as const;

/** A file's bytes. */
export const readBytes = (path: string) => new Uint8Array(readFileSync(path));
/** A file of f32 values. */
export const readF32File = (path: string) => {
  const b = readBytes(path);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};
/** A golden file's bytes, by name. */
export const readGolden = (name: string) => readBytes(join(GOLDEN, name));
/** A golden file of f32 values, by name. */
export const readGoldenF32 = (name: string) => readF32File(join(GOLDEN, name));
/** The f32 bits of f (a view, not a copy). */
export const bitsOf = (f: Float32Array) => new Uint32Array(f.buffer, f.byteOffset, f.length);

export { rng } from '../testing/random.ts';

/** Indices of the blocks (of typeSize bytes) whose bytes differ; the lengths must match. */
export function differingBlocks(got: Uint8Array, want: Uint8Array, typeSize: number): number[] {
  expect(got.length).toBe(want.length);
  const out: number[] = [];
  for (let b = 0; b * typeSize < want.length; b++) {
    for (let i = b * typeSize; i < Math.min((b + 1) * typeSize, want.length); i++) {
      if (got[i] !== want[i]) {
        out.push(b);
        break;
      }
    }
  }
  return out;
}

/** A shaders/tests kernel with bindings a, b, out (u32 arrays) and params (n, op). */
export interface OpsShader {
  /** Pipeline cache name. */
  name: string;
  /** Prefix of the buffers' and passes' labels. */
  label: string;
  /** Shader files to compose, the test kernel last. */
  files: string[];
}

/** out[i] = op(a[i], b[i]) through the given ops shader. */
export async function runOpsShader(gpu: GpuContext, shader: OpsShader, op: number, a: Uint32Array<ArrayBuffer>, b: Uint32Array<ArrayBuffer>): Promise<Uint32Array> {
  const { device } = gpu;
  const { label } = shader;
  const pipeline = await getPipeline(device, { name: shader.name, code: () => composeShader(shader.files) });
  const n = a.length;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
  const bufA = device.createBuffer({ label: `${label}.a`, size: n * 4, usage });
  const bufB = device.createBuffer({ label: `${label}.b`, size: n * 4, usage });
  const out = device.createBuffer({ label: `${label}.out`, size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const read = device.createBuffer({ label: `${label}.read`, size: n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const params = device.createBuffer({ label: `${label}.params`, size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(bufA, 0, a);
  device.queue.writeBuffer(bufB, 0, b);
  device.queue.writeBuffer(params, 0, new Uint32Array([n, op, 0, 0]));
  const enc = device.createCommandEncoder({ label: `${label}.encoder` });
  const pass = enc.beginComputePass({ label: `${label}.pass` });
  pass.setPipeline(pipeline);
  pass.setBindGroup(
    0,
    device.createBindGroup({
      label: `${label}.bindgroup`,
      layout: pipeline.getBindGroupLayout(0),
      entries: [bufA, bufB, out, params].map((buffer, binding) => ({ binding, resource: { buffer } })),
    }),
  );
  pass.dispatchWorkgroups(...dispatchSize(Math.ceil(n / 64), gpu.limits));
  pass.end();
  enc.copyBufferToBuffer(out, 0, read, 0, n * 4);
  submit(device, [enc.finish()]);
  await mapRead(device, read);
  const result = new Uint32Array(read.getMappedRange().slice(0));
  read.unmap();
  for (const buf of [bufA, bufB, out, read, params]) buf.destroy();
  return result;
}
