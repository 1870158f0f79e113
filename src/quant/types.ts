// THE table of quantization types (house rule 1 of docs/architecture.md). UI labels, size math,
// GGUF type codes, shader choice and the test loops all read it: adding a type means one
// row here and one codec.
import { GGML_TYPES, type GgmlTypeInfo } from '../formats/gguf/constants.ts';
import type { Codec } from './codec.ts';
import * as float from './codecs/float.ts';
import * as legacy from './codecs/legacy.ts';
import * as kquants from './codecs/kquants.ts';
import * as iquants from './codecs/iquants.ts';
import * as ternary from './codecs/ternary.ts';
import * as mxfp4 from './codecs/mxfp4.ts';
import * as intn from './codecs/intn.ts';
import * as nf4 from './codecs/nf4.ts';
import * as iq1 from './codecs/iq1.ts';
import * as iq2 from './codecs/iq2.ts';
import * as iq3 from './codecs/iq3.ts';
import * as lowbit from './codecs/lowbit.ts';
import { withFastPath } from './fast/wasm-codecs.ts';

export type TypeFamily = 'float' | 'legacy' | 'k-quant' | 'i-quant' | 'ternary' | 'microscaling' | 'integer' | 'bitsandbytes';

/**
 * How a tensor of a type lies in bytes. 'blocks': rows of whole blocks and nothing else
 * (rows * rowLength / blockSize * typeSize bytes); 'bytes': a byte per value plus a per-row
 * or per-tensor section (int8, int8_outlier, fp8); 'double-quant': the blocks' codes, then
 * their absmax in 8 bits with a scale per group (nf4_dq, fp4_dq).
 */
export type LayoutKind = 'blocks' | 'bytes' | 'double-quant';

/** How the GPU runs a 'bytes' layout (src/gpu/byte-layouts.ts, kernels/bytes_*.wgsl). */
export interface ByteLayout {
  readonly kind: 'bytes';
  /** shaders/lib/<family>.wgsl: layout_seg_param, layout_encode, layout_decode. */
  readonly lib: string;
  /** One scale for the tensor, stored first (fp8), or one absmax per row, stored after the codes (int8). */
  readonly perTensor: boolean;
  /** The absmax is over finite values only (fp8). */
  readonly finiteOnly: boolean;
  /** LLM.int8's outlier columns, stored as f16 records after the INT8 sections. */
  readonly outliers: boolean;
}

/** How the GPU runs a 'double-quant' layout (src/gpu/double-quant.ts): the base block codec, then kernels/dq_absmax.wgsl. */
export interface DoubleQuantLayout {
  readonly kind: 'double-quant';
  /** The block type whose codes and absmax the layout keeps. */
  readonly base: string;
}

export type GpuLayout = ByteLayout | DoubleQuantLayout;

/**
 * ggml's vec_dot_type (ggml-cpu.c type_traits_cpu): what llama.cpp rounds a mul_mat's
 * activations to for weights of a type (model/llamacpp-linear.ts). q4_1 and q5_1 use q8_1 in
 * ggml: the same values as q8_0 (its block sum only speeds the min term up).
 */
export type VecDotType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q8_K';

export interface QuantType {
  /** The contract id (docs/contracts.md): ggml's spelling for GGUF types. */
  readonly id: string;
  /** ggml's traits when GGUF can store the type; absent otherwise. */
  readonly ggml?: GgmlTypeInfo;
  /** Elements per block: a tensor's row length must be a multiple of it. */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
  readonly family: TypeFamily;
  /**
   * The codec everything runs: the reference's bytes, from the WebAssembly fast path
   * (quant/fast/) when it is installed and has the type, else from the reference.
   */
  readonly codec: Codec;
  /** The plain TypeScript reference codec (house rule 3): the oracle the fast path is tested against. */
  readonly reference: Codec;
  /** Storage of a rows x rowLength tensor, in bytes (nominal for data-dependent layouts). */
  readonly bytesFor: (rows: number, rowLength: number) => number;
  /** WGSL codec, shaders/codecs/<wgsl>.wgsl. */
  readonly wgsl: string;
  /** True when the GGUF/llama.cpp quantizer uses importance weights for this type. */
  readonly usesImportance: boolean;
  /** How a tensor's bytes are laid out. */
  readonly layout: LayoutKind;
  /** How the GPU runs a layout other than 'blocks' (absent for 'blocks'). */
  readonly gpuLayout?: GpuLayout;
  /** The WGSL codec takes importance weights (reads has_qw: shaders/lib/bytes.wgsl); the GPU refuses them for the others. */
  readonly gpuImportance: boolean;
  /** llama.cpp's vec_dot_type for weights of this type; absent where quantlab does not model it. */
  readonly vecDot?: VecDotType;
  /** Only ever a matmul activation type in llama.cpp (q8_K): not a weight type to offer, plan or write. */
  readonly activationOnly: boolean;
  /** GPTQ export can write this type's blocks (calibrate/gptq-export.ts). */
  readonly gptqTarget: boolean;
  /**
   * True when the type cannot be made without importance weights (ggml_quantize_requires_imatrix:
   * iq2_xxs, iq2_xs, iq1_s): its encode throws without them, as llama-quantize refuses.
   */
  readonly requiresImportance: boolean;
  readonly description: string;
}

interface Row {
  id: string;
  family: TypeFamily;
  codec: Codec;
  description: string;
  /** For types GGUF cannot store. */
  blockSize?: number;
  typeSize?: number;
  bytesFor?: (rows: number, rowLength: number) => number;
  usesImportance?: boolean;
  /** Default 'blocks'. */
  layout?: LayoutKind;
  gpuLayout?: GpuLayout;
  gpuImportance?: boolean;
  vecDot?: VecDotType;
  activationOnly?: boolean;
  gptqTarget?: boolean;
  requiresImportance?: boolean;
}

const GGML_BY_NAME = new Map([...GGML_TYPES.values()].map((t) => [t.name, t]));

function defineType(row: Row): QuantType {
  const ggml = GGML_BY_NAME.get(row.id);
  const blockSize = ggml?.blockSize ?? row.blockSize;
  const typeSize = ggml?.typeSize ?? row.typeSize;
  if (blockSize === undefined || typeSize === undefined) throw new Error(`type ${row.id}: no block layout`);
  return {
    id: row.id,
    ggml,
    blockSize,
    typeSize,
    family: row.family,
    codec: withFastPath(row.id, row.codec),
    reference: row.codec,
    bytesFor: row.bytesFor ?? ((rows, rowLength) => (rows * rowLength * typeSize) / blockSize),
    wgsl: row.id.toLowerCase(),
    usesImportance: row.usesImportance ?? false,
    layout: row.layout ?? 'blocks',
    gpuLayout: row.gpuLayout,
    gpuImportance: row.gpuImportance ?? false,
    vecDot: row.vecDot,
    activationOnly: row.activationOnly ?? false,
    gptqTarget: row.gptqTarget ?? false,
    requiresImportance: row.requiresImportance ?? false,
    description: row.description,
  };
}

const ROWS: Row[] = [
  { id: 'f32', family: 'float', codec: float.F32, vecDot: 'f32', description: 'IEEE single precision: the reference' },
  { id: 'f16', family: 'float', codec: float.F16, vecDot: 'f16', description: 'IEEE half precision, round to nearest even' },
  { id: 'bf16', family: 'float', codec: float.BF16, vecDot: 'bf16', description: 'bfloat16: f32 exponent, 7-bit mantissa, round to nearest even' },
  { id: 'q8_0', family: 'legacy', codec: legacy.Q8_0, vecDot: 'q8_0', description: '8-bit, blocks of 32 with an f16 scale' },
  { id: 'q5_1', family: 'legacy', codec: legacy.Q5_1, usesImportance: true, gpuImportance: true, vecDot: 'q8_0', description: '5-bit, blocks of 32 with f16 scale and min' },
  { id: 'q5_0', family: 'legacy', codec: legacy.Q5_0, usesImportance: true, gpuImportance: true, vecDot: 'q8_0', description: '5-bit, blocks of 32 with an f16 scale' },
  { id: 'q4_1', family: 'legacy', codec: legacy.Q4_1, usesImportance: true, gpuImportance: true, vecDot: 'q8_0', description: '4-bit, blocks of 32 with f16 scale and min' },
  { id: 'q4_0', family: 'legacy', codec: legacy.Q4_0, usesImportance: true, gpuImportance: true, vecDot: 'q8_0', gptqTarget: true, description: '4-bit, blocks of 32 with an f16 scale' },
  { id: 'q6_K', family: 'k-quant', codec: kquants.Q6_K, usesImportance: true, gpuImportance: true, vecDot: 'q8_K', description: '6-bit super-blocks of 256: 16 sub-blocks with 8-bit scales' },
  { id: 'q5_K', family: 'k-quant', codec: kquants.Q5_K, usesImportance: true, gpuImportance: true, vecDot: 'q8_K', description: '5-bit super-blocks of 256: 8 sub-blocks with 6-bit scales and mins' },
  { id: 'q4_K', family: 'k-quant', codec: kquants.Q4_K, usesImportance: true, gpuImportance: true, vecDot: 'q8_K', gptqTarget: true, description: '4-bit super-blocks of 256: 8 sub-blocks with 6-bit scales and mins' },
  { id: 'q3_K', family: 'k-quant', codec: kquants.Q3_K, usesImportance: true, gpuImportance: true, vecDot: 'q8_K', description: '3-bit super-blocks of 256: 16 sub-blocks with 6-bit scales' },
  { id: 'q2_K', family: 'k-quant', codec: kquants.Q2_K, usesImportance: true, gpuImportance: true, vecDot: 'q8_K', description: '2-bit super-blocks of 256: 16 sub-blocks with 4-bit scales and mins' },
  { id: 'q8_K', family: 'k-quant', codec: kquants.Q8_K, activationOnly: true, description: '8-bit super-blocks of 256 with an f32 scale: matmul activations only' },
  { id: 'iq4_nl', family: 'i-quant', codec: iquants.IQ4_NL, usesImportance: true, vecDot: 'q8_0', description: '4-bit non-linear grid, blocks of 32 with an f16 scale' },
  { id: 'iq4_xs', family: 'i-quant', codec: iquants.IQ4_XS, usesImportance: true, vecDot: 'q8_K', description: '4-bit non-linear grid, super-blocks of 256 with 6-bit sub-block scales' },
  { id: 'iq3_s', family: 'i-quant', codec: iq3.IQ3_S, usesImportance: true, description: '3.44 bits: groups of 4 on a 512-point lattice grid, sign bits, 4-bit scales per 32' },
  { id: 'iq3_xxs', family: 'i-quant', codec: iq3.IQ3_XXS, usesImportance: true, description: '3.06 bits: groups of 4 on a 256-point lattice grid, even-parity signs, 4-bit scales per 32' },
  { id: 'iq2_s', family: 'i-quant', codec: iq2.IQ2_S, usesImportance: true, description: '2.56 bits: groups of 8 on a 1024-point lattice grid, sign bits, 4-bit scales per 16' },
  { id: 'iq2_xs', family: 'i-quant', codec: iq2.IQ2_XS, usesImportance: true, requiresImportance: true, description: '2.31 bits: groups of 8 on a 512-point lattice grid, even-parity signs, 4-bit scales per 16; needs an imatrix' },
  { id: 'iq2_xxs', family: 'i-quant', codec: iq2.IQ2_XXS, usesImportance: true, requiresImportance: true, description: '2.06 bits: groups of 8 on a 256-point lattice grid, even-parity signs, 4-bit scales per 32; needs an imatrix' },
  { id: 'iq1_m', family: 'i-quant', codec: iq1.IQ1_M, usesImportance: true, description: '1.75 bits: groups of 8 on a 2048-point ternary grid shifted by +-1/8, 3-bit scales per 16' },
  { id: 'iq1_s', family: 'i-quant', codec: iq1.IQ1_S, usesImportance: true, requiresImportance: true, description: '1.56 bits: groups of 8 on a 2048-point ternary grid shifted by +-1/8, 3-bit scales per 32; needs an imatrix' },
  { id: 'tq2_0', family: 'ternary', codec: ternary.TQ2_0, vecDot: 'q8_K', description: 'ternary {-1,0,1}, 2 bits each, super-blocks of 256' },
  { id: 'tq1_0', family: 'ternary', codec: ternary.TQ1_0, vecDot: 'q8_K', description: 'ternary {-1,0,1}, 1.6875 bits each (5 trits per byte)' },
  { id: 'mxfp4', family: 'microscaling', codec: mxfp4.MXFP4, vecDot: 'q8_0', description: 'OCP MX FP4 (E2M1), blocks of 32 with an E8M0 scale' },
  { id: 'nvfp4', family: 'microscaling', codec: lowbit.NVFP4, description: 'NVIDIA FP4 (E2M1), blocks of 64 with a UE4M3 scale per 16' },
  { id: 'q2_0', family: 'legacy', codec: lowbit.Q2_0, description: '2-bit levels {-1, 0, 1, 2}, blocks of 64 with an f16 absmax scale' },
  { id: 'q1_0', family: 'legacy', codec: lowbit.Q1_0, description: '1-bit signs, blocks of 128 with an f16 mean-magnitude scale' },
  { id: 'fp8_e4m3', family: 'float', codec: float.FP8_E4M3, blockSize: 1, typeSize: 1, bytesFor: float.fp8Bytes, layout: 'bytes', gpuLayout: { kind: 'bytes', lib: 'lib/fp8.wgsl', perTensor: true, finiteOnly: true, outliers: false }, description: 'FP8 E4M3 with one f32 scale per tensor' },
  { id: 'fp8_e5m2', family: 'float', codec: float.FP8_E5M2, blockSize: 1, typeSize: 1, bytesFor: float.fp8Bytes, layout: 'bytes', gpuLayout: { kind: 'bytes', lib: 'lib/fp8.wgsl', perTensor: true, finiteOnly: true, outliers: false }, description: 'FP8 E5M2 with one f32 scale per tensor' },
  { id: 'int8', family: 'integer', codec: intn.INT8, blockSize: 1, typeSize: 1, bytesFor: intn.int8Bytes, layout: 'bytes', gpuLayout: { kind: 'bytes', lib: 'lib/int8.wgsl', perTensor: false, finiteOnly: false, outliers: false }, description: 'INT8 absmax per output channel (row)' },
  { id: 'int8_outlier', family: 'integer', codec: intn.INT8_OUTLIER, blockSize: 1, typeSize: 1, bytesFor: intn.int8Bytes, layout: 'bytes', gpuLayout: { kind: 'bytes', lib: 'lib/int8.wgsl', perTensor: false, finiteOnly: false, outliers: true }, description: 'LLM.int8: INT8 per row, outlier input columns (|x| >= 6) kept in f16' },
  ...([32, 64, 128] as const).flatMap((group) =>
    (['sym', 'asym'] as const).map((mode): Row => {
      const codec = intn.int4Codec(group, mode);
      return {
        id: `int4_g${group}_${mode}`,
        family: 'integer',
        codec,
        blockSize: group,
        typeSize: intn.int4BlockBytes(group, mode),
        description: `INT4, groups of ${group}, ${mode === 'sym' ? 'symmetric (scale only)' : 'asymmetric (scale and zero-point)'}, as GPTQ/AWQ`,
      };
    }),
  ),
  { id: 'nf4', family: 'bitsandbytes', codec: nf4.NF4, blockSize: 64, typeSize: nf4.NF4_BLOCK_BYTES, description: 'bitsandbytes NormalFloat4, blocks of 64 with an f32 absmax' },
  { id: 'nf4_dq', family: 'bitsandbytes', codec: nf4.NF4_DQ, blockSize: 64, typeSize: nf4.DQ_BLOCK_BYTES, bytesFor: nf4.dqBytes, layout: 'double-quant', gpuLayout: { kind: 'double-quant', base: 'nf4' }, description: 'NF4 with double quantization: absmax in 8 bits, blocks of 256' },
  { id: 'fp4', family: 'bitsandbytes', codec: nf4.FP4, blockSize: 64, typeSize: nf4.NF4_BLOCK_BYTES, description: 'bitsandbytes FP4 (E2M1), blocks of 64 with an f32 absmax' },
  { id: 'fp4_dq', family: 'bitsandbytes', codec: nf4.FP4_DQ, blockSize: 64, typeSize: nf4.DQ_BLOCK_BYTES, bytesFor: nf4.dqBytes, layout: 'double-quant', gpuLayout: { kind: 'double-quant', base: 'fp4' }, description: 'FP4 with double quantization: absmax in 8 bits, blocks of 256' },
];

export const QUANT_TYPES: readonly QuantType[] = ROWS.map(defineType);

const BY_ID = new Map(QUANT_TYPES.map((t) => [t.id.toLowerCase(), t]));

/** Find a type by id, case-insensitively (docs/contracts.md: `Q4_K` = `q4_K`). */
export function quantType(id: string): QuantType | undefined {
  return BY_ID.get(id.toLowerCase());
}

/** Bits per weight of a type on rows of `rowLength` (default: a typical 4096-wide row). */
export function bitsPerWeight(type: QuantType, rowLength = 4096, rows = 1): number {
  return (type.bytesFor(rows, rowLength) * 8) / (rows * rowLength);
}

/** Why a type cannot apply to a tensor with this row length, or null if it can. */
export function whyNotApplicable(type: QuantType, rowLength: number): string | null {
  return rowLength % type.blockSize === 0
    ? null
    : `row length ${rowLength} is not a multiple of ${type.id}'s block size ${type.blockSize}`;
}

const BY_GGML_ID = new Map(QUANT_TYPES.filter((t) => t.ggml).map((t) => [t.ggml!.id, t]));

/** The table row of a ggml type id, if quantlab has a codec for it. */
export function quantTypeByGgmlId(id: number): QuantType | undefined {
  return BY_GGML_ID.get(id);
}

/** Decode `count` values of ggml type `ggmlType` read as one flat run (formats' GgmlDequantizer). */
export function dequantizeGgml(ggmlType: number, bytes: Uint8Array, count: number): Float32Array {
  const type = quantTypeByGgmlId(ggmlType);
  if (!type) throw new Error(`ggml type ${ggmlType} cannot be decoded by quantlab yet`);
  return type.codec.decode(bytes, 1, count);
}
