// An importance matrix computed as llama.cpp's llama-imatrix computes it, written in its
// GGUF layout (tools/imatrix/imatrix.cpp at the pinned commit, /tmp/llamacpp):
// - which products: collect_imatrix takes every GGML_OP_MUL_MAT whose weight (src0) is
//   named blk.* (output.weight only with --process-output, not done here) and whose input
//   has at least 16 rows, in f32 (activations.ts runs the chunks and filters the same way);
// - accumulation: per input row x of a product, acc[j] += x[j] * x[j] in f32, and the
//   weight's count += rows (ggml_nrows(src1) / n_mat, n_mat = 1 for dense weights);
// - chunk_count: m_last_chunk = count / chunk_size after the last product (= the chunks run);
// - the file (save_imatrix): general.type = "imatrix", imatrix.datasets (string array: the
//   text file as named), imatrix.chunk_count (u32), imatrix.chunk_size (u32, n_ctx /
//   n_parallel = the chunk); per weight, in std::sort order of the names,
//   NAME.in_sum2 (F32, ne [cols, 1]) and NAME.counts (F32, ne [1, 1]).
import { collectBytes } from '../formats/bytes.ts';
import { GGML_TYPE, GGUF_VALUE_TYPE } from '../formats/gguf/constants.ts';
import { ggufArray, ggufEntry } from '../formats/gguf/metadata.ts';
import { planGguf, writeGguf, type GgufLayout } from '../formats/gguf/write.ts';
import type { GpuContext } from '../gpu/device.ts';
import { ResidentUnsupportedError } from '../model/gpu-forward.ts';
import { residentStatistics } from '../model/gpu-stats.ts';
import { mapProvider } from '../model/weights.ts';
import { chunkTokens, colsOf, defaultChunk, linearWeightNames, runCalibration, type CalibrationModel, type CalibrationProgress } from './activations.ts';

export interface ImatrixStats {
  /** Sums of squared inputs per column (f32, as llama-imatrix), by weight GGUF name. */
  sums: Map<string, Float32Array>;
  /** Input rows counted per weight. */
  counts: Map<string, number>;
  chunkCount: number;
  chunkSize: number;
  datasets: string[];
  textTokens: number;
  /**
   * Where the forward pass and the sums ran: 'webgpu' (the resident pass, gpu-stats.ts) or
   * 'cpu' (model/llama.ts); `cpuReason` says why not on the GPU when one was given.
   */
  backend: 'webgpu' | 'cpu';
  cpuReason?: string;
}

/** collect_imatrix's inner loop: acc[j] += x[j]*x[j] for each of the n rows, in f32. */
export function accumulateSquares(acc: Float32Array, x: Float32Array, n: number): void {
  const cols = acc.length;
  for (let r = 0; r < n; r++) {
    const o = r * cols;
    for (let j = 0; j < cols; j++) {
      const v = x[o + j];
      acc[j] = Math.fround(acc[j] + Math.fround(v * v));
    }
  }
}

export interface ComputeImatrixOptions {
  text: string;
  /** Tokens per chunk (llama-imatrix -c). */
  chunk: number;
  /** imatrix.datasets: the text's file name as given, or a name for the built-in text. */
  dataset: string;
  signal?: AbortSignal;
  onProgress?: (p: CalibrationProgress) => void;
  /**
   * Run the forward pass resident on this GPU with the sums accumulated there (one readback
   * at the end); a model the resident pass cannot hold runs on the CPU (cpuReason says why).
   */
  gpu?: GpuContext;
}

/** Runs the calibration text through the model and accumulates llama-imatrix's statistics. */
export async function computeImatrix(cm: CalibrationModel, options: ComputeImatrixOptions): Promise<ImatrixStats> {
  const { chunks, chunk, textTokens } = chunkTokens(cm.tokenize(options.text), options.chunk, cm.bosId, cm.addBos);
  const onChunk = (done: number, total: number) => options.onProgress?.({ done, total, label: `chunk ${done} of ${total}` });
  const common = { chunkSize: chunk, datasets: [options.dataset], textTokens };
  let cpuReason: string | undefined;
  if (options.gpu) {
    try {
      return { ...(await imatrixOnGpu(options.gpu, cm, chunks, options.signal, onChunk)), ...common, backend: 'webgpu' };
    } catch (e) {
      if (!(e instanceof ResidentUnsupportedError)) throw e;
      cpuReason = e.message;
    }
  }
  const sums = new Map<string, Float32Array>();
  const counts = new Map<string, number>();
  await runCalibration(
    cm,
    chunks,
    (name, x, n, cols) => {
      let acc = sums.get(name);
      if (!acc) sums.set(name, (acc = new Float32Array(cols)));
      accumulateSquares(acc, x, n);
      counts.set(name, (counts.get(name) ?? 0) + n);
    },
    { signal: options.signal, onChunk },
  );
  return { sums, counts, chunkCount: chunkCountOf(counts, chunk), ...common, backend: 'cpu', ...(cpuReason ? { cpuReason } : {}) };
}

/** m_last_chunk after the last product: the most rows any weight counted, in chunks. */
function chunkCountOf(counts: ReadonlyMap<string, number>, chunk: number): number {
  let chunkCount = 0;
  for (const c of counts.values()) chunkCount = Math.max(chunkCount, Math.floor(c / chunk));
  return chunkCount;
}

/**
 * The same statistics from the resident forward pass: every blk.* product's Σx² summed on
 * the GPU in collect_imatrix's order (kernels/imatrix_sums.wgsl); every chunk has at least
 * IMATRIX_MIN_ROWS rows (chunkTokens), so every product counts every row.
 */
async function imatrixOnGpu(
  gpu: GpuContext,
  cm: CalibrationModel,
  chunks: readonly number[][],
  signal: AbortSignal | undefined,
  onChunk: (done: number, total: number) => void,
): Promise<Pick<ImatrixStats, 'sums' | 'counts' | 'chunkCount'>> {
  const names = linearWeightNames(cm.config);
  const request = { sums: new Map(names.map((g) => [cm.fileName(g), colsOf(cm, g)])) };
  const check = () => {
    if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('cancelled');
  };
  const r = await residentStatistics(gpu, cm.config, mapProvider(cm.weights), chunks, request, { check, onChunk });
  const sums = new Map(names.map((g) => [g, r.sums.get(cm.fileName(g))!]));
  const counts = new Map(names.map((g) => [g, r.rows]));
  return { sums, counts, chunkCount: chunkCountOf(counts, chunks[0].length) };
}

/**
 * `quantlab calibrate -o`'s matrix: the text's tokens in chunks of `chunk` (default:
 * defaultChunk, as llama-imatrix's -c would be set for this model), in the GGUF file format.
 */
export async function imatrixFileForText(
  cm: CalibrationModel,
  options: Omit<ComputeImatrixOptions, 'chunk'> & { chunk?: number },
): Promise<{ stats: ImatrixStats; bytes: Uint8Array }> {
  const chunk = options.chunk ?? defaultChunk(cm.tokenize(options.text).length, cm.config.contextLength);
  const stats = await computeImatrix(cm, { ...options, chunk });
  return { stats, bytes: await imatrixGgufBytes(stats) };
}

/** save_imatrix's GGUF: header and tensors (names sorted as std::sort sorts them). */
export function imatrixLayout(stats: ImatrixStats): { layout: GgufLayout; data: Uint8Array[] } {
  const { STRING, UINT32, ARRAY } = GGUF_VALUE_TYPE;
  const metadata = [
    ggufEntry('general.type', STRING, 'imatrix'),
    ggufEntry('imatrix.datasets', ARRAY, ggufArray(STRING, [...stats.datasets])),
    ggufEntry('imatrix.chunk_count', UINT32, stats.chunkCount),
    ggufEntry('imatrix.chunk_size', UINT32, stats.chunkSize),
  ];
  const names = [...stats.sums.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const tensors = names.flatMap((name) => [
    { name: `${name}.in_sum2`, type: GGML_TYPE.F32, ne: [stats.sums.get(name)!.length, 1] },
    { name: `${name}.counts`, type: GGML_TYPE.F32, ne: [1, 1] },
  ]);
  const data = names.flatMap((name) => {
    const s = stats.sums.get(name)!;
    return [new Uint8Array(s.buffer, s.byteOffset, s.byteLength), new Uint8Array(Float32Array.of(stats.counts.get(name) ?? 0).buffer)];
  });
  return { layout: planGguf({ metadata, tensors }), data };
}

/** The imatrix GGUF as a stream of chunks. */
export function writeImatrixGguf(stats: ImatrixStats): AsyncGenerator<Uint8Array> {
  const { layout, data } = imatrixLayout(stats);
  return writeGguf(layout, (_, i) => data[i]);
}

/** The imatrix GGUF in one buffer (small: one row of f32 per weight). */
export function imatrixGgufBytes(stats: ImatrixStats): Promise<Uint8Array> {
  return collectBytes(writeImatrixGguf(stats));
}
