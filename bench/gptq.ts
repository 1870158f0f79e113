// npx tsx bench/gptq.ts [--size 1024x1024] [--tokens 2048] [--grid int4_g128|int4_g32|q4_0|q4_K] [--repeat 2]
//
// GPTQ on the CPU (calibrate/gptq.ts, f64, single thread) against GPTQ on WebGPU
// (calibrate/gptq-gpu.ts, f32) on one synthetic layer: W ~ N(0, 0.02²), inputs X with a
// low-rank correlated part (so the Hessian is not diagonal and error feedback matters).
// Times: the Hessian sum 2/N XᵀX (CPU hessian vs GPU gptqHessianGpu; on the GPU also its
// upper triangle, as it runs, against every tile, the former kernel), the Hessian prep
// both share (damping, Cholesky, inverse: f64 on the CPU), and GPTQ's column walk (CPU:
// gptqQuantize less that prep; GPU: gptqColumnsGpu, uploads and read-back included; on the
// GPU also the subgroup-per-row walk, where the device has subgroups, against the
// invocation-per-row one), as
// GPU / CPU ratios, each the best of --repeat runs;
// then how often the two chose the same grid point and each one's layer output MSE on X
// next to round-to-nearest's. Pipelines are compiled in a warm-up run that is not timed.
// Without a hardware adapter this runs on SwiftShader (a CPU): then the GPU may be slower.
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { createNodeGpu } from '../src/gpu/node-gpu.ts';
import { SWIFTSHADER_ICD } from '../src/gpu/swiftshader.ts';
import { gptqQ4_K, gptqQuantize, hessian, prepareHessian } from '../src/calibrate/gptq.ts';
import { gptqColumnsGpu, gptqHessianGpu, gptqQuantizeGpu, sameGridPoints, type GpuGrid } from '../src/calibrate/gptq-gpu.ts';
import { gram, gridLabel, outputMse, quantizeRtn } from '../src/calibrate/grid.ts';
import { quantType } from '../src/quant/types.ts';
import { gaussians } from '../src/testing/random.ts';

process.env.VK_ICD_FILENAMES ??= SWIFTSHADER_ICD;
const { values: args } = parseArgs({
  options: {
    size: { type: 'string', default: '1024x1024' },
    tokens: { type: 'string', default: '2048' },
    grid: { type: 'string', default: 'int4_g128' },
    repeat: { type: 'string', default: '2' },
  },
});
const [rows, cols] = /^(\d+)x(\d+)$/.exec(args.size!)!.slice(1).map(Number);
const n = Number(args.tokens);
const grid: GpuGrid = args.grid === 'q4_0' || args.grid === 'q4_K'
  ? { kind: args.grid }
  : { kind: 'int', bits: Number(/^int(\d)_g(\d+)$/.exec(args.grid!)![1]), group: Number(/_g(\d+)$/.exec(args.grid!)![1]) };
const q4K = quantType('q4_K')!.reference;
/** The CPU reference of the grid (f64), and its round-to-nearest. */
const cpuGptq = (h: Float64Array) => (grid.kind === 'q4_K' ? gptqQ4_K(w, rows, cols, h).values : gptqQuantize(w, rows, cols, h, { grid }));
const rtn = () => (grid.kind === 'q4_K' ? q4K.decode(q4K.encode(w, cols), rows, cols) : quantizeRtn(w, rows, cols, grid));

const repeat = Number(args.repeat);
/** The best of `repeat` runs' seconds of fn() (a shared machine only ever slows a run down), and its value. */
async function timed<T>(fn: () => T | Promise<T>): Promise<[T, number]> {
  let best = Infinity;
  let v: T | undefined;
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    v = await fn();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return [v as T, best];
}

const w = gaussians(rows * cols, 1, 0.02);
const rank = 16;
const basis = gaussians(rank * cols, 2, 1);
const coef = gaussians(n * rank, 3, 1);
const noise = gaussians(n * cols, 4, 0.3);
const x = new Float32Array(n * cols);
for (let t = 0; t < n; t++) for (let c = 0; c < cols; c++) {
  let s = noise[t * cols + c];
  for (let k = 0; k < rank; k++) s += coef[t * rank + k] * basis[k * cols + c];
  x[t * cols + c] = s;
}

const gpu = await createNodeGpu({ label: 'bench-gptq' });
// CPU columns = gptqQuantize − prep, two separate timings: on a loaded machine the
// difference is noisy, so the load average is printed before and after.
console.log(`GPTQ bench: W ${rows} x ${cols}, X ${n} tokens, grid ${grid.kind === 'q4_K' ? 'Q4_K' : gridLabel(grid)}; GPU: ${gpu.description}; load average ${loadavg()[0].toFixed(1)}`);
// Warm-up: compile the pipelines.
await gptqHessianGpu(gpu, x.subarray(0, 8 * cols), 8, cols);
await gptqQuantizeGpu(gpu, w.subarray(0, 4 * cols), 4, cols, hessian(x.subarray(0, 64 * cols), 64, cols), { grid });

const [hCpu, hessCpuS] = await timed(() => hessian(x, n, cols));
const [hGpu, hessGpuS] = await timed(() => gptqHessianGpu(gpu, x, n, cols));
// The former kernel, every tile of XᵀX (the current one sums the upper triangle and mirrors it).
await gptqHessianGpu(gpu, x.subarray(0, 8 * cols), 8, cols, { upperOnly: false });
const [hFull, hessFullS] = await timed(() => gptqHessianGpu(gpu, x, n, cols, { upperOnly: false }));
const [prepared, prepS] = await timed(() => prepareHessian(hCpu, cols));
const [cpu, cpuS] = await timed(() => cpuGptq(hCpu));
const [got, columnsGpuS] = await timed(() => gptqColumnsGpu(gpu, w, rows, cols, prepared, { grid }));
// Both column walks (gptqWalk picks one by the adapter): a subgroup per row where the device has subgroups, an invocation per row.
await gptqQuantizeGpu(gpu, w.subarray(0, 4 * cols), 4, cols, hessian(x.subarray(0, 64 * cols), 64, cols), { grid, subgroups: true });
const [gotSg, columnsSgS] = await timed(() => gptqColumnsGpu(gpu, w, rows, cols, prepared, { grid, subgroups: true }));
const [gotRow, columnsRowS] = await timed(() => gptqColumnsGpu(gpu, w, rows, cols, prepared, { grid, subgroups: false }));
const gpuS = prepS + columnsGpuS;
const fromGpuH = await gptqQuantizeGpu(gpu, w, rows, cols, hGpu, { grid });

const g = gram(x, n, cols);
const mse = (q: ArrayLike<number>) => outputMse(w, q, rows, cols, g, n);
const f = (s: number) => `${s.toFixed(3)} s`;
console.log(`Hessian 2/N XᵀX:   cpu ${f(hessCpuS)}  gpu ${f(hessGpuS)}  gpu/cpu ${(hessGpuS / hessCpuS).toFixed(2)}`);
console.log(`Hessian on the GPU: upper triangle ${f(hessGpuS)}  every tile (former kernel) ${f(hessFullS)}  upper/full ${(hessGpuS / hessFullS).toFixed(2)}  (${hGpu.every((v, i) => v === hFull[i]) ? 'the same values' : 'VALUES DIFFER'})`);
console.log(`Hessian prep (CPU f64, in both): ${f(prepS)}`);
console.log(`GPTQ columns:      cpu ${f(cpuS - prepS)}  gpu ${f(columnsGpuS)}  gpu/cpu ${(columnsGpuS / (cpuS - prepS)).toFixed(2)}  (${got.stats.dispatches} dispatches, ${got.stats.chunks} chunk(s))`);
console.log(`GPU column walk:   ${gotSg.stats.walk} ${f(columnsSgS)}  row ${f(columnsRowS)}  ${gotSg.stats.walk}/row ${(columnsSgS / columnsRowS).toFixed(2)}  (${gotSg.values.every((v, i) => v === gotRow.values[i]) ? 'the same values' : 'VALUES DIFFER'}; this adapter's default: ${got.stats.walk})`);
console.log(`GPTQ with prep:    cpu ${f(cpuS)}  gpu ${f(gpuS)}  gpu/cpu ${(gpuS / cpuS).toFixed(2)}`);
console.log(`same grid point as the CPU: ${(sameGridPoints(got.values, cpu, got, grid, cols) * 100).toFixed(3)}% (GPU Hessian too: ${(sameGridPoints(fromGpuH.values, cpu, fromGpuH, grid, cols) * 100).toFixed(3)}%)`);
console.log(`layer output MSE on X: cpu ${mse(cpu).toPrecision(5)}  gpu ${mse(got.values).toPrecision(5)}  gpu with GPU Hessian ${mse(fromGpuH.values).toPrecision(5)}  rtn ${mse(rtn()).toPrecision(5)}`);
console.log(`load average ${loadavg()[0].toFixed(1)}`);
if (gpu.uncapturedErrors.length) console.log(`WebGPU errors: ${gpu.uncapturedErrors.join('; ')}`);
gpu.destroy();
process.exit(0);
