// The export plan: what llama-quantize writes for a model and a file type. For a GGUF input
// the file (write.ts streams it) is, byte for byte, the one llama-quantize writes (llama.cpp src/llama-quant.cpp,
// llama_model_quantize_impl, at the pinned commit; ggml/src/gguf.cpp for the layout):
// - header: GGUF v3; the input's key-value pairs in their order (gguf_set_kv copies them
//   through C strings: keys and string values end at a NUL), then
//   general.quantization_version = 2 and general.file_type (gguf_set_val_* removes a key
//   and appends it, so an input's own copies move to the end), the split.* keys removed,
//   then llama-quantize's own keys (the imatrix ones, see formats/imatrix.ts);
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
import { type GgufLayout, type GgufTensorDescriptor, planGguf } from '../formats/gguf/write.ts';
import { type Imatrix, imatrixKeys } from '../formats/imatrix.ts';
import {
  type PlanMode,
  type PlanOptions,
  type TensorPlan,
  type TensorTypeOverride,
  modelInfoFromMetadata,
  planQuantization,
  resolveMode,
} from '../quant/presets.ts';
import { quantType, quantTypeByGgmlId } from '../quant/types.ts';
import type { ExportSource, ExportSourceTensor } from './source.ts';

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
