// Training on WebGPU (train/gpu/) gives the CPU's losses: 20 steps of QAT (q4_0 on
// stories260K; Q4_K on a seeded synthetic Llama whose attn_output and ffn_down have rows of
// 256, which K-quants need) and of QLoRA (NF4 base on stories260K, Q4_K base on a 256-wide
// synthetic one), every step's loss within 1e-3 relative of the CPU's f64 run; the GPU did
// the steps (one submit, one 16-byte readback and one forward pass a step, and a forward
// pass per held-out score, counted by gpu/counters.ts); the QAT result's blocks are the CPU
// codec's encoding of its master weights, so export.ts writes them unchanged.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type ModelIndex } from '../../formats/model.ts';
import { fileSource } from '../../formats/node-source.ts';
import { fixture } from '../../formats/testing.ts';
import { gpuCounters, gpuCountersSince, type GpuCounters } from '../../gpu/counters.ts';
import { GpuDeviceLostError, type GpuContext } from '../../gpu/device.ts';
import { createTestGpu } from '../../gpu/gpu-test-setup.ts';
import { quantType } from '../../quant/types.ts';
import { writeFamilyGguf } from '../../testing/family-gguf.ts';
import { paramShapes } from '../model.ts';
import { trainQat, type QatResult, type StepRecord } from '../qat.ts';
import { trainQlora } from '../qlora.ts';

const STEPS = 20;
let gpu: GpuContext;
let dir: string;
let stories: ModelIndex;
let wide: ModelIndex;
let narrow: ModelIndex;
beforeAll(async () => {
  gpu = await createTestGpu();
  dir = await mkdtemp(join(tmpdir(), 'quantlab-train-gpu-'));
  stories = await loadModel([await fixture('stories260K.gguf')]);
  const path = join(dir, 'synthetic.gguf');
  await writeFamilyGguf(path, { family: 'llama', nLayer: 1, nEmbd: 256, nFf: 256, nHead: 4, nHeadKv: 2, headDim: 64, seed: 21 });
  wide = await loadModel([await fileSource(path)]);
  // 64 wide with 256-value rows only into attn_output and ffn_down: Q4_K types those two
  // (128 blocks) and q5_0 the rest, so a step runs few of SwiftShader's slow K-quant encoders.
  const narrowPath = join(dir, 'narrow.gguf');
  await writeFamilyGguf(narrowPath, { family: 'llama', nLayer: 1, nEmbd: 64, nFf: 256, nHead: 4, nHeadKv: 1, headDim: 64, seed: 21 });
  narrow = await loadModel([await fileSource(narrowPath)]);
});
afterAll(async () => {
  gpu?.destroy();
  await rm(dir, { recursive: true, force: true });
});

function diff(a: GpuCounters, b: GpuCounters): GpuCounters {
  return { submits: a.submits - b.submits, readbacks: a.readbacks - b.readbacks, bytesReadBack: a.bytesReadBack - b.bytesReadBack, forwardPasses: a.forwardPasses - b.forwardPasses };
}

function maxRelative(cpu: readonly StepRecord[], web: readonly StepRecord[], key: 'loss' | 'gradNorm'): number {
  expect(web).toHaveLength(cpu.length);
  return Math.max(...cpu.map((r, i) => Math.abs(web[i][key] - r[key]) / Math.abs(r[key])));
}

/** Runs `train` on the CPU and on the GPU; checks the losses and that the GPU did one submit, one small readback and one forward pass a step. */
async function bothBackends<R extends { records: StepRecord[]; backend: string }>(what: string, train: (gpu?: GpuContext, onStep?: () => void) => Promise<R>): Promise<{ cpu: R; web: R }> {
  const cpu = await train();
  const before = gpuCounters(gpu.device);
  // The device's counters at each step's end: between two, exactly that step's work.
  const atSteps: GpuCounters[] = [];
  const web = await train(gpu, () => atSteps.push(gpuCounters(gpu.device)));
  const used = gpuCountersSince(gpu.device, before);
  expect(atSteps).toHaveLength(STEPS);
  for (let i = 1; i < atSteps.length; i++) expect(diff(atSteps[i], atSteps[i - 1])).toEqual({ submits: 1, readbacks: 1, bytesReadBack: 16, forwardPasses: 1 });
  const loss = maxRelative(cpu.records, web.records, 'loss');
  console.log(`${what}: ${STEPS} steps, losses ${cpu.records[0].loss.toFixed(5)} -> ${cpu.records[STEPS - 1].loss.toFixed(5)} (CPU); max relative difference on WebGPU ${loss.toExponential(2)}, grad norms ${maxRelative(cpu.records, web.records, 'gradNorm').toExponential(2)}; ${used.submits} submits, ${used.readbacks} readbacks, ${used.bytesReadBack} bytes, ${used.forwardPasses} forward passes`);
  expect(cpu.backend).toBe('cpu');
  expect(web.backend).toBe('webgpu');
  expect(loss).toBeLessThan(1e-3);
  expect(used.submits).toBeGreaterThanOrEqual(STEPS);
  // A step is one readback; the rest are the two held-out passes and the trained tensors at the end.
  expect(used.readbacks).toBeGreaterThanOrEqual(STEPS);
  expect(used.readbacks).toBeLessThan(STEPS + 200);
  // Each step's forward pass and the two held-out scores (before and after).
  expect(used.forwardPasses).toBe(STEPS + 2);
  return { cpu, web };
}

/** Every typed tensor's blocks from the GPU equal the CPU codec's encoding of the GPU's master weights. */
function expectCpuCodecBlocks(web: QatResult): void {
  const shapes = paramShapes(web.config);
  expect(web.blocks.size).toBeGreaterThan(0);
  for (const [name, bytes] of web.blocks) {
    const master = web.master.get(name)!;
    const encoded = quantType(web.types.get(name)!)!.codec.encode(master, shapes.get(name)!.at(-1)!);
    expect(Buffer.from(bytes).equals(Buffer.from(encoded)), name).toBe(true);
  }
}

describe('QAT on WebGPU', () => {
  it('q4_0 on stories260K: 20 steps with the CPU losses, the blocks are the CPU codec of the master weights', async () => {
    const { cpu, web } = await bothBackends('QAT q4_0 stories260K', (g, onStep) => trainQat(stories, { mode: { type: 'q4_0' }, steps: STEPS, gpu: g, onStep }));
    expect(Math.abs(web.after.kl - cpu.after.kl) / cpu.after.kl).toBeLessThan(1e-2);
    expect(web.after.kl).toBeLessThan(web.before.kl);
    expectCpuCodecBlocks(web);
  }, 600_000);

  // SwiftShader's K-quant encoders are slow (~0.4 ms a block unloaded): few K-quant blocks a step.
  it('Q4_K on a synthetic llama: 20 steps with the CPU losses (CE loss), the Q4_K blocks are the CPU codec of the master weights', async () => {
    const { web } = await bothBackends('QAT q4_K synthetic', (g, onStep) => trainQat(narrow, { mode: { type: 'q4_K' }, steps: STEPS, seqLen: 32, loss: 'ce', gpu: g, onStep }));
    expect(web.types.get('blk.0.attn_output.weight')).toBe('q4_K');
    expect(web.types.get('blk.0.ffn_down.weight')).toBe('q4_K');
    expectCpuCodecBlocks(web);
  }, 240_000);
});

describe('a device lost mid-run', () => {
  it('stops the run with GpuDeviceLostError (the session falls back to the CPU)', async () => {
    const doomed = await createTestGpu();
    const run = trainQlora(stories, { rank: 2, baseType: 'nf4', steps: 6, seqLen: 16, gpu: doomed, onStep: (s) => s.step === 2 && doomed.destroy() });
    await expect(run).rejects.toBeInstanceOf(GpuDeviceLostError);
  }, 120_000);
});

describe('QLoRA on WebGPU', () => {
  it('NF4 base on stories260K: 20 steps with the CPU losses', async () => {
    const { cpu, web } = await bothBackends('QLoRA nf4 stories260K', (g, onStep) => trainQlora(stories, { rank: 4, baseType: 'nf4', targetModules: ['q_proj', 'v_proj', 'down_proj'], steps: STEPS, lr: 5e-3, seqLen: 32, gpu: g, onStep }));
    expect(web.after.kl).toBeLessThan(web.before.kl);
    expect(Math.abs(web.before.kl - cpu.before.kl) / cpu.before.kl).toBeLessThan(1e-4);
  }, 300_000);

  it('Q4_K base on a synthetic 256-wide llama: 20 steps with the CPU losses', async () => {
    await bothBackends('QLoRA q4_K synthetic', (g, onStep) => trainQlora(wide, { rank: 4, baseType: 'q4_K', steps: STEPS, lr: 5e-3, seqLen: 16, gpu: g, onStep }));
  }, 300_000);
});
