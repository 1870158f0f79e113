// Error statistics of a quantization on the GPU (shaders/kernels/stats.wgsl): sums of
// squares, absolute errors, the dot product and an error histogram, reduced per workgroup
// on the GPU; only the partial sums (added here in f64) and the bins are read back.
import type { GpuContext } from './device.ts';
import { align4, chunkByteLimit, dispatchSize, withErrorScopes } from './dispatch.ts';
import { statsPipeline } from './pipelines.ts';
import { mapRead, submit } from './counters.ts';

/** Stats kernel: invocations per workgroup (a power of two) and elements per invocation. */
// 64 x 8: SwiftShader compiles a 256-wide workgroup with barriers 3-4x slower (4-7 s).
const STATS_WG_SIZE = 64;
const STATS_ELEMS_PER_THREAD = 8;
/** shaders/kernels/stats.wgsl's MAX_BINS: histogram bins that fit its workgroup memory. */
export const MAX_HISTOGRAM_BINS = 1024;
export const STATS_PARTIALS = 8;
/** Workgroups of one stats dispatch at most: each runs tiles in a grid-stride loop (stats.wgsl). */
const STATS_MAX_WGS = 1024;

/** The stats kernel's workgroup size and tile (elements per partial) on this device. */
export function statsShape(limits: GpuContext['limits']): { wgSize: number; tile: number } {
  const wgSize = Math.min(STATS_WG_SIZE, 2 ** Math.floor(Math.log2(limits.maxComputeInvocationsPerWorkgroup)), 2 ** Math.floor(Math.log2(limits.maxComputeWorkgroupSizeX)));
  return { wgSize, tile: wgSize * STATS_ELEMS_PER_THREAD };
}

/** The stats pipeline for this device's shape. */
export function statsPipelineFor(gpu: GpuContext): Promise<GPUComputePipeline> {
  return statsPipeline(gpu.device, statsShape(gpu.limits).wgSize, STATS_ELEMS_PER_THREAD);
}

/** Record the stats dispatch over `tiles` tiles (grid-stride: at most STATS_MAX_WGS workgroups). */
export function encodeStatsPass(enc: GPUCommandEncoder, label: string, pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, tiles: number, limits: GpuContext['limits']): void {
  if (tiles <= 0) return;
  const pass = enc.beginComputePass({ label });
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(...dispatchSize(Math.min(tiles, STATS_MAX_WGS), limits));
  pass.end();
}

/** Running sums of the per-tile partials, added in f64 in tile order. */
export interface StatsAccumulator {
  sumSqErr: number;
  sumSqRef: number;
  sumSqApprox: number;
  sumAbsErr: number;
  dot: number;
  maxAbsErr: number;
  nonFinite: number;
}

export function newAccumulator(): StatsAccumulator {
  return { sumSqErr: 0, sumSqRef: 0, sumSqApprox: 0, sumAbsErr: 0, dot: 0, maxAbsErr: 0, nonFinite: 0 };
}

/** Add `tiles` tiles' partials (stats.wgsl's layout) to acc, in order. */
export function addPartials(acc: StatsAccumulator, p: Float32Array, tiles: number): void {
  for (let w = 0; w < tiles; w++) {
    const o = w * STATS_PARTIALS;
    acc.sumSqErr += p[o];
    acc.sumSqRef += p[o + 1];
    acc.sumSqApprox += p[o + 2];
    acc.sumAbsErr += p[o + 3];
    acc.dot += p[o + 4];
    acc.maxAbsErr = Math.max(acc.maxAbsErr, p[o + 5]);
    acc.nonFinite += p[o + 6];
  }
}

/** The statistics of n pairs from their accumulated sums (and the bins: bins regular, then below, above). */
export function statsFromAccumulator(n: number, acc: StatsAccumulator, h: HistogramSpec | undefined, counts: Uint32Array): GpuErrorStats {
  const count = n - acc.nonFinite;
  const mse = count > 0 ? acc.sumSqErr / count : 0;
  const norms = Math.sqrt(acc.sumSqRef) * Math.sqrt(acc.sumSqApprox);
  const bins = h?.bins ?? 0;
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
      ? { lo: h.lo, hi: h.hi, scale: histogramScale(h), counts: counts.slice(0, bins), below: counts[bins], above: counts[bins + 1] }
      : undefined,
  };
}

/** The f32 factor the kernel bins with. */
export function histogramScale(h: HistogramSpec): number {
  return Math.fround(h.bins / (h.hi - h.lo));
}

/** A histogram spec the kernel takes, or a RangeError naming `what`. */
export function checkHistogram(h: HistogramSpec | undefined, what: string): void {
  if (h && (!Number.isInteger(h.bins) || h.bins < 1 || h.bins > MAX_HISTOGRAM_BINS || !(h.hi > h.lo))) {
    throw new RangeError(`${what}: histogram needs 1..${MAX_HISTOGRAM_BINS} bins and hi > lo`);
  }
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
  checkHistogram(h, 'errorStatsOnGpu');
  const { device, limits } = gpu;
  const label = 'stats';
  const { tile: perWg } = statsShape(limits);
  const chunkWgs = Math.max(1, Math.floor(chunkByteLimit(limits) / (perWg * 4)));
  const n = reference.length;
  const chunkElems = Math.min(chunkWgs * perWg, Math.max(n, 1));
  const wgsPerChunk = Math.ceil(chunkElems / perWg);
  const pipeline = await statsPipelineFor(gpu);
  const bins = h?.bins ?? 0;
  const scale = h ? histogramScale(h) : 0;

  const acc = newAccumulator();
  let counts = new Uint32Array(bins + 2);

  await withErrorScopes(gpu, label, async () => {
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
    const refBuf = device.createBuffer({ label: `${label}.reference`, size: align4(chunkElems * 4), usage });
    const apxBuf = device.createBuffer({ label: `${label}.approx`, size: align4(chunkElems * 4), usage });
    const partialBytes = wgsPerChunk * STATS_PARTIALS * 4;
    const partials = device.createBuffer({ label: `${label}.partials`, size: partialBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const histBytes = (bins + 2) * 4;
    const hist = device.createBuffer({ label: `${label}.histogram`, size: histBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const readback = device.createBuffer({ label: `${label}.readback`, size: partialBytes + histBytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const params = device.createBuffer({ label: `${label}.params`, size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    const totals = device.createBuffer({ label: `${label}.totals`, size: 8, usage: GPUBufferUsage.STORAGE });
    const bindGroup = device.createBindGroup({
      label: `${label}.bindgroup`,
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: refBuf } },
        { binding: 1, resource: { buffer: apxBuf } },
        { binding: 2, resource: { buffer: partials } },
        { binding: 3, resource: { buffer: hist } },
        { binding: 4, resource: { buffer: params } },
        { binding: 5, resource: { buffer: totals } },
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
        const enc = device.createCommandEncoder({ label: `${label}.encoder.${chunk}` });
        encodeStatsPass(enc, `${label}.pass.${chunk}`, pipeline, bindGroup, wgs, limits);
        const last = first + chunkElems >= n;
        const pBytes = wgs * STATS_PARTIALS * 4;
        if (pBytes > 0) enc.copyBufferToBuffer(partials, 0, readback, 0, pBytes);
        if (last) enc.copyBufferToBuffer(hist, 0, readback, partialBytes, histBytes);
        submit(device, [enc.finish()]);
        await mapRead(device, readback);
        const mapped = readback.getMappedRange();
        addPartials(acc, new Float32Array(mapped, 0, wgs * STATS_PARTIALS), wgs);
        if (last) counts = new Uint32Array(mapped.slice(partialBytes, partialBytes + histBytes));
        readback.unmap();
        if (last) break;
      }
    } finally {
      for (const b of [refBuf, apxBuf, partials, hist, readback, params, totals]) b.destroy();
    }
  });

  return statsFromAccumulator(n, acc, h, counts);
}
