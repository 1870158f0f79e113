// Each training kernel of shaders/train/ against the CPU op it replaces (train/ops.ts, f64)
// on seeded random data: forward and backward of linear, embedding, RMSNorm, RoPE (both pair
// styles, partial rotation, rope_freqs), causal GQA attention, SwiGLU, and the KL / CE
// losses with their logit gradients. f32 on the GPU: within 2e-5 of the largest value.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapRead, submit, gpuCounters, gpuCountersSince } from '../../gpu/counters.ts';
import type { GpuContext } from '../../gpu/device.ts';
import { createTestGpu } from '../../gpu/gpu-test-setup.ts';
import { RopeTable } from '../../model/families/blocks.ts';
import { gaussians } from '../../testing/random.ts';
import {
  attentionBackward,
  attentionForward,
  crossEntropy,
  embedBackward,
  embedForward,
  klToTeacher,
  linearBackward,
  linearForward,
  logSoftmaxRows,
  rmsNormBackward,
  rmsNormForward,
  ropeInPlace,
  swigluBackward,
  swigluForward,
} from '../ops.ts';
import { Program, trainPipelines, uniformWords, type TrainPipelines } from './program.ts';

let gpu: GpuContext;
let pipes: TrainPipelines;
beforeAll(async () => {
  gpu = await createTestGpu();
  pipes = await trainPipelines(gpu);
});
afterAll(() => gpu?.destroy());

let seed = 1;
const random = (n: number, scale = 1) => Float64Array.from(gaussians(n, seed++, scale));

/** A program with buffers holding `inputs` (f32, or u32 for token lists). */
function program(inputs: (Float64Array | Uint32Array | number)[]): { prog: Program; bufs: GPUBuffer[] } {
  const prog = new Program(gpu, pipes, 'ops-test');
  const bufs = inputs.map((x) => {
    const n = typeof x === 'number' ? x : x.length;
    const b = prog.buffer(n, 'in');
    if (x instanceof Uint32Array) gpu.device.queue.writeBuffer(b, 0, x as Uint32Array<ArrayBuffer>);
    else if (x instanceof Float64Array) gpu.device.queue.writeBuffer(b, 0, Float32Array.from(x));
    return b;
  });
  return { prog, bufs };
}

/** Runs the program and reads back `lengths` values of the given buffers. */
async function run(prog: Program, outs: [GPUBuffer, number][]): Promise<Float32Array[]> {
  const enc = gpu.device.createCommandEncoder();
  prog.encode(enc);
  const rbs = outs.map(([b, n]) => {
    const rb = gpu.device.createBuffer({ size: Math.max(16, n * 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    enc.copyBufferToBuffer(b, 0, rb, 0, n * 4);
    return rb;
  });
  submit(gpu.device, [enc.finish()]);
  const out: Float32Array[] = [];
  for (const [i, rb] of rbs.entries()) {
    await mapRead(gpu.device, rb);
    out.push(new Float32Array(rb.getMappedRange().slice(0, outs[i][1] * 4)));
    rb.destroy();
  }
  prog.destroy();
  return out;
}

function expectClose(got: Float32Array, want: Float64Array, tol = 2e-5): void {
  expect(got.length).toBe(want.length);
  const scale = Math.max(1e-30, ...Array.from(want, Math.abs));
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  expect(worst / scale).toBeLessThan(tol);
}

describe('training kernels on WebGPU equal the CPU ops', () => {
  it('linear: y = x Wᵀ (and += alpha·), dX, dW', async () => {
    const [rows, cols, n] = [24, 40, 7];
    const w = random(rows * cols);
    const x = random(n * cols);
    const dy = random(n * rows);
    const dx0 = random(n * cols);
    const before = gpuCounters(gpu.device);
    const { prog, bufs } = program([w, x, n * rows, dy, dx0, rows * cols]);
    prog.kernel('linear', [bufs[0], bufs[1], bufs[2]], uniformWords([rows, cols, n, 0], [1]), n * rows);
    prog.kernel('linear_dx', [bufs[0], bufs[3], bufs[4]], uniformWords([rows, cols, n, 0], [1]), n * cols);
    prog.kernel('linear_dw', [bufs[1], bufs[3], bufs[5]], uniformWords([rows, cols, n, 0], [0.5]), rows * cols);
    const [y, dx, dw] = await run(prog, [[bufs[2], n * rows], [bufs[4], n * cols], [bufs[5], rows * cols]]);
    const wantDx = dx0.slice();
    const wantDw = new Float64Array(rows * cols);
    linearBackward(w, rows, cols, x, n, dy, wantDx, wantDw);
    expectClose(y, linearForward(w, rows, cols, x, n));
    expectClose(dx, wantDx);
    expectClose(dw, wantDw.map((v) => v * 0.5));
    expect(gpuCountersSince(gpu.device, before).submits).toBe(1);
  });

  it('embedding rows and their gradient (a repeated token gets both rows)', async () => {
    const [d, vocab] = [16, 10];
    const tokens = [3, 7, 3, 0, 9];
    const table = random(vocab * d);
    const dx = random(tokens.length * d);
    const { prog, bufs } = program([table, Uint32Array.from(tokens), tokens.length * d, dx, vocab * d]);
    prog.kernel('embed', [bufs[0], bufs[1], bufs[2]], uniformWords([d, tokens.length]), tokens.length * d);
    prog.kernel('embed_back', [bufs[3], bufs[1], bufs[4]], uniformWords([d, tokens.length]), d);
    const [x, dTable] = await run(prog, [[bufs[2], tokens.length * d], [bufs[4], vocab * d]]);
    const want = new Float64Array(vocab * d);
    embedBackward(d, tokens, dx, want);
    expectClose(x, embedForward(table, d, tokens, vocab));
    expectClose(dTable, want);
  });

  it('RMSNorm forward, dX, dW', async () => {
    const [d, n, eps] = [32, 5, 1e-5];
    const x = random(n * d);
    const w = random(d);
    const dy = random(n * d);
    const { prog, bufs } = program([x, w, n * d, n, dy, n * d, d]);
    prog.kernel('rmsnorm', [bufs[0], bufs[1], bufs[2], bufs[3]], uniformWords([d, n], [eps]), n);
    prog.kernel('rmsnorm_dx', [bufs[0], bufs[1], bufs[3], bufs[4], bufs[5]], uniformWords([d, n]), n);
    prog.kernel('rmsnorm_dw', [bufs[0], bufs[3], bufs[4], bufs[6]], uniformWords([d, n]), d);
    const [y, dx, dw] = await run(prog, [[bufs[2], n * d], [bufs[5], n * d], [bufs[6], d]]);
    const f = rmsNormForward(x, n, d, w, eps);
    const wantDx = new Float64Array(n * d);
    const wantDw = new Float64Array(d);
    rmsNormBackward(x, n, d, w, f.inv, dy, wantDx, wantDw);
    expectClose(y, f.y);
    expectClose(dx, wantDx);
    expectClose(dw, wantDw);
  });

  for (const style of ['norm', 'neox'] as const) {
    it(`RoPE (${style}, 12 of 16 dims rotated, rope_freqs) and its inverse`, async () => {
      const [n, heads, hd, nRot] = [6, 3, 16, 12];
      const factors = Float32Array.from({ length: nRot / 2 }, (_, i) => 1 + i / 4);
      const table = new RopeTable({ nRot, style, freqBase: 10000, freqScale: 1, factors, attnFactor: 1 });
      const cs = new Float64Array(n * nRot);
      for (let t = 0; t < n; t++) cs.set(table.at(t).subarray(0, nRot), t * nRot);
      const x = random(n * heads * hd);
      const g = random(n * heads * hd);
      const { prog, bufs } = program([x, n * heads * hd, cs, g, n * heads * hd]);
      const shape = [n, heads, hd, nRot / 2, style === 'neox' ? 1 : 0];
      prog.kernel('rope', [bufs[0], bufs[1], bufs[2]], uniformWords([...shape, 0]), x.length);
      prog.kernel('rope', [bufs[3], bufs[4], bufs[2]], uniformWords([...shape, 1]), x.length);
      const [y, back] = await run(prog, [[bufs[1], x.length], [bufs[4], x.length]]);
      const want = x.slice();
      ropeInPlace(want, n, heads, hd, table);
      const wantBack = g.slice();
      ropeInPlace(wantBack, n, heads, hd, table, true);
      expectClose(y, want);
      expectClose(back, wantBack);
    });
  }

  it('causal GQA attention (4 query heads on 2 kv heads) and its backward', async () => {
    const g = { nHead: 4, nHeadKv: 2, headDim: 8, scale: 1 / Math.sqrt(8) };
    const n = 7;
    const q = random(n * g.nHead * g.headDim);
    const k = random(n * g.nHeadKv * g.headDim);
    const v = random(n * g.nHeadKv * g.headDim);
    const dOut = random(q.length);
    const { prog, bufs } = program([q, k, v, g.nHead * n * n, q.length, dOut, g.nHead * n * n, q.length, k.length, v.length]);
    const geometry = uniformWords([n, g.nHead, g.nHeadKv, g.headDim], [g.scale]);
    prog.kernel('attention', [bufs[0], bufs[1], bufs[2], bufs[3], bufs[4]], geometry, g.nHead * n);
    prog.kernel('attn_ds', [bufs[2], bufs[3], bufs[5], bufs[6]], geometry, g.nHead * n);
    prog.kernel('attn_dq', [bufs[1], bufs[6], bufs[7]], geometry, q.length);
    prog.kernel('attn_dkv', [bufs[0], bufs[3], bufs[6], bufs[5], bufs[8], bufs[9]], geometry, k.length);
    const [out, dq, dk, dv] = await run(prog, [[bufs[4], q.length], [bufs[7], q.length], [bufs[8], k.length], [bufs[9], v.length]]);
    const f = attentionForward(q, k, v, n, g);
    const want = { dq: new Float64Array(q.length), dk: new Float64Array(k.length), dv: new Float64Array(v.length) };
    attentionBackward(q, k, v, f.probs, n, g, dOut, want.dq, want.dk, want.dv);
    expectClose(out, f.out);
    expectClose(dq, want.dq);
    expectClose(dk, want.dk);
    expectClose(dv, want.dv);
  });

  it('SwiGLU and its backward', async () => {
    const gate = random(50, 3);
    const up = random(50);
    const dh = random(50);
    const { prog, bufs } = program([gate, up, 50, dh, 50, 50]);
    prog.kernel('swiglu', [bufs[0], bufs[1], bufs[2]], uniformWords([50]), 50);
    prog.kernel('swiglu_back', [bufs[0], bufs[1], bufs[3], bufs[4], bufs[5]], uniformWords([50]), 50);
    const [out, dg, du] = await run(prog, [[bufs[2], 50], [bufs[4], 50], [bufs[5], 50]]);
    const wantG = new Float64Array(50);
    const wantU = new Float64Array(50);
    swigluBackward(gate, up, dh, wantG, wantU);
    expectClose(out, swigluForward(gate, up));
    expectClose(dg, wantG);
    expectClose(du, wantU);
  });

  for (const mode of ['kl', 'ce'] as const) {
    it(`${mode === 'kl' ? 'KL to a teacher' : 'cross-entropy on the next tokens'}: per-row losses and dLogits`, async () => {
      const [n, V] = [5, 33];
      const logits = random(n * V, 2);
      const teacher = Float64Array.from(Float32Array.from(logSoftmaxRows(random(n * V, 2), n, V)));
      const tokens = [4, 31, 0, 7, 12];
      const count = mode === 'kl' ? n : n - 1;
      const { prog, bufs } = program([logits, teacher, Uint32Array.from([...tokens.slice(1), 0]), n * V, n]);
      prog.kernel('loss', [bufs[0], bufs[1], bufs[2], bufs[3], bufs[4]], uniformWords([n, V, mode === 'kl' ? 0 : 1, count]), n);
      const [d, rows] = await run(prog, [[bufs[3], n * V], [bufs[4], n]]);
      const want = mode === 'kl' ? klToTeacher(logits, n, V, teacher) : crossEntropy(logits.subarray(0, (n - 1) * V), n - 1, V, tokens.slice(1));
      const dWant = new Float64Array(n * V);
      dWant.set(want.dLogits);
      expectClose(d, dWant);
      expect(Math.abs(rows.reduce((a, b) => a + b, 0) / count - want.loss) / want.loss).toBeLessThan(1e-5);
    });
  }
});
