// ggml's type traits as a GGUF reader needs them: id, name, block size, bytes per block.
// Source: ggml-org/ggml include/ggml.h (enum ggml_type) and src/ggml.c (type_traits),
// commit d99724f2. Block sizes are pinned by src/formats/gguf/constants.test.ts, as
// ggml's static_asserts pin them in ggml-common.h.

export interface GgmlTypeInfo {
  /** ggml's enum value, stored in GGUF tensor infos. */
  readonly id: number;
  /** ggml's type_name, e.g. 'q4_K'. */
  readonly name: string;
  /** Elements per block. */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
}

/** Removed from ggml; present only in old files. A reader must refuse them by name. */
export const REMOVED_GGML_TYPES: ReadonlyMap<number, string> = new Map([
  [4, 'Q4_2 (removed from ggml in 2023)'],
  [5, 'Q4_3 (removed from ggml in 2023)'],
  [31, 'Q4_0_4_4 (removed: use Q4_0 with runtime repacking)'],
  [32, 'Q4_0_4_8 (removed: use Q4_0 with runtime repacking)'],
  [33, 'Q4_0_8_8 (removed: use Q4_0 with runtime repacking)'],
  [36, 'IQ4_NL_4_4 (removed: use IQ4_NL with runtime repacking)'],
  [37, 'IQ4_NL_4_8 (removed: use IQ4_NL with runtime repacking)'],
  [38, 'IQ4_NL_8_8 (removed: use IQ4_NL with runtime repacking)'],
]);

const QK_K = 256;

// [id, name, blockSize, typeSize]; typeSize as in ggml-common.h's block structs.
const ROWS: ReadonlyArray<readonly [number, string, number, number]> = [
  [0, 'f32', 1, 4],
  [1, 'f16', 1, 2],
  [2, 'q4_0', 32, 2 + 16],
  [3, 'q4_1', 32, 2 * 2 + 16],
  [6, 'q5_0', 32, 2 + 4 + 16],
  [7, 'q5_1', 32, 2 * 2 + 4 + 16],
  [8, 'q8_0', 32, 2 + 32],
  [9, 'q8_1', 32, 2 * 2 + 32],
  [10, 'q2_K', QK_K, 2 * 2 + QK_K / 16 + QK_K / 4],
  [11, 'q3_K', QK_K, 2 + QK_K / 4 + QK_K / 8 + 12],
  [12, 'q4_K', QK_K, 2 * 2 + 12 + QK_K / 2],
  [13, 'q5_K', QK_K, 2 * 2 + 12 + QK_K / 2 + QK_K / 8],
  [14, 'q6_K', QK_K, 2 + QK_K / 16 + (3 * QK_K) / 4],
  [15, 'q8_K', QK_K, 4 + QK_K + (QK_K / 16) * 2],
  [16, 'iq2_xxs', QK_K, 2 + (QK_K / 8) * 2],
  [17, 'iq2_xs', QK_K, 2 + (QK_K / 8) * 2 + QK_K / 32],
  [18, 'iq3_xxs', QK_K, 2 + 3 * (QK_K / 8)],
  [19, 'iq1_s', QK_K, 2 + QK_K / 8 + QK_K / 16],
  [20, 'iq4_nl', 32, 2 + 16],
  [21, 'iq3_s', QK_K, 2 + 13 * (QK_K / 32) + QK_K / 64],
  [22, 'iq2_s', QK_K, 2 + QK_K / 4 + QK_K / 16],
  [23, 'iq4_xs', QK_K, 2 + 2 + QK_K / 64 + QK_K / 2],
  [24, 'i8', 1, 1],
  [25, 'i16', 1, 2],
  [26, 'i32', 1, 4],
  [27, 'i64', 1, 8],
  [28, 'f64', 1, 8],
  [29, 'iq1_m', QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32],
  [30, 'bf16', 1, 2],
  [34, 'tq1_0', QK_K, 2 + QK_K / 64 + (QK_K - (4 * QK_K) / 64) / 5],
  [35, 'tq2_0', QK_K, 2 + QK_K / 4],
  [39, 'mxfp4', 32, 1 + 16],
  [40, 'nvfp4', 64, 64 / 16 + 64 / 2],
  [41, 'q1_0', 128, 2 + 128 / 8],
  [42, 'q2_0', 64, 2 + 64 / 4],
];

/** Every type current ggml can store in a GGUF file, by id. */
export const GGML_TYPES: ReadonlyMap<number, GgmlTypeInfo> = new Map(
  ROWS.map(([id, name, blockSize, typeSize]) => [id, { id, name, blockSize, typeSize }]),
);

const BY_NAME: ReadonlyMap<string, GgmlTypeInfo> = new Map(
  [...GGML_TYPES.values()].map((t) => [t.name.toLowerCase(), t]),
);

/** Look a ggml type up by name, case-insensitively ('Q4_K' = 'q4_K'). */
export function ggmlTypeByName(name: string): GgmlTypeInfo | undefined {
  return BY_NAME.get(name.toLowerCase());
}

/** Bytes of a row of `rowLength` elements; null if the row is not a whole number of blocks. */
export function ggmlRowBytes(type: GgmlTypeInfo, rowLength: number): number | null {
  return rowLength % type.blockSize === 0 ? (rowLength / type.blockSize) * type.typeSize : null;
}

export const GGML_TYPE = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9,
  Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, Q8_K: 15,
  IQ2_XXS: 16, IQ2_XS: 17, IQ3_XXS: 18, IQ1_S: 19, IQ4_NL: 20, IQ3_S: 21, IQ2_S: 22, IQ4_XS: 23,
  IQ1_M: 29, BF16: 30, TQ1_0: 34, TQ2_0: 35, MXFP4: 39, NVFP4: 40, Q1_0: 41, Q2_0: 42,
} as const;

/** GGUF metadata value types (gguf.h, enum gguf_type). */
export const GGUF_VALUE_TYPE = {
  UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6,
  BOOL: 7, STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12,
} as const;
export type GgufValueType = (typeof GGUF_VALUE_TYPE)[keyof typeof GGUF_VALUE_TYPE];

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;
