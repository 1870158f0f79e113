// The export job: a model quantized to a GGUF file, streamed tensor by tensor (never whole
// in memory), shared by the CLI and the browser. For a GGUF input the file is, byte for
// byte, the one llama-quantize writes (llama.cpp src/llama-quant.cpp,
// llama_model_quantize_impl, at the pinned commit; ggml/src/gguf.cpp for the layout):
// - header: GGUF v3; the input's key-value pairs in their order (gguf_set_kv copies them
//   through C strings: keys and string values end at a NUL), then
//   general.quantization_version = 2 and general.file_type (gguf_set_val_* removes a key
//   and appends it, so an input's own copies move to the end), the split.* keys removed,
//   then llama-quantize's own keys (the imatrix ones, see imatrix.ts);
// - tensor infos in llama-quantize's order (quant/presets.ts) with the planned types and
//   n_dims = ggml_n_dims (trailing dimensions of 1 dropped);
// - data: a tensor that keeps its type is copied byte for byte; any other is read as f32
//   (dequantized first, as llama_tensor_dequantize_impl) and quantized with the type's
//   codec (ggml_quantize_chunk), with each matrix's imatrix slice; zero padding to 32.
// One difference on purpose: an input whose general.alignment is not 32 keeps the key
// while llama-quantize pads to 32 (a file llama.cpp then refuses); here the data follows
// the key, so the file stays valid.
//
// The input is an ExportSource (GGUF metadata entries + tensors + readers): a GGUF
// ModelIndex gives one (exportSourceFromModel); a safetensors -> GGUF converter can give
// another without this file changing.
import { GGML_TYPES, GGUF_VALUE_TYPE } from '../formats/gguf/constants.ts';
import { type GgufMetadataEntry, type GgufValue, ggufEntry, metadataToObject } from '../formats/gguf/metadata.ts';
import { type GgufLayout, type GgufTensorDescriptor, planGguf, writeGguf } from '../formats/gguf/write.ts';
import { type ModelIndex, type ModelTensor, readTensorBytes, readTensorF32 } from '../formats/model.ts';
import { convertHfLlama } from '../convert/llama.ts';
import { type GgufSourceModel, encodeUnquantized } from '../convert/source-model.ts';
import { GpuDeviceLostError } from '../gpu/device.ts';
import { accumulateErrors, emptySums, mergeSums, metricsFromSums, type ErrorSums } from '../quant/metrics.ts';
import {
  type PlanMode,
  type PlanOptions,
  type TensorPlan,
  type TensorTypeOverride,
  modelInfoFromMetadata,
  planQuantization,
  resolveMode,
} from '../quant/presets.ts';
import { dequantizeGgml, quantType, quantTypeByGgmlId } from '../quant/types.ts';
import type { Compute } from './compute.ts';
import { type Imatrix, imatrixKeys } from './imatrix.ts';
import { type QuantizeJob, type QuantizeResult, joinResults, quantizeRows, splitJob } from './quantize-rows.ts';
import type { Backend, Progress } from './types.ts';

// ---- the source model ------------------------------------------------------------------

export interface ExportSourceTensor {
  readonly name: string;
  /** ggml type id of the data as the reader returns it. */
  readonly type: number;
  /** ggml's ne: the row length first. */
  readonly ne: readonly number[];
}

/** Rows [first, first + count) of a tensor, counted over all its matrices (ne1 x ne2 x ne3 rows of ne0). */
export interface RowRange {
  readonly first: number;
  readonly count: number;
}

/** What the export reads: a model described as GGUF metadata and tensors, with readers. */
export interface ExportSource {
  readonly metadata: readonly GgufMetadataEntry[];
  readonly tensors: readonly ExportSourceTensor[];
  /** Rows of the tensor's bytes in its own type (copied as they are when the type stays). */
  readBytes(tensor: ExportSourceTensor, rows: RowRange): Promise<Uint8Array>;
  /**
   * Rows of the tensor's values as f32 (dequantized if need be); the bytes may be read into
   * `scratch` and the values be a view of it (ReadF32Options.scratch).
   */
  readF32(tensor: ExportSourceTensor, rows: RowRange, scratch?: Uint8Array): Promise<Float32Array>;
  /** Largest slab read at once, in elements (default SLAB_ELEMENTS); Infinity: whole tensors. */
  readonly slabElements?: number;
}

/** The export source of any loaded model: a GGUF as it is, safetensors converted as convert_hf_to_gguf.py would. */
export async function exportSourceFor(model: ModelIndex): Promise<ExportSource> {
  if (model.format === 'gguf') return exportSourceFromModel(model);
  if (!model.metadata.config) {
    const first = model.files.find((f) => f.role === 'safetensors')!.source.name;
    throw new Error(`${first}: converting safetensors to GGUF needs the model's config.json (give it with the weights, and tokenizer.model for a model that runs)`);
  }
  return exportSourceFromConverted(await convertHfLlama(model));
}

/** The export source of a loaded GGUF model (exportSourceFor converts a safetensors one first). */
export function exportSourceFromModel(model: ModelIndex): ExportSource {
  if (model.format !== 'gguf' || !model.ggufMetadata) {
    throw new Error(`${model.format} is not GGUF: convert it first (exportSourceFor)`);
  }
  const byName = new Map<string, ModelTensor>(model.tensors.map((t) => [t.name, t]));
  const tensorOf = (t: ExportSourceTensor) => byName.get(t.name)!;
  // Rows hold whole blocks, so a row range is a block-aligned element range (old files whose
  // blocks run across rows are read whole and cut).
  const elements = (t: ExportSourceTensor, rows: RowRange) => ({ elementOffset: rows.first * t.ne[0], elementCount: rows.count * t.ne[0] });
  return {
    metadata: model.ggufMetadata,
    tensors: model.tensors.map((t) => ({ name: t.name, type: t.ggmlType!, ne: [...t.shape].reverse() })),
    readBytes: (t, rows) => readTensorBytes(model, tensorOf(t), elements(t, rows)),
    readF32: async (t, rows, scratch) => {
      const tensor = tensorOf(t);
      if (!tensor.flat) return readTensorF32(model, tensor, { ...elements(t, rows), dequantize: dequantizeGgml, scratch });
      const whole = await readTensorF32(model, tensor, { dequantize: dequantizeGgml });
      return whole.subarray(rows.first * t.ne[0], (rows.first + rows.count) * t.ne[0]);
    },
  };
}

/**
 * The export source of a converted model (src/convert: safetensors + config -> GGUF): read a
 * slab of rows at a time where the converter can (readRowsF32), else whole tensors.
 */
export function exportSourceFromConverted(model: GgufSourceModel): ExportSource {
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  const cut = <T extends Uint8Array | Float32Array>(whole: T, rows: RowRange, perRow: number): T =>
    whole.subarray(rows.first * perRow, (rows.first + rows.count) * perRow) as T;
  const bySlab = model.tensors.every((t) => t.readRowsF32);
  return {
    metadata: model.metadata,
    tensors: model.tensors.map((t) => ({ name: t.name, type: t.ggmlType, ne: [...t.shape].reverse() })),
    readBytes: async (t, rows) => {
      const tensor = byName.get(t.name)!;
      if (bySlab) return encodeUnquantized(await tensor.readRowsF32!(rows.first, rows.count), tensor.ggmlType);
      const whole = await tensor.readBytes();
      return cut(whole, rows, whole.length / rowCount(t.ne));
    },
    readF32: async (t, rows) => {
      const tensor = byName.get(t.name)!;
      return bySlab ? tensor.readRowsF32!(rows.first, rows.count) : cut(await tensor.readF32(), rows, t.ne[0]);
    },
    ...(bySlab ? {} : { slabElements: Infinity }),
  };
}

/** Rows of a tensor: every dimension but the first. */
export function rowCount(ne: readonly number[]): number {
  return ne.slice(1).reduce((n, d) => n * d, 1);
}

// ---- the plan ----------------------------------------------------------------------------

export interface ExportRequest {
  readonly mode: PlanMode;
  readonly overrides?: readonly TensorTypeOverride[];
  readonly options?: Omit<PlanOptions, 'hasImatrix'>;
  /** `--imatrix FILE`: the matrix and the file argument as given (written to quantize.imatrix.file). */
  readonly imatrix?: { readonly matrix: Imatrix; readonly fileArgument: string };
  /**
   * Tensors whose data was computed elsewhere (GPTQ's Q4_0 blocks: calibrate/gptq-export.ts),
   * written as they are instead of quantizing the f32 values; `keys` are appended to the
   * header (after the imatrix keys), `method` names it in the reports.
   */
  readonly precomputed?: PrecomputedTensors;
}

export interface PrecomputedTensors {
  /** Tensor name -> its data in the type the plan gives it. */
  readonly tensors: ReadonlyMap<string, Uint8Array>;
  readonly keys: readonly GgufMetadataEntry[];
  readonly method: string;
}

export interface ExportTensor extends TensorPlan {
  readonly source: ExportSourceTensor;
  /** ne as written (ggml_n_dims). */
  readonly ne: readonly number[];
  /** Importance per column (and matrix) used for this tensor, or null. */
  readonly importance: Float32Array | null;
  /** Bytes of the tensor's data as written (before padding). */
  readonly nbytes: number;
  /** Data written as it is (ExportRequest.precomputed), or null. */
  readonly precomputed: Uint8Array | null;
}

export interface ExportPlan {
  /** llama.cpp's file type name ('Q4_K_M', 'Q8_0', ...) and number (general.file_type). */
  readonly ftype: string;
  readonly fileType: number;
  /** In the file's order. */
  readonly tensors: readonly ExportTensor[];
  /** Header bytes, offsets and total size of the file. */
  readonly layout: GgufLayout;
  /** ExportRequest.precomputed's method, or null. */
  readonly method: string | null;
}

const GGML_QNT_VERSION = 2;
const QUANTIZATION_VERSION_KEY = 'general.quantization_version';
const FILE_TYPE_KEY = 'general.file_type';
const SPLIT_KEYS: readonly string[] = ['split.no', 'split.count', 'split.tensors.count'];

/** What llama-quantize writes for a file type: every type, tensor order, header and size. Throws where it would refuse. */
export function planExport(source: ExportSource, request: ExportRequest): ExportPlan {
  const { ftype, fileType } = resolveMode(request.mode);
  const info = modelInfoFromMetadata(metadataToObject(source.metadata));
  const plans = planQuantization(
    source.tensors.map((t) => ({ name: t.name, shape: [...t.ne].reverse(), dtype: ggmlTypeName(t.type) })),
    info,
    request.mode,
    request.overrides ?? [],
    { ...request.options, hasImatrix: request.imatrix !== undefined },
  );
  const byName = new Map(source.tensors.map((t) => [t.name, t]));
  const tensors = plans.map((plan): ExportTensor => {
    const src = byName.get(plan.name)!;
    if (plan.converted) checkConvertible(plan);
    const ne = ggmlDims(src.ne);
    const precomputed = request.precomputed?.tensors.get(plan.name) ?? null;
    if (precomputed && !plan.converted) throw new Error(`tensor ${plan.name} keeps its ${plan.type} data: it cannot take ${request.precomputed!.method}'s`);
    return { ...plan, source: src, ne, importance: importanceFor(plan, src, request.imatrix?.matrix), nbytes: 0, precomputed };
  });
  for (const name of request.precomputed?.tensors.keys() ?? []) {
    if (!byName.has(name)) throw new Error(`${request.precomputed!.method}: no tensor '${name}' in the model`);
  }
  if (request.imatrix) checkImatrixNames(tensors, request.imatrix);
  const extraKeys = [
    ...(request.imatrix ? imatrixKeys(request.imatrix.matrix, request.imatrix.fileArgument) : []),
    ...(request.precomputed?.keys ?? []),
  ];
  const layout = planGguf({
    metadata: quantizedMetadata(source.metadata, fileType, extraKeys),
    tensors: tensors.map((t): GgufTensorDescriptor => ({ name: t.name, type: quantType(t.type)!.ggml!.id, ne: t.ne })),
  });
  return {
    ftype,
    fileType,
    tensors: tensors.map((t, i) => {
      const nbytes = layout.tensors[i].nbytes;
      if (t.precomputed && t.precomputed.length !== nbytes) {
        throw new Error(`tensor ${t.name}: ${request.precomputed!.method} gives ${t.precomputed.length} bytes, ${t.type} needs ${nbytes}`);
      }
      return { ...t, nbytes };
    }),
    layout,
    method: request.precomputed?.method ?? null,
  };
}

function ggmlTypeName(id: number): string {
  const t = GGML_TYPES.get(id);
  if (!t) throw new Error(`ggml type ${id} is unknown`);
  return t.name;
}

/** ggml_n_dims: ne up to its last entry above 1, at least one entry. */
export function ggmlDims(ne: readonly number[]): number[] {
  let n = 1;
  for (let i = ne.length - 1; i >= 1; i--) {
    if (ne[i] > 1) {
      n = i + 1;
      break;
    }
  }
  return Array.from({ length: n }, (_, i) => ne[i] ?? 1);
}

/** A converted tensor must be readable as f32 and writable in its new type. */
function checkConvertible(plan: TensorPlan): void {
  const from = quantType(plan.sourceType);
  if (!from?.ggml || !quantTypeByGgmlId(from.ggml.id)) {
    throw new Error(`tensor ${plan.name} is ${plan.sourceType}, which quantlab cannot dequantize`);
  }
  if (!quantType(plan.type)?.ggml) throw new Error(`tensor ${plan.name}: ${plan.type} cannot be written to GGUF`);
}

/**
 * The imatrix slice llama_model_quantize_impl uses for a tensor, with its refusals: a
 * tensor that requires one (Q2_K_S, IQ2...) without it, and a size other than ne0 x ne2
 * (except token embeddings, which go without).
 */
function importanceFor(plan: TensorPlan, tensor: ExportSourceTensor, imatrix: Imatrix | undefined): Float32Array | null {
  if (!imatrix) {
    if (plan.quantized && plan.requiresImatrix) {
      throw new Error(`this quantization requires an imatrix! (offending tensor: ${plan.name}, target type: ${plan.type})`);
    }
    return null;
  }
  if (!plan.converted) return null;
  const values = imatrix.entries.get(plan.name);
  const expected = (tensor.ne[0] ?? 1) * (tensor.ne[2] ?? 1);
  if (values && values.length !== expected) {
    const isTokenEmbd = plan.name === 'token_embd.weight' || plan.name === 'per_layer_token_embd.weight';
    if (!isTokenEmbd) throw new Error(`imatrix size ${values.length} is different from tensor size ${expected} for ${plan.name}`);
    return null;
  }
  if (!values && plan.requiresImatrix) {
    throw new Error(`Missing importance matrix for tensor ${plan.name} in a very low-bit quantization`);
  }
  return values ?? null;
}

/**
 * An imatrix checked against a model as an export would check it (a name it shares with
 * the model, each entry's size), on the plan of `--type q8_0`, which converts every weight;
 * throws the export's errors. For a file given before the export's type is chosen.
 */
export function checkImatrix(source: ExportSource, imatrix: NonNullable<ExportRequest['imatrix']>): void {
  planExport(source, { mode: { type: 'q8_0' }, imatrix });
}

/**
 * An imatrix none of whose entries names a tensor being converted was made for another
 * model (or another naming: HF names instead of llama.cpp's). llama-quantize would go on
 * without importance, warning once per tensor; we refuse, as that file cannot be what
 * was meant. (A partial match is fine: llama-imatrix skips output.weight, for one.)
 */
function checkImatrixNames(tensors: readonly ExportTensor[], imatrix: NonNullable<ExportRequest['imatrix']>): void {
  const converted = tensors.filter((t) => t.converted);
  const entries = imatrix.matrix.entries;
  if (converted.length === 0 || entries.size === 0 || converted.some((t) => entries.has(t.name))) return;
  const first = entries.keys().next().value;
  throw new Error(`${imatrix.fileArgument}: none of its ${entries.size} entries names a tensor this model quantizes (first: ${first}; this model has e.g. ${converted[0].name}): was it computed for another model?`);
}

// ---- the header --------------------------------------------------------------------------

/**
 * llama-quantize's output keys: the input's (through C strings), quantization version and
 * file type appended, split keys removed, then `extra` (each set as gguf_set_val_* does).
 */
export function quantizedMetadata(
  input: readonly GgufMetadataEntry[],
  fileType: number,
  extra: readonly GgufMetadataEntry[] = [],
): GgufMetadataEntry[] {
  let out: GgufMetadataEntry[] = [];
  const set = (e: GgufMetadataEntry) => {
    out = out.filter((x) => x.key !== e.key);
    out.push(e);
  };
  for (const e of input) set(ggufEntry(cString(e.key), e.type, asCStrings(e.type, e.value)));
  set(ggufEntry(QUANTIZATION_VERSION_KEY, GGUF_VALUE_TYPE.UINT32, GGML_QNT_VERSION));
  set(ggufEntry(FILE_TYPE_KEY, GGUF_VALUE_TYPE.UINT32, fileType));
  out = out.filter((e) => !SPLIT_KEYS.includes(e.key));
  for (const e of extra) set(e);
  return out;
}

function cString(text: string): string {
  const nul = text.indexOf('\0');
  return nul < 0 ? text : text.slice(0, nul);
}

function asCStrings(type: number, value: GgufValue): GgufValue {
  if (type === GGUF_VALUE_TYPE.STRING) return cString(value as string);
  if (typeof value === 'object' && value.itemType === GGUF_VALUE_TYPE.STRING) {
    return { itemType: value.itemType, items: (value.items as readonly string[]).map(cString) };
  }
  return value;
}

// ---- the job -----------------------------------------------------------------------------

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
export interface ExportProgress extends Progress {
  readonly tensorsDone: number;
  readonly tensorCount: number;
}

export interface ExportOptions {
  /** The GPU, for types it has a codec for (and no importance weights); else the CPU. */
  readonly gpu?: Compute;
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
  const state: JobState = { gpu: options.gpu, reads: 0 };
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
  /** Dropped once the device is lost: the CPU takes over for the rest of the file. */
  gpu?: Compute;
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
function scratchFor(state: JobState, bytes: number): Uint8Array | undefined {
  if (bytes > SLAB_ELEMENTS * 4) return undefined;
  // Not shared when a GPU may upload it: Dawn's writeBuffer crashes on shared memory.
  const allocate = state.gpu ? (n: number) => new Uint8Array(n) : sharedBytes;
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
  let backend: ExportBackend = tensor.converted ? (state.gpu?.backend ?? 'cpu') : 'copy';

  const read = (r: RowRange) => (tensor.converted ? source.readF32(src, r, scratchFor(state, r.count * (src.ne[0] ?? 1) * 4)) : source.readBytes(src, r));
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
      : await quantizeSlab(tensor, data as Float32Array, range, measure, options, state);
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
  state: JobState,
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
  const gpu = state.gpu;
  if (!gpu || !gpu.supports(type) || (tensor.importance !== null && type.usesImportance)) {
    return { ...(await cpu.quantize(job, options.signal)), backend: 'cpu' };
  }
  try {
    const bytes = await gpu.quantize(type, data, job.rowLength);
    if (!measure) return { bytes, sums: null, backend: gpu.backend };
    const decoded = await gpu.dequantize(type, bytes, range.count, job.rowLength);
    return { bytes, sums: (await gpu.errors(data, decoded)).sums, backend: gpu.backend };
  } catch (e) {
    if (!(e instanceof GpuDeviceLostError)) throw e;
    state.gpu = undefined;
    return { ...(await cpu.quantize(job, options.signal)), backend: 'cpu' };
  }
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
