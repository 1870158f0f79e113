// npm run bench [-- --size 4096x1024] [--types q4_0,q8_0,...] [--cpu-values N] [--wall] [--no-subgroups] [--timeout S] [--no-gpu] [--ggml]
//                 [--tokens N] [--prefill-rows N] [--no-kernels] [--forward small|full|off]
//                 [--gpu-eval on|off] [--gpu-eval-model FILE|synthetic] [--gpu-eval-preset NAME]
//
// Per type: CPU reference codec encode / decode MB/s (single thread) next to a plain
// Float32Array copy; GPU quantize, dequantize and matvec throughput next to a
// copyBufferToBuffer of the tensor's f32 bytes, timed the same way on the same device in
// the same run (the memory bound), as GB/s and % of that bound. Types without a WGSL
// codec show '—' in the GPU columns. Timing: timestamp queries when the device has them
// (else, or with --wall, wall time around submit + onSubmittedWorkDone); warm-up runs are
// never counted. Then, for the types with a cooperative matvec (src/gpu/matmul.ts
// COOP_CODECS) among --types, the kernels side by side (bench/gpu-kernels.ts): matvec GB/s
// and % of the copy rate, prefill GFLOP/s (--tokens tokens, at most --prefill-rows rows),
// new kernels over the current generic one as ratios, same device and run. Then eval on the
// GPU (bench/gpu-eval.ts): tokens/s of the resident forward pass against the per-product
// path (its fallback), scoring 64 positions in chunks of 64 and decoding 16 one at a time,
// with submits/readbacks per pass; default model stories260K under Q4_0 (--gpu-eval-model
// synthetic: a seeded 2-layer Llama with rows of 256, for Q4_K_M). Last, the CPU
// forward pass against llama.cpp's (bench/forward.ts, 32 tokens, one thread, both in this run):
// --forward small (default, a 4-layer Qwen2.5-0.5B-wide model, ~20 s), full (the 0.5B shape:
// a 1.84 GiB GGUF written and deleted, a few minutes) or off.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WebGpuUnavailableError, type GpuContext } from '../src/gpu/device.ts';
import { createNodeGpu } from '../src/gpu/node-gpu.ts';
import { SWIFTSHADER_ICD } from '../src/gpu/swiftshader.ts';
import { QUANT_TYPES, quantType, bitsPerWeight, type QuantType } from '../src/quant/types.ts';
import { loadFastCodecs } from '../src/quant/fast/node.ts';
import { benchCpu, type CpuResult, type GgmlQuantize } from './cpu.ts';
import { benchGpu, GpuStuckError, packedWeights, type GpuResult } from './gpu.ts';
import { benchKernels, type KernelsResult } from './gpu-kernels.ts';
import { benchGpuEval, DEFAULT_EVAL_MODEL } from './gpu-eval.ts';
import { coopSupportsType } from '../src/gpu/matmul.ts';
import { createGpuTimer } from './timing.ts';
import { gaussians } from '../src/testing/random.ts';


interface Args {
  rows: number;
  cols: number;
  types: QuantType[];
  cpuValues: number;
  wall: boolean;
  subgroups: boolean;
  /** Seconds one GPU measurement may take. */
  timeout: number;
  /** CPU columns only. */
  noGpu: boolean;
  /** A column of llama.cpp's own quantizer (the node-llama-cpp peer, a dev dependency). */
  ggml: boolean;
  /** Kernel comparison: prefill tokens, most prefill rows, off. */
  tokens: number;
  prefillRows: number;
  noKernels: boolean;
  /** The forward-pass comparison with llama.cpp: the reduced shape, the 0.5B shape, or none. */
  forward: 'small' | 'full' | 'off';
  /** Eval on the GPU, resident against per product (bench/gpu-eval.ts): on/off, model file, preset. */
  gpuEval: boolean;
  gpuEvalModel: string;
  gpuEvalPreset: string;
}

function usage(msg?: string): never {
  if (msg) console.error(`bench: ${msg}`);
  console.error('usage: npm run bench -- [--size ROWSxCOLS] [--types id,id,...] [--cpu-values N] [--wall] [--no-subgroups] [--timeout S] [--no-gpu] [--ggml] [--tokens N] [--prefill-rows N] [--no-kernels] [--forward small|full|off] [--gpu-eval on|off] [--gpu-eval-model FILE|synthetic] [--gpu-eval-preset NAME]');
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { rows: 4096, cols: 1024, types: [...QUANT_TYPES], cpuValues: 1 << 18, wall: false, subgroups: true, timeout: 60, noGpu: false, ggml: false, tokens: 64, prefillRows: 1024, noKernels: false, forward: 'small', gpuEval: true, gpuEvalModel: DEFAULT_EVAL_MODEL, gpuEvalPreset: 'Q4_0' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => argv[++i] ?? usage(`${arg} needs a value`);
    if (arg === '--size') {
      const m = /^(\d+)x(\d+)$/.exec(value());
      if (!m) usage('--size is ROWSxCOLS, e.g. 4096x1024');
      [a.rows, a.cols] = [Number(m[1]), Number(m[2])];
    } else if (arg === '--types') {
      a.types = value().split(',').map((id) => quantType(id.trim()) ?? usage(`unknown type ${id}`));
    } else if (arg === '--cpu-values') {
      a.cpuValues = Number(value());
    } else if (arg === '--wall') {
      a.wall = true;
    } else if (arg === '--timeout') {
      a.timeout = Number(value());
    } else if (arg === '--ggml') {
      a.ggml = true;
    } else if (arg === '--no-gpu') {
      a.noGpu = true;
    } else if (arg === '--tokens') {
      a.tokens = Number(value());
    } else if (arg === '--prefill-rows') {
      a.prefillRows = Number(value());
    } else if (arg === '--forward') {
      const v = value();
      if (v !== 'small' && v !== 'full' && v !== 'off') usage(`--forward is small, full or off, not '${v}'`);
      a.forward = v;
    } else if (arg === '--gpu-eval') {
      const v = value();
      if (v !== 'on' && v !== 'off') usage(`--gpu-eval is on or off, not '${v}'`);
      a.gpuEval = v === 'on';
    } else if (arg === '--gpu-eval-model') {
      a.gpuEvalModel = value();
    } else if (arg === '--gpu-eval-preset') {
      a.gpuEvalPreset = value();
    } else if (arg === '--no-kernels') {
      a.noKernels = true;
    } else if (arg === '--no-subgroups') {
      a.subgroups = false;
    } else if (arg === '--help' || arg === '-h') {
      usage();
    } else {
      usage(`unknown argument ${arg}`);
    }
  }
  if (a.rows < 1 || a.cols < 1) usage('--size must be positive');
  if (!(a.tokens >= 2) || !(a.prefillRows >= 1)) usage('--tokens must be at least 2, --prefill-rows at least 1');
  return a;
}


/** A GPU, re-running this process on SwiftShader when Dawn finds no adapter and none was named. */
async function openGpu(): Promise<GpuContext | undefined> {
  try {
    return await createNodeGpu({ label: 'bench' });
  } catch (err) {
    if (!(err instanceof WebGpuUnavailableError)) throw err;
    if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) {
      console.error(`bench: no GPU adapter; running again on SwiftShader (VK_ICD_FILENAMES=${SWIFTSHADER_ICD})`);
      const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
        stdio: 'inherit',
        env: { ...process.env, VK_ICD_FILENAMES: SWIFTSHADER_ICD },
      });
      process.exit(r.status ?? 1);
    }
    console.error(`bench: ${(err as Error).message}: GPU columns stay empty`);
    return undefined;
  }
}

const DASH = '—';
const fmt = (x: number | undefined, digits = 1) =>
  x === undefined ? DASH : x >= 100 ? x.toFixed(0) : x >= 1 || x === 0 ? x.toFixed(digits) : x.toPrecision(2);
const pct = (x: number | undefined) => (x === undefined ? DASH : `${x >= 0.1 ? (x * 100).toFixed(0) : (x * 100).toPrecision(2)}%`);

function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
}

/** The kernels side by side: the coop types among --types (bench/gpu-kernels.ts). */
async function kernelsTable(gpu: GpuContext, timer: ReturnType<typeof createGpuTimer>, args: Args, values: Float32Array, copyGBs: ReadonlyMap<string, number>) {
  const { rows, cols, tokens } = args;
  const types = args.types.filter((t) => coopSupportsType(t) && cols % t.blockSize === 0);
  if (!types.length) return;
  const x = gaussians(cols * tokens, 99);
  console.log(`\nkernels, new over current (generic), same device and run: matvec W ${rows} x ${cols}; prefill ${tokens} tokens x ${Math.min(rows, args.prefillRows)} rows`);
  const widths = [14, 8, 15, 15, 8, 10, 10, 8, 0];
  console.log(row(['type', 'gpu copy', 'matvec generic', 'matvec coop', 'coop/', 'prefill', 'prefill', 'tiled/', ''], widths));
  console.log(row(['', 'GB/s', 'GB/s (%)', 'GB/s (%)', 'generic', 'generic', 'tiled', 'generic', ''], widths));
  console.log(row(['', '', '', '', '', 'GFLOP/s', 'GFLOP/s', '', ''], widths));
  const notes: string[] = [];
  for (const type of types) {
    let r: KernelsResult;
    try {
      const packed = packedWeights(type, values, rows, cols);
      r = await benchKernels(gpu, timer, type, packed, x, rows, cols, { tokens, maxPrefillRows: args.prefillRows, timeoutSeconds: args.timeout, subgroups: args.subgroups });
    } catch (err) {
      notes.push(`${type.id}: ${(err as Error).message.split('\n')[0]}`);
      continue;
    }
    const copy = copyGBs.get(type.id);
    const get = (list: KernelsResult['matvec'], k: string) => list.find((e) => e.kernel === k);
    const [mg, mc] = [get(r.matvec, 'generic'), get(r.matvec, 'coop')];
    const [pg, pt] = [get(r.prefill, 'generic'), get(r.prefill, 'tiled')];
    const gbs = (e?: { rate: number }) => (e ? `${fmt(e.rate, 2)} (${pct(copy ? e.rate / copy : undefined)})` : DASH);
    const ratio = (a?: { seconds: number }, b?: { seconds: number }) => (a && b ? `${(b.seconds / a.seconds).toFixed(2)}x` : DASH);
    console.log(row([type.id, fmt(copy, 2), gbs(mg), gbs(mc), ratio(mc, mg), fmt(pg?.rate, 2), fmt(pt?.rate, 2), ratio(pt, pg), ''], widths));
    for (const e of [...r.matvec, ...r.prefill]) notes.push(`${type.id} ${e.kernel} ${e === mg || e === mc ? 'matvec' : 'prefill'}: ${e.config}`);
    notes.push(...r.notes);
  }
  if (notes.length) console.log(`\n${notes.join('\n')}`);
}

/** Eval tokens/s on the GPU: the resident forward pass against the per-product path (bench/gpu-eval.ts). */
async function gpuEvalTable(gpu: GpuContext, args: Args) {
  const t0 = performance.now();
  let r: Awaited<ReturnType<typeof benchGpuEval>>;
  try {
    r = await benchGpuEval(gpu, { model: args.gpuEvalModel, preset: args.gpuEvalPreset, tokens: 64, chunk: 64, decodeTokens: 16, reps: 3 });
  } catch (err) {
    console.log(`\neval on the GPU: ${(err as Error).message.split('\n')[0]}`);
    return;
  }
  console.log(`\neval on the GPU, resident forward over per product (its fallback), same device and run: ${r.model} (${r.shape}) under ${r.preset}`);
  console.log(`GPU: ${gpu.description}; tokens/s = positions / wall s (median of 3, warm-up not counted); per pass: submits / readbacks / KiB read back`);
  const widths = [8, 10, 6, 11, 14, 11, 14, 9, 0];
  console.log(row(['', 'positions', 'chunk', 'resident', 'resident', 'per-product', 'per-product', 'resident/', ''], widths));
  console.log(row(['', '', '', 'tokens/s', 'per pass', 'tokens/s', 'per pass', 'per-prod.', ''], widths));
  const counts = (c: { submits: number; readbacks: number; bytesReadBack: number }) => `${fmt(c.submits)}/${fmt(c.readbacks)}/${fmt(c.bytesReadBack / 1024)}`;
  for (const e of r.rows) {
    console.log(row([e.mode, String(e.positions), String(e.chunk), fmt(e.resident.tokensPerSecond), counts(e.resident.perPass), fmt(e.perProduct.tokensPerSecond), counts(e.perProduct.perPass), `${(e.resident.tokensPerSecond / e.perProduct.tokensPerSecond).toFixed(2)}x`, ''], widths));
  }
  console.log(`(${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}

/** bench/forward.ts in a process of its own: quantlab's CPU forward pass and llama.cpp's, 32 tokens, one thread. */
function forwardComparison(shape: 'small' | 'full'): void {
  console.log(`\nCPU forward pass against llama.cpp (bench/forward.ts${shape === 'small' ? ' --small: 4 layers, vocabulary 32,000' : ': the Qwen2.5-0.5B shape'}):`);
  const script = fileURLToPath(new URL('./forward.ts', import.meta.url));
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, '--tokens', '32', '--no-cli', ...(shape === 'small' ? ['--small'] : [])], { stdio: 'inherit' });
  if (r.status !== 0) console.log(`bench/forward.ts exited with ${r.status ?? r.signal}`);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const { rows, cols } = args;
  const fast = await loadFastCodecs((message) => console.error(`bench: ${message}`));
  const gpu = args.noGpu ? undefined : await openGpu();
  const ggml: GgmlQuantize | undefined = args.ggml ? (await import('../src/testing/llama-peer.ts')).ggmlQuantizeChunk : undefined;
  const timer = gpu ? createGpuTimer(gpu, args.wall) : undefined;
  const values = gaussians(rows * cols, 1234, 0.02); // std 0.02, like a trained layer
  const cpuRows = Math.max(1, Math.min(rows, Math.floor(args.cpuValues / cols)));
  const cpuValues = values.subarray(0, cpuRows * cols);

  console.log(`quantlab bench: W ${rows} x ${cols} f32 (${((rows * cols * 4) / 2 ** 20).toFixed(0)} MiB); CPU codecs on ${cpuRows} x ${cols}, single thread`);
  console.log(`cpu enc/dec: the codec the engine runs (${fast ? 'WebAssembly fast path where a type has one' : 'fast path off: reference'}); ref enc: the TypeScript reference, when different`);
  if (ggml) console.log('ggml enc: llama.cpp\'s ggml_quantize_chunk (node-llama-cpp\'s libggml-base), single thread, same values');
  console.log(gpu ? `GPU: ${gpu.description}; timing: ${timer!.method}; features: ${[...gpu.features].join(', ') || 'none'}` : 'GPU: none');
  console.log('GB/s = bytes read + written per second (copy: 2 x f32; quantize: f32 in + blocks out; dequantize: blocks in + f32 out;');
  console.log('matvec: blocks + x in, y out); % = of the copyBufferToBuffer rate measured just before, same device.\n');
  const widths = [14, 5, 8, 8, 8, 8, 8, 8, 15, 15, 15, 8, 0];
  console.log(row(['type', 'bpw', 'cpu enc', 'ref enc', 'ggml enc', 'cpu dec', 'cpu copy', 'gpu copy', 'quantize', 'dequantize', 'matvec', 'matvec', ''], widths));
  console.log(row(['', '', 'MB/s', 'MB/s', 'MB/s', 'MB/s', 'MB/s', 'GB/s', 'GB/s (%)', 'GB/s (%)', 'GB/s (%)', 'GFLOP/s', ''], widths));

  const t0 = performance.now();
  const notes: string[] = [];
  const copyGBs = new Map<string, number>();
  let errorsSeen = gpu?.uncapturedErrors.length ?? 0;
  let gpuStuck = false;
  for (const type of args.types) {
    if (cols % type.blockSize !== 0) {
      console.log(row([type.id, DASH, `row length ${cols} is not a multiple of ${type.blockSize}`], [9, 5, 0]));
      continue;
    }
    let cpu: CpuResult | undefined;
    let gpuRes: GpuResult | undefined;
    try {
      cpu = benchCpu(type, cpuValues, cols, ggml);
    } catch (err) {
      notes.push(`${type.id}: CPU codec failed: ${(err as Error).message}`);
    }
    if (gpu && timer && !gpuStuck) {
      try {
        gpuRes = await benchGpu(gpu, timer, type, values, cols, { subgroups: args.subgroups, timeoutSeconds: args.timeout });
        copyGBs.set(type.id, gpuRes.copyGBs);
        if (gpuRes.skipped) notes.push(`${type.id}: ${gpuRes.skipped}`);
        else if (gpuRes.matvec) notes.push(`${type.id}: matvec ${gpuRes.matvec.config}`);
      } catch (err) {
        notes.push(`${type.id}: GPU failed: ${(err as Error).message.split('\n')[0]}`);
        if (err instanceof GpuStuckError) gpuStuck = true;
      }
      const errors = gpu.uncapturedErrors.slice(errorsSeen);
      errorsSeen = gpu.uncapturedErrors.length;
      if (errors.length) notes.push(`${type.id}: WebGPU errors: ${errors.join('; ')}`);
    }
    const rate = (r?: { gbs: number; ofCopy: number; share: number }) => (r ? `${fmt(r.gbs, 2)} (${pct(r.ofCopy)})${r.share < 1 ? '*' : ''}` : DASH);
    const partial = (['quantize', 'dequantize', 'matvec'] as const).filter((k) => gpuRes?.[k] && gpuRes[k]!.share < 1);
    if (partial.length) notes.push(`${type.id}: * timed on a share of the tensor: ${partial.map((k) => `${k} ${(gpuRes![k]!.share * 100).toPrecision(2)}%`).join(', ')}`);
    console.log(
      row(
        [
          type.id,
          bitsPerWeight(type, cols).toFixed(2),
          fmt(cpu?.encodeMBs),
          fmt(cpu?.referenceEncodeMBs),
          fmt(cpu?.ggmlEncodeMBs),
          fmt(cpu?.decodeMBs),
          fmt(cpu?.copyMBs, 0),
          fmt(gpuRes?.copyGBs, 2),
          rate(gpuRes?.quantize),
          rate(gpuRes?.dequantize),
          rate(gpuRes?.matvec),
          fmt(gpuRes?.matvec?.gflops, 2),
          '',
        ],
        widths,
      ),
    );
  }
  if (notes.length) console.log(`\n${notes.join('\n')}`);
  if (gpu && timer && !gpuStuck && !args.noKernels) await kernelsTable(gpu, timer, args, values, copyGBs);
  if (gpu && !gpuStuck && args.gpuEval) await gpuEvalTable(gpu, args);
  console.log(`\n${((performance.now() - t0) / 1000).toFixed(1)} s`);
  if (args.forward !== 'off') forwardComparison(args.forward);
  if (!gpuStuck) {
    timer?.destroy();
    gpu?.destroy();
  }
}

await main();
// A kernel that never finished keeps Dawn's threads busy: leave without waiting for them.
process.exit(0);
