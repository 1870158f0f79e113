// GGUF's legacy block types, byte for byte as ggml_quantize_chunk writes them
// (ggml-org/ggml src/ggml-quants.c at the golden commit; layouts from ggml-common.h).
//
// Block byte maps (32 weights a block, little-endian; d and m are IEEE f16):
//   q4_0  18 B  [0..1] d | [2..17] qs: byte j = q[j] | q[j+16] << 4         x = (q - 8) * d
//   q4_1  20 B  [0..1] d | [2..3] m | [4..19] qs as q4_0                   x = q * d + m
//   q5_0  22 B  [0..1] d | [2..5] qh: u32, bit j = bit 4 of q[j] | [6..21] qs: low nibbles
//               as q4_0                                                   x = (q - 16) * d
//   q5_1  24 B  [0..1] d | [2..3] m | [4..7] qh | [8..23] qs as q5_0       x = q * d + m
//   q8_0  34 B  [0..1] d | [2..33] q[j] as int8                            x = q * d
//
// Without importance weights ggml calls quantize_row_*_ref (a closed-form scale); with them
// quantize_row_*_impl (q4_0/q5_0: make_qx_quants, q4_1/q5_1: make_qkx3_quants, both in
// search.ts, shared with the K types as in ggml), one row at a time. q8_0 ignores the
// weights. All arithmetic below is C float: every operation is rounded with `f32`, in the
// C code's evaluation order (gcc -O3, no FMA contraction).
import { checkRows, type Codec } from '../codec.ts';
import * as float16 from '../../formats/float16.ts';
import * as rounding from './rounding.ts';
import * as search from './search.ts';

// Local copies of the helpers: transpiled modules (tsx, vitest) reach imports through
// getters, which V8 does not inline; in the hot loops that cost 100x.
const f32 = rounding.f32;
const f16ToF32Bits = rounding.f16ToF32Bits;
const sseMulInt = rounding.sseMulInt;
const sseAdd = rounding.sseAdd;
const f32ToF16Bits = float16.f32ToF16Bits;
const f16BitsToF32 = float16.f16BitsToF32;
const makeQxQuants = search.makeQxQuants;
const makeQkxQuants = search.makeQkxQuants;
const maxByMagnitude = search.maxByMagnitude;
const sumOfSquares = search.sumOfSquares;
const fillImportanceWeights = search.fillImportanceWeights;
const RMIN_NEG_0_9 = search.RMIN_NEG_0_9;
const RDELTA_0_05 = search.RDELTA_0_05;

const QK = 32;
const FLT_MAX = 3.4028234663852886e38;
const Q4_0_BYTES = 18;
const Q4_1_BYTES = 20;
const Q5_0_BYTES = 22;
const Q5_1_BYTES = 24;
const Q8_0_BYTES = 34;

// ---------------------------------------------------------------- shared helpers

function writeF16(out: Uint8Array, offset: number, x: number): void {
  const h = f32ToF16Bits(x);
  out[offset] = h;
  out[offset + 1] = h >>> 8;
}

function readF16(data: Uint8Array, offset: number): number {
  return f16BitsToF32(data[offset] | (data[offset + 1] << 8));
}

function writeU32(out: Uint8Array, offset: number, v: number): void {
  out[offset] = v;
  out[offset + 1] = v >>> 8;
  out[offset + 2] = v >>> 16;
  out[offset + 3] = v >>> 24;
}

function readU32(data: Uint8Array, offset: number): number {
  return (data[offset] | (data[offset + 1] << 8) | (data[offset + 2] << 16) | (data[offset + 3] << 24)) >>> 0;
}

/** C `(int8_t)f` for a float: truncate toward zero, keep the low 8 bits, sign-extend. */
function toInt8(x: number): number {
  return (x << 24) >> 24;
}

function checkBlocks(data: Uint8Array, rows: number, rowLength: number, typeSize: number, what: string): number {
  if (rowLength <= 0 || rowLength % QK !== 0) {
    throw new RangeError(`${what}: row length ${rowLength} is not a multiple of the block size ${QK}`);
  }
  const blocks = (rows * rowLength) / QK;
  if (data.length !== blocks * typeSize) {
    throw new RangeError(`${what}: expected ${blocks * typeSize} bytes for ${rows} x ${rowLength}, got ${data.length}`);
  }
  return blocks;
}

// ---------------------------------------------------------------- packing the quants

// A block's 32 quants q[j] follow its header (d, or d and m): q4_x's 16 bytes, byte j =
// q[j] | q[j+16] << 4 (all of q[j]'s low byte, as C's `qs[j] = xi0; qs[j] |= xi1 << 4`);
// or q5_x's qh word (bit j = bit 4 of q[j]) and then 16 bytes of their low nibbles. Only
// the low 8 bits of a quant count (C keeps them in uint8_t): stores truncate the rest.

/** Store q5_x's nibble byte of q[j] (q0) and q[j+16] (q1) at out[at]; returns their qh bits. */
function storeFiveBitPair(q0: number, q1: number, j: number, out: Uint8Array, at: number): number {
  out[at] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
  return (((q0 & 0x10) >>> 4) << j) | (((q1 & 0x10) >>> 4) << (j + 16));
}

/** Pack the quants L[0..32) after the block's header, at `at`. */
function packQuants(L: Uint8Array, fiveBit: boolean, out: Uint8Array, at: number): void {
  if (!fiveBit) {
    for (let j = 0; j < 16; j++) out[at + j] = L[j] | (L[j + 16] << 4);
    return;
  }
  let qh = 0;
  for (let j = 0; j < 16; j++) qh |= storeFiveBitPair(L[j], L[j + 16], j, out, at + 4 + j);
  writeU32(out, at, qh >>> 0);
}

// ---------------------------------------------------------------- quantize_row_*_ref
// The hot path of plain encodes: the quants are packed as they are made, in one loop per
// layout (a branch on the layout for each value costs some 5%).

/** q4_0/q5_0's q = MIN(2*nmax - 1, (int8_t)(x*id + nmax + 0.5f)): the sum is rounded first. */
function symmetricQuant(x: number, id: number, nmax: number): number {
  return Math.min(2 * nmax - 1, toInt8(f32(f32(x * id) + (nmax + 0.5))));
}

/** quantize_row_q4_0_ref / q5_0_ref: d = max / -nmax, max the value of largest magnitude. */
function encodeSymmetricRef(x: Float32Array, nmax: number, typeSize: number, fiveBit: boolean): Uint8Array {
  const blocks = x.length / QK;
  const out = new Uint8Array(blocks * typeSize);
  for (let b = 0, s = 0, o = 0; b < blocks; b++, s += QK, o += typeSize) {
    const d = f32(maxByMagnitude(x, s, QK) / -nmax);
    const id = d !== 0 ? f32(1 / d) : 0;
    writeF16(out, o, d);
    if (fiveBit) {
      let qh = 0;
      for (let j = 0; j < 16; j++) {
        const q0 = symmetricQuant(x[s + j], id, nmax);
        qh |= storeFiveBitPair(q0, symmetricQuant(x[s + 16 + j], id, nmax), j, out, o + 6 + j);
      }
      writeU32(out, o + 2, qh >>> 0);
    } else {
      for (let j = 0; j < 16; j++) {
        out[o + 2 + j] = symmetricQuant(x[s + j], id, nmax) | (symmetricQuant(x[s + 16 + j], id, nmax) << 4);
      }
    }
  }
  return out;
}

/** q4_1/q5_1's (x - min)*id + 0.5f, before the cast to an integer. */
function affineQuant(x: number, min: number, id: number): number {
  return f32(f32(f32(x - min) * id) + 0.5);
}

/**
 * quantize_row_q4_1_ref / q5_1_ref: d = (max - min) / nmax, m = min; q4_1 clamps the
 * quants, MIN(15, (int8_t)q), q5_1 only casts them to uint8_t.
 */
function encodeAffineRef(x: Float32Array, nmax: number, typeSize: number, fiveBit: boolean): Uint8Array {
  const blocks = x.length / QK;
  const out = new Uint8Array(blocks * typeSize);
  for (let b = 0, s = 0, o = 0; b < blocks; b++, s += QK, o += typeSize) {
    let min = FLT_MAX;
    let max = -FLT_MAX;
    for (let j = 0; j < QK; j++) {
      const v = x[s + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = f32(f32(max - min) / nmax);
    const id = d !== 0 ? f32(1 / d) : 0;
    writeF16(out, o, d);
    writeF16(out, o + 2, min);
    if (fiveBit) {
      let qh = 0;
      for (let j = 0; j < 16; j++) {
        const q0 = affineQuant(x[s + j], min, id) & 0xff;
        qh |= storeFiveBitPair(q0, affineQuant(x[s + 16 + j], min, id) & 0xff, j, out, o + 8 + j);
      }
      writeU32(out, o + 4, qh >>> 0);
    } else {
      for (let j = 0; j < 16; j++) {
        const q0 = Math.min(15, toInt8(affineQuant(x[s + j], min, id)));
        out[o + 4 + j] = q0 | (Math.min(15, toInt8(affineQuant(x[s + 16 + j], min, id))) << 4);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- quantize_row_*_impl

// The block's importance weights (C's weight[]), filled by encodeWeightedRows.
const blockWeights = new Float32Array(QK);
// The block's quants (C's L): make_qx_quants' int8_t ones are copied to `quants` to be packed.
const quants = new Uint8Array(QK);
const quantsS = new Int8Array(QK);
/** make_qkx3_quants' *the_min. */
const theMin = new Float32Array(1);

/** quantize_row_q4_0_impl / q5_0_impl's block: make_qx_quants(32, nmax, x, L, 1, weight). */
function quantizeSymmetricWeighted(x: Float32Array, start: number, nmax: number, fiveBit: boolean, out: Uint8Array, o: number): void {
  writeF16(out, o, makeQxQuants(QK, nmax, x, start, quantsS, 0, blockWeights, 0));
  quants.set(quantsS);
  packQuants(quants, fiveBit, out, o + 2);
}

/**
 * quantize_row_q4_1_impl / q5_1_impl's block: make_qkx3_quants(32, nmax, x, weight, L,
 * &the_min, Laux, -0.9f, 0.05f, 36, false); m = -the_min.
 */
function quantizeAffineWeighted(x: Float32Array, start: number, nmax: number, fiveBit: boolean, out: Uint8Array, o: number): void {
  writeF16(out, o, makeQkxQuants(QK, nmax, x, start, blockWeights, quants, 0, theMin, 0, RMIN_NEG_0_9, RDELTA_0_05, 36, false));
  writeF16(out, o + 2, -theMin[0]);
  packQuants(quants, fiveBit, out, o + 4);
}

type QuantizeBlock = (x: Float32Array, start: number, out: Uint8Array, o: number) => void;

/**
 * Run `quantizeBlock(x, start, out, o)` over every block, first filling blockWeights as
 * quantize_row_*_impl does: qw[j] * sqrtf(sigma2 + x[j]^2), sigma2 = sum(x^2) / n over
 * the row.
 */
function encodeWeightedRows(
  src: Float32Array, rowLength: number, importance: Float32Array, typeSize: number, quantizeBlock: QuantizeBlock,
): Uint8Array {
  const rows = src.length / rowLength;
  const blocksPerRow = rowLength / QK;
  const out = new Uint8Array(rows * blocksPerRow * typeSize);
  for (let r = 0, o = 0; r < rows; r++) {
    const rowStart = r * rowLength;
    const sigma2 = f32(sumOfSquares(src, rowStart, rowLength) / rowLength);
    for (let b = 0; b < blocksPerRow; b++, o += typeSize) {
      fillImportanceWeights(blockWeights, QK, src, rowStart + b * QK, importance, b * QK, sigma2);
      quantizeBlock(src, rowStart + b * QK, out, o);
    }
  }
  return out;
}

// ---------------------------------------------------------------- decoding

// A block whose d or m is Inf or NaN decodes (partly) to NaN, and JS cannot choose a NaN's
// bits: such blocks are redone on bits with SSE's rules (rounding.ts), as ggml's x86
// build computes them.
const blockQuants = new Int32Array(QK);

/** The block's f16 at `offset` is Inf or NaN (exponent all ones). */
function isNonFiniteF16(data: Uint8Array, offset: number): boolean {
  return (data[offset + 1] & 0x7c) === 0x7c;
}

/**
 * Rewrite decoded block values out[o..o+32) from blockQuants (q, already offset as the
 * type's formula wants), the f16 scale at data[dAt] and, if `mAt` >= 0, the f16 min.
 */
function redoNonFiniteBlock(out: Float32Array, o: number, data: Uint8Array, dAt: number, mAt: number): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset + o * 4, QK);
  const dBits = f16ToF32Bits(data[dAt] | (data[dAt + 1] << 8));
  const mBits = mAt >= 0 ? f16ToF32Bits(data[mAt] | (data[mAt + 1] << 8)) : -1;
  for (let j = 0; j < QK; j++) {
    const product = sseMulInt(dBits, blockQuants[j]);
    bits[j] = mBits >= 0 ? sseAdd(product, mBits) : product;
  }
}

/** blockQuants = the 32 nibbles at data[qsAt..qsAt+16), minus `offset`. */
function nibbleQuants(data: Uint8Array, qsAt: number, offset: number): void {
  for (let j = 0; j < 16; j++) {
    blockQuants[j] = (data[qsAt + j] & 0x0f) - offset;
    blockQuants[j + 16] = (data[qsAt + j] >>> 4) - offset;
  }
}

/** dequantize_row_q4_0 (x = (q - 8)*d) / dequantize_row_q4_1 (x = q*d + m). */
function decodeQ4(data: Uint8Array, rows: number, rowLength: number, hasMin: boolean): Float32Array {
  const typeSize = hasMin ? Q4_1_BYTES : Q4_0_BYTES;
  const blocks = checkBlocks(data, rows, rowLength, typeSize, hasMin ? 'q4_1' : 'q4_0');
  const out = new Float32Array(blocks * QK);
  for (let b = 0, p = 0, o = 0; b < blocks; b++, p += typeSize, o += QK) {
    const d = readF16(data, p);
    if (hasMin) {
      const m = readF16(data, p + 2);
      for (let j = 0; j < 16; j++) {
        const byte = data[p + 4 + j];
        // q*d is exact and q*d + m is exact in double (multiples of 2^-24 below 2^22), so
        // the Float32Array store rounds once, as C's x0*d + m does.
        out[o + j] = (byte & 0x0f) * d + m;
        out[o + 16 + j] = (byte >>> 4) * d + m;
      }
    } else {
      for (let j = 0; j < 16; j++) {
        const byte = data[p + 2 + j];
        out[o + j] = ((byte & 0x0f) - 8) * d;
        out[o + 16 + j] = ((byte >>> 4) - 8) * d;
      }
    }
    if (isNonFiniteF16(data, p) || (hasMin && isNonFiniteF16(data, p + 2))) {
      nibbleQuants(data, hasMin ? p + 4 : p + 2, hasMin ? 0 : 8);
      redoNonFiniteBlock(out, o, data, p, hasMin ? p + 2 : -1);
    }
  }
  return out;
}

/** A 5-bit quant: its low nibble and bit `index` of qh as bit 4. */
function fifthBitQuant(nibble: number, qh: number, index: number): number {
  return nibble | (((qh >>> index) & 1) << 4);
}

/** dequantize_row_q5_0 / dequantize_row_q5_1: the fifth bit of q[j] is bit j of qh. */
function decodeQ5(data: Uint8Array, rows: number, rowLength: number, hasMin: boolean): Float32Array {
  const typeSize = hasMin ? Q5_1_BYTES : Q5_0_BYTES;
  const blocks = checkBlocks(data, rows, rowLength, typeSize, hasMin ? 'q5_1' : 'q5_0');
  const qhAt = hasMin ? 4 : 2;
  const out = new Float32Array(blocks * QK);
  for (let b = 0, p = 0, o = 0; b < blocks; b++, p += typeSize, o += QK) {
    const d = readF16(data, p);
    const qh = readU32(data, p + qhAt);
    const qs = p + qhAt + 4;
    if (hasMin) {
      // x = q*d + m: exact in double (see decodeQ4), so the store rounds once, as C does.
      const m = readF16(data, p + 2);
      for (let j = 0; j < 16; j++) {
        out[o + j] = fifthBitQuant(data[qs + j] & 0x0f, qh, j) * d + m;
        out[o + 16 + j] = fifthBitQuant(data[qs + j] >>> 4, qh, j + 16) * d + m;
      }
    } else {
      for (let j = 0; j < 16; j++) {
        out[o + j] = (fifthBitQuant(data[qs + j] & 0x0f, qh, j) - 16) * d;
        out[o + 16 + j] = (fifthBitQuant(data[qs + j] >>> 4, qh, j + 16) - 16) * d;
      }
    }
    if (isNonFiniteF16(data, p) || (hasMin && isNonFiniteF16(data, p + 2))) {
      nibbleQuants(data, qs, hasMin ? 0 : 16);
      for (let j = 0; j < QK; j++) blockQuants[j] += ((qh >>> j) & 1) << 4;
      redoNonFiniteBlock(out, o, data, p, hasMin ? p + 2 : -1);
    }
  }
  return out;
}

// ---------------------------------------------------------------- codecs

/** A legacy codec: quantize_row_*_ref without importance, the _impl blocks with it. */
function legacyCodec(
  name: string, typeSize: number, encodeRef: (x: Float32Array) => Uint8Array, quantizeWeighted: QuantizeBlock | null,
  decode: Codec['decode'],
): Codec {
  return {
    encode(src, rowLength, importance) {
      checkRows(src, rowLength, QK, name);
      if (importance && importance.length !== rowLength) {
        throw new RangeError(`${name}: ${importance.length} importance weights for rows of ${rowLength}`);
      }
      if (!importance || !quantizeWeighted) return encodeRef(src);
      return encodeWeightedRows(src, rowLength, importance, typeSize, quantizeWeighted);
    },
    decode,
  };
}

export const Q4_0: Codec = legacyCodec(
  'q4_0', Q4_0_BYTES,
  (x) => encodeSymmetricRef(x, 8, Q4_0_BYTES, false),
  (x, start, out, o) => quantizeSymmetricWeighted(x, start, 8, false, out, o),
  (data, rows, rowLength) => decodeQ4(data, rows, rowLength, false),
);

export const Q4_1: Codec = legacyCodec(
  'q4_1', Q4_1_BYTES,
  (x) => encodeAffineRef(x, 15, Q4_1_BYTES, false),
  (x, start, out, o) => quantizeAffineWeighted(x, start, 15, false, out, o),
  (data, rows, rowLength) => decodeQ4(data, rows, rowLength, true),
);

export const Q5_0: Codec = legacyCodec(
  'q5_0', Q5_0_BYTES,
  (x) => encodeSymmetricRef(x, 16, Q5_0_BYTES, true),
  (x, start, out, o) => quantizeSymmetricWeighted(x, start, 16, true, out, o),
  (data, rows, rowLength) => decodeQ5(data, rows, rowLength, false),
);

export const Q5_1: Codec = legacyCodec(
  'q5_1', Q5_1_BYTES,
  (x) => encodeAffineRef(x, 31, Q5_1_BYTES, true),
  (x, start, out, o) => quantizeAffineWeighted(x, start, 31, true, out, o),
  (data, rows, rowLength) => decodeQ5(data, rows, rowLength, true),
);

// ---------------------------------------------------------------- q8_0

/** quantize_row_q8_0_ref: d = amax / 127, q = roundf(x / d). quantize_q8_0 ignores weights. */
function encodeQ8_0(x: Float32Array): Uint8Array {
  const qk = QK; // locals, not module consts, in the hottest loop: V8 reloads those
  const typeSize = Q8_0_BYTES;
  const blocks = x.length / qk;
  const out = new Uint8Array(blocks * typeSize);
  for (let b = 0, s = 0, o = 0; b < blocks; b++, s += qk, o += typeSize) {
    const d = f32(absMax(x, s) / 127);
    const id = d !== 0 ? f32(1 / d) : 0;
    writeF16(out, o, d);
    for (let j = 0; j < qk; j++) {
      const v = f32(x[s + j] * id);
      // (int8_t)roundf(v), as rounding.roundfToInt, written out: this loop is the hottest
      // of all. The Uint8Array store keeps int8's low byte.
      out[o + 2 + j] = (v + (0.5 - +(v < 0))) | 0;
    }
  }
  return out;
}

/**
 * The q8_0 block's amax = MAX(amax, fabsf(x[j])) over j in order. Max does not depend on
 * order, so two independent chains (twice as fast) give the same value, unless there is
 * a NaN: C's MAX then forgets everything before it, so replay the C loop exactly.
 */
function absMax(x: Float32Array, start: number): number {
  let even = 0;
  let odd = 0;
  for (let j = 0; j < QK; j += 2) {
    even = Math.max(even, Math.abs(x[start + j]));
    odd = Math.max(odd, Math.abs(x[start + j + 1]));
  }
  const amax = Math.max(even, odd);
  if (amax === amax) return amax;
  let inOrder = 0;
  for (let j = 0; j < QK; j++) {
    const a = Math.abs(x[start + j]);
    inOrder = inOrder > a ? inOrder : a;
  }
  return inOrder;
}

/** dequantize_row_q8_0: x = q*d. */
function decodeQ8_0(data: Uint8Array, rows: number, rowLength: number): Float32Array {
  const blocks = checkBlocks(data, rows, rowLength, Q8_0_BYTES, 'q8_0');
  const qs = new Int8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Float32Array(blocks * QK);
  for (let b = 0, p = 0, o = 0; b < blocks; b++, p += Q8_0_BYTES, o += QK) {
    const d = readF16(data, p);
    for (let j = 0; j < QK; j++) out[o + j] = qs[p + 2 + j] * d;
    if (isNonFiniteF16(data, p)) {
      for (let j = 0; j < QK; j++) blockQuants[j] = qs[p + 2 + j];
      redoNonFiniteBlock(out, o, data, p, -1);
    }
  }
  return out;
}

/** quantize_q8_0 ignores importance weights. */
export const Q8_0: Codec = legacyCodec('q8_0', Q8_0_BYTES, encodeQ8_0, null, decodeQ8_0);
