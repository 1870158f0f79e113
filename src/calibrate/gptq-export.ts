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
// f32) while the device lives, then on the CPU (gptq.ts, f64). Act-order (options.actOrder,
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
import { chunkTokens, collectInputs, defaultChunk, linearWeightNames, openCalibrationModel, type CalibrationProgress } from './activations.ts';
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
  const inputs = await collectInputs(cm, text, chunk, {
    only: new Set(names),
    signal: options.signal,
    onChunk: (d, n) => tick(`calibration text: chunk ${d} of ${n}`),
  });
  const tensors = new Map<string, Uint8Array>();
  const types: GptqExport['types'] = {};
  let gpuTensors = 0;
  let device: string | undefined;
  for (const name of names) {
    if (options.signal?.aborted) throw options.signal.reason instanceof Error ? options.signal.reason : new Error('cancelled');
    const x = inputs.get(name);
    if (!x) {
      tick(name);
      continue;
    }
    const { source: src, type } = byName.get(name)!;
    const cols = src.ne[0];
    const rows = rowCount(src.ne);
    if (x.cols !== cols) throw new Error(`GPTQ: ${name} has rows of ${cols} values but inputs of ${x.cols}`);
    const w = await source.readF32(src, { first: 0, count: rows });
    const onCpu = async () => GPTQ_BY_TYPE[type as GptqType](w, rows, cols, hessian(x.x, x.n, cols), { actOrder }).bytes;
    const onGpu = async (gpu: GpuContext) => {
      device = gpu.description;
      return gptqOnGpu(gpu, type as GptqType, w, rows, cols, x.x, x.n);
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

/** GPTQ's blocks computed on the GPU (the Hessian too). */
async function gptqOnGpu(gpu: GpuContext, type: GptqType, w: Float32Array, rows: number, cols: number, x: Float32Array, n: number): Promise<Uint8Array> {
  const h = await gptqHessianGpu(gpu, x, n, cols);
  const result = await gptqQuantizeGpu(gpu, w, rows, cols, h, { grid: { kind: type } });
  return (type === 'q4_0' ? q4_0BlocksFromGpu : q4KBlocksFromGpu)(result, rows, cols);
}
