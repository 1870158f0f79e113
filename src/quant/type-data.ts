// THE table of quantization types, as data (house rule 1 of docs/architecture.md): what each
// type is (its block layout and sizes, GGUF traits, family, what the GPU and llama.cpp do with
// it), with no codec. UI labels, size math, GGUF type codes, shader choice and the plans read
// it; the codec registry (types.ts) adds what runs each type. Adding a type means one row here,
// one codec in types.ts.
//
// This module imports no codec (sizes come from sizes.ts), so that code needing only what a
// type is (the page's main bundle) does not carry every codec.
import { GGML_TYPES, type GgmlTypeInfo } from '../formats/gguf/constants.ts';
import { DQ_BLOCK_BYTES, dqBytes, fp8Bytes, int4BlockBytes, int8Bytes, NF4_BLOCK_BYTES } from './sizes.ts';

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

export interface TypeInfo {
  /** The contract id (docs/contracts.md): ggml's spelling for GGUF types. */
  readonly id: string;
  /** ggml's traits when GGUF can store the type; absent otherwise. */
  readonly ggml?: GgmlTypeInfo;
  /** Elements per block: a tensor's row length must be a multiple of it. */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
  readonly family: TypeFamily;
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

interface TypeRow {
  id: string;
  family: TypeFamily;
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

function defineTypeInfo(row: TypeRow): TypeInfo {
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

const ROWS: TypeRow[] = [
  { id: 'f32', family: 'float', vecDot: 'f32', description: 'IEEE single precision: the reference' },
  { id: 'f16', family: 'float', vecDot: 'f16', description: 'IEEE half precision, round to nearest even' },
  { id: 'bf16', family: 'float', vecDot: 'bf16', description: 'bfloat16: f32 exponent, 7-bit mantissa, round to nearest even' },
  { id: 'q8_0', family: 'legacy', vecDot: 'q8_0', description: '8-bit, blocks of 32 with an f16 scale' },
  { id: 'q5_1', family: 'legacy', usesImportance: true, gpuImportance: true, vecDot: 'q8_0', description: '5-bit, blocks of 32 with f16 scale and min' },
  { id: 'q5_0', family: 'legacy', usesImportance: true, gpuImportance: true, vecDot: 'q8_0', description: '5-bit, blocks of 32 with an f16 scale' },
  { id: 'q4_1', family: 'legacy', usesImportance: true, gpuImportance: true, vecDot: 'q8_0', description: '4-bit, blocks of 32 with f16 scale and min' },
  { id: 'q4_0', family: 'legacy', usesImportance: true, gpuImportance: true, vecDot: 'q8_0', gptqTarget: true, description: '4-bit, blocks of 32 with an f16 scale' },
  { id: 'q6_K', family: 'k-quant', usesImportance: true, gpuImportance: true, vecDot: 'q8_K', description: '6-bit super-blocks of 256: 16 sub-blocks with 8-bit scales' },
  { id: 'q5_K', family: 'k-quant', usesImportance: true, gpuImportance: true, vecDot: 'q8_K', description: '5-bit super-blocks of 256: 8 sub-blocks with 6-bit scales and mins' },
  { id: 'q4_K', family: 'k-quant', usesImportance: true, gpuImportance: true, vecDot: 'q8_K', gptqTarget: true, description: '4-bit super-blocks of 256: 8 sub-blocks with 6-bit scales and mins' },
  { id: 'q3_K', family: 'k-quant', usesImportance: true, gpuImportance: true, vecDot: 'q8_K', description: '3-bit super-blocks of 256: 16 sub-blocks with 6-bit scales' },
  { id: 'q2_K', family: 'k-quant', usesImportance: true, gpuImportance: true, vecDot: 'q8_K', description: '2-bit super-blocks of 256: 16 sub-blocks with 4-bit scales and mins' },
  { id: 'q8_K', family: 'k-quant', activationOnly: true, description: '8-bit super-blocks of 256 with an f32 scale: matmul activations only' },
  { id: 'iq4_nl', family: 'i-quant', usesImportance: true, vecDot: 'q8_0', description: '4-bit non-linear grid, blocks of 32 with an f16 scale' },
  { id: 'iq4_xs', family: 'i-quant', usesImportance: true, vecDot: 'q8_K', description: '4-bit non-linear grid, super-blocks of 256 with 6-bit sub-block scales' },
  { id: 'iq3_s', family: 'i-quant', usesImportance: true, vecDot: 'q8_K', description: '3.44 bits: groups of 4 on a 512-point lattice grid, sign bits, 4-bit scales per 32' },
  { id: 'iq3_xxs', family: 'i-quant', usesImportance: true, vecDot: 'q8_K', description: '3.06 bits: groups of 4 on a 256-point lattice grid, even-parity signs, 4-bit scales per 32' },
  { id: 'iq2_s', family: 'i-quant', usesImportance: true, vecDot: 'q8_K', description: '2.56 bits: groups of 8 on a 1024-point lattice grid, sign bits, 4-bit scales per 16' },
  { id: 'iq2_xs', family: 'i-quant', usesImportance: true, vecDot: 'q8_K', requiresImportance: true, description: '2.31 bits: groups of 8 on a 512-point lattice grid, even-parity signs, 4-bit scales per 16; needs an imatrix' },
  { id: 'iq2_xxs', family: 'i-quant', usesImportance: true, vecDot: 'q8_K', requiresImportance: true, description: '2.06 bits: groups of 8 on a 256-point lattice grid, even-parity signs, 4-bit scales per 32; needs an imatrix' },
  { id: 'iq1_m', family: 'i-quant', usesImportance: true, vecDot: 'q8_K', description: '1.75 bits: groups of 8 on a 2048-point ternary grid shifted by +-1/8, 3-bit scales per 16' },
  { id: 'iq1_s', family: 'i-quant', usesImportance: true, vecDot: 'q8_K', requiresImportance: true, description: '1.56 bits: groups of 8 on a 2048-point ternary grid shifted by +-1/8, 3-bit scales per 32; needs an imatrix' },
  { id: 'tq2_0', family: 'ternary', vecDot: 'q8_K', description: 'ternary {-1,0,1}, 2 bits each, super-blocks of 256' },
  { id: 'tq1_0', family: 'ternary', vecDot: 'q8_K', description: 'ternary {-1,0,1}, 1.6875 bits each (5 trits per byte)' },
  { id: 'mxfp4', family: 'microscaling', vecDot: 'q8_0', description: 'OCP MX FP4 (E2M1), blocks of 32 with an E8M0 scale' },
  { id: 'nvfp4', family: 'microscaling', vecDot: 'q8_0', description: 'NVIDIA FP4 (E2M1), blocks of 64 with a UE4M3 scale per 16' },
  { id: 'q2_0', family: 'legacy', vecDot: 'q8_0', description: '2-bit levels {-1, 0, 1, 2}, blocks of 64 with an f16 absmax scale' },
  { id: 'q1_0', family: 'legacy', vecDot: 'q8_0', description: '1-bit signs, blocks of 128 with an f16 mean-magnitude scale' },
  { id: 'fp8_e4m3', family: 'float', blockSize: 1, typeSize: 1, bytesFor: fp8Bytes, layout: 'bytes', gpuLayout: { kind: 'bytes', lib: 'lib/fp8.wgsl', perTensor: true, finiteOnly: true, outliers: false }, description: 'FP8 E4M3 with one f32 scale per tensor' },
  { id: 'fp8_e5m2', family: 'float', blockSize: 1, typeSize: 1, bytesFor: fp8Bytes, layout: 'bytes', gpuLayout: { kind: 'bytes', lib: 'lib/fp8.wgsl', perTensor: true, finiteOnly: true, outliers: false }, description: 'FP8 E5M2 with one f32 scale per tensor' },
  { id: 'int8', family: 'integer', blockSize: 1, typeSize: 1, bytesFor: int8Bytes, layout: 'bytes', gpuLayout: { kind: 'bytes', lib: 'lib/int8.wgsl', perTensor: false, finiteOnly: false, outliers: false }, description: 'INT8 absmax per output channel (row)' },
  { id: 'int8_outlier', family: 'integer', blockSize: 1, typeSize: 1, bytesFor: int8Bytes, layout: 'bytes', gpuLayout: { kind: 'bytes', lib: 'lib/int8.wgsl', perTensor: false, finiteOnly: false, outliers: true }, description: 'LLM.int8: INT8 per row, outlier input columns (|x| >= 6) kept in f16' },
  ...([32, 64, 128] as const).flatMap((group) =>
    (['sym', 'asym'] as const).map(
      (mode): TypeRow => ({
        id: `int4_g${group}_${mode}`,
        family: 'integer',
        blockSize: group,
        typeSize: int4BlockBytes(group, mode),
        description: `INT4, groups of ${group}, ${mode === 'sym' ? 'symmetric (scale only)' : 'asymmetric (scale and zero-point)'}, as GPTQ/AWQ`,
      }),
    ),
  ),
  { id: 'nf4', family: 'bitsandbytes', blockSize: 64, typeSize: NF4_BLOCK_BYTES, description: 'bitsandbytes NormalFloat4, blocks of 64 with an f32 absmax' },
  { id: 'nf4_dq', family: 'bitsandbytes', blockSize: 64, typeSize: DQ_BLOCK_BYTES, bytesFor: dqBytes, layout: 'double-quant', gpuLayout: { kind: 'double-quant', base: 'nf4' }, description: 'NF4 with double quantization: absmax in 8 bits, blocks of 256' },
  { id: 'fp4', family: 'bitsandbytes', blockSize: 64, typeSize: NF4_BLOCK_BYTES, description: 'bitsandbytes FP4 (E2M1), blocks of 64 with an f32 absmax' },
  { id: 'fp4_dq', family: 'bitsandbytes', blockSize: 64, typeSize: DQ_BLOCK_BYTES, bytesFor: dqBytes, layout: 'double-quant', gpuLayout: { kind: 'double-quant', base: 'fp4' }, description: 'FP4 with double quantization: absmax in 8 bits, blocks of 256' },
];

export const TYPE_INFOS: readonly TypeInfo[] = ROWS.map(defineTypeInfo);

const BY_ID = new Map(TYPE_INFOS.map((t) => [t.id.toLowerCase(), t]));

/** Find a type's data by id, case-insensitively (docs/contracts.md: `Q4_K` = `q4_K`). */
export function typeInfo(id: string): TypeInfo | undefined {
  return BY_ID.get(id.toLowerCase());
}

/** Bits per weight of a type on rows of `rowLength` (default: a typical 4096-wide row). */
export function bitsPerWeight(type: TypeInfo, rowLength = 4096, rows = 1): number {
  return (type.bytesFor(rows, rowLength) * 8) / (rows * rowLength);
}

/** Why a type cannot apply to a tensor with this row length, or null if it can. */
export function whyNotApplicable(type: TypeInfo, rowLength: number): string | null {
  return rowLength % type.blockSize === 0
    ? null
    : `row length ${rowLength} is not a multiple of ${type.id}'s block size ${type.blockSize}`;
}
