// Quantize and dequantize on the GPU, bit-exact with the CPU reference codecs
// (src/quant/codecs/*, house rule 3): the entry points, which send a type to the code that
// runs its layout: a plain sequence of blocks (block-codecs.ts), one byte per value with
// per-row or per-tensor values (byte-layouts.ts) or double-quantized absmax
// (double-quant.ts). Error statistics: error-stats.ts; shared dispatch helpers: dispatch.ts.
import { quantType, type GpuLayout, type QuantType } from '../quant/types.ts';
import { checkShape, dequantizeBlocks, quantizeBlocks, type GpuQuantizeReport } from './block-codecs.ts';
import { dequantizeBytes, quantizeBytes } from './byte-layouts.ts';
import { dequantizeDoubleQuant, quantizeDoubleQuant } from './double-quant.ts';
import { hasCodecEncoder, hasCodecShader } from './shaders.ts';
import type { GpuContext } from './device.ts';

export type { GpuQuantizeReport };

function resolveType(type: QuantType | string): QuantType {
  const t = typeof type === 'string' ? quantType(type) : type;
  if (!t) throw new RangeError(`unknown quantization type ${String(type)}`);
  return t;
}

/**
 * Whether the GPU runs this type: a WGSL codec (shaders/codecs/<wgsl>.wgsl), and the type's
 * tensor is a plain sequence of blocks or a layout the GPU has (the table's gpuLayout).
 */
export function gpuSupportsType(type: QuantType | string): boolean {
  const t = typeof type === 'string' ? quantType(type) : type;
  return t !== undefined && hasCodecShader(t.wgsl) && (t.layout === 'blocks' || t.gpuLayout !== undefined);
}

/**
 * Whether the GPU encodes this type itself: decode-only codecs (the i-quants, whose searches
 * need tables larger than a workgroup's memory: docs/formats.md) take the CPU codec's blocks.
 */
export function gpuEncodesType(type: QuantType | string): boolean {
  const t = typeof type === 'string' ? quantType(type) : type;
  return t !== undefined && gpuSupportsType(t) && (t.gpuLayout !== undefined || hasCodecEncoder(t.wgsl));
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

/**
 * Whether quantizeOnGpu takes importance weights for `type`: the table's gpuImportance, or a
 * decode-only codec (its blocks are the CPU codec's, importance included).
 */
export function gpuSupportsImportance(type: QuantType | string): boolean {
  const t = typeof type === 'string' ? quantType(type) : type;
  return t !== undefined && (!t.usesImportance || t.gpuImportance || (!t.gpuLayout && hasCodecShader(t.wgsl) && !hasCodecEncoder(t.wgsl)));
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
  if (!t.gpuLayout && !hasCodecEncoder(t.wgsl)) return encodeOnCpu(t, data, rowLength, weights);
  if (weights && !t.gpuImportance) {
    throw new RangeError(`${t.id}: no importance-weighted WGSL path yet (shaders/codecs/${t.wgsl}.wgsl)`);
  }
  const layout = t.gpuLayout;
  if (layout) return quantizeLayout(gpu, t, layout, data, rowLength);
  return quantizeBlocks(gpu, t, data, rowLength, weights);
}

/**
 * A type whose WGSL codec decodes only: the CPU codec encodes every block (the report lists
 * them all), so callers get the same bytes either way.
 */
function encodeOnCpu(t: QuantType, data: Float32Array, rowLength: number, weights: Float32Array | undefined): { bytes: Uint8Array; report: GpuQuantizeReport } {
  const nBlocks = checkShape(t, data.length, rowLength, 'quantizeOnGpu');
  const bytes = t.codec.encode(data, rowLength, weights);
  return { bytes, report: { cpuBlocks: Array.from({ length: nBlocks }, (_, i) => i) } };
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
  const layout = t.gpuLayout;
  if (layout) return dequantizeLayout(gpu, t, layout, bytes, rows, rowLength);
  return dequantizeBlocks(gpu, t, bytes, rows, rowLength);
}

/** quantizeOnGpuDetailed for a type with its own layout. */
async function quantizeLayout(gpu: GpuContext, t: QuantType, layout: GpuLayout, data: Float32Array, rowLength: number): Promise<{ bytes: Uint8Array; report: GpuQuantizeReport }> {
  checkShape(t, data.length, rowLength, 'quantizeOnGpu');
  if (layout.kind === 'double-quant') return quantizeDoubleQuant(gpu, t, resolveType(layout.base), data, rowLength);
  return { bytes: await quantizeBytes(gpu, t, layout, data, rowLength), report: { cpuBlocks: [] } };
}

/** dequantizeOnGpu for a type with its own layout. */
function dequantizeLayout(gpu: GpuContext, t: QuantType, layout: GpuLayout, bytes: Uint8Array, rows: number, rowLength: number): Promise<Float32Array> {
  checkShape(t, rows * rowLength, rowLength, 'dequantizeOnGpu');
  if (layout.kind === 'double-quant') return dequantizeDoubleQuant(gpu, t, resolveType(layout.base), bytes, rows, rowLength);
  return dequantizeBytes(gpu, t, layout, bytes, rows, rowLength);
}
