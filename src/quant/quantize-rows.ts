// One tensor's rows quantized on the CPU, as llama.cpp's llama_tensor_quantize_impl does
// (src/llama-quant.cpp): rows are independent, so any split of a tensor into row ranges
// gives the same bytes, except that an imatrix has one slice of ne0 weights per matrix
// (expert) and a range never runs across a matrix boundary with one slice. Plain data in
// and out (a type id, typed arrays), so a Web Worker or a Node worker thread can run it.
import { accumulateErrors, emptySums, mergeSums, type ErrorSums } from './metrics.ts';
import { quantType, type QuantType } from './types.ts';
import { fastAccumulateErrors, fastEncodeMeasured } from './fast/wasm-codecs.ts';

export interface QuantizeJob {
  /** Target type id (quant/types.ts). */
  readonly type: string;
  /** Whole rows of `rowLength` f32 values. */
  readonly data: Float32Array;
  readonly rowLength: number;
  /** Index in the tensor of data's first row (picks the imatrix slice). */
  readonly firstRow: number;
  /** Rows per matrix (ne1): the imatrix has one slice of rowLength weights per matrix. */
  readonly rowsPerMatrix: number;
  /** Importance per column and matrix (ne0 x ne2), or null. */
  readonly importance: Float32Array | null;
  /**
   * Also measure the error of the result against `data`: every sum, or 'rmse': at least
   * count and sumSqErr (the others may be left at 0), where that is faster.
   */
  readonly measure: boolean | 'rmse';
}

export interface QuantizeResult {
  readonly bytes: Uint8Array;
  /** Error sums of the decoded result against the input; null unless measured. */
  readonly sums: ErrorSums | null;
}

/** Elements decoded at a time when measuring, so the check never doubles a big tensor in memory. */
const MEASURE_SLAB_ELEMENTS = 1 << 20;

function typeOf(id: string): QuantType {
  const t = quantType(id);
  if (!t) throw new Error(`unknown type ${id}`);
  return t;
}

/** Bytes of one row of `type`. */
export function rowBytes(type: QuantType, rowLength: number): number {
  return (rowLength / type.blockSize) * type.typeSize;
}

/** Row ranges [start, end) of `rows` rows starting at tensor row `firstRow` that stay within one matrix. */
export function matrixSegments(rows: number, firstRow: number, rowsPerMatrix: number): [number, number][] {
  const segments: [number, number][] = [];
  for (let r = 0; r < rows; ) {
    const matrixEnd = (Math.floor((firstRow + r) / rowsPerMatrix) + 1) * rowsPerMatrix - firstRow;
    const end = Math.min(rows, matrixEnd);
    segments.push([r, end]);
    r = end;
  }
  return segments;
}

/** Quantizes the job's rows (llama_tensor_quantize_impl + ggml_quantize_chunk) and optionally measures the error. */
export function quantizeRows(job: QuantizeJob): QuantizeResult {
  const type = typeOf(job.type);
  const { data, rowLength } = job;
  const rows = data.length / rowLength;
  // Types whose ggml quantizer ignores importance get none (ggml_quantize_chunk passes it on regardless).
  const importance = type.usesImportance ? job.importance : null;
  const segments = importance ? matrixSegments(rows, job.firstRow, job.rowsPerMatrix) : [];
  if (job.measure && segments.length <= 1) {
    // One WebAssembly pass encodes and measures (the same sums as measureError's, slab by slab).
    const matrix = Math.floor(job.firstRow / job.rowsPerMatrix);
    const weights = importance?.subarray(matrix * rowLength, (matrix + 1) * rowLength);
    const sums = emptySums();
    const bytes = rows > 0 ? fastEncodeMeasured(type.id, type.reference, data, rowLength, weights, MEASURE_SLAB_ELEMENTS, sums, job.measure === 'rmse') : null;
    if (bytes) return { bytes, sums };
  }
  let bytes: Uint8Array;
  if (!importance) {
    bytes = type.codec.encode(data, rowLength);
  } else {
    bytes = new Uint8Array(rows * rowBytes(type, rowLength));
    for (const [start, end] of segments) {
      const matrix = Math.floor((job.firstRow + start) / job.rowsPerMatrix);
      const weights = importance.subarray(matrix * rowLength, (matrix + 1) * rowLength);
      bytes.set(type.codec.encode(data.subarray(start * rowLength, end * rowLength), rowLength, weights), start * rowBytes(type, rowLength));
    }
  }
  return { bytes, sums: job.measure ? measureError(type, data, bytes, rowLength) : null };
}

/** Error sums of `bytes` decoded against `data`, a slab of rows at a time. */
export function measureError(type: QuantType, data: Float32Array, bytes: Uint8Array, rowLength: number): ErrorSums {
  const rows = data.length / rowLength;
  const slabRows = Math.max(1, Math.floor(MEASURE_SLAB_ELEMENTS / rowLength));
  const perRow = rowBytes(type, rowLength);
  let sums = emptySums();
  for (let r = 0; r < rows; r += slabRows) {
    const n = Math.min(slabRows, rows - r);
    const ref = data.subarray(r * rowLength, (r + n) * rowLength);
    const slab = bytes.subarray(r * perRow, (r + n) * perRow);
    // The same sums from WebAssembly in one pass, where the type has a fast decoder.
    sums = fastAccumulateErrors(type.id, type.reference, ref, slab, sums) ?? accumulateErrors(ref, type.codec.decode(slab, n, rowLength), sums);
  }
  return sums;
}

/** Results of consecutive row ranges joined into one. */
export function joinResults(parts: readonly QuantizeResult[]): QuantizeResult {
  const total = parts.reduce((n, p) => n + p.bytes.length, 0);
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    bytes.set(p.bytes, at);
    at += p.bytes.length;
  }
  const measured = parts.every((p) => p.sums !== null);
  const sums = measured ? parts.reduce((s, p) => mergeSums(s, p.sums!), emptySums()) : null;
  return { bytes, sums };
}

/** Splits a job into up to `parts` jobs of consecutive whole rows (at least `minRows` each). */
export function splitJob(job: QuantizeJob, parts: number, minRows = 1): QuantizeJob[] {
  const rows = job.data.length / job.rowLength;
  const n = Math.max(1, Math.min(parts, Math.floor(rows / Math.max(1, minRows))));
  const jobs: QuantizeJob[] = [];
  for (let i = 0; i < n; i++) {
    const start = Math.floor((rows * i) / n);
    const end = Math.floor((rows * (i + 1)) / n);
    if (end === start) continue;
    jobs.push({ ...job, data: job.data.subarray(start * job.rowLength, end * job.rowLength), firstRow: job.firstRow + start });
  }
  return jobs;
}
