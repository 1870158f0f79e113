/**
 * A reference codec: plain scalar TypeScript, the oracle every other path (WGSL, exports)
 * is checked against. A tensor is `rows` rows of `rowLength` floats, row-major (GGUF's
 * ne0 = rowLength); blocks never cross rows.
 */
export interface Codec {
  /**
   * Quantize a whole tensor. `importance` holds one non-negative weight per column
   * (length rowLength), as llama.cpp's imatrix; codecs that ignore it say so.
   */
  encode(src: Float32Array, rowLength: number, importance?: Float32Array): Uint8Array;
  /** Dequantize `rows` rows of `rowLength` values from `data`. */
  decode(data: Uint8Array, rows: number, rowLength: number): Float32Array;
}

/** A view helper for codecs: little-endian reads and writes over a byte array. */
export function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function checkRows(src: Float32Array, rowLength: number, blockSize: number, what: string): number {
  if (rowLength <= 0 || rowLength % blockSize !== 0) {
    throw new RangeError(`${what}: row length ${rowLength} is not a multiple of the block size ${blockSize}`);
  }
  if (src.length % rowLength !== 0) {
    throw new RangeError(`${what}: ${src.length} values are not a whole number of rows of ${rowLength}`);
  }
  return src.length / rowLength;
}
