// The WebGPU forward pass: a `Linear` (llama.ts) that runs every matrix product of the
// forward on the GPU with the engine's quantized matmul kernel (gpu/matmul.ts,
// shaders/kernels/matmul.wgsl), each weight read in its own packed blocks:
//   - a tensor the preset converts (QuantizedWeights.packed) in its type's blocks, decoded
//     in the kernel by the type's WGSL codec: the product of the quantized model is the
//     product of the packed tensor, never of dequantized copies;
//   - a tensor kept as it is (every tensor of the F32 model) as f32 through the f32
//     codec (exact: the provider's values are the file's values in f32).
// All n positions of a forward chunk go in one product (Y = W X, the prefill case; n = 1
// is the matvec of decoding).
//
// Weights are uploaded once, on a tensor's first product, into GPU buffers kept until
// dispose(): packed tensors as they are, f32 tensors as the provider's bytes (no copy on
// the CPU side). A tensor too large for one binding is held in several row chunks, each
// its own buffer, multiplied one after another (rows are independent: the same result).
// Activations, outputs and the readback go through scratch buffers that grow as needed.
//
// A type without a GPU matmul (no WGSL codec yet, or per-tensor/per-row data such as
// fp8's scale: gpuMatmulSupportsType false) runs on the CPU reference (cpuLinear, over the
// dequantized values): counted, so that tests and the UI can tell that WebGPU did the
// work (stats()).
//
// Numerics: the kernel accumulates in f32 (the CPU reference in f64), so a product
// differs from the CPU's by f32 rounding of its sums (~1e-6 relative norm-wise), and the
// logits by ~1e-6 too on stories260K (gpu-linear.test.ts).
import type { GpuContext } from '../gpu/device.ts';
import { withErrorScopes } from '../gpu/dispatch.ts';
import {
  gpuMatmulSupportsType,
  MATMUL_PARAMS_BYTES,
  matmulBindingBytes,
  matmulConfig,
  matmulPipeline,
  matmulWeightBufferBytes,
  runMatmulChunk,
  type MatmulOptions,
  type MatmulRun,
} from '../gpu/matmul.ts';
import { quantType, type QuantType } from '../quant/types.ts';
import { cpuLinear, type Linear, type WeightProvider } from './llama.ts';
import type { QuantizedWeights } from './weights.ts';

/** Products run so far, by where they ran. */
export interface GpuLinearStats {
  /** Matrix products (one Linear call each, all n positions together) run on the GPU. */
  gpu: number;
  /** Products run on the CPU reference (types without a GPU matmul). */
  cpu: number;
  /** The same by weight type ('f32' for tensors kept as they are). */
  byType: Record<string, { gpu: number; cpu: number }>;
  /** Tensors whose products ran on the CPU, with the reason. */
  cpuTensors: Record<string, string>;
  /** Bytes of weights uploaded to the GPU (each tensor once). */
  uploadedBytes: number;
}

/** A Linear whose products run on the GPU; dispose() frees the weights it uploaded. */
export interface GpuLinear extends Linear {
  stats(): GpuLinearStats;
  /** Zeroes the product counts (the uploads stay). */
  resetStats(): void;
  /** Frees every GPU buffer; a later product uploads again. */
  dispose(): void;
}

export interface GpuLinearOptions {
  /** The kernel's options (subgroups or the workgroup tree). */
  matmul?: MatmulOptions;
}

/** One row chunk of a resident weight: its buffer holds rows [r0, r0 + rows). */
interface WeightChunk {
  readonly r0: number;
  readonly rows: number;
  readonly buffer: GPUBuffer;
}

interface GpuEntry {
  readonly where: 'gpu';
  readonly type: QuantType;
  readonly rows: number;
  readonly cols: number;
  readonly rowBytes: number;
  readonly rowsPerChunk: number;
  /** The packed rows until they are uploaded (on the first product), then null. */
  bytes: Uint8Array | null;
  chunks: WeightChunk[];
}

type Entry = GpuEntry | { readonly where: 'cpu'; readonly type: string; readonly reason: string };

/** The fewest rows per workgroup any token count gets (dispatch bound on rows per chunk). */
function minRowsPerWg(gpu: GpuContext, type: QuantType, cols: number, options: MatmulOptions): number {
  let m = Infinity;
  for (let n = 1; n <= 16; n++) m = Math.min(m, matmulConfig(gpu, type, cols, n, options).rowsPerWg);
  return m;
}

/**
 * The forward's matrix products on the GPU. `weights` gives every tensor's f32 values (the
 * dequantized ones for a preset's model: what the CPU fallback multiplies); `quantized`
 * the packed blocks of each converted tensor (null for the F32 model).
 */
export function gpuLinear(gpu: GpuContext, weights: WeightProvider, quantized: QuantizedWeights | null, options: GpuLinearOptions = {}): GpuLinear {
  const mmOptions = options.matmul ?? {};
  const cpu = cpuLinear(weights);
  const entries = new Map<string, Entry>();
  let stats: GpuLinearStats = { gpu: 0, cpu: 0, byType: {}, cpuTensors: {}, uploadedBytes: 0 };
  // Scratch buffers (x, y, readback, params), grown as needed. Every use of them runs
  // inside withErrorScopes, which runs one body at a time per device.
  const scratch: { x?: GPUBuffer; y?: GPUBuffer; readback?: GPUBuffer; params?: GPUBuffer } = {};
  let disposed = false;

  const count = (type: string, where: 'gpu' | 'cpu') => {
    stats[where]++;
    const t = (stats.byType[type] ??= { gpu: 0, cpu: 0 });
    t[where]++;
  };

  /** Creates the weight's buffers (inside a product's error scope, so that OOM is caught). */
  const upload = (name: string, e: GpuEntry): void => {
    const bytes = e.bytes!;
    for (let r0 = 0; r0 < e.rows; r0 += e.rowsPerChunk) {
      const rc = Math.min(e.rowsPerChunk, e.rows - r0);
      const buffer = gpu.device.createBuffer({
        label: `linear.${name}.w${e.chunks.length}`,
        size: matmulWeightBufferBytes(e.rowBytes, rc),
        usage: GPUBufferUsage.STORAGE,
        mappedAtCreation: true,
      });
      e.chunks.push({ r0, rows: rc, buffer });
      new Uint8Array(buffer.getMappedRange()).set(bytes.subarray(r0 * e.rowBytes, (r0 + rc) * e.rowBytes));
      buffer.unmap();
    }
    stats.uploadedBytes += bytes.length;
    e.bytes = null;
  };

  const entry = (name: string, rows: number, cols: number): Entry => {
    let e = entries.get(name);
    if (e) return e;
    const packed = quantized?.packed.get(name);
    let type: QuantType;
    let bytes: Uint8Array;
    if (packed) {
      if (packed.rows !== rows || packed.cols !== cols) throw new Error(`tensor '${name}' is packed as ${packed.rows} x ${packed.cols}, expected ${rows} x ${cols}`);
      type = packed.type;
      bytes = packed.bytes;
    } else {
      const w = weights(name);
      if (w.length !== rows * cols) throw new Error(`tensor '${name}' has ${w.length} values, expected ${rows} x ${cols}`);
      type = quantType('f32')!;
      bytes = new Uint8Array(w.buffer, w.byteOffset, w.byteLength);
    }
    if (!gpuMatmulSupportsType(type)) {
      e = { where: 'cpu', type: type.id, reason: `${type.id} has no GPU matmul` };
    } else if (cols % type.blockSize !== 0) {
      e = { where: 'cpu', type: type.id, reason: `rows of ${cols} are not whole ${type.id} blocks` };
    } else {
      const rowBytes = (cols / type.blockSize) * type.typeSize;
      const maxWg = gpu.limits.maxComputeWorkgroupsPerDimension;
      const rowsPerChunk = Math.min(rows, Math.floor((matmulBindingBytes(gpu) - 8) / rowBytes), maxWg * minRowsPerWg(gpu, type, cols, mmOptions));
      if (rowsPerChunk < 1) throw new RangeError(`${name}: one row of ${type.id} (${rowBytes} bytes) does not fit a ${matmulBindingBytes(gpu)}-byte binding`);
      e = { where: 'gpu', type, rows, cols, rowBytes, rowsPerChunk, bytes, chunks: [] };
    }
    entries.set(name, e);
    return e;
  };

  const grow = (key: keyof typeof scratch, size: number, usage: number): GPUBuffer => {
    const b = scratch[key];
    if (b && b.size >= size) return b;
    b?.destroy();
    const nb = gpu.device.createBuffer({ label: `linear.${key}`, size: Math.max(size, 256), usage });
    scratch[key] = nb;
    return nb;
  };

  const runOnGpu = async (name: string, e: GpuEntry, x: Float32Array, n: number): Promise<Float32Array> => {
    const { type, rows, cols } = e;
    const device = gpu.device;
    const config = matmulConfig(gpu, type, cols, n, mmOptions);
    const pipeline = await matmulPipeline(device, type, config);
    const bytes = matmulBindingBytes(gpu);
    const maxWg = gpu.limits.maxComputeWorkgroupsPerDimension;
    const maxChunkRows = Math.min(e.rows, e.rowsPerChunk);
    const tokensPerChunk = Math.min(n, Math.floor(bytes / (cols * 4)), Math.floor(bytes / (maxChunkRows * 4)), maxWg * config.tokensPerWg);
    if (tokensPerChunk < 1) throw new RangeError(`${name}: one vector of ${cols} f32 does not fit a ${bytes}-byte binding`);
    const y = new Float32Array(rows * n);
    const label = `linear.${name}`;
    const pending = e.bytes;
    let uploaded = false;
    const run = async () => {
      if (e.bytes) {
        uploaded = true;
        upload(name, e);
      }
      const yBytes = maxChunkRows * tokensPerChunk * 4;
      const xBuf = grow('x', tokensPerChunk * cols * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
      const yBuf = grow('y', yBytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
      const readback = grow('readback', yBytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
      const params = grow('params', MATMUL_PARAMS_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      const mm: MatmulRun = { pipeline, config, type, label, x: xBuf, y: yBuf, readback, params };
      for (let t0 = 0; t0 < n; t0 += tokensPerChunk) {
        const tc = Math.min(tokensPerChunk, n - t0);
        device.queue.writeBuffer(xBuf, 0, x as Float32Array<ArrayBuffer>, t0 * cols, tc * cols);
        for (const chunk of e.chunks) await runMatmulChunk(gpu, mm, { w: chunk.buffer, r0: chunk.r0, rows: chunk.rows, t0, tokens: tc, cols }, y, rows);
      }
    };
    try {
      await withErrorScopes(gpu, label, run);
    } catch (err) {
      if (uploaded) {
        // The upload may have failed (out of memory): the next product tries again.
        for (const c of e.chunks) c.buffer.destroy();
        e.chunks = [];
        if (e.bytes === null && pending) stats.uploadedBytes -= pending.length;
        e.bytes = pending;
      }
      throw err;
    }
    return y;
  };

  const linear = (async (name: string, x: Float32Array, n: number, rows: number, cols: number): Promise<Float32Array> => {
    if (disposed) throw new Error('gpuLinear: used after dispose()');
    if (x.length !== n * cols) throw new RangeError(`${name}: x has ${x.length} values, expected ${n} vectors of ${cols}`);
    const e = entry(name, rows, cols);
    if (e.where === 'cpu') {
      stats.cpuTensors[name] = e.reason;
      count(e.type, 'cpu');
      return cpu(name, x, n, rows, cols);
    }
    const y = await runOnGpu(name, e, x, n);
    count(e.type.id, 'gpu');
    return y;
  }) as GpuLinear;

  linear.stats = () => ({
    ...stats,
    byType: Object.fromEntries(Object.entries(stats.byType).map(([k, v]) => [k, { ...v }])),
    cpuTensors: { ...stats.cpuTensors },
  });
  linear.resetStats = () => {
    stats = { gpu: 0, cpu: 0, byType: {}, cpuTensors: {}, uploadedBytes: stats.uploadedBytes };
  };
  linear.dispose = () => {
    disposed = true;
    for (const e of entries.values()) if (e.where === 'gpu') for (const c of e.chunks) c.buffer.destroy();
    entries.clear();
    for (const b of Object.values(scratch)) b?.destroy();
    scratch.x = scratch.y = scratch.readback = scratch.params = undefined;
  };
  return linear;
}

/** Sums the stats of several GpuLinears (one per model of an evaluation). */
export function sumGpuLinearStats(all: readonly GpuLinearStats[]): GpuLinearStats {
  const out: GpuLinearStats = { gpu: 0, cpu: 0, byType: {}, cpuTensors: {}, uploadedBytes: 0 };
  for (const s of all) {
    out.gpu += s.gpu;
    out.cpu += s.cpu;
    out.uploadedBytes += s.uploadedBytes;
    Object.assign(out.cpuTensors, s.cpuTensors);
    for (const [k, v] of Object.entries(s.byType)) {
      const t = (out.byType[k] ??= { gpu: 0, cpu: 0 });
      t.gpu += v.gpu;
      t.cpu += v.cpu;
    }
  }
  return out;
}
