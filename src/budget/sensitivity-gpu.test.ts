// The budget scan's KL probe (sensitivity.ts) on the resident forward pass (WebGPU; Node +
// Dawn on SwiftShader) against the same probe on the CPU: each tensor alone in a few types,
// stories260K. One forward pass and one readback per variant, the tensor put back after it.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportSourceFor } from '../export/source.ts';
import { loadModel, type ModelIndex } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { gpuCounters, gpuCountersSince } from '../gpu/counters.ts';
import type { GpuContext } from '../gpu/device.ts';
import { createTestGpu } from '../gpu/gpu-test-setup.ts';
import { budgetModel } from './budget.ts';
import { SCAN_TEXT } from './scan-text.ts';
import { clearKlCache, KlProbe } from './sensitivity.ts';

const TOKENS = 17;

let gpu: GpuContext;
let model: ModelIndex;
beforeAll(async () => {
  gpu = await createTestGpu();
  model = await loadModel([await fileSource(join(FIXTURE_MODELS, 'stories260K.gguf'))]);
}, 60_000);
afterAll(() => gpu?.destroy());

describe('the KL probe on the resident forward pass', () => {
  it('stories260K: the CPU probe\'s KL per (tensor, type) within 1e-4 relative, one readback per variant, the model restored after each', async () => {
    const full = budgetModel(await exportSourceFor(model));
    // The embedding (gathered and, tied, the output head) and a last-layer product, two types each;
    // 16 positions (a software adapter takes seconds a pass).
    const names = ['token_embd.weight', 'blk.4.ffn_up.weight'];
    const m = { ...full, tensors: full.tensors.filter((t) => names.includes(t.name)).map((t) => ({ ...t, candidates: t.candidates.filter((c) => ['q8_0', 'q4_1'].includes(c.type)) })) };
    expect(m.tensors.map((t) => t.name).sort()).toEqual([...names].sort());
    const variants = m.tensors.reduce((s, t) => s + t.candidates.length, 0);
    expect(variants).toBe(4);

    clearKlCache();
    let t = performance.now();
    const cpu = await KlProbe.open(model, SCAN_TEXT, undefined, TOKENS);
    const onCpu = await cpu.scan(m);
    const cpuMs = performance.now() - t;
    clearKlCache();
    const before = gpuCounters(gpu.device);
    t = performance.now();
    const probe = await KlProbe.open(model, SCAN_TEXT, undefined, TOKENS, gpu);
    const openMs = performance.now() - t;
    try {
      expect(probe.onGpu).toBe(true);
      t = performance.now();
      const onGpu = await probe.scan(m);
      console.log(`${variants} variants: CPU ${cpuMs.toFixed(0)} ms; GPU open (upload, compile, F32 pass) ${openMs.toFixed(0)} ms, scan ${(performance.now() - t).toFixed(0)} ms on ${gpu.description}`);
      const spent = gpuCountersSince(gpu.device, before);
      // The F32 pass, then one pass per variant.
      expect(spent.forwardPasses).toBe(1 + variants);
      expect(spent.readbacks).toBeLessThanOrEqual(spent.forwardPasses + 2);
      let worst = 0;
      for (const t of m.tensors) {
        for (const c of t.candidates) {
          const [g, r] = [onGpu.kl.get(t.name)!.get(c.type)!, onCpu.kl.get(t.name)!.get(c.type)!];
          if (r === 0) {
            expect(g, `${t.name} ${c.type}`).toBe(0);
            continue;
          }
          const rel = Math.abs(g - r) / r;
          console.log(`${t.name} -> ${c.type}: KL GPU ${g.toExponential(6)} CPU ${r.toExponential(6)} (rel ${rel.toExponential(2)})`);
          worst = Math.max(worst, rel);
        }
      }
      expect(worst).toBeLessThan(1e-4);
      expect(worst).toBeGreaterThan(0); // two computations
      // Each variant is measured on the F32 model with only its tensor changed: the model is restored.
      const again = await probe.measure(new Map());
      expect(again.klMean).toBeLessThan(1e-9);
      expect(again.top1Agree).toBe(1);
    } finally {
      probe.dispose();
    }
  }, 180_000);
});
