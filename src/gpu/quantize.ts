// Quantize, dequantize and error statistics on the GPU, bit-exact with the CPU reference
// codecs (src/quant/codecs/*, house rule 3).
//
// Large tensors go through in chunks: each chunk is a whole number of block groups
// (GROUP_BLOCKS blocks, a whole number of u32 words: shaders/lib/bytes.wgsl) whose input and
// output fit the device's storage binding and buffer limits (and MAX_CHUNK_BYTES), so a
// tensor is streamed through a few fixed buffers and never held whole on the GPU. Blocks
// are independent, so the chunked bytes equal the unchunked ones.
import { quantType, type QuantType } from '../quant/types.ts';
import { assertNotLost, type GpuContext, type GpuLimits } from './device.ts';
import { codecPipeline, statsPipeline } from './pipelines.ts';
import { hasCodecShader } from './shaders.ts';

/** Cap on one chunk's buffers: bounds the GPU memory a job holds (staging and readback included). */
export const MAX_CHUNK_BYTES = 64 * 1024 * 1024;
/** Invocations per workgroup of the codec kernels (each does a group of blocks). */
const CODEC_WG_SIZE = 64;
/** Stats kernel: invocations per workgroup (a power of two) and elements per invocation. */
// 64 x 8: SwiftShader compiles a 256-wide workgroup with barriers 3-4x slower (4-7 s).
const STATS_WG_SIZE = 64;
const STATS_ELEMS_PER_THREAD = 8;
/** shaders/kernels/stats.wgsl's MAX_BINS: histogram bins that fit its workgroup memory. */
export const MAX_HISTOGRAM_BINS = 1024;
const STATS_PARTIALS = 8;

/** Blocks per invocation so that a group is whole u32 words (shaders/lib/bytes.wgsl). */
export function groupBlocks(typeSize: number): number {
  return typeSize % 4 === 0 ? 1 : typeSize % 4 === 2 ? 2 : 4;
}

function resolveType(type: QuantType | string): QuantType {
  const t = typeof type === 'string' ? quantType(type) : type;
  if (!t) throw new RangeError(`unknown quantization type ${String(type)}`);
  return t;
}

/** Whether this type has a WGSL codec (shaders/codecs/<wgsl>.wgsl). */
export function gpuSupportsType(type: QuantType | string): boolean {
  const t = typeof type === 'string' ? quantType(type) : type;
  return t !== undefined && hasCodecShader(t.wgsl);
}

function requireGpuType(type: QuantType | string): QuantType {
  const t = resolveType(type);
  if (!hasCodecShader(t.wgsl)) throw new RangeError(`${t.id}: no WGSL codec yet (shaders/codecs/${t.wgsl}.wgsl)`);
  return t;
}

function checkShape(t: QuantType, values: number, rowLength: number, what: string): number {
  if (!Number.isInteger(rowLength) || rowLength <= 0 || rowLength % t.blockSize !== 0) {
    throw new RangeError(`${what} ${t.id}: row length ${rowLength} is not a multiple of the block size ${t.blockSize}`);
  }
  if (values % rowLength !== 0) throw new RangeError(`${what} ${t.id}: ${values} values are not whole rows of ${rowLength}`);
  return values / t.blockSize;
}

/** Workgroup counts for `workgroups` workgroups: x up to the per-dimension limit, then y. */
export function dispatchSize(workgroups: number, limits: GpuLimits): [number, number] {
  const maxX = limits.maxComputeWorkgroupsPerDimension;
  if (workgroups <= maxX) return [Math.max(workgroups, 1), 1];
  const y = Math.ceil(workgroups / maxX);
  if (y > maxX) throw new RangeError(`${workgroups} workgroups exceed a ${maxX} x ${maxX} dispatch`);
  return [maxX, y];
}

/** Bytes one chunk's buffer may have: the binding and buffer limits and MAX_CHUNK_BYTES. */
function chunkByteLimit(limits: GpuLimits): number {
  return Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize, MAX_CHUNK_BYTES);
}

/** Groups per chunk: both sides fit the byte limit, and the dispatch fits maxX^2 workgroups. */
function groupsPerChunk(inBytesPerGroup: number, outBytesPerGroup: number, wgSize: number, limits: GpuLimits, what: string): number {
  const bytes = Math.floor(chunkByteLimit(limits) / Math.max(inBytesPerGroup, outBytesPerGroup));
  if (bytes < 1) throw new RangeError(`${what}: one block group does not fit the storage binding limit`);
  const maxX = limits.maxComputeWorkgroupsPerDimension;
  return Math.min(bytes, maxX * maxX * wgSize);
}

function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

const deviceQueues = new WeakMap<GPUDevice, Promise<unknown>>();

/**
 * Run fn inside validation + out-of-memory error scopes; a captured error is thrown.
 * Operations on one device run one at a time: error scopes are a per-device stack, so two
 * interleaved async operations would pop each other's scopes (and one chunk at a time
 * bounds the GPU memory in use).
 */
export function withErrorScopes<T>(gpu: GpuContext, what: string, fn: () => Promise<T>): Promise<T> {
  const prev = deviceQueues.get(gpu.device) ?? Promise.resolve();
  const next = prev.then(() => scoped(gpu, what, fn));
  deviceQueues.set(gpu.device, next.catch(() => undefined));
  return next;
}

async function scoped<T>(gpu: GpuContext, what: string, fn: () => Promise<T>): Promise<T> {
  assertNotLost(gpu);
  const { device } = gpu;
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let result: T | undefined;
  let failure: unknown;
  try {
    result = await fn();
  } catch (err) {
    failure = err;
  }
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  assertNotLost(gpu); // a loss mid-way surfaces as GpuDeviceLostError, not a map failure
  if (validation) throw new Error(`${what}: WebGPU validation error: ${validation.message}`);
  if (oom) throw new Error(`${what}: GPU out of memory: ${oom.message}`);
  if (failure !== undefined) throw failure;
  return result as T;
}

interface CodecRun {
  kernel: 'quantize' | 'dequantize';
  type: QuantType;
  nBlocks: number;
  /** Bytes of input per group / of output per group, as the kernel reads / writes them. */
  inPerGroup: number;
  outPerGroup: number;
  /** The input bytes of blocks [firstBlock, firstBlock + blocks). */
  source: (firstBlock: number, blocks: number) => Uint8Array;
  /** Take chunk output (padded to whole groups) for blocks [firstBlock, +blocks). */
  take: (out: Uint8Array, firstBlock: number, blocks: number) => void;
  /** Quantize only: blocks the kernel left to the CPU (block_to_cpu in shaders/lib/bytes.wgsl). */
  toCpu?: (block: number) => void;
}

async function runCodec(gpu: GpuContext, run: CodecRun): Promise<void> {
  const { device, limits } = gpu;
  const { type, kernel } = run;
  const label = `${kernel}.${type.id}`;
  const g = groupBlocks(type.typeSize);
  const wgSize = Math.min(CODEC_WG_SIZE, limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX);
  const nGroups = Math.ceil(run.nBlocks / g);
  const chunkGroups = Math.min(groupsPerChunk(run.inPerGroup, run.outPerGroup, wgSize, limits, label), nGroups);
  if (run.nBlocks === 0) return;
  const pipeline = await codecPipeline(device, kernel, type.wgsl, wgSize);

  await withErrorScopes(gpu, label, async () => {
    const inBytes = chunkGroups * run.inPerGroup;
    const outBytes = chunkGroups * run.outPerGroup;
    const src = device.createBuffer({ label: `${label}.src`, size: inBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    const dst = device.createBuffer({ label: `${label}.dst`, size: outBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    // The quantize kernel also writes one word per group: which of its blocks need the CPU.
    const maskBytes = kernel === 'quantize' ? chunkGroups * 4 : 0;
    const maskAt = Math.ceil(outBytes / 8) * 8; // getMappedRange offsets are multiples of 8
    const readback = device.createBuffer({ label: `${label}.readback`, size: maskAt + maskBytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const params = device.createBuffer({ label: `${label}.params`, size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    const masks = maskBytes
      ? device.createBuffer({ label: `${label}.to-cpu`, size: maskBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC })
      : undefined;
    const bindGroup = device.createBindGroup({
      label: `${label}.bindgroup`,
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: src } },
        { binding: 1, resource: { buffer: dst } },
        { binding: 2, resource: { buffer: params } },
        ...(masks ? [{ binding: 3, resource: { buffer: masks } }] : []),
      ],
    });
    const staging = new Uint8Array(inBytes);
    try {
      for (let first = 0, chunk = 0; first < run.nBlocks; first += chunkGroups * g, chunk++) {
        const blocks = Math.min(chunkGroups * g, run.nBlocks - first);
        const groups = Math.ceil(blocks / g);
        const used = groups * run.inPerGroup;
        const input = run.source(first, blocks);
        if (input.length === used && input.buffer instanceof ArrayBuffer) {
          device.queue.writeBuffer(src, 0, input as Uint8Array<ArrayBuffer>);
        } else {
          // A partial last group (or a shared buffer): pad with zeros to whole words.
          staging.set(input);
          staging.fill(0, input.length, used);
          device.queue.writeBuffer(src, 0, staging, 0, used);
        }
        device.queue.writeBuffer(params, 0, new Uint32Array([blocks, 0, 0, 0]));
        const [x, y] = dispatchSize(Math.ceil(groups / wgSize), limits);
        const enc = device.createCommandEncoder({ label: `${label}.encoder.${chunk}` });
        const pass = enc.beginComputePass({ label: `${label}.pass.${chunk}` });
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(x, y);
        pass.end();
        const size = groups * run.outPerGroup;
        enc.copyBufferToBuffer(dst, 0, readback, 0, size);
        if (masks) enc.copyBufferToBuffer(masks, 0, readback, maskAt, groups * 4);
        device.queue.submit([enc.finish()]);
        await readback.mapAsync(GPUMapMode.READ, 0, maskAt + maskBytes);
        run.take(new Uint8Array(readback.getMappedRange(0, size)), first, blocks);
        if (masks) {
          const m = new Uint32Array(readback.getMappedRange(maskAt, groups * 4));
          for (let i = 0; i < groups; i++) {
            for (let b = 0; m[i] !== 0 && b < g; b++) if (m[i] & (1 << b)) run.toCpu?.(first + i * g + b);
          }
        }
        readback.unmap();
      }
    } finally {
      src.destroy();
      dst.destroy();
      readback.destroy();
      params.destroy();
      masks?.destroy();
    }
  });
}

/** What quantizeOnGpuDetailed did besides the bytes. */
export interface GpuQuantizeReport {
  /**
   * Blocks the GPU handed back and the CPU codec encoded (shaders/lib/bytes.wgsl's
   * block_to_cpu): K-quant blocks whose scale search reaches f32 subnormals, which the
   * device may flush. Empty for every other type.
   */
  readonly cpuBlocks: readonly number[];
}

/**
 * Quantize `data` (rows of `rowLength` values) to `type` on the GPU: the type's block bytes,
 * rows concatenated, exactly as the CPU codec (and ggml_quantize_chunk without imatrix).
 */
export async function quantizeOnGpu(
  gpu: GpuContext,
  type: QuantType | string,
  data: Float32Array,
  rowLength: number,
): Promise<Uint8Array> {
  return (await quantizeOnGpuDetailed(gpu, type, data, rowLength)).bytes;
}

/** quantizeOnGpu, also saying which blocks the CPU encoded. */
export async function quantizeOnGpuDetailed(
  gpu: GpuContext,
  type: QuantType | string,
  data: Float32Array,
  rowLength: number,
): Promise<{ bytes: Uint8Array; report: GpuQuantizeReport }> {
  const t = requireGpuType(type);
  const nBlocks = checkShape(t, data.length, rowLength, 'quantizeOnGpu');
  const g = groupBlocks(t.typeSize);
  const input = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(nBlocks * t.typeSize);
  const valueBytes = t.blockSize * 4;
  const cpuBlocks: number[] = [];
  await runCodec(gpu, {
    kernel: 'quantize',
    type: t,
    nBlocks,
    inPerGroup: g * valueBytes,
    outPerGroup: g * t.typeSize,
    source: (first, blocks) => input.subarray(first * valueBytes, (first + blocks) * valueBytes),
    take: (chunk, first, blocks) => out.set(chunk.subarray(0, blocks * t.typeSize), first * t.typeSize),
    toCpu: (block) => cpuBlocks.push(block),
  });
  // Blocks are independent: one block encoded alone is that block of the whole row.
  for (const b of cpuBlocks) {
    const values = data.subarray(b * t.blockSize, (b + 1) * t.blockSize);
    out.set(t.codec.encode(values, t.blockSize), b * t.typeSize);
  }
  return { bytes: out, report: { cpuBlocks } };
}

/** Dequantize `rows` rows of `rowLength` values of `type` from `bytes` on the GPU. */
export async function dequantizeOnGpu(
  gpu: GpuContext,
  type: QuantType | string,
  bytes: Uint8Array,
  rows: number,
  rowLength: number,
): Promise<Float32Array> {
  const t = requireGpuType(type);
  const nBlocks = checkShape(t, rows * rowLength, rowLength, 'dequantizeOnGpu');
  if (bytes.length !== nBlocks * t.typeSize) {
    throw new RangeError(`dequantizeOnGpu ${t.id}: ${bytes.length} bytes, expected ${nBlocks * t.typeSize} for ${rows} x ${rowLength}`);
  }
  const g = groupBlocks(t.typeSize);
  const out = new Float32Array(rows * rowLength);
  const outBytes = new Uint8Array(out.buffer);
  const valueBytes = t.blockSize * 4;
  await runCodec(gpu, {
    kernel: 'dequantize',
    type: t,
    nBlocks,
    inPerGroup: g * t.typeSize,
    outPerGroup: g * valueBytes,
    source: (first, blocks) => bytes.subarray(first * t.typeSize, (first + blocks) * t.typeSize),
    take: (chunk, first, blocks) => outBytes.set(chunk.subarray(0, blocks * valueBytes), first * valueBytes),
  });
  return out;
}

export interface HistogramSpec {
  /** Error range [lo, hi) split into `bins` equal bins; errors outside go to below / above. */
  lo: number;
  hi: number;
  bins: number;
}

export interface ErrorHistogram {
  lo: number;
  hi: number;
  /** The f32 factor the GPU used: bin = floor(fround(fround(e - lo) * scale)). */
  scale: number;
  counts: Uint32Array;
  below: number;
  above: number;
}

/** Error statistics of `approx` against `reference` (error e = approx - reference). */
export interface GpuErrorStats {
  /** Pairs counted (both values finite). */
  count: number;
  /** Pairs left out because a value was NaN or infinite. */
  nonFinite: number;
  sumSqErr: number;
  sumSqRef: number;
  sumSqApprox: number;
  sumAbsErr: number;
  maxAbsErr: number;
  /** Sum of reference * approx. */
  dot: number;
  mse: number;
  rmse: number;
  meanAbsErr: number;
  /** 10 log10(sum ref^2 / sum err^2); Infinity when exact. */
  snrDb: number;
  /** dot / (|ref| |approx|); 1 for two zero vectors. */
  cosine: number;
  histogram?: ErrorHistogram;
}

/**
 * Error statistics and an error histogram computed on the GPU; only per-workgroup partial
 * sums (added here in f64) and the bins are read back.
 */
export async function errorStatsOnGpu(
  gpu: GpuContext,
  reference: Float32Array,
  approx: Float32Array,
  options: { histogram?: HistogramSpec } = {},
): Promise<GpuErrorStats> {
  if (reference.length !== approx.length) {
    throw new RangeError(`errorStatsOnGpu: ${reference.length} reference values but ${approx.length} approximations`);
  }
  const h = options.histogram;
  if (h && (!Number.isInteger(h.bins) || h.bins < 1 || h.bins > MAX_HISTOGRAM_BINS || !(h.hi > h.lo))) {
    throw new RangeError(`errorStatsOnGpu: histogram needs 1..${MAX_HISTOGRAM_BINS} bins and hi > lo`);
  }
  const { device, limits } = gpu;
  const label = 'stats';
  const wgSize = Math.min(STATS_WG_SIZE, 2 ** Math.floor(Math.log2(limits.maxComputeInvocationsPerWorkgroup)), 2 ** Math.floor(Math.log2(limits.maxComputeWorkgroupSizeX)));
  const perWg = wgSize * STATS_ELEMS_PER_THREAD;
  const maxX = limits.maxComputeWorkgroupsPerDimension;
  const chunkWgs = Math.max(1, Math.min(Math.floor(chunkByteLimit(limits) / (perWg * 4)), maxX * maxX));
  const n = reference.length;
  const chunkElems = Math.min(chunkWgs * perWg, Math.max(n, 1));
  const wgsPerChunk = Math.ceil(chunkElems / perWg);
  const [px, py] = dispatchSize(wgsPerChunk, limits);
  const pipeline = await statsPipeline(device, wgSize, STATS_ELEMS_PER_THREAD);
  const bins = h?.bins ?? 0;
  const scale = h ? Math.fround(h.bins / (h.hi - h.lo)) : 0;

  const acc = { sumSqErr: 0, sumSqRef: 0, sumSqApprox: 0, sumAbsErr: 0, dot: 0, maxAbsErr: 0, nonFinite: 0 };
  let counts = new Uint32Array(bins + 2);

  await withErrorScopes(gpu, label, async () => {
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
    const refBuf = device.createBuffer({ label: `${label}.reference`, size: align4(chunkElems * 4), usage });
    const apxBuf = device.createBuffer({ label: `${label}.approx`, size: align4(chunkElems * 4), usage });
    const partialBytes = px * py * STATS_PARTIALS * 4;
    const partials = device.createBuffer({ label: `${label}.partials`, size: partialBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const histBytes = (bins + 2) * 4;
    const hist = device.createBuffer({ label: `${label}.histogram`, size: histBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const readback = device.createBuffer({ label: `${label}.readback`, size: partialBytes + histBytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const params = device.createBuffer({ label: `${label}.params`, size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    const bindGroup = device.createBindGroup({
      label: `${label}.bindgroup`,
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: refBuf } },
        { binding: 1, resource: { buffer: apxBuf } },
        { binding: 2, resource: { buffer: partials } },
        { binding: 3, resource: { buffer: hist } },
        { binding: 4, resource: { buffer: params } },
      ],
    });
    const paramData = new ArrayBuffer(16);
    const paramU32 = new Uint32Array(paramData);
    const paramF32 = new Float32Array(paramData);
    try {
      let chunk = 0;
      for (let first = 0; first < n || (n === 0 && chunk === 0); first += chunkElems, chunk++) {
        const count = Math.min(chunkElems, n - first);
        if (count > 0) {
          device.queue.writeBuffer(refBuf, 0, reference as Float32Array<ArrayBuffer>, first, count);
          device.queue.writeBuffer(apxBuf, 0, approx as Float32Array<ArrayBuffer>, first, count);
        }
        paramU32[0] = count;
        paramU32[1] = bins;
        paramF32[2] = h?.lo ?? 0;
        paramF32[3] = scale;
        device.queue.writeBuffer(params, 0, paramData);
        const wgs = Math.ceil(count / perWg);
        const [x, y] = dispatchSize(wgs, limits);
        const enc = device.createCommandEncoder({ label: `${label}.encoder.${chunk}` });
        if (wgs > 0) {
          const pass = enc.beginComputePass({ label: `${label}.pass.${chunk}` });
          pass.setPipeline(pipeline);
          pass.setBindGroup(0, bindGroup);
          pass.dispatchWorkgroups(x, y);
          pass.end();
        }
        const last = first + chunkElems >= n;
        const pBytes = wgs * STATS_PARTIALS * 4;
        if (pBytes > 0) enc.copyBufferToBuffer(partials, 0, readback, 0, pBytes);
        if (last) enc.copyBufferToBuffer(hist, 0, readback, partialBytes, histBytes);
        device.queue.submit([enc.finish()]);
        await readback.mapAsync(GPUMapMode.READ);
        const mapped = readback.getMappedRange();
        const p = new Float32Array(mapped, 0, wgs * STATS_PARTIALS);
        for (let w = 0; w < wgs; w++) {
          const o = w * STATS_PARTIALS;
          acc.sumSqErr += p[o];
          acc.sumSqRef += p[o + 1];
          acc.sumSqApprox += p[o + 2];
          acc.sumAbsErr += p[o + 3];
          acc.dot += p[o + 4];
          acc.maxAbsErr = Math.max(acc.maxAbsErr, p[o + 5]);
          acc.nonFinite += p[o + 6];
        }
        if (last) counts = new Uint32Array(mapped.slice(partialBytes, partialBytes + histBytes));
        readback.unmap();
        if (last) break;
      }
    } finally {
      for (const b of [refBuf, apxBuf, partials, hist, readback, params]) b.destroy();
    }
  });

  const count = n - acc.nonFinite;
  const mse = count > 0 ? acc.sumSqErr / count : 0;
  const norms = Math.sqrt(acc.sumSqRef) * Math.sqrt(acc.sumSqApprox);
  return {
    count,
    nonFinite: acc.nonFinite,
    sumSqErr: acc.sumSqErr,
    sumSqRef: acc.sumSqRef,
    sumSqApprox: acc.sumSqApprox,
    sumAbsErr: acc.sumAbsErr,
    maxAbsErr: acc.maxAbsErr,
    dot: acc.dot,
    mse,
    rmse: Math.sqrt(mse),
    meanAbsErr: count > 0 ? acc.sumAbsErr / count : 0,
    snrDb: acc.sumSqErr === 0 ? Infinity : 10 * Math.log10(acc.sumSqRef / acc.sumSqErr),
    cosine: norms === 0 ? (acc.sumSqRef === acc.sumSqApprox ? 1 : 0) : acc.dot / norms,
    histogram: h
      ? { lo: h.lo, hi: h.hi, scale, counts: counts.slice(0, bins), below: counts[bins], above: counts[bins + 1] }
      : undefined,
  };
}
