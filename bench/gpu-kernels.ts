// The matrix product kernels side by side (src/gpu/matmul.ts): the current ('generic')
// kernel against the cooperative matvec and the tiled prefill matmul, same device, same
// run, same resident buffers, timed like the rest of the bench (bench/timing.ts).
//   matvec:  GB/s of packed W + x read + y written, and % of the copyBufferToBuffer rate;
//   prefill: GFLOP/s (2 * rows * cols * tokens per product).
// A kernel that cannot run for the type (no coop lanes, tile too big) shows as absent.
import type { GpuContext } from '../src/gpu/device.ts';
import {
  matmulConfig,
  matmulDispatch,
  matmulParams,
  matmulPipeline,
  matmulWeightBufferBytes,
  MATMUL_PARAMS_BYTES,
  type MatmulConfig,
  type MatmulKernel,
} from '../src/gpu/matmul.ts';
import type { QuantType } from '../src/quant/types.ts';
import type { GpuTimer } from './timing.ts';

export interface KernelRate {
  kernel: MatmulKernel;
  seconds: number;
  /** matvec: GB/s moved; prefill: GFLOP/s. */
  rate: number;
  config: string;
}

export interface KernelsResult {
  /** Tokens of the prefill product and its rows (a leading share of W's, to bound the time). */
  tokens: number;
  prefillRows: number;
  matvec: KernelRate[];
  prefill: KernelRate[];
  notes: string[];
}

export interface BenchKernelsOptions {
  tokens: number;
  /** Most rows the prefill product takes (software adapters: seconds per product). */
  maxPrefillRows: number;
  timeoutSeconds: number;
  subgroups: boolean;
}

function describe(c: MatmulConfig): string {
  const base = `wg ${c.wgSize}, ${c.rowsPerWg} rows x ${c.tokensPerWg} tokens`;
  if (c.kernel === 'tiled') return `${base}, step ${c.stepBlocks} blocks, ${c.regRows}x${c.regTokens} per invocation`;
  return `${base}${c.subgroups ? ', subgroups' : ''}`;
}

function withTimeout<T>(p: Promise<T>, seconds: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${seconds} s`)), seconds * 1000);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Time each kernel on W = `packed` (rows x cols of `type`): the matvec (1 token) with the
 * generic and coop kernels, the prefill (options.tokens tokens) with the generic and tiled
 * kernels. Outputs are not compared here (the tests do that).
 */
export async function benchKernels(
  gpu: GpuContext,
  timer: GpuTimer,
  type: QuantType,
  packed: Uint8Array,
  x: Float32Array,
  rows: number,
  cols: number,
  options: BenchKernelsOptions,
): Promise<KernelsResult> {
  const { device, limits } = gpu;
  const rowBytes = (cols / type.blockSize) * type.typeSize;
  const prefillRows = Math.min(rows, options.maxPrefillRows);
  const tokens = options.tokens;
  const result: KernelsResult = { tokens, prefillRows, matvec: [], prefill: [], notes: [] };
  const buffers: GPUBuffer[] = [];
  const buffer = (label: string, size: number, usage: number) => {
    const b = device.createBuffer({ label: `bench.kernels.${type.id}.${label}`, size: Math.ceil(size / 4) * 4, usage });
    buffers.push(b);
    return b;
  };
  const S = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
  try {
    const wBuf = buffer('w', matmulWeightBufferBytes(rowBytes, rows), S);
    const padded = new Uint8Array(Math.ceil(packed.length / 4) * 4);
    padded.set(packed);
    device.queue.writeBuffer(wBuf, 0, padded);
    const xBuf = buffer('x', cols * tokens * 4, S);
    device.queue.writeBuffer(xBuf, 0, x as Float32Array<ArrayBuffer>, 0, cols * tokens);
    const yBuf = buffer('y', rows * tokens * 4, GPUBufferUsage.STORAGE);
    const run = async (n: number, r: number, kernel: MatmulKernel): Promise<KernelRate | undefined> => {
      let config: MatmulConfig;
      try {
        config = matmulConfig(gpu, type, cols, n, { kernel, subgroups: options.subgroups });
      } catch (err) {
        result.notes.push(`${type.id} ${kernel}: ${(err as Error).message}`);
        return undefined;
      }
      const [wx, wy] = matmulDispatch(config, r, n);
      if (wx > limits.maxComputeWorkgroupsPerDimension || wy > limits.maxComputeWorkgroupsPerDimension) {
        result.notes.push(`${type.id} ${kernel}: ${wx} x ${wy} workgroups exceed the dispatch limit`);
        return undefined;
      }
      const params = buffer(`${kernel}.${n}.params`, MATMUL_PARAMS_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      device.queue.writeBuffer(params, 0, matmulParams(type, r, cols, n));
      const t0 = performance.now();
      const pipeline = await withTimeout(matmulPipeline(device, type, config), options.timeoutSeconds, `${type.id} ${kernel} compile`);
      const compileSeconds = (performance.now() - t0) / 1000;
      const bindGroup = device.createBindGroup({
        label: `bench.kernels.${type.id}.${kernel}.bindgroup`,
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: wBuf } },
          { binding: 1, resource: { buffer: xBuf, size: cols * n * 4 } },
          { binding: 2, resource: { buffer: yBuf, size: r * n * 4 } },
          { binding: 3, resource: { buffer: params } },
        ],
      });
      const seconds = await withTimeout(
        timer.time(`kernels.${type.id}.${kernel}.${n}`, (enc, reps) => {
          const pass = enc.beginComputePass({ label: `bench.kernels.${type.id}.${kernel}.pass` });
          pass.setPipeline(pipeline);
          pass.setBindGroup(0, bindGroup);
          if (reps === 0) pass.dispatchWorkgroups(1, 1); // warm-up
          for (let i = 0; i < reps; i++) pass.dispatchWorkgroups(wx, wy);
          pass.end();
        }),
        options.timeoutSeconds,
        `${type.id} ${kernel} n=${n}`,
      );
      const rate = n === 1 ? (r * rowBytes + cols * 4 + r * 4) / seconds / 1e9 : (2 * r * cols * n) / seconds / 1e9;
      return { kernel, seconds, rate, config: `${describe(config)}; compile ${compileSeconds.toFixed(1)} s` };
    };
    for (const kernel of ['generic', 'coop'] as const) {
      const r = await run(1, rows, kernel);
      if (r) result.matvec.push(r);
    }
    for (const kernel of ['generic', 'tiled'] as const) {
      const r = await run(tokens, prefillRows, kernel);
      if (r) result.prefill.push(r);
    }
    return result;
  } finally {
    for (const b of buffers) b.destroy();
  }
}
