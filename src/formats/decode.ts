// Plain (non-block-quantized) element types to f32: floats of every width, ints, bool.
// Keys are safetensors dtype names; ggml's plain types map onto them. Block-quantized
// ggml types are decoded by src/quant, which callers pass in (formats never imports quant).

import { assertLittleEndianHost } from './bytes.ts';
import { bf16BitsToF32, f16BitsToF32 } from './float16.ts';

/** Decodes `count` elements from little-endian `bytes`. */
export type F32Decoder = (bytes: Uint8Array, count: number) => Float32Array;

/** An aligned copy, so typed arrays can view it whatever the source buffer's offset. */
function aligned(bytes: Uint8Array): ArrayBuffer {
  assertLittleEndianHost();
  return bytes.slice().buffer;
}

/**
 * The bytes' buffer when they fill it from its start (a read into a buffer of its own, as
 * Node's and Blob sources give): viewed as it is, not copied. A view of a bigger buffer (an
 * in-memory file) is copied, so the values never alias the file.
 */
function ownedBuffer(bytes: Uint8Array): ArrayBuffer | null {
  assertLittleEndianHost();
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer ? bytes.buffer : null;
}

/** F32 bytes as values: a view of them where they are 4-byte aligned (no copy), else a copy. */
export function f32View(bytes: Uint8Array, count: number): Float32Array {
  assertLittleEndianHost();
  return bytes.byteOffset % 4 === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, count) : new Float32Array(aligned(bytes), 0, count);
}

function fromTable(table: Float32Array): F32Decoder {
  return (bytes, count) => {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = table[bytes[i]];
    return out;
  };
}

function byteTable(decodeByte: (b: number) => number): Float32Array {
  return Float32Array.from({ length: 256 }, (_, b) => decodeByte(b));
}

/** OCP FP8 E4M3 ("FN": no infinities; S.1111.111 is NaN), bias 7. */
export function decodeF8E4M3(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const exp = (b >>> 3) & 0xf;
  const mant = b & 0x7;
  if (exp === 0xf && mant === 0x7) return NaN;
  if (exp === 0) return sign * mant * 2 ** -9;
  return sign * (8 + mant) * 2 ** (exp - 10);
}

/** OCP FP8 E5M2: the top byte of an IEEE f16. */
export function decodeF8E5M2(b: number): number {
  return f16BitsToF32(b << 8);
}

/** OCP E8M0 (MX block scales): 2^(e - 127); 0xff is NaN. */
export function decodeF8E8M0(b: number): number {
  return b === 0xff ? NaN : 2 ** (b - 127);
}

/** OCP FP4 E2M1 magnitudes, indexed by the low three bits. */
const E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];

export function decodeF4E2M1(nibble: number): number {
  return (nibble & 8 ? -1 : 1) * E2M1[nibble & 7];
}

/** Two FP4 values a byte, the first in the low nibble (PyTorch float4_e2m1fn_x2 packing). */
function decodeF4(bytes: Uint8Array, count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = decodeF4E2M1((bytes[i >>> 1] >>> ((i & 1) * 4)) & 0xf);
  return out;
}

function viaTyped<T extends ArrayLike<number | bigint>>(make: (buffer: ArrayBuffer, count: number) => T): F32Decoder {
  return (bytes, count) => {
    const source = make(aligned(bytes), count);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = Number(source[i]);
    return out;
  };
}

function viaHalf(decodeBits: (h: number) => number): F32Decoder {
  return (bytes, count) => {
    const bits = new Uint16Array(aligned(bytes), 0, count);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = decodeBits(bits[i]);
    return out;
  };
}

/** Decoders by safetensors dtype name. */
export const F32_DECODERS: ReadonlyMap<string, F32Decoder> = new Map<string, F32Decoder>([
  ['F32', (bytes, count) => new Float32Array(ownedBuffer(bytes) ?? aligned(bytes), 0, count)],
  ['F64', viaTyped((b, n) => new Float64Array(b, 0, n))],
  ['F16', viaHalf(f16BitsToF32)],
  ['BF16', viaHalf(bf16BitsToF32)],
  ['F8_E4M3', fromTable(byteTable(decodeF8E4M3))],
  ['F8_E5M2', fromTable(byteTable(decodeF8E5M2))],
  ['F8_E8M0', fromTable(byteTable(decodeF8E8M0))],
  ['F4', decodeF4],
  ['I64', viaTyped((b, n) => new BigInt64Array(b, 0, n))],
  ['U64', viaTyped((b, n) => new BigUint64Array(b, 0, n))],
  ['I32', viaTyped((b, n) => new Int32Array(b, 0, n))],
  ['U32', viaTyped((b, n) => new Uint32Array(b, 0, n))],
  ['I16', viaTyped((b, n) => new Int16Array(b, 0, n))],
  ['U16', viaTyped((b, n) => new Uint16Array(b, 0, n))],
  ['I8', viaTyped((b, n) => new Int8Array(b, 0, n))],
  ['U8', viaTyped((b, n) => new Uint8Array(b, 0, n))],
  ['BOOL', (bytes, count) => Float32Array.from(bytes.subarray(0, count), (b) => (b ? 1 : 0))],
]);

/** ggml's plain types, by ggml name, onto the same decoders. */
export const GGML_PLAIN_DTYPES: ReadonlyMap<string, string> = new Map([
  ['f32', 'F32'], ['f16', 'F16'], ['bf16', 'BF16'], ['f64', 'F64'],
  ['i8', 'I8'], ['i16', 'I16'], ['i32', 'I32'], ['i64', 'I64'],
]);
