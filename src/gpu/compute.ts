// The two ways the engine computes: WebGPU kernels or the CPU reference codecs. One
// interface, so every job is written once; each result records which one did the work.
import type { GpuContext } from './device.ts';
import { chainRunsType, quantizeErrorsOnGpu, type ChainOptions } from './compare-chain.ts';
import { errorStatsOnGpu, type GpuErrorStats } from './error-stats.ts';
import { dequantizeOnGpu, gpuEncodesType, quantizeOnGpu } from './quantize.ts';
import { accumulateErrors, errorHistogram, type ErrorSums, type Histogram } from '../quant/metrics.ts';
import type { QuantType } from '../quant/types.ts';

/** Who did the work. */
export type Backend = 'webgpu' | 'cpu';

export interface ErrorReport {
  sums: ErrorSums;
  histogram: Histogram | null;
}

export interface Compute {
  readonly backend: Backend;
  /**
   * Whether this compute runs `type` itself, encoding included: a job's result says
   * 'webgpu' only for work the GPU did (a decode-only type runs on the CPU whole).
   */
  supports(type: QuantType): boolean;
  quantize(type: QuantType, data: Float32Array, rowLength: number): Promise<Uint8Array>;
  dequantize(type: QuantType, bytes: Uint8Array, rows: number, rowLength: number): Promise<Float32Array>;
  errors(ref: Float32Array, approx: Float32Array, histogram?: { lo: number; hi: number; bins: number }): Promise<ErrorReport>;
  /**
   * Quantize, dequantize and measure in one chain on the device (compare-chain.ts): only the
   * sums (or with sums: false only the maximum |error|), the bins and an inspected block come
   * back. Absent on the CPU. Null when the type is not chained or the chain cannot give the
   * round trips' result (a block needed the CPU encoder): the caller then takes those.
   */
  measure?(type: QuantType, data: Float32Array, rowLength: number, options: ChainOptions): Promise<Measured | null>;
}

export interface Measured {
  report: ErrorReport;
  inspected?: { dequantized: Float32Array; bytes: Uint8Array };
}

/** The GPU's statistics as the jobs' ErrorSums. */
function sumsOf(s: GpuErrorStats): ErrorSums {
  return {
    count: s.count,
    sumSqErr: s.sumSqErr,
    sumAbsErr: s.sumAbsErr,
    // A NaN or infinite value is an error the user must see, not one to drop.
    maxAbsErr: s.nonFinite > 0 ? NaN : s.maxAbsErr,
    sumSqRef: s.sumSqRef,
    sumSqDeq: s.sumSqApprox,
    dot: s.dot,
  };
}

function histogramOf(s: GpuErrorStats): Histogram | null {
  return s.histogram
    ? { min: s.histogram.lo, max: s.histogram.hi, counts: [...s.histogram.counts], below: s.histogram.below, above: s.histogram.above }
    : null;
}

export const cpuCompute: Compute = {
  backend: 'cpu',
  supports: () => true,
  quantize: async (type, data, rowLength) => type.codec.encode(data, rowLength),
  dequantize: async (type, bytes, rows, rowLength) => type.codec.decode(bytes, rows, rowLength),
  errors: async (ref, approx, h) => ({
    sums: accumulateErrors(ref, approx),
    histogram: h ? errorHistogram(ref, approx, h.lo, h.hi, h.bins) : null,
  }),
};

export function gpuCompute(gpu: GpuContext): Compute {
  return {
    backend: 'webgpu',
    supports: (type) => gpuEncodesType(type),
    quantize: (type, data, rowLength) => quantizeOnGpu(gpu, type, data, rowLength),
    dequantize: (type, bytes, rows, rowLength) => dequantizeOnGpu(gpu, type, bytes, rows, rowLength),
    errors: async (ref, approx, h) => {
      const s = await errorStatsOnGpu(gpu, ref, approx, h ? { histogram: h } : {});
      return { sums: sumsOf(s), histogram: histogramOf(s) };
    },
    measure: async (type, data, rowLength, options) => {
      if (!chainRunsType(type)) return null;
      const r = await quantizeErrorsOnGpu(gpu, type, data, rowLength, options);
      return r && { report: { sums: sumsOf(r.stats), histogram: histogramOf(r.stats) }, ...(r.inspected ? { inspected: r.inspected } : {}) };
    },
  };
}
