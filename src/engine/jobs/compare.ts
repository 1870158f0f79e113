// The measuring jobs: one tensor quantized into each type, its error, histograms and a
// block to inspect (the Compare tab, `quantlab compare`); and the error of every tensor an
// export plan converts (the whole-model view). Each step runs where the session says
// (Session.run: the GPU's codecs while the device lives, else the CPU's).
import type { Imatrix } from '../../formats/imatrix.ts';
import { elementCount, type ModelTensor } from '../../formats/model.ts';
import { cpuCompute, type Backend, type Compute } from '../../gpu/compute.ts';
import { blockFields } from '../../quant/block-fields.ts';
import { histogram, metricsFromSums, sharedErrorRange, type ErrorSums, type Histogram } from '../../quant/metrics.ts';
import { errorsByLayer, planModel, type LayerError, type OverrideSpec } from '../../quant/plan.ts';
import type { PlanMode } from '../../quant/presets.ts';
import { bitsPerWeight, quantType, whyNotApplicable, type QuantType } from '../../quant/types.ts';
import { throwIfCancelled } from '../cancelled.ts';
import { withGpuUsage } from '../gpu-usage.ts';
import type { Session } from '../session.ts';
import type { BlockView, CompareRequest, CompareResult, PaddedRows, TypeResult } from '../types.ts';
import type { JobContext } from './job.ts';

/** Dequantized copies kept between the two passes of a comparison, at most (bytes). */
const MAX_KEPT_DEQUANTIZED_BYTES = 512 << 20;
/**
 * Values a comparison reads at most (64 MiB as f32). A bigger tensor is compared on evenly
 * spaced runs of its rows: measured in Node, comparing all 525M values of Llama 3.1 8B's
 * token embedding in two types peaked at 13 GB, which no browser tab survives.
 */
export const MAX_COMPARE_VALUES = 1 << 24;
const COMPARE_SAMPLE_RUNS = 16;
const DEFAULT_HISTOGRAM_BINS = 121;
const WEIGHT_HISTOGRAM_BINS = 101;
/** Elements shown by the block inspector for types without blocks (per-row / per-tensor scales). */
const INSPECT_ELEMENTS_UNBLOCKED = 32;
/** The block inspector's index counts windows of this many elements (a K-quant super-block). */
const INSPECT_WINDOW = 256;

/**
 * Quantize one tensor into each type and measure the error (two passes: stats, then histograms
 * on a shared range). With an importance matrix, its entry for the tensor weights every type
 * that takes importance, as an export with it would (types ggml refuses without one need it).
 */
export async function compareJob(session: Session, request: CompareRequest, ctx: JobContext, imatrix?: Imatrix): Promise<CompareResult> {
  const { value, gpu } = await withGpuUsage(session, () => compareTensor(session, request, ctx, imatrix));
  return { ...value, gpu };
}

async function compareTensor(session: Session, request: CompareRequest, ctx: JobContext, imatrix?: Imatrix): Promise<CompareResult> {
  const check = () => throwIfCancelled(ctx.signal);
  const tensor = session.tensor(request.tensor);
  const rowLength = tensor.shape[tensor.shape.length - 1] ?? 1;
  const importance = importanceFor(imatrix, tensor.name, rowLength);
  const { data, rowsTotal } = await readForCompare(session, tensor, rowLength);
  check();
  const rows = data.length / rowLength;
  const types = request.types.map((id) => {
    const t = quantType(id);
    if (!t) throw new Error(`unknown type '${id}'`);
    return t;
  });
  const total = types.length * 2;
  let done = 0;
  const step = (label: string) => ctx.onProgress?.({ done: ++done, total, label });

  interface Pass1 {
    type: QuantType;
    /** Null where the GPU chained quantize, dequantize and stats: the bytes stayed on the device. */
    bytes: Uint8Array | null;
    deq: Float32Array | null;
    backend: Backend;
    ms: number;
    maxAbsErr: number | null;
    padded?: PaddedRows;
    imatrix?: boolean;
    error?: string;
  }
  const keep = data.byteLength * types.length <= MAX_KEPT_DEQUANTIZED_BYTES;
  const first: Pass1[] = [];
  // The zero-padded copy of the rows, made once per padded row length.
  const paddedData = new Map<number, Float32Array>();
  for (const type of types) {
    const padded = request.pad ? paddingFor(type, rowLength) : undefined;
    const why = (padded ? null : whyNotApplicable(type, rowLength)) ?? whyNeedsImportance(type, importance, imatrix !== undefined);
    if (why) {
      first.push({ type, bytes: new Uint8Array(), deq: null, backend: 'cpu', ms: 0, maxAbsErr: null, error: why });
      step(`${type.id}: skipped`);
      continue;
    }
    const t0 = performance.now();
    // The GPU codecs take no importance: a weighted type is quantized by the CPU's.
    const weights = type.usesImportance && importance ? (padded ? padRows(importance, rowLength, padded.paddedRowLength) : importance) : undefined;
    const run = async <T>(step: (c: Compute) => Promise<T>): Promise<{ value: T; backend: Backend }> =>
      weights ? { value: await step(weightedCpu(weights)), backend: 'cpu' } : session.run(type, step);
    const { value, backend } = await run(async (c) => {
      // On the GPU, chained: only the maximum |error| comes back (the second pass reads the rest).
      const chained = !padded && !weights && c.measure ? await c.measure(type, data, rowLength, { sums: false }) : null;
      if (chained) return { bytes: null, deq: null, report: chained.report };
      if (!padded) {
        const bytes = await c.quantize(type, data, rowLength);
        const deq = await c.dequantize(type, bytes, rows, rowLength);
        return { bytes, deq, report: await c.errors(data, deq) };
      }
      const wide = padded.paddedRowLength;
      if (!paddedData.has(wide)) paddedData.set(wide, padRows(data, rowLength, wide));
      const bytes = await c.quantize(type, paddedData.get(wide)!, wide);
      // The error is the tensor's own elements' only: the padding is not part of it.
      const deq = unpadRows(await c.dequantize(type, bytes, rows, wide), wide, rowLength);
      return { bytes, deq, report: await c.errors(data, deq) };
    });
    const ms = performance.now() - t0;
    first.push({ type, bytes: value.bytes, deq: keep ? value.deq : null, backend, ms, maxAbsErr: value.report.sums.maxAbsErr, ...(padded ? { padded } : {}), ...(weights ? { imatrix: true } : {}) });
    check();
    step(`${type.id}: quantized`);
  }

  const maxErrors = first.flatMap((p) => (p.maxAbsErr !== null ? [p.maxAbsErr] : []));
  const [lo, hi] = sharedErrorRange(maxErrors);
  const bins = request.histogramBins ?? DEFAULT_HISTOGRAM_BINS;
  const results: TypeResult[] = [];
  for (const p of first) {
    if (p.error) {
      results.push(emptyResult(p.type, p.error));
      continue;
    }
    const wide = p.padded?.paddedRowLength ?? rowLength;
    const { value: report, backend } = await session.run(p.type, async (c): Promise<Pass2> => {
      if (!p.bytes) return measureChained(c, p.type, data, rowLength, { lo, hi, bins }, request.blockIndex ?? 0);
      const deq = p.deq ?? unpadRows(await c.dequantize(p.type, p.bytes, rows, wide), wide, rowLength);
      return { deq, bytes: p.bytes, ...(await c.errors(data, deq, { lo, hi, bins })) };
    });
    check();
    step(`${p.type.id}: histogram`);
    // The inspector shows the type's own blocks: on the padded rows where there is padding.
    const block =
      report.block ??
      (p.padded
        ? blockView(p.type, paddedData.get(wide)!, padRows(report.deq!, rowLength, wide), report.bytes!, request.blockIndex ?? 0)
        : blockView(p.type, data, report.deq!, report.bytes!, request.blockIndex ?? 0));
    // The chain leaves the bytes on the device: their count is the type table's.
    const byteLength = report.bytes?.length ?? p.type.bytesFor(rows, wide);
    results.push({
      type: p.type.id,
      // Per element of the tensor, the padding's bytes included.
      bpw: (byteLength * 8) / data.length,
      bytes: rows === rowsTotal ? byteLength : p.type.bytesFor(rowsTotal, wide),
      metrics: metricsFromSums(report.sums),
      sums: report.sums,
      histogram: report.histogram!,
      block,
      backend: p.backend === 'webgpu' && backend === 'webgpu' ? 'webgpu' : 'cpu',
      ms: p.ms,
      ...(p.padded ? { padded: p.padded } : {}),
      ...(p.imatrix ? { imatrix: true } : {}),
    });
  }
  const [wlo, whi] = weightRange(data);
  return {
    tensor: tensor.name,
    shape: [...tensor.shape],
    backend: results.length && results.every((r) => r.error || r.backend === 'webgpu') ? 'webgpu' : 'cpu',
    weightHistogram: histogram(data, wlo, whi, WEIGHT_HISTOGRAM_BINS),
    results,
    ...(rows === rowsTotal ? {} : { sampledRows: { rows, of: rowsTotal } }),
  };
}

/** What the second pass has of a type: the dequantized values and bytes, or (chained) the block view already made. */
interface Pass2 {
  sums: ErrorSums;
  histogram: Histogram | null;
  deq: Float32Array | null;
  bytes: Uint8Array | null;
  block?: BlockView;
}

/**
 * The second pass of a type the first pass chained on the GPU: the chain again, now reading
 * back the partial sums, the bins and the inspected block only; the round trips where the
 * chain does not answer (the CPU after a device loss, a block the CPU had to encode).
 */
async function measureChained(c: Compute, type: QuantType, data: Float32Array, rowLength: number, histogram: { lo: number; hi: number; bins: number }, windowIndex: number): Promise<Pass2> {
  const w = inspectWindow(type, data.length, windowIndex);
  const plainBlocks = type.blockSize > 1;
  const inspect = { start: w.start, count: w.count, byteStart: plainBlocks ? w.index * type.typeSize : 0, byteCount: plainBlocks ? type.typeSize : 0 };
  const m = c.measure ? await c.measure(type, data, rowLength, { sums: true, histogram, inspect }) : null;
  if (m?.inspected) {
    const original = data.subarray(w.start, w.start + w.count);
    const block = blockViewOf(type, w.index, original, m.inspected.dequantized, plainBlocks ? m.inspected.bytes : null);
    return { ...m.report, deq: null, bytes: null, block };
  }
  const bytes = await c.quantize(type, data, rowLength);
  const deq = await c.dequantize(type, bytes, data.length / rowLength, rowLength);
  return { deq, bytes, ...(await c.errors(data, deq, histogram)) };
}

export interface PlanErrorsRequest {
  mode: PlanMode;
  overrides?: readonly OverrideSpec[];
}

export interface PlanErrors {
  tensors: { name: string; type: string; sums: ErrorSums }[];
  layers: LayerError[];
  backend: Backend;
}

/** The error of every tensor the plan converts, and per layer (weighted by size). */
export async function planErrorsJob(session: Session, request: PlanErrorsRequest, ctx: JobContext): Promise<PlanErrors> {
  // The model runtime (a safetensors model's GGUF view) loads here only: `quantlab compare` never needs it.
  const { planView } = await import('../plan-view.ts');
  const { view, fileTensor } = planView(session);
  const rows = planModel(view, request.mode, request.overrides ?? []).rows.filter((r) => r.converted && quantType(r.type));
  const tensors: PlanErrors['tensors'] = [];
  let allGpu = true;
  for (const [i, row] of rows.entries()) {
    const type = quantType(row.type)!;
    const data = await session.readF32(fileTensor(row.name));
    const rowLength = row.shape[row.shape.length - 1] ?? 1;
    const { value, backend } = await session.run(type, async (c) => {
      // On the GPU, chained: the partial sums come back, not the bytes and values.
      const chained = c.measure ? await c.measure(type, data, rowLength, { sums: true }) : null;
      if (chained) return chained.report.sums;
      const bytes = await c.quantize(type, data, rowLength);
      return (await c.errors(data, await c.dequantize(type, bytes, data.length / rowLength, rowLength))).sums;
    });
    allGpu &&= backend === 'webgpu';
    throwIfCancelled(ctx.signal);
    tensors.push({ name: row.name, type: row.type, sums: value });
    ctx.onProgress?.({ done: i + 1, total: rows.length, label: `${row.name} → ${row.type}` });
  }
  return { tensors, layers: errorsByLayer(tensors), backend: allGpu ? 'webgpu' : 'cpu' };
}

/**
 * The padding a type needs on rows of rowLength: none (undefined) when its block divides them
 * or it has no blocks, else the next multiple of its block.
 */
export function paddingFor(type: QuantType, rowLength: number): PaddedRows | undefined {
  if (type.blockSize <= 1 || rowLength % type.blockSize === 0) return undefined;
  return { rowLength, paddedRowLength: Math.ceil(rowLength / type.blockSize) * type.blockSize };
}

/** Rows of rowLength copied into rows of paddedRowLength, the tail of each row zero. */
export function padRows(data: Float32Array, rowLength: number, paddedRowLength: number): Float32Array {
  const rows = data.length / rowLength;
  const out = new Float32Array(rows * paddedRowLength);
  for (let r = 0; r < rows; r++) out.set(data.subarray(r * rowLength, (r + 1) * rowLength), r * paddedRowLength);
  return out;
}

/** The first rowLength elements of each padded row: the inverse of padRows. */
export function unpadRows(data: Float32Array, paddedRowLength: number, rowLength: number): Float32Array {
  if (paddedRowLength === rowLength) return data;
  const rows = data.length / paddedRowLength;
  const out = new Float32Array(rows * rowLength);
  for (let r = 0; r < rows; r++) out.set(data.subarray(r * paddedRowLength, r * paddedRowLength + rowLength), r * rowLength);
  return out;
}

/** Why a type cannot be made here: ggml refuses it without importance weights, and there are none for this tensor. */
function whyNeedsImportance(type: QuantType, importance: Float32Array | null, haveImatrix: boolean): string | null {
  if (!type.requiresImportance || importance) return null;
  return haveImatrix
    ? `${type.id} needs an importance matrix, and the one in use has no entry of this tensor's row length`
    : `${type.id} needs an importance matrix (ggml refuses it without one, as llama-quantize does): compute one in the Calibration tab or drop an imatrix file`;
}

/** The imatrix's entry for a tensor: one weight per column (3-D tensors' per-expert entries do not apply to sampled rows). */
function importanceFor(imatrix: Imatrix | undefined, name: string, rowLength: number): Float32Array | null {
  const values = imatrix?.entries.get(name);
  return values && values.length === rowLength ? values : null;
}

/** The CPU codecs, encoding with importance weights. */
function weightedCpu(importance: Float32Array): Compute {
  return { ...cpuCompute, quantize: async (type, data, rowLength) => type.codec.encode(data, rowLength, importance) };
}

/** The tensor as f32, or above MAX_COMPARE_VALUES evenly spaced runs of its rows. */
async function readForCompare(session: Session, tensor: ModelTensor, rowLength: number): Promise<{ data: Float32Array; rowsTotal: number }> {
  const total = elementCount(tensor);
  const rowsTotal = total / rowLength;
  const rowsWanted = Math.floor(MAX_COMPARE_VALUES / rowLength);
  // Old files whose blocks run across rows are read whole (row ranges would split blocks).
  if (total <= MAX_COMPARE_VALUES || rowsWanted < 1 || tensor.flat) return { data: await session.readF32(tensor), rowsTotal };
  const runs = Math.min(COMPARE_SAMPLE_RUNS, rowsWanted);
  const perRun = Math.floor(rowsWanted / runs);
  const data = new Float32Array(runs * perRun * rowLength);
  for (let i = 0; i < runs; i++) {
    const first = Math.floor((i * (rowsTotal - perRun)) / Math.max(1, runs - 1));
    const values = await session.readF32(tensor, { elementOffset: first * rowLength, elementCount: perRun * rowLength });
    data.set(values, i * perRun * rowLength);
  }
  return { data, rowsTotal };
}

function emptyResult(type: QuantType, error: string): TypeResult {
  const sums = { count: 0, sumSqErr: 0, sumAbsErr: 0, maxAbsErr: 0, sumSqRef: 0, sumSqDeq: 0, dot: 0 };
  return {
    type: type.id,
    bpw: bitsPerWeight(type),
    bytes: 0,
    metrics: metricsFromSums(sums),
    sums,
    histogram: { min: 0, max: 0, counts: [], below: 0, above: 0 },
    block: null,
    backend: 'cpu',
    ms: 0,
    error,
  };
}

function weightRange(data: Float32Array): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!(hi > lo)) return [lo - 1e-6 || -1e-6, hi + 1e-6 || 1e-6];
  return [lo, hi + (hi - lo) * 1e-6];
}

/** Which elements the block inspector shows for element window windowIndex·256 of `elements` values. */
export function inspectWindow(type: QuantType, elements: number, windowIndex: number): { index: number; start: number; count: number } {
  const size = type.blockSize > 1 ? type.blockSize : INSPECT_ELEMENTS_UNBLOCKED;
  const blocks = Math.max(1, Math.floor(elements / size));
  const index = Math.min(Math.floor((windowIndex * INSPECT_WINDOW) / size), blocks - 1);
  const start = index * size;
  return { index, start, count: Math.max(0, Math.min(size, elements - start)) };
}

/** The type's block holding element windowIndex·256: original, dequantized, levels used. */
export function blockView(type: QuantType, ref: Float32Array, deq: Float32Array, bytes: Uint8Array, windowIndex: number): BlockView {
  const { index, start, count } = inspectWindow(type, ref.length, windowIndex);
  // Blocks never cross rows, so block i of the flat tensor is at i·typeSize, where the layout is plain blocks.
  const plainBlocks = type.blockSize > 1 && bytes.length === (ref.length / type.blockSize) * type.typeSize;
  const blockBytes = plainBlocks ? bytes.subarray(index * type.typeSize, (index + 1) * type.typeSize) : null;
  return blockViewOf(type, index, ref.subarray(start, start + count), deq.subarray(start, start + count), blockBytes);
}

/** The inspector's view of block `index` from its values and (plain blocks) its bytes. */
function blockViewOf(type: QuantType, index: number, ref: Float32Array, deq: Float32Array, blockBytes: Uint8Array | null): BlockView {
  const original = Array.from(ref);
  const dequantized = Array.from(deq);
  const levels = [...new Set(dequantized)].sort((a, b) => a - b);
  const fields = blockBytes ? blockFields(type.id, blockBytes) : {};
  return { index, original, dequantized, levels, fields: { ...fields, 'levels used': levels.length } };
}
