// The engine end to end in Node: WebGPU (Dawn on SwiftShader) against the CPU codecs, and a
// device lost mid-job finishing on the CPU with the same numbers.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadFastCodecs } from '../quant/fast/node.ts';
import { fastCodecsInstalled, installFastCodecs, uninstallFastCodecs } from '../quant/fast/wasm-codecs.ts';
import { fileSource } from '../formats/node-source.ts';
import { createTestGpu } from '../gpu/gpu-test-setup.ts';
import { Engine } from './engine.ts';
import type { GpuContext } from '../gpu/device.ts';

const SAMPLE = join(import.meta.dirname, '../../../shared/fixtures/models/stories260K.gguf');
const TYPES = ['f16', 'bf16', 'q8_0', 'q4_0', 'q5_1'];
const TENSOR = 'blk.2.ffn_up.weight';

async function engineOn(gpu: GpuContext | null): Promise<Engine> {
  const engine = new Engine(gpu ? async () => gpu : null);
  await engine.load([await fileSource(SAMPLE)]);
  return engine;
}

/** Metrics that must agree between backends (GPU sums are f32 partials added in f64). */
function summary(r: Awaited<ReturnType<Engine['compare']>>) {
  return r.results.map((t) => ({ type: t.type, bytes: t.bytes, maxAbs: t.metrics.maxAbs, rmse: t.metrics.rmse }));
}

describe('engine', () => {
  it('compares types on WebGPU with the numbers of the CPU codecs', async () => {
    const gpu = await createTestGpu();
    const onGpu = await (await engineOn(gpu)).compare({ tensor: TENSOR, types: TYPES });
    const onCpu = await (await engineOn(null)).compare({ tensor: TENSOR, types: TYPES });
    expect(onGpu.backend).toBe('webgpu');
    expect(onGpu.results.map((r) => r.backend)).toEqual(TYPES.map(() => 'webgpu'));
    expect(onCpu.backend).toBe('cpu');
    const g = summary(onGpu), c = summary(onCpu);
    for (let i = 0; i < TYPES.length; i++) {
      expect(g[i].bytes).toBe(c[i].bytes);
      // Same bytes, same dequantized values: the max error is exact, sums agree to f32 partials.
      expect(g[i].maxAbs).toBe(c[i].maxAbs);
      expect(g[i].rmse).toBeCloseTo(c[i].rmse, 9);
      expect(onGpu.results[i].histogram.counts.reduce((a, b) => a + b, 0) + onGpu.results[i].histogram.below + onGpu.results[i].histogram.above).toBe(172 * 64);
    }
    gpu.destroy();
  });

  it('finishes on the CPU with the same results when the device is lost mid-job', async () => {
    const gpu = await createTestGpu();
    const engine = await engineOn(gpu);
    expect((await engine.gpuStatus()).backend).toBe('webgpu');
    let destroyed = false;
    const r = await engine.compare({ tensor: TENSOR, types: TYPES }, (p) => {
      if (!destroyed && p.done >= 2) {
        destroyed = true;
        gpu.device.destroy();
      }
    });
    expect(destroyed).toBe(true);
    // Steps after the loss ran on the CPU, and the result says so.
    expect(r.results.at(-1)!.backend).toBe('cpu');
    expect(r.backend).toBe('cpu');
    const cpu = await (await engineOn(null)).compare({ tensor: TENSOR, types: TYPES });
    const a = summary(r), b = summary(cpu);
    for (let i = 0; i < TYPES.length; i++) {
      expect(a[i].bytes).toBe(b[i].bytes);
      expect(a[i].maxAbs).toBe(b[i].maxAbs);
      expect(a[i].rmse).toBeCloseTo(b[i].rmse, 9);
    }
    expect((await engine.gpuStatus()).backend).toBe('cpu');
  });

  it('says which CPU codecs run: the TypeScript reference until the WebAssembly ones are installed', async () => {
    const installedBefore = fastCodecsInstalled();
    expect(await loadFastCodecs()).toBe(true); // builds the module if stale
    const engine = new Engine(null);
    const wasm = readFileSync(join(import.meta.dirname, '../../wasm/build/quant.wasm'));
    try {
      uninstallFastCodecs();
      expect((await engine.gpuStatus()).cpuCodecs).toBe('reference');
      installFastCodecs(wasm);
      expect(await engine.gpuStatus()).toMatchObject({ backend: 'cpu', cpuCodecs: 'webassembly' });
    } finally {
      if (installedBefore) installFastCodecs(wasm);
      else uninstallFastCodecs();
    }
  });

  it('refuses a type whose block does not divide the rows, saying why, and keeps the others', async () => {
    const r = await (await engineOn(null)).compare({ tensor: 'blk.0.attn_q.weight', types: ['q4_K', 'q8_0'] });
    expect(r.results[0].error).toMatch(/not a multiple of q4_K's block size 256/);
    expect(r.results[1].error).toBeUndefined();
    expect(r.results[1].metrics.rmse).toBeGreaterThan(0);
  });
});
