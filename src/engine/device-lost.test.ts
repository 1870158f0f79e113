// A WebGPU device lost in the middle of the matmul check or the model-output eval: the job
// runs again on the CPU and gives the CPU's numbers (compare and export: engine.test.ts,
// export.test.ts); GPTQ's export blocks go on on the CPU. Dawn on SwiftShader; this fails, not skips, without a GPU.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileSource } from '../formats/node-source.ts';
import type { GpuContext } from '../gpu/device.ts';
import { createTestGpu } from '../gpu/gpu-test-setup.ts';
import { Engine } from './engine.ts';

const SAMPLE = join(import.meta.dirname, '../../../shared/fixtures/models/stories260K.gguf');

async function engineOn(gpu: GpuContext | null): Promise<Engine> {
  const engine = new Engine(gpu ? async () => gpu : null);
  await engine.load([await fileSource(SAMPLE)]);
  return engine;
}

describe('device lost mid-job', () => {
  it('matmul check: reruns on the CPU with the CPU numbers', async () => {
    const gpu = await createTestGpu();
    const engine = await engineOn(gpu);
    expect((await engine.gpuStatus()).backend).toBe('webgpu');
    const request = { tensor: 'blk.1.ffn_up.weight', types: ['q8_0', 'q4_0', 'q5_1'], input: { kind: 'random' as const, seed: 3 } };
    let lost = false;
    const r = await engine.matmulCheck(request, () => {
      if (!lost) {
        lost = true;
        gpu.device.destroy();
      }
    });
    expect(lost).toBe(true);
    const cpu = await (await engineOn(null)).matmulCheck(request);
    expect(r.results.map((x) => x.backend)).toEqual(['cpu', 'cpu', 'cpu']);
    expect(r.results.map((x) => [x.type, x.bytes, x.error])).toEqual(cpu.results.map((x) => [x.type, x.bytes, x.error]));
    expect((await engine.gpuStatus()).detail).toMatch(/GPU device lost/);
  });

  it('model-output eval: reruns on the CPU with the CPU numbers', async () => {
    const gpu = await createTestGpu();
    const engine = await engineOn(gpu);
    const text = 'Once upon a time, there was a little girl named Lily.';
    let lost = false;
    const r = await engine.evalModel(['Q8_0'], () => {
      if (!lost) {
        lost = true;
        gpu.device.destroy();
      }
    }, { text, greedyTokens: 4 });
    expect(lost).toBe(true);
    expect(r.backend).toBe('cpu');
    expect(r.products).toBeNull();
    const cpu = await (await engineOn(null)).evalModel(['Q8_0'], undefined, { text, greedyTokens: 4 });
    expect(r.results.map((x) => [x.preset, x.ppl, x.top1Agree])).toEqual(cpu.results.map((x) => [x.preset, x.ppl, x.top1Agree]));
  }, 120_000);

  it("GPTQ export: the tensors after the loss get the CPU's blocks, those before keep the GPU's", async () => {
    const gpu = await createTestGpu();
    const engine = await engineOn(gpu);
    const mode = { type: 'q4_0' };
    const onGpu = await engine.gptqBlocks(mode, [], {});
    expect(onGpu.gpu.tensors).toBe(30);
    const onCpu = await (await engineOn(null)).gptqBlocks(mode, [], {});
    expect(onCpu.gpu.tensors).toBe(0);
    const LOST_AFTER = 7;
    let tensorsDone = 0;
    const labels: string[] = [];
    const r = await engine.gptqBlocks(mode, [], {
      onProgress: (p) => {
        if (!p.label.startsWith('blk.')) return;
        labels.push(p.label);
        if (++tensorsDone === LOST_AFTER) gpu.device.destroy();
      },
    });
    expect(tensorsDone).toBe(30);
    // The progress says where each tensor's GPTQ ran.
    expect(labels.map((l) => l.endsWith(' on WebGPU'))).toEqual(labels.map((_, i) => i < LOST_AFTER));
    expect(r.gpu.tensors).toBe(LOST_AFTER);
    const names = [...r.tensors.keys()];
    expect(names).toEqual([...onGpu.tensors.keys()]);
    for (const [i, name] of names.entries()) {
      const want = (i < LOST_AFTER ? onGpu : onCpu).tensors.get(name)!;
      expect(Buffer.from(r.tensors.get(name)!).equals(Buffer.from(want)), name).toBe(true);
    }
    expect((await engine.gpuStatus()).detail).toMatch(/GPU device lost/);
  }, 120_000);
});
