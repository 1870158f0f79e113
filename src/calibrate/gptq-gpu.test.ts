// GPTQ on the GPU (gptq-gpu.ts, f32) against the CPU reference (gptq.ts, f64): on real
// stories260K layers (inputs from the calibration text, scored on held-out text) the two
// choose the same grid point for at least 99% of the weights, their layer output MSEs are
// within 3% of each other, and the GPU's is below round-to-nearest's. Chunking rows under a
// forced small binding limit changes no value. Needs WebGPU: no adapter fails these tests.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restrictLimits, type GpuContext } from '../gpu/device.ts';
import { Engine } from '../engine/engine.ts';
import { createTestGpu } from '../gpu/gpu-test-setup.ts';
import { differingBlocks } from '../gpu/testing.ts';
import { quantType } from '../quant/types.ts';
import { loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { EVAL_TEXT } from '../model/eval-text.ts';
import { rng } from '../testing/random.ts';
import { collectInputs, openCalibrationModel, type CalibrationModel, type LayerInputs } from './activations.ts';
import { CALIBRATION_STORY_TEXT } from './calibration-text.ts';
import { gptqQ4_0, gptqQ4_K, gptqQuantize, hessian } from './gptq.ts';
import { gptqHessianGpu, gptqQuantizeGpu, gptqWalk, q4_0BlocksFromGpu, q4KBlocksFromGpu, sameGridPoints, type GptqGpuResult } from './gptq-gpu.ts';
import { gram, outputMse, quantizeRtn, type Grid } from './grid.ts';

/**
 * The GPU's result was computed there: work dispatched, no WebGPU error, and on the INT
 * grids (f32 scales) values that are not the f64 CPU's bit for bit. Q4_0's values are
 * (code − 8) · f16(d): f32 and f64 round d to the same f16, so they may all be identical.
 */
function expectGpuWork(gpu: GpuContext, got: GptqGpuResult, cpu: Float64Array, grid: Grid): void {
  expect(got.stats.dispatches).toBeGreaterThan(0);
  expect(got.stats.walk).toBe(gptqWalk(gpu, grid));
  expect(gpu.uncapturedErrors).toEqual([]);
  if (grid.kind === 'int') expect(Array.from(got.values).some((v, k) => v !== cpu[k])).toBe(true);
}

/** A random layer (weights ~ U(−0.05, 0.05)) and n input rows that share 24 random directions, plus noise. */
function correlatedLayer(seed: number, rows: number, cols: number, n: number): { w: Float64Array; x: Float64Array } {
  const rand = rng(seed);
  const w = Float64Array.from({ length: rows * cols }, () => (rand() * 2 - 1) * 0.05);
  const base = Float64Array.from({ length: n * 24 }, () => rand() * 2 - 1);
  const x = Float64Array.from({ length: n * cols }, (_, k) => base[Math.floor(k / cols) * 24 + (k % 24)] + 0.2 * (rand() - 0.5));
  return { w, x };
}

describe('GPTQ on WebGPU', () => {
  let gpu: GpuContext;
  let cm: CalibrationModel;
  let calib: Map<string, LayerInputs>;
  let held: Map<string, LayerInputs>;
  beforeAll(async () => {
    gpu = await createTestGpu({ label: 'gptq-test' });
    cm = await openCalibrationModel(await loadModel([await fileSource(join(FIXTURE_MODELS, 'stories260K.gguf'))]));
    calib = await collectInputs(cm, CALIBRATION_STORY_TEXT, 512);
    held = await collectInputs(cm, EVAL_TEXT, 64);
  }, 120_000); // the model's passes over both texts: over vitest's 10 s on a loaded 2-core machine
  afterAll(() => gpu?.destroy());

  const layer = (name: string) => {
    const w = cm.weights.get(name)!;
    const c = calib.get(name)!;
    return { w, c, t: held.get(name)!, rows: w.length / c.cols, cols: c.cols };
  };

  it('the subgroup-per-row walk (gptq_block_sg.wgsl, forced: SwiftShader has subgroups of 4, and runs the row walk by default) gives the invocation-per-row walk\'s values bit for bit: INT and Q4_0 grids, groups inside and across 32-column blocks', async () => {
    const rows = 37;
    const cols = 200;
    const n = 400;
    const rand = rng(11);
    const w = Float64Array.from({ length: rows * cols }, () => (rand() * 2 - 1) * 0.05);
    const x = Float64Array.from({ length: n * cols }, () => rand() * 2 - 1);
    const h = hessian(x, n, cols);
    const grids: Grid[] = [{ kind: 'q4_0' }, { kind: 'int', bits: 4, group: 32 }, { kind: 'int', bits: 3, group: 128 }, { kind: 'int', bits: 4, group: 64 }];
    for (const grid of grids) {
      for (const blockSize of [128, 32]) {
        const sg = await gptqQuantizeGpu(gpu, w, rows, cols, h, { grid, blockSize, subgroups: true });
        const row = await gptqQuantizeGpu(gpu, w, rows, cols, h, { grid, blockSize, subgroups: false });
        expect(sg.stats.walk, JSON.stringify(grid)).toBe('subgroup');
        expect(row.stats.walk).toBe('row');
        expect(Array.from(sg.values), `${JSON.stringify(grid)} blocks of ${blockSize}`).toEqual(Array.from(row.values));
      }
    }
    expect(gpu.uncapturedErrors).toEqual([]);
  });

  it.each([
    ['blk.1.ffn_up.weight', { kind: 'int', bits: 4, group: 32 }],
    ['blk.3.attn_q.weight', { kind: 'int', bits: 3, group: 64 }],
    ['blk.2.ffn_down.weight', { kind: 'int', bits: 4, group: 128 }],
    ['blk.0.ffn_gate.weight', { kind: 'int', bits: 4, group: 48 }],
    ['blk.4.attn_output.weight', { kind: 'q4_0' }],
    ['blk.2.ffn_down.weight', { kind: 'q4_0' }],
  ] as const)('stories260K %s, %j: the GPU picks the CPU reference\'s grid points (>= 99%), output MSE within 3%, below RTN', async (name, grid: Grid) => {
    const { w, c, t, rows, cols } = layer(name);
    const h = hessian(c.x, c.n, cols);
    const cpu = gptqQuantize(w, rows, cols, h, { grid });
    const got = await gptqQuantizeGpu(gpu, w, rows, cols, h, { grid });
    expectGpuWork(gpu, got, cpu, grid);
    const agree = sameGridPoints(got.values, cpu, got, grid, cols);
    const g = gram(t.x, t.n, cols);
    const mse = (q: ArrayLike<number>) => outputMse(w, q, rows, cols, g, t.n);
    const [gpuMse, cpuMse, rtnMse] = [mse(got.values), mse(cpu), mse(quantizeRtn(w, rows, cols, grid))];
    console.log(`${name} ${JSON.stringify(grid)}: same grid point ${(agree * 100).toFixed(2)}%, output MSE gpu ${gpuMse.toPrecision(4)} cpu ${cpuMse.toPrecision(4)} rtn ${rtnMse.toPrecision(4)}`);
    expect(agree).toBeGreaterThanOrEqual(0.99);
    expect(Math.abs(gpuMse - cpuMse) / cpuMse).toBeLessThan(0.03);
    expect(gpuMse).toBeLessThan(rtnMse);
  });

  it.each(['blk.0.ffn_gate.weight', 'blk.4.attn_output.weight', 'blk.3.attn_k.weight'])('Q4_0 blocks from the GPU\'s codes and scales: >= 99%% of them gptqQ4_0\'s byte for byte, and the Q4_0 codec decodes them to the GPU\'s values (%s)', async (name) => {
    const { w, c, rows, cols } = layer(name);
    const h = hessian(c.x, c.n, cols);
    const cpu = gptqQ4_0(w, rows, cols, h);
    const got = await gptqQuantizeGpu(gpu, w, rows, cols, h, { grid: { kind: 'q4_0' } });
    expectGpuWork(gpu, got, cpu.values, { kind: 'q4_0' });
    expect(got.zeros.every((z) => z === 8)).toBe(true);
    const bytes = q4_0BlocksFromGpu(got, rows, cols);
    const blocks = bytes.length / 18;
    const differ = differingBlocks(bytes, cpu.bytes, 18).length;
    console.log(`${name} Q4_0: ${blocks - differ} of ${blocks} blocks identical to the CPU's`);
    expect(1 - differ / blocks).toBeGreaterThanOrEqual(0.99);
    const decoded = quantType('q4_0')!.reference.decode(bytes, rows, cols);
    expect(Array.from(decoded)).toEqual(Array.from(got.values));
  });

  it('chunks of rows under a forced 20000-byte binding limit give the same values as one chunk (blk.0.ffn_up: 172 rows of 64)', async () => {
    const { w, c, rows, cols } = layer('blk.0.ffn_up.weight');
    const h = hessian(c.x, c.n, cols);
    const grid: Grid = { kind: 'int', bits: 4, group: 32 };
    const whole = await gptqQuantizeGpu(gpu, w, rows, cols, h, { grid });
    const small = await gptqQuantizeGpu(restrictLimits(gpu, { maxStorageBufferBindingSize: 20000 }), w, rows, cols, h, { grid });
    expect(whole.stats.chunks).toBe(1);
    expect(small.stats.chunks).toBe(3);
    expect(Array.from(small.values)).toEqual(Array.from(whole.values));
    expect(Array.from(small.scales)).toEqual(Array.from(whole.scales));
  });

  it('several blocks with their lazy updates and a group spanning two blocks (block 16, groups of 12, 70 x 100) agree with the CPU', async () => {
    const rand = rng(11);
    const [rows, cols, n] = [70, 100, 300];
    const w = Float64Array.from({ length: rows * cols }, () => rand() * 2 - 1);
    const base = Float64Array.from({ length: n * 10 }, () => rand() * 2 - 1);
    const x = Float64Array.from({ length: n * cols }, (_, k) => base[Math.floor(k / cols) * 10 + (k % 10)] + 0.3 * (rand() - 0.5));
    const h = hessian(x, n, cols);
    const grid: Grid = { kind: 'int', bits: 4, group: 12 };
    const cpu = gptqQuantize(w, rows, cols, h, { grid, blockSize: 16 });
    const got = await gptqQuantizeGpu(gpu, w, rows, cols, h, { grid, blockSize: 16 });
    expectGpuWork(gpu, got, cpu, grid);
    expect(got.stats.dispatches).toBe(2 * Math.ceil(cols / 16) - 1);
    expect(sameGridPoints(got.values, cpu, got, grid, cols)).toBeGreaterThanOrEqual(0.99);
    expect(Array.from(got.values)).not.toEqual(Array.from(Float32Array.from(quantizeRtn(w, rows, cols, grid))));
  });

  it.each([
    [{ kind: 'int', bits: 4, group: 128 }],
    [{ kind: 'q4_0' }],
  ] as const)('GPTQ\'s own blocks of 128 with lazy updates across three of them (192 x 384, correlated inputs), %j: >= 99% the CPU\'s grid points, output MSE within 3%', async (grid: Grid) => {
    const [rows, cols, n] = [192, 384, 1024];
    const { w, x } = correlatedLayer(5, rows, cols, n);
    const h = hessian(x, n, cols);
    const cpu = gptqQuantize(w, rows, cols, h, { grid });
    const got = await gptqQuantizeGpu(gpu, w, rows, cols, h, { grid });
    expectGpuWork(gpu, got, cpu, grid);
    expect(got.stats.dispatches).toBe(5);
    const g = gram(x, n, cols);
    const [gpuMse, cpuMse, rtnMse] = [got.values, cpu, quantizeRtn(w, rows, cols, grid)].map((q) => outputMse(w, q, rows, cols, g, n));
    const agree = sameGridPoints(got.values, cpu, got, grid, cols);
    console.log(`synthetic 192 x 384 ${JSON.stringify(grid)}: same grid point ${(agree * 100).toFixed(3)}%, output MSE gpu ${gpuMse.toPrecision(5)} cpu ${cpuMse.toPrecision(5)} rtn ${rtnMse.toPrecision(5)}`);
    expect(agree).toBeGreaterThanOrEqual(0.99);
    expect(Math.abs(gpuMse - cpuMse) / cpuMse).toBeLessThan(0.03);
    expect(gpuMse).toBeLessThan(rtnMse);
  });

  it("into Q4_K (128 x 768: three super-blocks over six blocks, correlated inputs): ggml's super-block params on the GPU, >= 99% of gptqQ4_K's grid points, output MSE within 3%, below Q4_K's round-to-nearest; the blocks decode to the GPU's values", async () => {
    const [rows, cols, n] = [128, 768, 1024];
    const layer = correlatedLayer(7, rows, cols, n);
    const [w, x] = [Float32Array.from(layer.w), layer.x];
    const h = hessian(x, n, cols);
    const cpu = gptqQ4_K(w, rows, cols, h);
    const got = await gptqQuantizeGpu(gpu, w, rows, cols, h, { grid: { kind: 'q4_K' } });
    expect(got.stats.dispatches).toBe(11);
    expect(gpu.uncapturedErrors).toEqual([]);
    const bytes = q4KBlocksFromGpu(got, rows, cols);
    const q4K = quantType('q4_K')!;
    expect(Array.from(q4K.reference.decode(bytes, rows, cols))).toEqual(Array.from(got.values));
    const blocks = bytes.length / 144;
    const headers = blocks - differingBlocks(bytes, cpu.bytes, 144).length;
    const agree = sameGridPoints(got.values, cpu.values, got, { kind: 'q4_K' }, cols);
    const g = gram(x, n, cols);
    const rtn = q4K.reference.decode(q4K.reference.encode(w, cols), rows, cols);
    const [gpuMse, cpuMse, rtnMse] = [got.values, cpu.values, rtn].map((q) => outputMse(w, q, rows, cols, g, n));
    console.log(`synthetic 128 x 768 Q4_K: ${headers} of ${blocks} super-blocks the CPU's byte for byte, same grid point ${(agree * 100).toFixed(3)}%, output MSE gpu ${gpuMse.toPrecision(5)} cpu ${cpuMse.toPrecision(5)} rtn ${rtnMse.toPrecision(5)}`);
    // The first super-block's params come from the same values on both (no update yet): identical headers.
    for (let r = 0; r < rows; r++) expect(Array.from(bytes.subarray(r * 432, r * 432 + 16)), `row ${r}`).toEqual(Array.from(cpu.bytes.subarray(r * 432, r * 432 + 16)));
    expect(headers / blocks).toBeGreaterThanOrEqual(0.9);
    expect(agree).toBeGreaterThanOrEqual(0.99);
    expect(Math.abs(gpuMse - cpuMse) / cpuMse).toBeLessThan(0.03);
    expect(gpuMse).toBeLessThan(rtnMse);
  });

  it('the Hessian 2/N XᵀX on the GPU (upper triangle, mirrored) equals hessian() to f32 accuracy and the full sum bit for bit, in one chunk and in token chunks and row bands (blk.2.ffn_down: 172 columns)', async () => {
    const { c, cols } = layer('blk.2.ffn_down.weight');
    const want = hessian(c.x, c.n, cols);
    let scale = 0;
    for (const v of want) scale = Math.max(scale, Math.abs(v));
    for (const g of [gpu, restrictLimits(gpu, { maxStorageBufferBindingSize: 176 * 4 * 40 })]) {
      const got = await gptqHessianGpu(g, c.x, c.n, cols);
      let worst = 0;
      for (let k = 0; k < want.length; k++) worst = Math.max(worst, Math.abs(got[k] - want[k]));
      expect(worst / scale).toBeLessThan(1e-5);
      expect(got.some((v, k) => v !== want[k])).toBe(true); // summed in f32 on the GPU
      // Only the upper triangle is summed, then mirrored: bit for bit every tile's sums.
      expect(got).toEqual(await gptqHessianGpu(g, c.x, c.n, cols, { upperOnly: false }));
    }
    expect(gpu.uncapturedErrors).toEqual([]);
  });

  it('the engine\'s Calibration comparison (the app\'s, in its worker) runs GPTQ on WebGPU for every layer, and says so', async () => {
    const engine = new Engine(async () => gpu);
    await engine.load([await fileSource(join(FIXTURE_MODELS, 'stories260K.gguf'))]);
    const r = await engine.compareCalibration();
    expect(r.gptq).toEqual({ backend: 'webgpu', device: gpu.description, gpuLayers: 35, layers: 35, actOrder: false });
    expect(r.totals.gptq).toBeLessThan(r.totals.rtn);
    expect(gpu.uncapturedErrors).toEqual([]);
  }, 120_000);

  it('with act-order, GPTQ runs on the CPU (the GPU walk keeps GPTQ\'s order), and the result says so', async () => {
    const engine = new Engine(async () => gpu);
    await engine.load([await fileSource(join(FIXTURE_MODELS, 'stories260K.gguf'))]);
    const r = await engine.compareCalibration(undefined, { actOrder: true });
    expect(r.gptq).toEqual({ backend: 'cpu', device: undefined, gpuLayers: 0, layers: 35, actOrder: true });
    expect(r.totals.gptq).toBeLessThan(r.totals.rtn);
  }, 120_000);

  it('a device lost mid-comparison: GPTQ goes on on the CPU, and the result says how many layers the GPU did', async () => {
    const lost = await createTestGpu({ label: 'gptq-lost' });
    const engine = new Engine(async () => lost);
    await engine.load([await fileSource(join(FIXTURE_MODELS, 'stories260K.gguf'))]);
    let layersSeen = 0;
    const r = await engine.compareCalibration((p) => {
      if (p.label.startsWith('blk.') && ++layersSeen === 5) lost.device.destroy();
    });
    expect(r.gptq.backend).toBe('cpu');
    expect(r.gptq.layers).toBe(35);
    expect(r.gptq.gpuLayers).toBeGreaterThanOrEqual(5);
    expect(r.gptq.gpuLayers).toBeLessThan(35);
    expect(r.totals.gptq).toBeLessThan(r.totals.rtn);
  }, 120_000);
});
