// Quantize, dequantize and error statistics on the GPU, bit-exact with the CPU reference
// codecs (src/quant/codecs/*, house rule 3).
//
// Large tensors go through in chunks: each chunk is a whole number of block groups
// (GROUP_BLOCKS blocks, a whole number of u32 words: shaders/lib/bytes.wgsl) whose input and
// output fit the device's storage binding and buffer limits (and MAX_CHUNK_BYTES), so a
// tensor is streamed through a few fixed buffers and never held whole on the GPU. Blocks
// are independent, so the chunked bytes equal the unchunked ones.
import { quantType, type QuantType } from '../quant/types.ts';
import { fp8Bytes } from '../quant/codecs/float.ts';
import { int8Bytes, outlierRecordBytes } from '../quant/codecs/intn.ts';
import { DQ_GROUP_BLOCKS, DYNAMIC_MAP, dqLayout, NF4_BLOCK_BYTES } from '../quant/codecs/nf4.ts';
import { assertNotLost, type GpuContext, type GpuLimits } from './device.ts';
import { codecPipeline, getPipeline, statsPipeline } from './pipelines.ts';
import { codecTakesImportance, composeShader, hasCodecShader } from './shaders.ts';

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

/**
 * Whether the GPU runs this type: a WGSL codec (shaders/codecs/<wgsl>.wgsl), and the type's
 * tensor is a plain sequence of blocks or one of the layouts below (GPU_LAYOUTS).
 */
export function gpuSupportsType(type: QuantType | string): boolean {
  const t = typeof type === 'string' ? quantType(type) : type;
  return t !== undefined && hasCodecShader(t.wgsl) && (isBlockSequence(t) || gpuLayout(t) !== undefined);
}

function requireGpuType(type: QuantType | string): QuantType {
  const t = resolveType(type);
  if (!gpuSupportsType(t)) throw new RangeError(`${t.id}: no WGSL codec yet (shaders/codecs/${t.wgsl}.wgsl)`);
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
  /** Quantize only: importance weights (one per column) and rows of `rowBlocks` blocks. */
  importance?: { weights: Float32Array; rowBlocks: number; rowSigma2: (row: number) => number };
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
  const pipeline = await codecPipeline(device, kernel, type.wgsl, wgSize, run.importance !== undefined);

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
    // Importance (quantize kernel): the row's weights, then sigma2 of each row in the chunk.
    const imp = run.importance;
    const chunkRows = imp ? Math.ceil((chunkGroups * g) / imp.rowBlocks) + 1 : 0;
    const aux = maskBytes
      ? device.createBuffer({ label: `${label}.importance`, size: imp ? (imp.weights.length + chunkRows) * 4 : 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST })
      : undefined;
    if (aux && imp) device.queue.writeBuffer(aux, 0, imp.weights as Float32Array<ArrayBuffer>);
    const sigma2 = new Float32Array(chunkRows);
    const bindGroup = device.createBindGroup({
      label: `${label}.bindgroup`,
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: src } },
        { binding: 1, resource: { buffer: dst } },
        { binding: 2, resource: { buffer: params } },
        ...(masks && aux ? [{ binding: 3, resource: { buffer: masks } }, { binding: 4, resource: { buffer: aux } }] : []),
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
        if (aux && imp) {
          const row0 = Math.floor(first / imp.rowBlocks);
          const rows = Math.floor((first + blocks - 1) / imp.rowBlocks) - row0 + 1;
          for (let r = 0; r < rows; r++) sigma2[r] = imp.rowSigma2(row0 + r);
          device.queue.writeBuffer(aux, imp.weights.length * 4, sigma2, 0, rows);
        }
        const rowBlocks = imp?.rowBlocks ?? 0;
        device.queue.writeBuffer(params, 0, new Uint32Array([blocks, 0, rowBlocks, imp ? first % rowBlocks : 0]));
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
      aux?.destroy();
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
 * rows concatenated, exactly as the CPU codec `type.codec.encode(data, rowLength,
 * importance)` (and ggml_quantize_chunk, with or without an imatrix). `importance`: one
 * weight per column, used by the types whose quantizer takes them (type.usesImportance) and
 * ignored by the others, as the CPU codecs do.
 */
export async function quantizeOnGpu(
  gpu: GpuContext,
  type: QuantType | string,
  data: Float32Array,
  rowLength: number,
  importance?: Float32Array,
): Promise<Uint8Array> {
  return (await quantizeOnGpuDetailed(gpu, type, data, rowLength, importance)).bytes;
}

/** Whether the GPU can quantize `type` with importance weights (its codec reads has_qw). */
export function gpuSupportsImportance(type: QuantType | string): boolean {
  const t = typeof type === 'string' ? quantType(type) : type;
  return t !== undefined && (!t.usesImportance || codecTakesImportance(t.wgsl));
}

/** C's sum(x^2) / n over x in float, in order (the legacy *_impl functions' sigma2). */
function meanSquareF32(x: Float32Array): number {
  const f = Math.fround;
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum = f(sum + f(x[i] * x[i]));
  return f(sum / x.length);
}

/** quantizeOnGpu, also saying which blocks the CPU encoded. */
export async function quantizeOnGpuDetailed(
  gpu: GpuContext,
  type: QuantType | string,
  data: Float32Array,
  rowLength: number,
  importance?: Float32Array,
): Promise<{ bytes: Uint8Array; report: GpuQuantizeReport }> {
  const t = requireGpuType(type);
  if (importance && importance.length !== rowLength) {
    throw new RangeError(`quantizeOnGpu ${t.id}: ${importance.length} importance weights for rows of ${rowLength}`);
  }
  const weights = t.usesImportance ? importance : undefined;
  if (weights && !codecTakesImportance(t.wgsl)) {
    throw new RangeError(`${t.id}: no importance-weighted WGSL path yet (shaders/codecs/${t.wgsl}.wgsl)`);
  }
  const layout = gpuLayout(t);
  if (layout) return quantizeLayout(gpu, t, layout, data, rowLength);
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
    importance: weights && {
      weights,
      rowBlocks: rowLength / t.blockSize,
      rowSigma2: (row) => meanSquareF32(data.subarray(row * rowLength, (row + 1) * rowLength)),
    },
  });
  // The CPU encodes the rows holding such blocks (importance weights make a block depend on
  // its row), and their bytes replace the GPU's.
  const blocksPerRow = rowLength / t.blockSize;
  let encodedRow = -1;
  let rowBytes: Uint8Array = new Uint8Array(0);
  for (const b of cpuBlocks) {
    const row = Math.floor(b / blocksPerRow);
    if (row !== encodedRow) {
      rowBytes = t.codec.encode(data.subarray(row * rowLength, (row + 1) * rowLength), rowLength, weights);
      encodedRow = row;
    }
    const at = (b % blocksPerRow) * t.typeSize;
    out.set(rowBytes.subarray(at, at + t.typeSize), b * t.typeSize);
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
  const layout = gpuLayout(t);
  if (layout) return dequantizeLayout(gpu, t, layout, bytes, rows, rowLength);
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

// ---------------------------------------------------------------------------------------------
// Layouts that are not a plain sequence of blocks (quant/types.ts rows with their own bytesFor):
// INT8 and INT8_OUTLIER (one scale per row, data-dependent outlier columns), FP8 (one scale
// per tensor) and NF4_DQ / FP4_DQ (double-quantized absmax). Each is a few passes; the
// arithmetic runs on the GPU, the CPU only sequences the passes, moves section bytes and, for
// the two things a GPU has no exact form for, computes: the list of outlier columns from the
// GPU's per-column flags (a compaction of rowLength flags) and NF4_DQ's offset, the mean of
// the block absmax values summed in f64 as the CPU codec does.

/** Libraries of the layout kernels (no block staging, so no lib/bytes.wgsl). */
const LAYOUT_LIBS = ['lib/rounding.wgsl', 'lib/f16.wgsl', 'lib/softfloat.wgsl'];
/** Values per invocation of kernels/absmax.wgsl and kernels/outlier_columns.wgsl (their ELEMS). */
const SCAN_VALUES_PER_INVOCATION = 64;
/** Tensor indices are u32 on the GPU: larger tensors (16 GiB of f32) are not split by index. */
const MAX_LAYOUT_VALUES = 2 ** 32 - 4;
/** kernels/absmax.wgsl's seg_len for a per-tensor scale: one segment. */
const WHOLE_TENSOR = 0xffffffff;

/** One byte per value with a per-row or per-tensor value (kernels/bytes_*.wgsl). */
interface ByteLayout {
  readonly kind: 'bytes';
  /** lib/<family>.wgsl: layout_seg_param, layout_encode, layout_decode. */
  readonly lib: string;
  /** One scale for the tensor, stored first (fp8), or one absmax per row, stored after the codes (int8). */
  readonly perTensor: boolean;
  /** The absmax is over finite values only (fp8). */
  readonly finiteOnly: boolean;
  /** LLM.int8's outlier columns, stored as f16 records after the INT8 sections. */
  readonly outliers: boolean;
}

/** NF4 / FP4 codes from the base block codec, the absmax double-quantized (kernels/dq_absmax.wgsl). */
interface DoubleQuantLayout {
  readonly kind: 'dq';
  readonly base: string;
}

type GpuLayout = ByteLayout | DoubleQuantLayout;

const GPU_LAYOUTS: Readonly<Record<string, GpuLayout>> = {
  int8: { kind: 'bytes', lib: 'lib/int8.wgsl', perTensor: false, finiteOnly: false, outliers: false },
  int8_outlier: { kind: 'bytes', lib: 'lib/int8.wgsl', perTensor: false, finiteOnly: false, outliers: true },
  fp8_e4m3: { kind: 'bytes', lib: 'lib/fp8.wgsl', perTensor: true, finiteOnly: true, outliers: false },
  fp8_e5m2: { kind: 'bytes', lib: 'lib/fp8.wgsl', perTensor: true, finiteOnly: true, outliers: false },
  nf4_dq: { kind: 'dq', base: 'nf4' },
  fp4_dq: { kind: 'dq', base: 'fp4' },
};

/** The layout of a type that is not a plain sequence of blocks, if the GPU has one. */
function gpuLayout(t: QuantType): GpuLayout | undefined {
  return Object.hasOwn(GPU_LAYOUTS, t.id) ? GPU_LAYOUTS[t.id] : undefined;
}

/** Whether a tensor of the type is its blocks and nothing else (what runCodec reads and writes). */
function isBlockSequence(t: QuantType): boolean {
  return t.bytesFor(2, 3 * t.blockSize) === 6 * t.typeSize && t.bytesFor(1, t.blockSize) === t.typeSize;
}

function layoutPipeline(device: GPUDevice, name: string, files: readonly string[], wgSize: number) {
  return getPipeline(device, { name, code: () => composeShader(files), constants: { WG_SIZE: wgSize } });
}

function layoutWgSize(limits: GpuLimits): number {
  return Math.min(CODEC_WG_SIZE, limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX);
}

/** A buffer holding a whole tensor's per-row / per-column data must fit one binding. */
function requireBinding(bytes: number, limits: GpuLimits, what: string): void {
  if (bytes > chunkByteLimit(limits)) {
    throw new RangeError(`${what}: ${bytes} bytes exceed the ${chunkByteLimit(limits)}-byte storage binding this device allows`);
  }
}

/** Run one compute pass of `invocations` invocations over `buffers` (bindings 0, 1, ...) and submit it. */
function dispatchPass(gpu: GpuContext, label: string, pipeline: GPUComputePipeline, buffers: readonly GPUBuffer[], invocations: number, wgSize: number): void {
  const { device, limits } = gpu;
  if (invocations <= 0) return;
  const bindGroup = device.createBindGroup({
    label: `${label}.bindgroup`,
    layout: pipeline.getBindGroupLayout(0),
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const enc = device.createCommandEncoder({ label: `${label}.encoder` });
  const pass = enc.beginComputePass({ label: `${label}.pass` });
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(...dispatchSize(Math.ceil(invocations / wgSize), limits));
  pass.end();
  device.queue.submit([enc.finish()]);
}

/** Copy `bytes` bytes of `from` to the host (through `readback`, at least that large). */
async function readBack(device: GPUDevice, label: string, from: GPUBuffer, readback: GPUBuffer, bytes: number): Promise<Uint8Array> {
  if (bytes === 0) return new Uint8Array(0);
  const size = align4(bytes);
  const enc = device.createCommandEncoder({ label: `${label}.readback` });
  enc.copyBufferToBuffer(from, 0, readback, 0, size);
  device.queue.submit([enc.finish()]);
  await readback.mapAsync(GPUMapMode.READ, 0, size);
  const out = new Uint8Array(readback.getMappedRange(0, size).slice(0, bytes));
  readback.unmap();
  return out;
}

function buffer(device: GPUDevice, label: string, bytes: number, usage: number): GPUBuffer {
  return device.createBuffer({ label, size: Math.max(4, align4(bytes)), usage });
}

// Functions, not constants: in Node, Dawn installs GPUBufferUsage when the first device is made.
const storageIn = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
const storageOut = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** Values per chunk of a byte layout: a multiple of 4 (whole words of codes) whose f32s fit a binding. */
function byteLayoutChunk(limits: GpuLimits, wgSize: number): number {
  const maxX = limits.maxComputeWorkgroupsPerDimension;
  const values = Math.min(Math.floor(chunkByteLimit(limits) / 16) * 4, maxX * maxX * wgSize * 4);
  if (values < 4) throw new RangeError('byte layouts: four f32 values do not fit the storage binding limit');
  return values;
}

async function quantizeBytes(gpu: GpuContext, t: QuantType, layout: ByteLayout, data: Float32Array, rowLength: number): Promise<Uint8Array> {
  const { device, limits } = gpu;
  const n = data.length;
  if (n > MAX_LAYOUT_VALUES) throw new RangeError(`quantizeOnGpu ${t.id}: ${n} values exceed ${MAX_LAYOUT_VALUES}`);
  const rows = n / rowLength;
  const segments = layout.perTensor ? 1 : rows;
  const segLen = layout.perTensor ? WHOLE_TENSOR : rowLength;
  const label = `quantize.${t.id}`;
  requireBinding(segments * 4, limits, label);
  if (layout.outliers) requireBinding(rowLength * 4, limits, label);
  const wgSize = layoutWgSize(limits);
  const chunk = byteLayoutChunk(limits, wgSize);
  const codecFiles = [...LAYOUT_LIBS, layout.lib, `codecs/${t.wgsl}.wgsl`];
  const [absmaxPipe, paramsPipe, encodePipe, columnsPipe] = await Promise.all([
    layoutPipeline(device, 'absmax', ['kernels/absmax.wgsl'], wgSize),
    layoutPipeline(device, `segment_params.${t.wgsl}`, [...codecFiles, 'kernels/segment_params.wgsl'], wgSize),
    layoutPipeline(device, `bytes_quantize.${t.wgsl}`, [...codecFiles, 'kernels/bytes_quantize.wgsl'], wgSize),
    layout.outliers ? layoutPipeline(device, 'outlier_columns', ['kernels/outlier_columns.wgsl'], wgSize) : undefined,
  ]);

  return withErrorScopes(gpu, label, async () => {
    const src = buffer(device, `${label}.src`, Math.min(chunk, n) * 4, storageIn());
    const segMax = buffer(device, `${label}.segment-absmax`, segments * 4, storageOut());
    const segParam = buffer(device, `${label}.segment-params`, segments * 4, storageOut());
    const mask = buffer(device, `${label}.columns`, layout.outliers ? rowLength * 4 : 4, storageOut());
    const dst = buffer(device, `${label}.codes`, Math.min(chunk, n), storageOut());
    const params = buffer(device, `${label}.params`, 32, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    let records = buffer(device, `${label}.records`, 4, storageOut());
    const readback = buffer(device, `${label}.readback`, Math.max(Math.min(chunk, n), segments * 4, layout.outliers ? rowLength * 4 : 0), GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    const owned = [src, segMax, segParam, mask, dst, params, readback];
    try {
      let resident = -1; // first value of the chunk now in `src`
      const upload = (first: number, count: number) => {
        if (resident === first) return;
        device.queue.writeBuffer(src, 0, data as Float32Array<ArrayBuffer>, first, count);
        resident = first;
      };
      const setParams = (...words: number[]) => device.queue.writeBuffer(params, 0, new Uint32Array([...words, 0, 0, 0, 0, 0, 0, 0, 0].slice(0, 8)));
      const chunks = (fn: (first: number, count: number) => void | Promise<void>) =>
        (async () => {
          for (let first = 0; first < n; first += chunk) await fn(first, Math.min(chunk, n - first));
        })();

      // 1. int8_outlier: the columns with any |x| >= 6, flagged on the GPU; their list here.
      let columns: number[] = [];
      const recordBytes = outlierRecordBytes(rows);
      if (layout.outliers) {
        await chunks((first, count) => {
          upload(first, count);
          setParams(count, first, rowLength, 0);
          dispatchPass(gpu, `${label}.outlier-columns`, columnsPipe!, [src, mask, params], Math.ceil(count / SCAN_VALUES_PER_INVOCATION), wgSize);
        });
        const flags = new Uint32Array((await readBack(device, label, mask, readback, rowLength * 4)).buffer);
        columns = [...flags.keys()].filter((c) => flags[c] !== 0);
        // mask[c] = k + 1 for the k-th outlier column; each record starts with its column.
        const recordIndex = new Uint32Array(rowLength);
        columns.forEach((c, k) => (recordIndex[c] = k + 1));
        device.queue.writeBuffer(mask, 0, recordIndex);
        requireBinding(columns.length * recordBytes, limits, label);
        records.destroy();
        records = buffer(device, `${label}.records`, columns.length * recordBytes, storageOut());
        const heads = new Uint32Array(Math.max(1, (columns.length * recordBytes) / 4));
        columns.forEach((c, k) => (heads[(k * recordBytes) / 4] = c));
        device.queue.writeBuffer(records, 0, heads);
      }

      // 2. Absmax per segment, 3. the segments' parameters (127 / absmax, or the scale).
      const flags = (layout.finiteOnly ? 1 : 0) | (layout.outliers ? 2 : 0);
      await chunks((first, count) => {
        upload(first, count);
        setParams(count, first, segLen, flags);
        dispatchPass(gpu, `${label}.absmax`, absmaxPipe, [src, segMax, params, mask], Math.ceil(count / SCAN_VALUES_PER_INVOCATION), wgSize);
      });
      setParams(segments, 0, 0, 0);
      dispatchPass(gpu, `${label}.segment-params`, paramsPipe, [segMax, segParam, params], segments, wgSize);

      // 4. Codes, chunk by chunk (and the outlier values into their records).
      const codes = new Uint8Array(n);
      const recWords = recordBytes / 4;
      await chunks(async (first, count) => {
        upload(first, count);
        setParams(count, first, segLen, layout.outliers ? 1 : 0, recWords, 0);
        dispatchPass(gpu, `${label}.encode`, encodePipe, [src, dst, params, segParam, mask, records], Math.ceil(count / 4), wgSize);
        codes.set(await readBack(device, label, dst, readback, count), first);
      });

      if (layout.perTensor) {
        // FP8: [f32 scale | codes].
        const out = new Uint8Array(4 + n);
        out.set(await readBack(device, label, segParam, readback, 4));
        out.set(codes, 4);
        return out;
      }
      // INT8: [codes, zero-padded to 4 | f32 absmax per row | outlier records].
      const base = int8Bytes(rows, rowLength);
      const out = new Uint8Array(base + columns.length * recordBytes);
      out.set(codes);
      out.set(await readBack(device, label, segMax, readback, rows * 4), base - rows * 4);
      if (columns.length) {
        const recBuf = buffer(device, `${label}.records-readback`, columns.length * recordBytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
        owned.push(recBuf);
        out.set(await readBack(device, label, records, recBuf, columns.length * recordBytes), base);
      }
      return out;
    } finally {
      for (const b of owned) b.destroy();
      records.destroy();
    }
  });
}

async function dequantizeBytes(gpu: GpuContext, t: QuantType, layout: ByteLayout, bytes: Uint8Array, rows: number, rowLength: number): Promise<Float32Array> {
  const { device, limits } = gpu;
  const n = rows * rowLength;
  const label = `dequantize.${t.id}`;
  if (n > MAX_LAYOUT_VALUES) throw new RangeError(`dequantizeOnGpu ${t.id}: ${n} values exceed ${MAX_LAYOUT_VALUES}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The sections, checked as the CPU codec checks them.
  let codesAt = 0;
  let segValues: Uint32Array;
  let recordIndex = new Uint32Array(1);
  let recordWords = new Uint32Array(1);
  const recordBytes = outlierRecordBytes(rows);
  if (layout.perTensor) {
    if (bytes.length !== fp8Bytes(rows, rowLength)) throw new RangeError(`${t.id}: expected ${fp8Bytes(rows, rowLength)} bytes, got ${bytes.length}`);
    codesAt = 4;
    segValues = Uint32Array.of(view.getUint32(0, true));
  } else {
    const base = int8Bytes(rows, rowLength);
    const extra = bytes.length - base;
    const ok = layout.outliers ? extra >= 0 && extra % recordBytes === 0 : extra === 0;
    if (!ok) throw new RangeError(`${t.id}: ${bytes.length} bytes do not hold ${rows} rows of ${rowLength}`);
    segValues = Uint32Array.from({ length: rows }, (_, r) => view.getUint32(base - 4 * rows + 4 * r, true));
    if (layout.outliers && extra > 0) {
      recordIndex = new Uint32Array(rowLength);
      for (let k = 0, at = base; at < bytes.length; k++, at += recordBytes) {
        const column = view.getUint32(at, true);
        if (column >= rowLength) throw new RangeError(`${t.id}: outlier column ${column} at byte ${at} is past the row length ${rowLength}`);
        recordIndex[column] = k + 1; // a repeated column: the later record wins, as on the CPU
      }
      recordWords = new Uint32Array(bytes.slice(base).buffer);
    }
  }
  const segments = segValues.length;
  requireBinding(segments * 4, limits, label);
  requireBinding(recordIndex.byteLength, limits, label);
  requireBinding(recordWords.byteLength, limits, label);
  const wgSize = layoutWgSize(limits);
  const chunk = byteLayoutChunk(limits, wgSize);
  const pipeline = await layoutPipeline(device, `bytes_dequantize.${t.wgsl}`, [...LAYOUT_LIBS, layout.lib, `codecs/${t.wgsl}.wgsl`, 'kernels/bytes_dequantize.wgsl'], wgSize);
  const out = new Float32Array(n);
  const outBytes = new Uint8Array(out.buffer);

  await withErrorScopes(gpu, label, async () => {
    const src = buffer(device, `${label}.codes`, Math.min(chunk, n), storageIn());
    const dst = buffer(device, `${label}.dst`, Math.min(chunk, n) * 4, storageOut());
    const params = buffer(device, `${label}.params`, 32, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    const segBuf = buffer(device, `${label}.segment-values`, segments * 4, storageIn());
    const mask = buffer(device, `${label}.columns`, recordIndex.byteLength, storageIn());
    const records = buffer(device, `${label}.records`, recordWords.byteLength, storageIn());
    const readback = buffer(device, `${label}.readback`, Math.min(chunk, n) * 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    try {
      device.queue.writeBuffer(segBuf, 0, segValues as Uint32Array<ArrayBuffer>);
      device.queue.writeBuffer(mask, 0, recordIndex as Uint32Array<ArrayBuffer>);
      device.queue.writeBuffer(records, 0, recordWords as Uint32Array<ArrayBuffer>);
      const staging = new Uint8Array(align4(Math.min(chunk, n)));
      for (let first = 0; first < n; first += chunk) {
        const count = Math.min(chunk, n - first);
        staging.fill(0);
        staging.set(bytes.subarray(codesAt + first, codesAt + first + count));
        device.queue.writeBuffer(src, 0, staging, 0, align4(count));
        device.queue.writeBuffer(params, 0, new Uint32Array([count, first, layout.perTensor ? WHOLE_TENSOR : rowLength, layout.outliers ? 1 : 0, recordBytes / 4, 0, 0, 0]));
        dispatchPass(gpu, `${label}.decode`, pipeline, [src, dst, params, segBuf, mask, records], Math.ceil(count / 4), wgSize);
        outBytes.set(await readBack(device, label, dst, readback, count * 4), first * 4);
      }
    } finally {
      for (const b of [src, dst, params, segBuf, mask, records, readback]) b.destroy();
    }
  });
  return out;
}

/** NF4_DQ / FP4_DQ's double-quantization pass: 'encode' fills codes and scales, 'decode' absmax. */
async function runDoubleQuant(gpu: GpuContext, t: QuantType, mode: 'encode' | 'decode', absmax: Uint32Array, offsetBits: number, codes: Uint8Array, scales: Uint32Array): Promise<void> {
  const { device, limits } = gpu;
  const blocks = absmax.length;
  const label = `${mode === 'encode' ? 'quantize' : 'dequantize'}.${t.id}.absmax`;
  const wgSize = layoutWgSize(limits);
  // Chunks of whole groups (one f32 scale each): their absmax words must fit a binding.
  const groupsPerChunk = Math.floor(chunkByteLimit(limits) / (DQ_GROUP_BLOCKS * 4));
  if (groupsPerChunk < 1) throw new RangeError(`${label}: ${DQ_GROUP_BLOCKS} absmax values do not fit the storage binding limit`);
  const chunkBlocks = groupsPerChunk * DQ_GROUP_BLOCKS;
  const pipeline = await layoutPipeline(device, `dq_absmax.${t.wgsl}`, [...LAYOUT_LIBS, `codecs/${t.wgsl}.wgsl`, 'kernels/dq_absmax.wgsl'], wgSize);
  // The signed dynamic map and the midpoints nf4.ts's quantizeDynamic compares with.
  const map = new Float32Array(2 * DYNAMIC_MAP.length - 1);
  map.set(DYNAMIC_MAP);
  for (let i = 0; i + 1 < DYNAMIC_MAP.length; i++) map[DYNAMIC_MAP.length + i] = Math.fround(Math.fround(DYNAMIC_MAP[i] + DYNAMIC_MAP[i + 1]) / 2);

  await withErrorScopes(gpu, label, async () => {
    const size = Math.min(chunkBlocks, Math.max(blocks, 1));
    const absBuf = buffer(device, `${label}.absmax`, size * 4, storageOut());
    const codeBuf = buffer(device, `${label}.codes`, size, storageOut());
    const scaleBuf = buffer(device, `${label}.scales`, Math.ceil(size / DQ_GROUP_BLOCKS) * 4, storageOut());
    const params = buffer(device, `${label}.params`, 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    const mapBuf = buffer(device, `${label}.map`, map.byteLength, storageIn());
    const readback = buffer(device, `${label}.readback`, size * 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    try {
      device.queue.writeBuffer(mapBuf, 0, map);
      for (let first = 0; first < blocks; first += chunkBlocks) {
        const count = Math.min(chunkBlocks, blocks - first);
        const groups = Math.ceil(count / DQ_GROUP_BLOCKS);
        const g0 = first / DQ_GROUP_BLOCKS;
        device.queue.writeBuffer(params, 0, new Uint32Array([count, mode === 'encode' ? 0 : 1, offsetBits, 0]));
        if (mode === 'encode') {
          device.queue.writeBuffer(absBuf, 0, absmax as Uint32Array<ArrayBuffer>, first, count);
          dispatchPass(gpu, `${label}.encode`, pipeline, [absBuf, codeBuf, scaleBuf, params, mapBuf], groups, wgSize);
          codes.set(await readBack(device, label, codeBuf, readback, count), first);
          scales.set(new Uint32Array((await readBack(device, label, scaleBuf, readback, groups * 4)).buffer), g0);
        } else {
          const staged = new Uint8Array(align4(count));
          staged.set(codes.subarray(first, first + count));
          device.queue.writeBuffer(codeBuf, 0, staged);
          device.queue.writeBuffer(scaleBuf, 0, scales as Uint32Array<ArrayBuffer>, g0, groups);
          dispatchPass(gpu, `${label}.decode`, pipeline, [absBuf, codeBuf, scaleBuf, params, mapBuf], count, wgSize);
          absmax.set(new Uint32Array((await readBack(device, label, absBuf, readback, count * 4)).buffer), first);
        }
      }
    } finally {
      for (const b of [absBuf, codeBuf, scaleBuf, params, mapBuf, readback]) b.destroy();
    }
  });
}

/** A staged NF4 / FP4 block (codecs/nf4.wgsl): f32 absmax, then the codes the _dq layout keeps. */
const DQ_STAGED_BYTES = NF4_BLOCK_BYTES;
const DQ_CODE_BYTES = NF4_BLOCK_BYTES - 4;

async function quantizeDoubleQuant(gpu: GpuContext, t: QuantType, base: QuantType, data: Float32Array, rowLength: number): Promise<{ bytes: Uint8Array; report: GpuQuantizeReport }> {
  // Codes and absmax: the base block codec, on the GPU.
  const staged = await quantizeOnGpuDetailed(gpu, base, data, rowLength);
  const blocks = data.length / base.blockSize;
  const layout = dqLayout(blocks);
  const out = new Uint8Array(layout.bytes);
  const view = new DataView(out.buffer);
  const sv = new DataView(staged.bytes.buffer, staged.bytes.byteOffset, staged.bytes.byteLength);
  const absmax = new Uint32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    absmax[b] = sv.getUint32(b * DQ_STAGED_BYTES, true);
    out.set(staged.bytes.subarray(b * DQ_STAGED_BYTES + 4, (b + 1) * DQ_STAGED_BYTES), b * DQ_CODE_BYTES);
  }
  // The offset: the mean absmax, summed in f64 in block order as nf4.ts does (on the CPU).
  const values = new Float32Array(absmax.buffer);
  let sum = 0;
  for (let b = 0; b < blocks; b++) sum += values[b];
  const offset = blocks === 0 ? 0 : Math.fround(sum / blocks);
  // The absmax values in 8 bits, with a scale per group of 256 blocks: on the GPU.
  const codes = new Uint8Array(blocks);
  const scales = new Uint32Array(layout.groups);
  await runDoubleQuant(gpu, t, 'encode', absmax, new Uint32Array(Float32Array.of(offset).buffer)[0], codes, scales);
  out.set(codes, layout.absmaxCodesAt);
  for (let g = 0; g < layout.groups; g++) view.setUint32(layout.groupScalesAt + 4 * g, scales[g], true);
  view.setFloat32(layout.offsetAt, offset, true);
  return { bytes: out, report: staged.report };
}

async function dequantizeDoubleQuant(gpu: GpuContext, t: QuantType, base: QuantType, bytes: Uint8Array, rows: number, rowLength: number): Promise<Float32Array> {
  const blocks = checkShape(base, rows * rowLength, rowLength, 'dequantizeOnGpu');
  const layout = dqLayout(blocks);
  if (bytes.length !== layout.bytes) throw new RangeError(`dequantizeOnGpu ${t.id}: ${bytes.length} bytes, expected ${layout.bytes} for ${rows} x ${rowLength}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const scales = Uint32Array.from({ length: layout.groups }, (_, g) => view.getUint32(layout.groupScalesAt + 4 * g, true));
  const absmax = new Uint32Array(blocks);
  await runDoubleQuant(gpu, t, 'decode', absmax, view.getUint32(layout.offsetAt, true), bytes.subarray(layout.absmaxCodesAt, layout.absmaxCodesAt + blocks), scales);
  // Staged base blocks (absmax + codes), dequantized by the base block codec.
  const staged = new Uint8Array(blocks * DQ_STAGED_BYTES);
  const sv = new DataView(staged.buffer);
  for (let b = 0; b < blocks; b++) {
    sv.setUint32(b * DQ_STAGED_BYTES, absmax[b], true);
    staged.set(bytes.subarray(b * DQ_CODE_BYTES, (b + 1) * DQ_CODE_BYTES), b * DQ_STAGED_BYTES + 4);
  }
  return dequantizeOnGpu(gpu, base, staged, rows, rowLength);
}

/** quantizeOnGpuDetailed for a type with its own layout. */
async function quantizeLayout(gpu: GpuContext, t: QuantType, layout: GpuLayout, data: Float32Array, rowLength: number): Promise<{ bytes: Uint8Array; report: GpuQuantizeReport }> {
  checkShape(t, data.length, rowLength, 'quantizeOnGpu');
  if (layout.kind === 'dq') return quantizeDoubleQuant(gpu, t, resolveType(layout.base), data, rowLength);
  return { bytes: await quantizeBytes(gpu, t, layout, data, rowLength), report: { cpuBlocks: [] } };
}

/** dequantizeOnGpu for a type with its own layout. */
function dequantizeLayout(gpu: GpuContext, t: QuantType, layout: GpuLayout, bytes: Uint8Array, rows: number, rowLength: number): Promise<Float32Array> {
  checkShape(t, rows * rowLength, rowLength, 'dequantizeOnGpu');
  if (layout.kind === 'dq') return dequantizeDoubleQuant(gpu, t, resolveType(layout.base), bytes, rows, rowLength);
  return dequantizeBytes(gpu, t, layout, bytes, rows, rowLength);
}
