// The export job: a planned GGUF file (plan.ts) streamed tensor by tensor, a slab of rows
// at a time (never a whole tensor in memory), shared by the CLI and the browser: a tensor
// that keeps its type is copied byte for byte; any other is read as f32 (dequantized first,
// as llama_tensor_dequantize_impl) and quantized with the type's codec
// (ggml_quantize_chunk), on the GPU where it can, with each matrix's imatrix slice.
import { type GgufLayout, writeGguf } from '../formats/gguf/write.ts';
import type { Backend, Compute } from '../gpu/compute.ts';
import type { GpuContext } from '../gpu/device.ts';
import { accumulateErrors, emptySums, mergeSums, metricsFromSums, type ErrorSums } from '../quant/metrics.ts';
import { type QuantizeJob, type QuantizeResult, joinResults, quantizeRows, splitJob } from '../quant/quantize-rows.ts';
import { quantType, type QuantType } from '../quant/types.ts';
import type { ExportPlan, ExportTensor } from './plan.ts';
import { type ExportSource, type RowRange, rowCount } from './source.ts';

/** Quantizes row ranges on the CPU: in this thread by default, or a worker pool (cli/quantize-pool.ts). */
export interface TensorQuantizer {
  quantize(job: QuantizeJob, signal?: AbortSignal): Promise<QuantizeResult>;
}

export type ExportBackend = Backend | 'copy';

/** One tensor as written. */
export interface TensorReport {
  readonly name: string;
  readonly sourceType: string;
  readonly type: string;
  /** Row-major shape (PyTorch order). */
  readonly shape: readonly number[];
  readonly bytes: number;
  /** RMSE of the written values against the f32 source (0 for a copy); null when not measured. */
  readonly rmse: number | null;
  readonly sums: ErrorSums | null;
  /** 'copy': bytes kept as they are; otherwise who quantized it. */
  readonly backend: ExportBackend;
  readonly ms: number;
  /** The rule that chose the type. */
  readonly reason: string;
  /** Set when the data was computed elsewhere (ExportRequest.precomputed): its method ('gptq'). */
  readonly method?: string;
}

/** done/total: bytes of the file produced so far (header included) and in all; label: the tensor at work. */
export interface ExportProgress {
  readonly done: number;
  readonly total: number;
  readonly label: string;
  readonly tensorsDone: number;
  readonly tensorCount: number;
}

/**
 * A GPU with the CPU as its fallback (the engine's Session, engine/session.ts, where the
 * fallback is written once): `gpuStep` runs on the GPU while its device lives (and, given
 * `type`, has that type's codec), `cpuStep` otherwise, or instead when the device is lost
 * during `gpuStep`.
 */
export interface GpuFallback {
  liveGpu(): GpuContext | undefined;
  withFallback<T>(gpuStep: (gpu: GpuContext, compute: Compute) => Promise<T>, cpuStep: () => Promise<T>, type?: QuantType): Promise<{ value: T; backend: Backend }>;
}

export interface ExportOptions {
  /** The GPU, for types it has a codec for (and no importance weights); else, and once the device is lost, the CPU. */
  readonly gpu?: GpuFallback;
  /** The CPU quantizer (default: this thread, in slabs). */
  readonly cpu?: TensorQuantizer;
  /**
   * Measure each tensor's error (default true); 'rmse': only what its RMSE needs (faster;
   * the reports' sums are then null).
   */
  readonly measure?: boolean | 'rmse';
  /** Stops the job before the next tensor or slab; the stream then throws signal.reason. */
  readonly signal?: AbortSignal;
  /** Before each tensor, after each slab and after the last tensor. */
  readonly onProgress?: (p: ExportProgress) => void;
  readonly onTensor?: (r: TensorReport) => void;
}

/** Elements per slab of the in-thread quantizer: between slabs it yields, so a cancel gets through. */
const INLINE_SLAB_ELEMENTS = 1 << 20;
/**
 * Elements of a tensor read and quantized at a time (4 MiB of f32): bounds the memory an
 * export holds whatever the tensor's size, as llama.cpp's max_buf_size does.
 */
export const SLAB_ELEMENTS = 1 << 20;

/** The CPU codecs in this thread, a slab of rows at a time. */
export const inlineQuantizer: TensorQuantizer = {
  async quantize(job, signal) {
    const rows = job.data.length / job.rowLength;
    const slabs = splitJob(job, Math.ceil((rows * job.rowLength) / INLINE_SLAB_ELEMENTS));
    const parts: QuantizeResult[] = [];
    for (const slab of slabs) {
      signal?.throwIfAborted();
      parts.push(quantizeRows(slab));
      if (slabs.length > 1) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    return parts.length === 1 ? parts[0] : joinResults(parts);
  },
};

/**
 * The output file as a stream of chunks: the header, then each tensor's data and padding,
 * a slab of rows at a time (never a whole tensor in memory). Reports each tensor as it is
 * written. Data chunks own their buffers: a consumer may transfer them (postMessage).
 */
export function exportGguf(source: ExportSource, plan: ExportPlan, options: ExportOptions = {}): AsyncGenerator<Uint8Array> {
  const total = plan.tensors.length;
  const state: JobState = { reads: 0 };
  let bytesDone = plan.layout.dataOffset;
  const progress = (tensorsDone: number, label: string) =>
    options.onProgress?.({ done: bytesDone, total: plan.layout.totalBytes, label, tensorsDone, tensorCount: total });

  return writeGguf(plan.layout, async function* (_layoutTensor, index) {
    options.signal?.throwIfAborted();
    const tensor = plan.tensors[index];
    progress(index, tensor.name);
    const report = yield* tensorData(source, tensor, plan.method, options, state, (slabBytes) => {
      bytesDone += slabBytes;
      progress(index, tensor.name);
    });
    bytesDone = endOfTensor(plan.layout, index);
    options.onTensor?.(report);
    if (index === total - 1) progress(total, 'done');
  });
}

/** File offset just past tensor `index`'s data and padding. */
function endOfTensor(layout: GgufLayout, index: number): number {
  const next = layout.tensors[index + 1];
  return next ? layout.dataOffset + next.offset : layout.totalBytes;
}

interface JobState {
  /**
   * Two slabs' worth of bytes the source reads into by turns (ExportSource.readF32): one
   * holds the slab being quantized while the next is read into the other.
   */
  scratch?: [Uint8Array, Uint8Array];
  reads: number;
}

/** The bytes in a buffer of their own, so that a consumer may transfer it (a reader may return views of a shared one). */
function ownBuffer(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

/**
 * The next of the two scratch buffers, for a slab of `bytes` (none for a slab bigger than a
 * default one: whole tensors of a source that cannot read by slab). Every slab's data is
 * done with before the read after next starts (tensorData), so two suffice.
 */
function scratchFor(state: JobState, gpu: GpuFallback | undefined, bytes: number): Uint8Array | undefined {
  if (bytes > SLAB_ELEMENTS * 4) return undefined;
  // Not shared when a GPU may upload it: Dawn's writeBuffer crashes on shared memory.
  const allocate = gpu?.liveGpu() ? (n: number) => new Uint8Array(n) : sharedBytes;
  state.scratch ??= [allocate(SLAB_ELEMENTS * 4), allocate(SLAB_ELEMENTS * 4)];
  return state.scratch[state.reads++ % 2];
}

/**
 * Shared memory where there is any (Node; a cross-origin-isolated page): a worker pool
 * (cli/quantize-pool.ts) then hands the rows to its threads without copying them.
 */
function sharedBytes(n: number): Uint8Array {
  return new Uint8Array(typeof SharedArrayBuffer === 'undefined' ? new ArrayBuffer(n) : new SharedArrayBuffer(n));
}

/** Row ranges of at most `slabElements` elements (at least one row each). */
export function slabs(rows: number, rowLength: number, slabElements: number): RowRange[] {
  const perSlab = Math.max(1, Math.floor(slabElements / rowLength));
  const out: RowRange[] = [];
  for (let first = 0; first < rows; first += perSlab) out.push({ first, count: Math.min(perSlab, rows - first) });
  return out;
}

/** One tensor's data, slab by slab; returns its report. The next slab is read while this one is quantized. */
async function* tensorData(
  source: ExportSource,
  tensor: ExportTensor,
  method: string | null,
  options: ExportOptions,
  state: JobState,
  onSlab: (bytes: number) => void,
): AsyncGenerator<Uint8Array, TensorReport> {
  const t0 = performance.now();
  const src = tensor.source;
  const ranges = slabs(rowCount(src.ne), src.ne[0] ?? 1, source.slabElements ?? SLAB_ELEMENTS);
  const measure = options.measure ?? true;
  let bytes = 0;
  let sums: ErrorSums | null = measure ? emptySums() : null;
  let backend: ExportBackend = !tensor.converted ? 'copy' : options.gpu?.liveGpu() ? 'webgpu' : 'cpu';

  // The next slab is read while this one is quantized. Its rejection (the file changed on disk)
  // is awaited at the next step; the no-op handler only keeps Node from calling it unhandled
  // in the meantime, or when a failure here ends the loop first.
  const read = (r: RowRange) => {
    const pending = tensor.converted ? source.readF32(src, r, scratchFor(state, options.gpu, r.count * (src.ne[0] ?? 1) * 4)) : source.readBytes(src, r);
    pending.catch(() => undefined);
    return pending;
  };
  let next: Promise<Uint8Array | Float32Array> | null = ranges.length ? read(ranges[0]) : null;
  for (const [i, range] of ranges.entries()) {
    const data = await next!;
    next = i + 1 < ranges.length ? read(ranges[i + 1]) : null;
    options.signal?.throwIfAborted();
    if (!tensor.converted) {
      bytes += data.byteLength;
      yield ownBuffer(data as Uint8Array);
      onSlab(data.byteLength);
      continue;
    }
    const slab = tensor.precomputed
      ? precomputedSlab(tensor, tensor.precomputed, data as Float32Array, range, measure)
      : await quantizeSlab(tensor, data as Float32Array, range, measure, options);
    if (slab.backend === 'cpu') backend = 'cpu';
    if (sums && slab.sums) sums = mergeSums(sums, slab.sums);
    bytes += slab.bytes.length;
    yield ownBuffer(slab.bytes);
    onSlab(slab.bytes.length);
  }
  const rmse = !tensor.converted ? 0 : sums && sums.count > 0 ? metricsFromSums(sums).rmse : null;
  return {
    name: tensor.name,
    sourceType: tensor.sourceType,
    type: tensor.type,
    shape: [...src.ne].reverse(),
    bytes,
    rmse,
    sums: tensor.converted && measure !== 'rmse' ? sums : null,
    backend,
    ms: performance.now() - t0,
    reason: tensor.reason,
    ...(tensor.precomputed ? { method: method ?? 'precomputed' } : {}),
  };
}

/** A slab of rows of precomputed data, measured (decoded by the type's codec) against the f32 source. */
function precomputedSlab(tensor: ExportTensor, all: Uint8Array, data: Float32Array, range: RowRange, measure: boolean | 'rmse'): QuantizeResult & { backend: Backend } {
  const type = quantType(tensor.type)!;
  const rowLength = tensor.source.ne[0] ?? 1;
  const perRow = (rowLength / type.blockSize) * type.typeSize;
  const bytes = all.slice(range.first * perRow, (range.first + range.count) * perRow);
  const sums = measure ? accumulateErrors(data, type.codec.decode(bytes, range.count, rowLength)) : null;
  return { bytes, sums, backend: 'cpu' };
}

/** One slab quantized: on the GPU when it has the type's codec (and no importance applies), else the CPU. */
async function quantizeSlab(
  tensor: ExportTensor,
  data: Float32Array,
  range: RowRange,
  measure: boolean | 'rmse',
  options: ExportOptions,
): Promise<QuantizeResult & { backend: Backend }> {
  const type = quantType(tensor.type)!;
  const job: QuantizeJob = {
    type: type.id,
    data,
    rowLength: tensor.source.ne[0] ?? 1,
    firstRow: range.first,
    rowsPerMatrix: tensor.source.ne[1] ?? 1,
    importance: tensor.importance,
    measure,
  };
  const cpu = options.cpu ?? inlineQuantizer;
  const onCpu = () => cpu.quantize(job, options.signal);
  if (!options.gpu || (tensor.importance !== null && type.usesImportance)) return { ...(await onCpu()), backend: 'cpu' };
  const onGpu = async (_gpu: GpuContext, c: Compute): Promise<QuantizeResult> => {
    const bytes = await c.quantize(type, data, job.rowLength);
    if (!measure) return { bytes, sums: null };
    const decoded = await c.dequantize(type, bytes, range.count, job.rowLength);
    return { bytes, sums: (await c.errors(data, decoded)).sums };
  };
  const { value, backend } = await options.gpu.withFallback(onGpu, onCpu, type);
  return { ...value, backend };
}

/** Writes the stream to a sink (a file handle, a download), in order, awaiting each chunk. */
export async function writeStream(chunks: AsyncIterable<Uint8Array>, sink: (chunk: Uint8Array) => void | Promise<void>): Promise<number> {
  let bytes = 0;
  for await (const chunk of chunks) {
    // Counted first: a sink may transfer the chunk's buffer (the worker does), emptying it.
    bytes += chunk.length;
    await sink(chunk);
  }
  return bytes;
}
