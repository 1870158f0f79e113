// Compare without round trips: quantize -> dequantize -> error statistics (+ histogram) on
// buffers that stay on the GPU. Per chunk of the tensor one command buffer runs the three
// kernels (and any_set.wgsl over the quantize kernel's to-CPU masks); the host reads back
// only what the compare shows: the per-tile partial sums (the same f32 values that
// errorStatsOnGpu adds, in the same order, so the sums are identical to quantize, read
// back, dequantize, read back, errorStatsOnGpu), or with `sums: false` only the maximum
// |error| and the non-finite count; the histogram bins; and the one block the inspector
// shows. Two sets of chunk buffers alternate (double buffering): chunk i+1 is written and
// submitted before chunk i's partials are read.
//
// Runs block-sequence types whose WGSL codec encodes (chainRunsType). A block the quantize
// kernel hands to the CPU (block_to_cpu: K-quant scales reaching f32 subnormals) would
// change the bytes the dequantize kernel reads: the chain then answers null and the caller
// takes the round-trip path, whose bytes include the CPU's blocks.
import type { QuantType } from '../quant/types.ts';
import { checkShape, groupBlocks } from './block-codecs.ts';
import { mapRead, submit } from './counters.ts';
import type { GpuContext } from './device.ts';
import { align4, chunkByteLimit, dispatchSize, kernelPipeline, kernelWgSize, withErrorScopes } from './dispatch.ts';
import {
  addPartials,
  checkHistogram,
  encodeStatsPass,
  histogramScale,
  newAccumulator,
  STATS_PARTIALS,
  statsFromAccumulator,
  statsPipelineFor,
  statsShape,
  type GpuErrorStats,
  type HistogramSpec,
} from './error-stats.ts';
import { codecPipeline } from './pipelines.ts';
import { hasCodecEncoder } from './shaders.ts';

/** Elements [start, start + count) of the dequantized tensor and bytes [byteStart, +byteCount) of its blocks, read back. */
export interface InspectWindow {
  start: number;
  count: number;
  byteStart: number;
  byteCount: number;
}

export interface ChainOptions {
  /** Read the per-tile partials back (every sum); false: only max |error| and the non-finite count. */
  sums: boolean;
  histogram?: HistogramSpec;
  inspect?: InspectWindow;
}

export interface ChainResult {
  /** With sums: false, only count, nonFinite and maxAbsErr are meaningful (the sums are 0). */
  stats: GpuErrorStats;
  inspected?: { dequantized: Float32Array; bytes: Uint8Array };
}

/** Whether the chain runs `type`: a plain sequence of blocks with a WGSL encoder. */
export function chainRunsType(type: QuantType): boolean {
  return type.layout === 'blocks' && type.gpuLayout === undefined && hasCodecEncoder(type.wgsl);
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * Elements per chunk: whole stats tiles (so each tile's partial is the one errorStatsOnGpu
 * computes) and whole block groups, within the byte limit and the codec's dispatch size.
 */
function chunkElements(t: QuantType, gpu: GpuContext, n: number): number {
  const { tile } = statsShape(gpu.limits);
  const group = groupBlocks(t.typeSize) * t.blockSize;
  const unit = (tile / gcd(tile, group)) * group;
  const maxX = gpu.limits.maxComputeWorkgroupsPerDimension;
  const byBytes = Math.floor(chunkByteLimit(gpu.limits) / (unit * 4));
  const byDispatch = Math.floor((maxX * maxX * kernelWgSize(gpu.limits) * group) / unit);
  const units = Math.max(1, Math.min(byBytes, byDispatch));
  return Math.min(units, Math.max(1, Math.ceil(n / unit))) * unit;
}

/**
 * Quantize rows of `rowLength` values of `data` into `type`, dequantize, and measure the error
 * against `data`, all on the GPU. Null when a block needed the CPU encoder (see the header).
 */
export async function quantizeErrorsOnGpu(gpu: GpuContext, type: QuantType, data: Float32Array, rowLength: number, options: ChainOptions): Promise<ChainResult | null> {
  if (!chainRunsType(type)) throw new RangeError(`quantizeErrorsOnGpu ${type.id}: not a block type with a WGSL encoder`);
  const nBlocks = checkShape(type, data.length, rowLength, 'quantizeErrorsOnGpu');
  const h = options.histogram;
  checkHistogram(h, 'quantizeErrorsOnGpu');
  const inspect = options.inspect;
  const n = data.length;
  if (inspect && (inspect.start < 0 || inspect.start + inspect.count > n || inspect.byteStart < 0 || inspect.byteStart + inspect.byteCount > nBlocks * type.typeSize)) {
    throw new RangeError(`quantizeErrorsOnGpu ${type.id}: inspect window outside the tensor`);
  }
  const { device, limits } = gpu;
  const label = `chain.${type.id}`;
  const g = groupBlocks(type.typeSize);
  const wgSize = kernelWgSize(limits);
  const { tile } = statsShape(limits);
  const chunk = chunkElements(type, gpu, n);
  const chunkBlocks = chunk / type.blockSize;
  const chunkGroups = chunkBlocks / g;
  const chunkTiles = chunk / tile;
  const bins = h?.bins ?? 0;
  const [quantize, dequantize, stats, anySet] = await Promise.all([
    codecPipeline(device, 'quantize', type.wgsl, wgSize, false),
    codecPipeline(device, 'dequantize', type.wgsl, wgSize),
    statsPipelineFor(gpu),
    kernelPipeline(device, 'any_set', ['kernels/any_set.wgsl'], wgSize),
  ]);

  return withErrorScopes(gpu, label, async () => {
    const made: GPUBuffer[] = [];
    const buf = (name: string, size: number, usage: number) => {
      const b = device.createBuffer({ label: `${label}.${name}`, size: Math.max(4, align4(size)), usage });
      made.push(b);
      return b;
    };
    const STORAGE = GPUBufferUsage.STORAGE;
    const COPY_SRC = GPUBufferUsage.COPY_SRC;
    const COPY_DST = GPUBufferUsage.COPY_DST;
    const UNIFORM = GPUBufferUsage.UNIFORM | COPY_DST;
    // Shared across chunks: the parameters (queue-ordered writes), the histogram, totals and flag.
    const codecParams = buf('codec-params', 16, UNIFORM);
    const statsParams = buf('stats-params', 16, UNIFORM);
    const anyParams = buf('any-params', 16, UNIFORM);
    const hist = buf('histogram', (bins + 2) * 4, STORAGE | COPY_SRC);
    const totals = buf('totals', 8, STORAGE | COPY_SRC);
    const flag = buf('to-cpu-flag', 4, STORAGE | COPY_SRC);
    const noImportance = buf('importance', 16, STORAGE);
    // The last readback: totals, flag, bins, the inspected values and bytes, then (sums) the
    // last chunk's partials: one readback per chunk, so a compare never maps more than it submits.
    const histAt = 16;
    const inspectAt = histAt + (bins + 2) * 4;
    const inspectBytesAt = inspectAt + (inspect ? inspect.count * 4 : 0);
    const inspectWords = inspect ? align4((inspect.byteStart % 4) + inspect.byteCount) : 0;
    const partialsAt = inspectBytesAt + inspectWords;
    const finalBuf = buf('final.readback', partialsAt + (options.sums ? chunkTiles * STATS_PARTIALS * 4 : 0), GPUBufferUsage.MAP_READ | COPY_DST);

    const sets = [0, 1].map((k) => {
      const src = buf(`src.${k}`, chunk * 4, STORAGE | COPY_DST);
      const blocks = buf(`blocks.${k}`, chunkGroups * g * type.typeSize, STORAGE | COPY_SRC);
      const deq = buf(`deq.${k}`, chunk * 4, STORAGE | COPY_SRC);
      const masks = buf(`masks.${k}`, chunkGroups * 4, STORAGE);
      const partials = buf(`partials.${k}`, chunkTiles * STATS_PARTIALS * 4, STORAGE | COPY_SRC);
      const readback = options.sums ? buf(`partials.readback.${k}`, chunkTiles * STATS_PARTIALS * 4, GPUBufferUsage.MAP_READ | COPY_DST) : undefined;
      const group = (pipeline: GPUComputePipeline, buffers: GPUBuffer[]) =>
        device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })) });
      return {
        src,
        blocks,
        deq,
        partials,
        readback,
        masks,
        quantize: group(quantize, [src, blocks, codecParams, masks, noImportance]),
        dequantize: group(dequantize, [blocks, deq, codecParams]),
        stats: group(stats, [src, deq, partials, hist, statsParams, totals]),
        anySet: group(anySet, [masks, flag, anyParams]),
        tiles: 0,
      };
    });

    const acc = newAccumulator();
    const statsParamData = new ArrayBuffer(16);
    const readPartials = async (set: (typeof sets)[number]) => {
      if (!set.readback || set.tiles === 0) return;
      await mapRead(device, set.readback, 0, set.tiles * STATS_PARTIALS * 4);
      addPartials(acc, new Float32Array(set.readback.getMappedRange(0, set.tiles * STATS_PARTIALS * 4)), set.tiles);
      set.readback.unmap();
    };
    try {
      const nChunks = Math.max(1, Math.ceil(n / chunk));
      for (let c = 0; c < nChunks; c++) {
        const set = sets[c % 2];
        // Set c % 2 last ran chunk c - 2: its partials must be read (or its work done) first.
        if (c >= 2) {
          if (options.sums) await readPartials(set);
          else await device.queue.onSubmittedWorkDone();
        }
        const first = c * chunk;
        const count = Math.min(chunk, n - first);
        const blocks = count / type.blockSize;
        const groups = Math.ceil(blocks / g);
        if (count > 0) device.queue.writeBuffer(set.src, 0, data as Float32Array<ArrayBuffer>, first, count);
        device.queue.writeBuffer(codecParams, 0, new Uint32Array([blocks, 0, 0, 0]));
        device.queue.writeBuffer(anyParams, 0, new Uint32Array([groups, 0, 0, 0]));
        new Uint32Array(statsParamData, 0, 2).set([count, bins]);
        new Float32Array(statsParamData, 8, 2).set([h?.lo ?? 0, h ? histogramScale(h) : 0]);
        device.queue.writeBuffer(statsParams, 0, statsParamData);
        const enc = device.createCommandEncoder({ label: `${label}.encoder.${c}` });
        if (blocks > 0) {
          const codecWgs = dispatchSize(Math.ceil(groups / wgSize), limits);
          const pass = enc.beginComputePass({ label: `${label}.codecs.${c}` });
          pass.setPipeline(quantize);
          pass.setBindGroup(0, set.quantize);
          pass.dispatchWorkgroups(...codecWgs);
          pass.setPipeline(anySet);
          pass.setBindGroup(0, set.anySet);
          pass.dispatchWorkgroups(Math.min(64, Math.ceil(groups / wgSize)));
          pass.setPipeline(dequantize);
          pass.setBindGroup(0, set.dequantize);
          pass.dispatchWorkgroups(...codecWgs);
          pass.end();
        }
        set.tiles = Math.ceil(count / tile);
        encodeStatsPass(enc, `${label}.stats.${c}`, stats, set.stats, set.tiles, limits);
        const last = c === nChunks - 1;
        if (set.readback && set.tiles > 0) enc.copyBufferToBuffer(set.partials, 0, last ? finalBuf : set.readback, last ? partialsAt : 0, set.tiles * STATS_PARTIALS * 4);
        if (inspect && inspect.start >= first && inspect.start < first + count) {
          if (inspect.count > 0) enc.copyBufferToBuffer(set.deq, (inspect.start - first) * 4, finalBuf, inspectAt, inspect.count * 4);
          const at = inspect.byteStart - (first / type.blockSize) * type.typeSize;
          if (inspectWords > 0) enc.copyBufferToBuffer(set.blocks, at - (at % 4), finalBuf, inspectBytesAt, inspectWords);
        }
        if (last) {
          enc.copyBufferToBuffer(totals, 0, finalBuf, 0, 8);
          enc.copyBufferToBuffer(flag, 0, finalBuf, 8, 4);
          enc.copyBufferToBuffer(hist, 0, finalBuf, histAt, (bins + 2) * 4);
        }
        submit(device, [enc.finish()]);
        // Double buffering: read chunk c - 1's partials while chunk c runs.
        if (options.sums && c >= 1) {
          await readPartials(sets[(c - 1) % 2]);
          sets[(c - 1) % 2].tiles = 0;
        }
      }
      await mapRead(device, finalBuf);
      const mapped = finalBuf.getMappedRange();
      const lastSet = sets[(nChunks - 1) % 2];
      if (options.sums && lastSet.tiles > 0) addPartials(acc, new Float32Array(mapped, partialsAt, lastSet.tiles * STATS_PARTIALS), lastSet.tiles);
      const words = new Uint32Array(mapped, 0, 4);
      const toCpu = words[2];
      const maxAbsErr = new Float32Array(mapped, 0, 1)[0];
      const nonFinite = words[1];
      const counts = new Uint32Array(mapped.slice(histAt, histAt + (bins + 2) * 4));
      const inspected = inspect
        ? {
            dequantized: new Float32Array(mapped.slice(inspectAt, inspectAt + inspect.count * 4)),
            bytes: new Uint8Array(mapped.slice(inspectBytesAt + (inspect.byteStart % 4), inspectBytesAt + (inspect.byteStart % 4) + inspect.byteCount)),
          }
        : undefined;
      finalBuf.unmap();
      if (toCpu !== 0) return null;
      if (!options.sums) {
        acc.maxAbsErr = maxAbsErr;
        acc.nonFinite = nonFinite;
      }
      return { stats: statsFromAccumulator(n, acc, h, counts), ...(inspected ? { inspected } : {}) };
    } finally {
      for (const b of made) b.destroy();
    }
  });
}
