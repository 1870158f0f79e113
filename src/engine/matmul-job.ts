// The quantized-matmul check: y = W x with W packed in each type, on the GPU's quantized
// kernels (the CPU reference otherwise). For each type: the error the quantization puts
// into the product (against the f32 product), whether the kernel computed exactly what the
// blocks hold (against the CPU product of the decoded weights), the time and bandwidth.
import type { GpuContext } from '../gpu/device.ts';
import { gpuMatmulSupportsType, matvecOnGpu } from '../gpu/matmul.ts';
import { quantizeOnGpu } from '../gpu/quantize.ts';
import { dequantizedProduct, matvecF32, productError, relativeError, type ProductError } from '../quant/matmul.ts';
import { quantType, whyNotApplicable, type QuantType } from '../quant/types.ts';
import type { Backend } from './types.ts';

/** Timed repetitions of each product; the best is reported (the first warms caches and pipelines). */
const TIMED_RUNS = 5;

export type MatmulInput = { kind: 'random'; seed: number } | { kind: 'tensor'; tensor: string; row: number };

export interface MatmulRequest {
  tensor: string;
  types: string[];
  input: MatmulInput;
}

export interface MatmulTypeResult {
  type: string;
  backend: Backend;
  /** W_q x against W x (f32 W, same backend). */
  error: ProductError | null;
  /** ||y_kernel - y_cpu(decoded W)|| / ||y_cpu||: the kernel reads the blocks right (≈ f32 rounding). */
  kernelRelError: number | null;
  /** Best time of one product, in ms. */
  ms: number;
  /** Bytes of packed W read per millisecond, as GB/s. */
  gbps: number;
  bytes: number;
  skipped?: string;
}

export interface MatmulResult {
  tensor: string;
  rows: number;
  cols: number;
  input: string;
  results: MatmulTypeResult[];
}

/** A deterministic standard-normal vector (xorshift32 + Box–Muller), so runs compare. */
export function randomVector(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  const x = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(next())), a = 2 * Math.PI * next();
    x[i] = r * Math.cos(a);
    if (i + 1 < n) x[i + 1] = r * Math.sin(a);
  }
  return x;
}

async function best<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  let value = await run();
  let ms = Infinity;
  for (let i = 0; i < TIMED_RUNS; i++) {
    const t0 = performance.now();
    value = await run();
    ms = Math.min(ms, performance.now() - t0);
  }
  return { value, ms };
}

export async function runMatmulCheck(
  w: Float32Array,
  rows: number,
  cols: number,
  x: Float32Array,
  types: readonly string[],
  gpu: GpuContext | null,
  onStep?: (type: string) => void,
): Promise<MatmulTypeResult[]> {
  const f32 = quantType('f32')!;
  // A lost device throws GpuDeviceLostError here: the caller's session reruns the check on the CPU (jobs/matmul.ts).
  const useGpu = gpu !== null;
  const wBytes = new Uint8Array(w.buffer, w.byteOffset, w.byteLength);
  const yRef = useGpu ? await matvecOnGpu(gpu, f32, wBytes, rows, cols, x) : matvecF32(w, rows, cols, x);
  const out: MatmulTypeResult[] = [];
  for (const id of types) {
    const type = quantType(id)!;
    const why = whyNotApplicable(type, cols) ?? (type.ggml ? null : 'not a GGUF type: the quantized kernels read GGUF blocks');
    if (why) {
      out.push({ type: type.id, backend: 'cpu', error: null, kernelRelError: null, ms: 0, gbps: 0, bytes: 0, skipped: why });
      continue;
    }
    out.push(useGpu && gpuMatmulSupportsType(type) ? await onGpu(gpu, type, w, rows, cols, x, yRef) : onCpu(type, w, rows, cols, x, yRef));
    onStep?.(type.id);
  }
  return out;
}

async function onGpu(gpu: GpuContext, type: QuantType, w: Float32Array, rows: number, cols: number, x: Float32Array, yRef: Float32Array): Promise<MatmulTypeResult> {
  const packed = await quantizeOnGpu(gpu, type, w, cols);
  const { value: y, ms } = await best(() => matvecOnGpu(gpu, type, packed, rows, cols, x));
  const cpu = dequantizedProduct(type, packed, rows, cols, x);
  return {
    type: type.id,
    backend: 'webgpu',
    error: productError(y, yRef),
    kernelRelError: relativeError(y, cpu.f64),
    ms,
    gbps: packed.length / ms / 1e6,
    bytes: packed.length,
  };
}

function onCpu(type: QuantType, w: Float32Array, rows: number, cols: number, x: Float32Array, yRef: Float32Array): MatmulTypeResult {
  const packed = type.codec.encode(w, cols);
  const t0 = performance.now();
  const { f32: y, f64 } = dequantizedProduct(type, packed, rows, cols, x);
  const ms = performance.now() - t0;
  return { type: type.id, backend: 'cpu', error: productError(y, yRef), kernelRelError: relativeError(y, f64), ms, gbps: packed.length / ms / 1e6, bytes: packed.length };
}
