// Block plumbing shared by the sub-4-bit codecs (iq1.ts, iq2.ts, iq3.ts, lowbit.ts):
// row checks, little-endian reads and writes, and the NaN rule of their decoders.
import { checkRows } from '../codec.ts';
import * as float16 from '../../formats/float16.ts';
import * as rounding from './rounding.ts';

const f16BitsToF32 = float16.f16BitsToF32;
const f32ToF16Bits = float16.f32ToF16Bits;
const f16ToF32Bits = rounding.f16ToF32Bits;

/** Blocks in `rows` x `rowLength`, after checking that `data` holds them all. */
export function countBlocks(what: string, data: Uint8Array, rows: number, rowLength: number, blockSize: number, typeSize: number): number {
  if (!(rowLength > 0) || rowLength % blockSize !== 0) {
    throw new RangeError(`${what}: row length ${rowLength} is not a multiple of the block size ${blockSize}`);
  }
  const blocks = (rows * rowLength) / blockSize;
  if (data.length < blocks * typeSize) {
    throw new RangeError(`${what}: ${data.length} bytes do not hold ${rows} rows of ${rowLength} (${blocks * typeSize} bytes)`);
  }
  return blocks;
}

export function readU16(data: Uint8Array, at: number): number {
  return data[at] | (data[at + 1] << 8);
}

export function readU32(data: Uint8Array, at: number): number {
  return (data[at] | (data[at + 1] << 8) | (data[at + 2] << 16) | (data[at + 3] << 24)) >>> 0;
}

export function writeU16(out: Uint8Array, at: number, v: number): void {
  out[at] = v & 0xff;
  out[at + 1] = (v >>> 8) & 0xff;
}

export function writeU32(out: Uint8Array, at: number, v: number): void {
  out[at] = v & 0xff;
  out[at + 1] = (v >>> 8) & 0xff;
  out[at + 2] = (v >>> 16) & 0xff;
  out[at + 3] = v >>> 24;
}

/** GGML_FP32_TO_FP16 into out[at..at+2). */
export function writeF16(out: Uint8Array, at: number, x: number): void {
  writeU16(out, at, f32ToF16Bits(x));
}

export function f16Value(h: number): number {
  return f16BitsToF32(h);
}

/** The f16 with these bits is a NaN. */
export function isNaNF16(h: number): boolean {
  return (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
}

/**
 * Fill out[at..at+n) with the f32 NaN that ggml's x86 build makes of the f16 NaN `h`: in
 * the i-quant decoders a NaN scale is multiplied only by non-zero finite factors, and SSE
 * passes a lone NaN operand through (quieted) whatever its position, so every weight of
 * the block gets exactly those bits (JS cannot choose a NaN's bits in arithmetic).
 */
export function fillNaN(out: Float32Array, at: number, n: number, h: number): void {
  new Uint32Array(out.buffer, out.byteOffset + at * 4, n).fill(f16ToF32Bits(h));
}

/**
 * The iq2/iq3 decoders' NaN rule: their `* (sign ? -1.f : 1.f)` compiles to a sign flip
 * (xorps), which flips a NaN's sign bit too. out[at..at+n) holds the block decoded with
 * scale 1 (signs only matter); each becomes the f16 NaN `h` as f32 bits, its sign bit
 * flipped where the value is negative.
 */
export function nanWithSigns(out: Float32Array, at: number, n: number, h: number): void {
  const nan = f16ToF32Bits(h);
  const outBits = new Uint32Array(out.buffer, out.byteOffset + at * 4, n);
  for (let j = 0; j < n; j++) outBits[j] = (nan ^ (outBits[j] & 0x80000000)) >>> 0;
}

/**
 * A Codec's encode over blocks of `blockSize`: checks the rows and importance length, then
 * encodes each row (ggml's quantize_<type> loops rows; importance is indexed by column).
 * With `finiteOnly`, a row holding Inf or NaN is refused (ggml's i-quant searches abort on
 * them: GGML_ASSERT(scale >= 0)).
 */
export function encodeRows(
  what: string, blockSize: number, typeSize: number,
  encodeRow: (src: Float32Array, off: number, n: number, importance: Float32Array | undefined, out: Uint8Array, at: number) => void,
  finiteOnly = false,
) {
  return (src: Float32Array, rowLength: number, importance?: Float32Array): Uint8Array => {
    const rows = checkRows(src, rowLength, blockSize, what);
    if (importance && importance.length !== rowLength) {
      throw new RangeError(`${what}: ${importance.length} importance weights for rows of ${rowLength}`);
    }
    const rowBytes = (rowLength / blockSize) * typeSize;
    const out = new Uint8Array(rows * rowBytes);
    for (let r = 0; r < rows; r++) {
      if (finiteOnly) refuseNonFinite(what, src, r, rowLength);
      try {
        encodeRow(src, r * rowLength, rowLength, importance, out, r * rowBytes);
      } catch (e) {
        if (e instanceof RangeError) throw new RangeError(`${what}: row ${r}: ${e.message}`, { cause: e });
        throw e;
      }
    }
    return out;
  };
}

function refuseNonFinite(what: string, src: Float32Array, row: number, rowLength: number): void {
  for (let j = 0; j < rowLength; j++) {
    const v = src[row * rowLength + j];
    if (!Number.isFinite(v)) {
      throw new RangeError(`${what}: row ${row}, column ${j} is ${v}: ggml's ${what} quantizer aborts on values that are not finite`);
    }
  }
}
