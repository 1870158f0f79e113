// Byte sizes of the types whose tensors are more than plain blocks of fixed size: FP8 and INT8
// (a byte per value plus scales), INT4 (blocks whose size depends on the group and mode) and
// NF4 / FP4 with double quantization. The type table (type-data.ts) and the codecs both read
// them; this module holds no codec, so that the table's importers carry none.

const pad4 = (bytes: number) => Math.ceil(bytes / 4) * 4;

// ----------------------------------------------------------------------------------- FP8

/** Storage of an FP8 tensor: the f32 scale, then one byte per element. */
export const fp8Bytes = (rows: number, rowLength: number) => rows * rowLength + 4;

// ---------------------------------------------------------------------------------- INT8

/** Exact size of an INT8 tensor, and of an INT8_OUTLIER tensor with no outlier column. */
export function int8Bytes(rows: number, rowLength: number): number {
  return pad4(rows * rowLength) + 4 * rows;
}

// ---------------------------------------------------------------------------------- INT4

export type Int4Mode = 'sym' | 'asym';

/** An INT4 block's header: an f16 scale, and for 'asym' an f16 zero-point. */
export const int4HeaderBytes = (mode: Int4Mode) => (mode === 'asym' ? 4 : 2);

export function int4BlockBytes(group: number, mode: Int4Mode): number {
  return int4HeaderBytes(mode) + group / 2;
}

// ------------------------------------------------------------------------ NF4 / FP4 (_dq)

/** Values per NF4 / FP4 block. */
export const BLOCK_VALUES = 64;
/** An NF4 / FP4 block's codes: two per byte. */
export const NF4_CODE_BYTES = BLOCK_VALUES / 2;
/** An NF4 / FP4 block's f32 absmax. */
export const NF4_ABSMAX_BYTES = 4;
export const NF4_BLOCK_BYTES = NF4_ABSMAX_BYTES + NF4_CODE_BYTES;
/** Blocks whose absmax share one f32 scale in double quantization (bitsandbytes' blocksize=256). */
export const DQ_GROUP_BLOCKS = 256;
/** Nominal bytes per block of a _dq type (codes + the absmax code); dqBytes is exact. */
export const DQ_BLOCK_BYTES = NF4_CODE_BYTES + 1;

/** Byte offsets of the _dq sections for a tensor of `blocks` blocks. */
export function dqLayout(blocks: number) {
  const absmaxCodesAt = blocks * NF4_CODE_BYTES;
  const groupScalesAt = absmaxCodesAt + pad4(blocks);
  const groups = Math.ceil(blocks / DQ_GROUP_BLOCKS);
  const offsetAt = groupScalesAt + 4 * groups;
  return { absmaxCodesAt, groupScalesAt, groups, offsetAt, bytes: offsetAt + 4 };
}

/** Exact size of an NF4_DQ / FP4_DQ tensor. */
export function dqBytes(rows: number, rowLength: number): number {
  return dqLayout((rows * rowLength) / BLOCK_VALUES).bytes;
}
