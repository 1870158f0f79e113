// Quantize and dequantize on the GPU, bit-exact with the CPU reference codecs
// (src/quant/codecs/*, house rule 3): the entry points, which send a type to the code that
// runs its layout: a plain sequence of blocks (block-codecs.ts), one byte per value with
// per-row or per-tensor values (byte-layouts.ts) or double-quantized absmax
// (double-quant.ts). Error statistics: error-stats.ts; shared dispatch helpers: dispatch.ts.
import { quantType, type QuantType } from '../quant/types.ts';
import { checkShape, dequantizeBlocks, quantizeBlocks, type GpuQuantizeReport } from './block-codecs.ts';
import { dequantizeBytes, quantizeBytes, type ByteLayout } from './byte-layouts.ts';
import { dequantizeDoubleQuant, quantizeDoubleQuant } from './double-quant.ts';
import { codecTakesImportance, hasCodecShader } from './shaders.ts';
import type { GpuContext } from './device.ts';

export type { GpuQuantizeReport };

function resolveType(type: QuantType | string): QuantType {
  const t = typeof type === 'string' ? quantType(type) : type;
  if (!t) throw new RangeError(`unknown quantization type ${String(type)}`);
  return t;
}

/**
 * Whether the GPU runs this type: a WGSL codec (shaders/codecs/<wgsl>.wgsl), and the type's
 * tensor is a plain sequence of blocks or one of the layouts below (GPU_LAYOUTS).
 */
export function gpuSupportsType(type: QuantType | string): boolean {
  const t = typeof type === 'string' ? quantType(type) : type;
  return t !== undefined && hasCodecShader(t.wgsl) && (isBlockSequence(t) || gpuLayout(t) !== undefined);
}

function requireGpuType(type: QuantType | string): QuantType {
  const t = resolveType(type);
  if (!gpuSupportsType(t)) throw new RangeError(`${t.id}: no WGSL codec yet (shaders/codecs/${t.wgsl}.wgsl)`);
  return t;
}

/**
 * Quantize `data` (rows of `rowLength` values) to `type` on the GPU: the type's block bytes,
 * rows concatenated, exactly as the CPU codec `type.codec.encode(data, rowLength,
 * importance)` (and ggml_quantize_chunk, with or without an imatrix). `importance`: one
 * weight per column, used by the types whose quantizer takes them (type.usesImportance) and
 * ignored by the others, as the CPU codecs do.
 */
export async function quantizeOnGpu(
  gpu: GpuContext,
  type: QuantType | string,
  data: Float32Array,
  rowLength: number,
  importance?: Float32Array,
): Promise<Uint8Array> {
  return (await quantizeOnGpuDetailed(gpu, type, data, rowLength, importance)).bytes;
}

/** Whether the GPU can quantize `type` with importance weights (its codec reads has_qw). */
export function gpuSupportsImportance(type: QuantType | string): boolean {
  const t = typeof type === 'string' ? quantType(type) : type;
  return t !== undefined && (!t.usesImportance || codecTakesImportance(t.wgsl));
}

/** quantizeOnGpu, also saying which blocks the CPU encoded. */
export async function quantizeOnGpuDetailed(
  gpu: GpuContext,
  type: QuantType | string,
  data: Float32Array,
  rowLength: number,
  importance?: Float32Array,
): Promise<{ bytes: Uint8Array; report: GpuQuantizeReport }> {
  const t = requireGpuType(type);
  if (importance && importance.length !== rowLength) {
    throw new RangeError(`quantizeOnGpu ${t.id}: ${importance.length} importance weights for rows of ${rowLength}`);
  }
  const weights = t.usesImportance ? importance : undefined;
  if (weights && !codecTakesImportance(t.wgsl)) {
    throw new RangeError(`${t.id}: no importance-weighted WGSL path yet (shaders/codecs/${t.wgsl}.wgsl)`);
  }
  const layout = gpuLayout(t);
  if (layout) return quantizeLayout(gpu, t, layout, data, rowLength);
  return quantizeBlocks(gpu, t, data, rowLength, weights);
}

/** Dequantize `rows` rows of `rowLength` values of `type` from `bytes` on the GPU. */
export async function dequantizeOnGpu(
  gpu: GpuContext,
  type: QuantType | string,
  bytes: Uint8Array,
  rows: number,
  rowLength: number,
): Promise<Float32Array> {
  const t = requireGpuType(type);
  const layout = gpuLayout(t);
  if (layout) return dequantizeLayout(gpu, t, layout, bytes, rows, rowLength);
  return dequantizeBlocks(gpu, t, bytes, rows, rowLength);
}

/** NF4 / FP4 codes from the base block codec, the absmax double-quantized (double-quant.ts). */
interface DoubleQuantLayout {
  readonly kind: 'dq';
  readonly base: string;
}

type GpuLayout = ByteLayout | DoubleQuantLayout;

const GPU_LAYOUTS: Readonly<Record<string, GpuLayout>> = {
  int8: { kind: 'bytes', lib: 'lib/int8.wgsl', perTensor: false, finiteOnly: false, outliers: false },
  int8_outlier: { kind: 'bytes', lib: 'lib/int8.wgsl', perTensor: false, finiteOnly: false, outliers: true },
  fp8_e4m3: { kind: 'bytes', lib: 'lib/fp8.wgsl', perTensor: true, finiteOnly: true, outliers: false },
  fp8_e5m2: { kind: 'bytes', lib: 'lib/fp8.wgsl', perTensor: true, finiteOnly: true, outliers: false },
  nf4_dq: { kind: 'dq', base: 'nf4' },
  fp4_dq: { kind: 'dq', base: 'fp4' },
};

/** The layout of a type that is not a plain sequence of blocks, if the GPU has one. */
function gpuLayout(t: QuantType): GpuLayout | undefined {
  return Object.hasOwn(GPU_LAYOUTS, t.id) ? GPU_LAYOUTS[t.id] : undefined;
}

/** Whether a tensor of the type is its blocks and nothing else (what runCodec reads and writes). */
function isBlockSequence(t: QuantType): boolean {
  return t.bytesFor(2, 3 * t.blockSize) === 6 * t.typeSize && t.bytesFor(1, t.blockSize) === t.typeSize;
}

/** quantizeOnGpuDetailed for a type with its own layout. */
async function quantizeLayout(gpu: GpuContext, t: QuantType, layout: GpuLayout, data: Float32Array, rowLength: number): Promise<{ bytes: Uint8Array; report: GpuQuantizeReport }> {
  checkShape(t, data.length, rowLength, 'quantizeOnGpu');
  if (layout.kind === 'dq') return quantizeDoubleQuant(gpu, t, resolveType(layout.base), data, rowLength);
  return { bytes: await quantizeBytes(gpu, t, layout, data, rowLength), report: { cpuBlocks: [] } };
}

/** dequantizeOnGpu for a type with its own layout. */
function dequantizeLayout(gpu: GpuContext, t: QuantType, layout: GpuLayout, bytes: Uint8Array, rows: number, rowLength: number): Promise<Float32Array> {
  checkShape(t, rows * rowLength, rowLength, 'dequantizeOnGpu');
  if (layout.kind === 'dq') return dequantizeDoubleQuant(gpu, t, resolveType(layout.base), bytes, rows, rowLength);
  return dequantizeBytes(gpu, t, layout, bytes, rows, rowLength);
}
