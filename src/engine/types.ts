// What crosses between the engine (a Web Worker in the browser, in-process in Node) and
// its callers: plain serializable data, never tensor bytes (house rule 7).
import type { ErrorMetrics, ErrorSums, Histogram } from '../quant/metrics.ts';

import type { Backend } from '../gpu/compute.ts';

export type { Backend };

export interface TensorSummary {
  name: string;
  /** ggml type name for GGUF, safetensors dtype name otherwise. */
  dtype: string;
  /** Row-major, outermost first; the last entry is the row length (GGUF ne0). */
  shape: number[];
  params: number;
  nbytes: number;
  file: string;
}

export interface ModelSummary {
  format: 'gguf' | 'safetensors';
  version: number;
  files: { name: string; size: number }[];
  architecture: string | null;
  /**
   * Why the forward pass (Model output, Calibration, the budget's KL scan) cannot run this
   * model, in one sentence; null when its architecture is one the forward pass has.
   */
  forwardPassRefusal: string | null;
  /** Display-ready metadata: long arrays shortened to their length and first values. */
  metadata: Record<string, string>;
  tensors: TensorSummary[];
  parameterCount: number;
  totalBytes: number;
}

export interface GpuStatus {
  backend: Backend;
  /** Adapter description when WebGPU is in use; why not, otherwise. */
  detail: string;
  /**
   * The CPU codecs that run what the GPU does not (all of it on the CPU backend): the
   * WebAssembly fast codecs, or the TypeScript reference (same bytes, slower).
   */
  cpuCodecs?: 'webassembly' | 'reference';
}

/** One block of a tensor, original and after a round trip through a type. */
export interface BlockView {
  index: number;
  original: number[];
  dequantized: number[];
  /** The distinct dequantized levels the block can take (its quantization grid), when known. */
  levels: number[];
  /** Scale / min fields of the block as decoded, for display. */
  fields: Record<string, number>;
}

export interface TypeResult {
  type: string;
  bpw: number;
  bytes: number;
  metrics: ErrorMetrics;
  sums: ErrorSums;
  histogram: Histogram;
  block: BlockView | null;
  backend: Backend;
  ms: number;
  /** Set instead of metrics when the type cannot apply to this tensor. */
  error?: string;
  /**
   * Set when the type's block does not divide the rows and the request asked for padding: the
   * rows were zero-padded to a whole number of blocks (bytes and bpw count the padding; the
   * error is measured on the tensor's own elements only). GGUF cannot store the tensor so.
   */
  padded?: PaddedRows;
  /** The importance matrix's entry for this tensor weighted the quantization (llama-quantize --imatrix). */
  imatrix?: boolean;
}

/** A padded comparison's rows: the tensor's row length and the block multiple it was padded to. */
export interface PaddedRows {
  rowLength: number;
  paddedRowLength: number;
}

export interface CompareRequest {
  tensor: string;
  types: string[];
  histogramBins?: number;
  /** Block to show in the inspector (in units of the largest block size among the types). */
  blockIndex?: number;
  /**
   * Compare a type whose block does not divide the rows on rows zero-padded to its block
   * (the result says `padded`) instead of refusing it. Default false: the CLI refuses as GGUF does.
   */
  pad?: boolean;
}

export interface CompareResult {
  tensor: string;
  shape: number[];
  backend: Backend;
  weightHistogram: Histogram;
  results: TypeResult[];
  /** Set when the tensor was too big to compare whole: the rows compared (evenly spaced runs) and all. */
  sampledRows?: { rows: number; of: number };
  /** What the job cost the GPU; null on the CPU backend. */
  gpu?: GpuUsage | null;
}

/**
 * A job's GPU round trips (src/gpu/counters.ts, engine/gpu-usage.ts): the adapter, forward
 * passes run, command buffers submitted, buffers read back and their bytes.
 */
export interface GpuUsage {
  adapter: string;
  forwardPasses: number;
  submits: number;
  readbacks: number;
  bytesReadBack: number;
}

export interface Progress {
  done: number;
  total: number;
  label: string;
}

/** The Calibration tab's comparison: its calibration text (default: built-in), INT4 group, GPTQ in act-order. */
export interface CalibrationCompareOptions {
  calibrationText?: string;
  group?: number;
  actOrder?: boolean;
}

/** The page's export options: `gptq` (with a Q4_0/Q4_K mode) writes GPTQ's blocks from that calibration text (default: built-in), in act-order if asked. */
export interface ExportJobOptions {
  gptq?: { text?: string; dataset?: string; actOrder?: boolean };
  awq?: { text?: string; dataset?: string };
  /** An importance matrix file for every tensor's quantization (llama-quantize --imatrix). */
  imatrix?: File;
}

/** What an importance matrix file holds (Engine.checkImatrix). */
export interface ImatrixSummary {
  name: string;
  /** Weights it has importance for. */
  entries: number;
  datasets: string[];
  chunkCount: number;
}
