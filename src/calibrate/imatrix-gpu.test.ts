// Calibration statistics on the resident forward pass (model/gpu-stats.ts) against the CPU
// path (activations.ts + imatrix.ts / gptq.ts), on Dawn + SwiftShader (fails, not skips,
// without WebGPU): the sums kernel adds in collect_imatrix's order (bit for bit on equal
// inputs); on stories260K the imatrix sums within 1e-5 relative of the CPU's (the inputs
// themselves differ by f32 ulps: the GPU pass sums in f32, the CPU in f64), the same counts
// and chunk count, GPTQ's XᵀX within f32 accuracy of hessian(); one readback per chunk plus
// one for all the statistics, and exactly the statistics' bytes beyond the chunks' scores;
// the sums within 1e-5 on every family model too (gemma's pass rounds as the CPU's f64
// upstream of its GeGLU, docs/webgpu.md, so its f16-rounded down inputs agree as well).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { gpuCounters, gpuCountersSince, submit } from '../gpu/counters.ts';
import type { GpuContext } from '../gpu/device.ts';
import { createTestGpu } from '../gpu/gpu-test-setup.ts';
import { ResidentStats, residentStatistics } from '../model/gpu-stats.ts';
import { mapProvider } from '../model/weights.ts';
import { gaussians } from '../testing/random.ts';
import { FAMILY_CASES, prepareCase } from '../testing/family-cases.ts';
import { gpuCompute } from '../gpu/compute.ts';
import { planExport } from '../export/plan.ts';
import { exportSourceFor } from '../export/source.ts';
import type { GpuFallback } from '../export/write.ts';
import { gptqExport } from './gptq-export.ts';
import { chunkTokens, colsOf, collectInputs, layerStages, linearWeightNames, openCalibrationModel, runCalibration, stageWeightNames, type CalibrationModel } from './activations.ts';
import { CALIBRATION_STORY_TEXT } from './calibration-text.ts';
import { hessian } from './gptq.ts';
import { accumulateSquares, computeImatrix } from './imatrix.ts';

let gpu: GpuContext;
let cm: CalibrationModel;
beforeAll(async () => {
  gpu = await createTestGpu();
  cm = await openCalibrationModel(await loadModel([await fileSource(join(FIXTURE_MODELS, 'stories260K.gguf'))]));
});
afterAll(() => gpu?.destroy());

/** A short calibration text: 4 chunks of 32 tokens keep the SwiftShader pass to seconds. */
const TEXT = CALIBRATION_STORY_TEXT.slice(0, 320);
const CHUNK = 32;

describe('calibration statistics on the resident forward pass', () => {
  it('the sums kernel adds x² per column in collect_imatrix\'s order: bit for bit accumulateSquares on the same rows, across chunks', async () => {
    const cols = 100; // not a multiple of the workgroup
    const chunks = [gaussians(37 * cols, 1, 3), gaussians(21 * cols, 2, 0.01)];
    const stats = new ResidentStats(gpu, { sums: new Map([['w', cols]]) });
    const { device } = gpu;
    const x = device.createBuffer({ size: 37 * cols * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    const steps = await stats.tap('w', x, cols);
    expect(steps).toHaveLength(1);
    const want = new Float32Array(cols);
    for (const c of chunks) {
      device.queue.writeBuffer(x, 0, new Float32Array(c));
      stats.setRows(c.length / cols);
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(steps[0].pipeline);
      pass.setBindGroup(0, steps[0].bindGroup);
      pass.dispatchWorkgroups(...steps[0].dispatch(c.length / cols));
      pass.end();
      submit(device, [enc.finish()]);
      accumulateSquares(want, c, c.length / cols);
    }
    const r = await stats.read();
    expect(r.rows).toBe(58);
    expect(Array.from(r.sums.get('w')!)).toEqual(Array.from(want));
    stats.dispose();
    x.destroy();
    expect(gpu.uncapturedErrors).toEqual([]);
  });

  it('stories260K: the imatrix of the resident pass equals the CPU\'s within 1e-5, same counts; one readback per chunk and one for the sums', async () => {
    const cpu = await computeImatrix(cm, { text: TEXT, chunk: CHUNK, dataset: 'd' });
    const before = gpuCounters(gpu.device);
    const onGpu = await computeImatrix(cm, { text: TEXT, chunk: CHUNK, dataset: 'd', gpu });
    const spent = gpuCountersSince(gpu.device, before);
    expect(cpu.backend).toBe('cpu');
    expect(onGpu.backend).toBe('webgpu');
    expect(onGpu.chunkCount).toBe(cpu.chunkCount);
    expect([...onGpu.sums.keys()].sort()).toEqual([...cpu.sums.keys()].sort());
    let worst = 0;
    let statsBytes = 0;
    for (const [name, want] of cpu.sums) {
      const got = onGpu.sums.get(name)!;
      expect(onGpu.counts.get(name), name).toBe(cpu.counts.get(name));
      for (let j = 0; j < want.length; j++) worst = Math.max(worst, Math.abs(got[j] - want[j]) / Math.abs(want[j]));
      statsBytes += want.length * 4;
    }
    console.log(`stories260K imatrix on ${gpu.description}: ${cpu.chunkCount} chunks of ${CHUNK}, worst relative difference to the CPU ${worst.toExponential(2)}; ${JSON.stringify(spent)}`);
    expect(worst).toBeLessThan(1e-5);
    const chunks = cpu.chunkCount;
    expect(spent.forwardPasses).toBe(chunks);
    expect(spent.submits).toBe(chunks + 1);
    expect(spent.readbacks).toBe(chunks + 1);
    // Each chunk's 4 score words per position, then the sums: nothing per product, nothing per chunk beyond the scores.
    expect(spent.bytesReadBack).toBe(chunks * CHUNK * 16 + statsBytes);
    expect(gpu.uncapturedErrors).toEqual([]);
  }, 120_000);

  // One case per family (the last of each): llama, qwen2 (biases), qwen3 (q/k norms), phi3 (fused q/k/v and gate|up), gemma2, gemma3 (GeGLU).
  const families = [...new Map(FAMILY_CASES.map((c) => [c.gguf.family, c])).values()];
  it.each(families.map((c) => [c.label, c] as const))(
    'family model %s: the resident pass\'s sums of every blk.* product within 1e-5 of the CPU pass\'s (fused q/k/v and gate|up included)',
    async (_label, fc) => {
      const p = await prepareCase(fc);
      const model = await openCalibrationModel(await loadModel([await fileSource(p.path)]));
      const chunks = [p.tokens.slice(0, 16), p.tokens.slice(16, 32)];
      const want = new Map<string, Float32Array>();
      await runCalibration(model, chunks, (name, x, n, cols) => {
        if (!want.has(name)) want.set(name, new Float32Array(cols));
        accumulateSquares(want.get(name)!, x, n);
      });
      const names = linearWeightNames(model.config);
      const r = await residentStatistics(gpu, model.config, mapProvider(model.weights), chunks, { sums: new Map(names.map((g) => [model.fileName(g), colsOf(model, g)])) });
      expect(r.rows).toBe(32);
      expect([...want.keys()].sort()).toEqual([...names].sort());
      let worst = 0;
      for (const g of names) {
        const got = r.sums.get(model.fileName(g))!;
        want.get(g)!.forEach((v, j) => (worst = Math.max(worst, Math.abs(got[j] - v) / Math.abs(v))));
      }
      console.log(`${fc.gguf.family}: worst relative difference of the sums ${worst.toExponential(2)}`);
      expect(worst).toBeLessThan(1e-5);
      expect(gpu.uncapturedErrors).toEqual([]);
    },
    60_000,
  );

  it('stories260K: GPTQ\'s XᵀX per stage (q/k/v, attn_output, gate/up, ffn_down) summed on the resident pass equals hessian() of the CPU\'s inputs to f32 accuracy', async () => {
    const { chunks } = chunkTokens(cm.tokenize(TEXT), CHUNK, cm.bosId, cm.addBos);
    const layer = 1;
    const groups = layerStages(cm.config).map((stage) => {
      const names = stageWeightNames(layer, stage);
      return { names, weights: names.map((g) => cm.fileName(g)), cols: colsOf(cm, names[0]) };
    });
    const before = gpuCounters(gpu.device);
    const r = await residentStatistics(gpu, cm.config, mapProvider(cm.weights), chunks, { sums: new Map(), xtx: groups });
    const spent = gpuCountersSince(gpu.device, before);
    expect(spent.readbacks).toBe(chunks.length + 1);
    const inputs = await collectInputs(cm, TEXT, CHUNK, { only: new Set(groups.flatMap((g) => g.names)) });
    for (const g of groups) {
      g.names.forEach((name, i) => {
        const c = inputs.get(name)!;
        const want = hessian(c.x, c.n, g.cols);
        const got = r.xtx.get(g.weights[i])!;
        expect(c.n).toBe(r.rows);
        let scale = 0;
        let worst = 0;
        for (const v of want) scale = Math.max(scale, Math.abs(v));
        for (let k = 0; k < want.length; k++) worst = Math.max(worst, Math.abs((got[k] * 2) / r.rows - want[k]));
        expect(worst / scale, name).toBeLessThan(1e-5);
        for (let a = 0; a < g.cols; a += 7) for (let b = 0; b < g.cols; b += 5) expect(got[a * g.cols + b]).toBe(got[b * g.cols + a]);
      });
    }
    expect(gpu.uncapturedErrors).toEqual([]);
  }, 120_000);

  it('stories260K quantize --gptq on WebGPU with the Hessians of the resident pass (residentHessians, the default on hardware GPUs): Q4_0 blocks within one code or f16 scale step of those from CPU-collected inputs, one readback per chunk plus one', async () => {
    const model = await loadModel([await fileSource(join(FIXTURE_MODELS, 'stories260K.gguf'))]);
    const source = await exportSourceFor(model);
    const plan = planExport(source, { mode: { type: 'q4_0' } });
    const onGpu: GpuFallback = { liveGpu: () => gpu, withFallback: async (step) => ({ value: await step(gpu, gpuCompute(gpu)!), backend: 'webgpu' }) };
    const options = { text: TEXT, chunk: CHUNK, gpu: onGpu };
    expect(gpu.isFallbackAdapter).toBe(true); // so the default below is the CPU-collected inputs
    const collected = await gptqExport(model, source, plan, options);
    const before = gpuCounters(gpu.device);
    const resident = await gptqExport(model, source, plan, { ...options, residentHessians: true });
    const spent = gpuCountersSince(gpu.device, before);
    expect(resident.gpu.tensors).toBe(30);
    expect(spent.forwardPasses).toBe(resident.chunks);
    // The pass: a readback per chunk and one for the Hessians; then GPTQ's own per tensor (codes and grid).
    expect(spent.readbacks).toBe(resident.chunks + 1 + 2 * 30);
    let blocks = 0;
    let moved = 0;
    for (const [name, a] of resident.tensors) {
      const b = collected.tensors.get(name)!;
      for (let at = 0; at < a.length; at += 18) {
        blocks++;
        const ulps = Math.abs((a[at] | (a[at + 1] << 8)) - (b[at] | (b[at + 1] << 8)));
        let codes = 0;
        for (let j = at + 2; j < at + 18; j++) for (const shift of [0, 4]) codes += Math.abs(((a[j] >> shift) & 15) - ((b[j] >> shift) & 15));
        expect(ulps, `${name} block ${at / 18}`).toBeLessThanOrEqual(1);
        if (ulps || codes) moved++;
      }
    }
    console.log(`stories260K GPTQ Q4_0, resident-pass Hessians against CPU-collected inputs: ${moved} of ${blocks} blocks differ`);
    expect(moved / blocks).toBeLessThan(0.01);
    expect(gpu.uncapturedErrors).toEqual([]);
  }, 120_000);
});
