// GPTQ as an export: the blocks of every tensor an export plan puts in q4_0 or q4_K and that a
// calibration pass sees (the blk.* linear weights), from gptqQ4_0 / gptqQ4_K (gptq.ts) with each
// weight's Hessian over the calibration text's inputs (activations.ts, chunked as
// llama-imatrix). The export (export/plan.ts, ExportRequest.precomputed) writes these
// blocks in place of round-to-nearest and everything else as before (a preset's q6_K, q5_0...
// tensors as the plain export), so the file has the plain export's layout, with the quantize.gptq.* keys below added to the header
// (llama.cpp ignores keys it does not know).
// Each weight's Hessian is of its inputs in the F32 model, not in the model quantized so far
// as GPTQ's reference feeds them (activations.ts calibrateSequentially): on stories260K the
// sequential inputs gave the worse model (bench/gptq-inputs.ts: mean KL on the eval text
// x0.640 of round-to-nearest's, against x0.573 from F32 inputs).
// With a GPU (options.gpu), GPTQ runs there (gptq-gpu.ts: the Hessian and the column walk,
// f32) while the device lives, then on the CPU (gptq.ts, f64); on a hardware GPU (or with
// options.residentHessians) the Hessians are summed on the resident forward pass
// (model/gpu-stats.ts, read back once) instead of from inputs collected on the CPU. Act-order (options.actOrder,
// static groups) runs on the CPU: the GPU walk keeps GPTQ's column order.
// The weights are read through the export source (the GGUF's own rows: a converted
// safetensors model's Q/K rows are permuted as convert_hf_to_gguf.py does); GPTQ treats
// each row on its own with one Hessian over the input columns, so the row order does not
// matter and the inputs' columns are the same in both.
import type { ModelIndex } from '../formats/model.ts';
import { GGUF_VALUE_TYPE } from '../formats/gguf/constants.ts';
import { ggufEntry, type GgufMetadataEntry } from '../formats/gguf/metadata.ts';
import { type ExportPlan, type PrecomputedTensors } from '../export/plan.ts';
import { type ExportSource, rowCount } from '../export/source.ts';
import { chunkTokens, collectInputs, colsOf, defaultChunk, layerStages, linearWeightNames, openCalibrationModel, stageWeightNames, type CalibrationModel, type CalibrationProgress } from './activations.ts';
import { ResidentUnsupportedError } from '../model/gpu-forward.ts';
import { residentStatistics } from '../model/gpu-stats.ts';
import { mapProvider } from '../model/weights.ts';
import { assertMethodSupported } from '../model/families/support.ts';
import { BUILTIN_CALIBRATION_DATASET, CALIBRATION_STORY_TEXT } from './calibration-text.ts';
import type { GpuContext } from '../gpu/device.ts';
import type { GpuFallback } from '../export/write.ts';
import { gptqHessianGpu, gptqQuantizeGpu, q4_0BlocksFromGpu, q4KBlocksFromGpu } from './gptq-gpu.ts';
import { gptqQ4_0, gptqQ4_K, hessian } from './gptq.ts';
import { gptqTargetTypes } from '../quant/presets.ts';

/** The tensor types GPTQ export writes: the type table's GPTQ targets (q4_0, q4_K). */
export const GPTQ_EXPORT_TYPES: readonly string[] = gptqTargetTypes();
/** The GPTQ that quantizes into each target's grid. */
const GPTQ_BY_TYPE = { q4_0: gptqQ4_0, q4_K: gptqQ4_K } as const;
type GptqType = keyof typeof GPTQ_BY_TYPE;
for (const t of GPTQ_EXPORT_TYPES) if (!Object.hasOwn(GPTQ_BY_TYPE, t)) throw new Error(`GPTQ export: the type table makes ${t} a GPTQ target, but there is no GPTQ for its grid`);

const isGptqType = (type: string): type is GptqType => GPTQ_EXPORT_TYPES.includes(type);
const GPTQ_TYPES_TEXT = GPTQ_EXPORT_TYPES.map((t) => t.toUpperCase()).join(' or ');

/** Header keys of a GPTQ export. */
export const GPTQ_KEYS = {
  dataset: 'quantize.gptq.dataset',
  tensors: 'quantize.gptq.tensors_count',
  chunks: 'quantize.gptq.chunks_count',
  chunkSize: 'quantize.gptq.chunk_size',
  /** Written (true) only for act-order, so a plain GPTQ file's header is as before. */
  actOrder: 'quantize.gptq.act_order',
} as const;

export interface GptqExportOptions {
  /** The calibration text (default: the built-in stories). */
  text?: string;
  /** What quantize.gptq.dataset says: the text file as given (default: the built-in text's name). */
  dataset?: string;
  /** Calibration chunk (default as `quantlab calibrate`). */
  chunk?: number;
  /** The GPU GPTQ runs on while its device lives, with the CPU as its fallback (default: the CPU). */
  gpu?: GpuFallback;
  /** GPTQ in act-order with static groups (gptq.ts), on the CPU. */
  actOrder?: boolean;
  /**
   * With a GPU: sum the Hessians on the resident forward pass (model/gpu-stats.ts) instead
   * of collecting the inputs on the CPU. Default: on hardware adapters only (on SwiftShader
   * the resident pass over 512-token chunks costs tens of times the CPU collection).
   */
  residentHessians?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: CalibrationProgress) => void;
}

export interface GptqExport extends PrecomputedTensors {
  /** How many tensors of each type hold GPTQ's blocks. */
  types: Partial<Record<GptqType, number>>;
  dataset: string;
  textTokens: number;
  chunk: number;
  chunks: number;
  /** How many tensors' GPTQ ran on the GPU, and on which (its description). */
  gpu: { tensors: number; device?: string };
  actOrder: boolean;
}

/**
 * GPTQ's blocks for the tensors `plan` converts to q4_0 or q4_K that the calibration pass
 * sees; refused when there are none. `model` is the loaded model (for the forward pass),
 * `source` and `plan` the export's (planExport without precomputed tensors).
 */
export async function gptqExport(model: ModelIndex, source: ExportSource, plan: ExportPlan, options: GptqExportOptions): Promise<GptqExport> {
  const text = options.text ?? CALIBRATION_STORY_TEXT;
  const actOrder = options.actOrder ?? false;
  const dataset = options.dataset ?? BUILTIN_CALIBRATION_DATASET;
  const cm = await openCalibrationModel(model);
  assertMethodSupported(cm.config, 'gptq');
  const tokens = cm.tokenize(text);
  const chunk = options.chunk ?? defaultChunk(tokens.length, cm.config.contextLength);
  const chunks = chunkTokens(tokens, chunk, cm.bosId, cm.addBos).chunks.length;
  const byName = new Map(plan.tensors.map((t) => [t.name, t]));
  const names = linearWeightNames(cm.config).filter((n) => {
    const t = byName.get(n);
    return t !== undefined && t.converted && isGptqType(t.type);
  });
  if (names.length === 0) {
    throw new Error(`GPTQ export writes ${GPTQ_TYPES_TEXT} blocks: the ${plan.ftype} plan puts no blk.* linear weight in ${GPTQ_EXPORT_TYPES.join(' or ')} (a row length they cannot hold falls back to another type)`);
  }
  const total = chunks + names.length;
  let done = 0;
  const tick = (label: string) => options.onProgress?.({ done: ++done, total, label });
  const onChunk = (d: number, n: number) => tick(`calibration text: chunk ${d} of ${n}`);
  // The Hessians summed on the resident forward pass where asked (by default on a hardware
  // GPU); otherwise, or where it cannot run the model, the inputs are collected on the CPU.
  const live = actOrder ? undefined : options.gpu?.liveGpu();
  const useResident = live !== undefined && (options.residentHessians ?? !live.isFallbackAdapter);
  const resident = useResident ? await residentHessians(options.gpu!, cm, text, chunk, names, options.signal, onChunk) : null;
  const inputs = resident ? null : await collectInputs(cm, text, chunk, { only: new Set(names), signal: options.signal, onChunk });
  const tensors = new Map<string, Uint8Array>();
  const types: GptqExport['types'] = {};
  let gpuTensors = 0;
  let device: string | undefined;
  for (const name of names) {
    if (options.signal?.aborted) throw options.signal.reason instanceof Error ? options.signal.reason : new Error('cancelled');
    const x = inputs?.get(name);
    const summed = resident?.get(name);
    if (!x && !summed) {
      tick(name);
      continue;
    }
    const { source: src, type } = byName.get(name)!;
    const cols = src.ne[0];
    const rows = rowCount(src.ne);
    const inputCols = x ? x.cols : Math.sqrt(summed!.length);
    if (inputCols !== cols) throw new Error(`GPTQ: ${name} has rows of ${cols} values but inputs of ${inputCols}`);
    const w = await source.readF32(src, { first: 0, count: rows });
    const onCpu = async () => GPTQ_BY_TYPE[type as GptqType](w, rows, cols, summed ?? hessian(x!.x, x!.n, cols), { actOrder }).bytes;
    const onGpu = async (gpu: GpuContext) => {
      device = gpu.description;
      return gptqOnGpu(gpu, type as GptqType, w, rows, cols, summed ?? (await gptqHessianGpu(gpu, x!.x, x!.n, cols)));
    };
    const { value, backend } = options.gpu && !actOrder ? await options.gpu.withFallback(onGpu, onCpu) : { value: await onCpu(), backend: 'cpu' };
    if (backend === 'webgpu') gpuTensors++;
    tensors.set(name, value);
    types[type as GptqType] = (types[type as GptqType] ?? 0) + 1;
    tick(backend === 'webgpu' ? `${name} on WebGPU` : name);
  }
  const { BOOL, STRING, UINT32 } = GGUF_VALUE_TYPE;
  const keys: GgufMetadataEntry[] = [
    ggufEntry(GPTQ_KEYS.dataset, STRING, dataset),
    ggufEntry(GPTQ_KEYS.tensors, UINT32, tensors.size),
    ggufEntry(GPTQ_KEYS.chunks, UINT32, chunks),
    ggufEntry(GPTQ_KEYS.chunkSize, UINT32, chunk),
    ...(actOrder ? [ggufEntry(GPTQ_KEYS.actOrder, BOOL, true)] : []),
  ];
  const gpu = { tensors: gpuTensors, device: gpuTensors > 0 ? device : undefined };
  return { tensors, keys, method: 'gptq', types, dataset, textTokens: tokens.length, chunk, chunks, gpu, actOrder };
}

/** GPTQ's blocks computed on the GPU. */
async function gptqOnGpu(gpu: GpuContext, type: GptqType, w: Float32Array, rows: number, cols: number, h: Float64Array): Promise<Uint8Array> {
  const result = await gptqQuantizeGpu(gpu, w, rows, cols, h, { grid: { kind: type } });
  return (type === 'q4_0' ? q4_0BlocksFromGpu : q4KBlocksFromGpu)(result, rows, cols);
}

/**
 * H = 2/N·XᵀX of every weight in `names` (GGUF names), summed on the resident forward pass
 * (model/gpu-stats.ts: one XᵀX per stage of weights reading one input, upper triangle, read
 * back once); null where it cannot run the model or the device is lost (the caller then
 * collects the inputs on the CPU).
 */
async function residentHessians(
  gpu: GpuFallback,
  cm: CalibrationModel,
  text: string,
  chunk: number,
  names: readonly string[],
  signal: AbortSignal | undefined,
  onChunk: (done: number, total: number) => void,
): Promise<Map<string, Float64Array> | null> {
  const wanted = new Set(names);
  const groups: { names: string[]; weights: string[]; cols: number }[] = [];
  for (let il = 0; il < cm.config.nLayer; il++) {
    for (const stage of layerStages(cm.config)) {
      const stageNames = stageWeightNames(il, stage).filter((n) => wanted.has(n));
      if (stageNames.length) groups.push({ names: stageNames, weights: stageNames.map((n) => cm.fileName(n)), cols: colsOf(cm, stageNames[0]) });
    }
  }
  const { chunks } = chunkTokens(cm.tokenize(text), chunk, cm.bosId, cm.addBos);
  const check = () => {
    if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('cancelled');
  };
  const onGpu = async (g: GpuContext) => {
    try {
      return await residentStatistics(g, cm.config, mapProvider(cm.weights), chunks, { sums: new Map(), xtx: groups }, { check, onChunk });
    } catch (e) {
      if (e instanceof ResidentUnsupportedError) return null;
      throw e;
    }
  };
  const { value: r } = await gpu.withFallback(onGpu, async () => null);
  if (!r) return null;
  const out = new Map<string, Float64Array>();
  for (const g of groups) {
    const h = r.xtx.get(g.weights[0])!.map((v) => (v * 2) / r.rows);
    for (const n of g.names) out.set(n, h);
  }
  return out;
}
