// GGUF metadata values, kept with their exact GGUF type so that a writer can reproduce
// a file byte for byte (u32 vs i32, f32 vs f64, u64/i64 as bigint). Numeric arrays are
// typed arrays: a 32000-entry f32 score list is one Float32Array, not 32000 boxed numbers.

import { GGUF_VALUE_TYPE, type GgufValueType } from './constants.ts';

export type GgufNumericArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | BigUint64Array
  | BigInt64Array
  | Float64Array;

/** An array value: every item has type `itemType` (which may itself be ARRAY). */
export interface GgufArray {
  readonly itemType: GgufValueType;
  readonly items: GgufNumericArray | readonly boolean[] | readonly string[] | readonly GgufArray[];
}

/** number for 8/16/32-bit ints and floats, bigint for 64-bit ints. */
export type GgufValue = number | bigint | boolean | string | GgufArray;

export interface GgufMetadataEntry {
  readonly key: string;
  readonly type: GgufValueType;
  readonly value: GgufValue;
}

type NumericArrayConstructor = { new (length: number): GgufNumericArray; readonly BYTES_PER_ELEMENT: number };

/** Fixed-size value types: byte size and the typed array that holds an array of them. */
export const GGUF_NUMERIC_TYPES: ReadonlyMap<GgufValueType, { size: number; array: NumericArrayConstructor }> =
  new Map<GgufValueType, { size: number; array: NumericArrayConstructor }>([
    [GGUF_VALUE_TYPE.UINT8, { size: 1, array: Uint8Array }],
    [GGUF_VALUE_TYPE.INT8, { size: 1, array: Int8Array }],
    [GGUF_VALUE_TYPE.UINT16, { size: 2, array: Uint16Array }],
    [GGUF_VALUE_TYPE.INT16, { size: 2, array: Int16Array }],
    [GGUF_VALUE_TYPE.UINT32, { size: 4, array: Uint32Array }],
    [GGUF_VALUE_TYPE.INT32, { size: 4, array: Int32Array }],
    [GGUF_VALUE_TYPE.FLOAT32, { size: 4, array: Float32Array }],
    [GGUF_VALUE_TYPE.UINT64, { size: 8, array: BigUint64Array }],
    [GGUF_VALUE_TYPE.INT64, { size: 8, array: BigInt64Array }],
    [GGUF_VALUE_TYPE.FLOAT64, { size: 8, array: Float64Array }],
  ]);

const TYPE_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(GGUF_VALUE_TYPE).map(([name, id]) => [id as number, name.toLowerCase()]),
);

/** 'uint32', 'string', 'array'... as gguf.cpp's gguf_type_name prints them (lower case). */
export function ggufValueTypeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `unknown type ${type}`;
}

export function isGgufValueType(type: number): type is GgufValueType {
  return TYPE_NAMES.has(type);
}

/** Smallest number of bytes one value of `type` takes in a file (to bound counts early). */
export function minEncodedBytes(type: GgufValueType): number {
  if (type === GGUF_VALUE_TYPE.STRING) return 8; // u64 length
  if (type === GGUF_VALUE_TYPE.ARRAY) return 4 + 8; // item type + u64 count
  if (type === GGUF_VALUE_TYPE.BOOL) return 1;
  return GGUF_NUMERIC_TYPES.get(type)!.size;
}

/** Builds a metadata entry. */
export function ggufEntry(key: string, type: GgufValueType, value: GgufValue): GgufMetadataEntry {
  return { key, type, value };
}

/** Builds an array value. */
export function ggufArray(itemType: GgufValueType, items: GgufArray['items']): GgufArray {
  return { itemType, items };
}

export function findEntry(entries: readonly GgufMetadataEntry[], key: string): GgufMetadataEntry | undefined {
  return entries.find((e) => e.key === key);
}

/**
 * Metadata as a plain object, key -> value in file order: arrays become their items
 * (typed arrays and string lists shared, not copied), 64-bit ints stay bigint. What a UI
 * or JSON output shows; the typed entries stay the truth for writing.
 */
export function metadataToObject(entries: readonly GgufMetadataEntry[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const e of entries) out[e.key] = plainValue(e.value);
  return out;
}

function plainValue(value: GgufValue): unknown {
  if (typeof value !== 'object') return value;
  if (value.itemType !== GGUF_VALUE_TYPE.ARRAY) return value.items;
  return (value.items as readonly GgufArray[]).map(plainValue);
}
