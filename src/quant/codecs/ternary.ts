// TQ1_0 and TQ2_0: ternary weights {-1, 0, 1} times the block absmax (BitNet b1.58, TriLMs),
// byte for byte as ggml makes them (ggml-org/ggml d99724f, src/ggml-quants.c:
// quantize_row_tq1_0_ref, quantize_row_tq2_0_ref, dequantize_row_tq1_0/_tq2_0, which
// ggml_quantize_chunk calls with the importance weights ignored; src/ggml-common.h:
// block_tq1_0, block_tq2_0).
//
// block_tq1_0, 54 bytes per 256 weights (trits t = round(x/d) + 1 in {0, 1, 2}):
//   0..31   qs[0..32)   byte m: 5 trits of weights m, m+32, .., m+128 (first = most significant)
//   32..47  qs[32..48)  byte m: 5 trits of weights 160+m, 160+m+16, .., 160+m+64
//   48..51  qh[4]       byte j: 4 trits of weights 240+j, 244+j, 248+j, 252+j, then a 0 trit
//   52..53  d           f16 scale (the absmax)
//   A byte holding the base-3 number q (5 trits) stores ceil(q * 256 / 243), so trit n is
//   read back as ((byte * 3^n) mod 256) * 3 >> 8, with no division.
//
// block_tq2_0, 66 bytes per 256 weights:
//   0..63   qs[64]      two halves of 32 bytes for 128 weights each; in half h, byte m holds
//                       weights 128h+m+32n in bits 2n..2n+1 (n = 0..3), value t in {0, 1, 2}
//   64..65  d           f16 scale (the absmax)
import { checkRows, type Codec } from '../codec.ts';
import { f16BitsToF32, f32ToF16Bits } from '../../formats/float16.ts';
import { f32, fabsf } from './rounding.ts';

export const TQ_BLOCK = 256;
export const TQ1_0_BYTES = 2 + TQ_BLOCK / 64 + (TQ_BLOCK - (4 * TQ_BLOCK) / 64) / 5;
export const TQ2_0_BYTES = 2 + TQ_BLOCK / 4;

const TQ1_QS_BYTES = (TQ_BLOCK - (4 * TQ_BLOCK) / 64) / 5; // 48
const TQ1_QH_BYTES = TQ_BLOCK / 64; // 4
const POW3 = Uint8Array.of(1, 3, 9, 27, 81, 243);

/** The block absmax: both the scale and, inverted, the rounding factor. */
function absMax(src: Float32Array, off: number): number {
  let amax = 0;
  for (let j = 0; j < TQ_BLOCK; j++) {
    const a = fabsf(src[off + j]);
    amax = amax > a ? amax : a; // C MAX(a, b)
  }
  return amax;
}

/**
 * 1/d as the C code's `d ? 1.0f/d : 0.0f`, except that an infinite result (subnormal d)
 * becomes 0. Then C's x * id is infinite or NaN, glibc's lroundf returns LONG_MIN on x86-64,
 * and `int xi = LONG_MIN + 1` keeps the low 32 bits: 1, the middle trit for every weight.
 * An id of 0 gives the same trits, and keeps trit() free of that case.
 */
function inverseScale(d: number): number {
  const id = d ? f32(1 / d) : 0;
  return id === Infinity ? 0 : id;
}

/**
 * lroundf(x * id) + 1: the trit 0, 1 or 2 of one weight. |x| <= amax keeps |x * id| < 1.5,
 * where lroundf (half away from zero) is two thresholds: branch-free, 2.5x faster than a
 * rounding call whose sign branch mispredicts.
 */
function trit(x: number, id: number): number {
  const v = f32(x * id);
  return 1 + +(v >= 0.5) - +(v <= -0.5);
}

/**
 * `count` trits of weights off, off+stride, ... as a base-3 number (first trit most
 * significant), times 3^(5-count), stored as ceil(q * 256 / 243): a byte fraction of 3^5.
 */
function packTrits(src: Float32Array, off: number, stride: number, count: number, id: number): number {
  let q = 0;
  for (let n = 0; n < count; n++) q = q * 3 + trit(src[off + n * stride], id);
  for (let n = count; n < 5; n++) q *= 3;
  return Math.floor((q * 256 + 242) / 243);
}

/** Trit n (0 = most significant) of a packed byte, as -1, 0 or 1. */
function unpackTrit(byte: number, n: number): number {
  const shifted = (byte * POW3[n]) & 0xff;
  return ((shifted * 3) >> 8) - 1;
}

function writeF16(out: Uint8Array, at: number, x: number): void {
  const h = f32ToF16Bits(x);
  out[at] = h & 0xff;
  out[at + 1] = h >>> 8;
}

function readF16(data: Uint8Array, at: number): number {
  return f16BitsToF32(data[at] | (data[at + 1] << 8));
}

function encodeTq1Block(src: Float32Array, off: number, out: Uint8Array, at: number): void {
  const d = absMax(src, off);
  const id = inverseScale(d);
  writeF16(out, at + TQ1_QS_BYTES + TQ1_QH_BYTES, d);
  for (let m = 0; m < 32; m++) out[at + m] = packTrits(src, off + m, 32, 5, id);
  for (let m = 0; m < 16; m++) out[at + 32 + m] = packTrits(src, off + 160 + m, 16, 5, id);
  for (let j = 0; j < TQ1_QH_BYTES; j++) out[at + TQ1_QS_BYTES + j] = packTrits(src, off + 240 + j, TQ1_QH_BYTES, 4, id);
}

function encodeTq2Block(src: Float32Array, off: number, out: Uint8Array, at: number): void {
  const d = absMax(src, off);
  const id = inverseScale(d);
  writeF16(out, at + TQ_BLOCK / 4, d);
  for (let half = 0; half < 2; half++) {
    for (let m = 0; m < 32; m++) {
      let q = 0;
      for (let n = 0; n < 4; n++) q |= trit(src[off + 128 * half + m + 32 * n], id) << (2 * n);
      out[at + 32 * half + m] = q;
    }
  }
}

function decodeTq1Block(data: Uint8Array, at: number, out: Float32Array, to: number): void {
  const d = readF16(data, at + TQ1_QS_BYTES + TQ1_QH_BYTES);
  // Float32Array stores round each (t - 1) * d once, as C's float multiply.
  for (let n = 0; n < 5; n++) {
    for (let m = 0; m < 32; m++) out[to + 32 * n + m] = unpackTrit(data[at + m], n) * d;
    for (let m = 0; m < 16; m++) out[to + 160 + 16 * n + m] = unpackTrit(data[at + 32 + m], n) * d;
  }
  for (let n = 0; n < 4; n++) {
    for (let j = 0; j < TQ1_QH_BYTES; j++) out[to + 240 + 4 * n + j] = unpackTrit(data[at + TQ1_QS_BYTES + j], n) * d;
  }
}

function decodeTq2Block(data: Uint8Array, at: number, out: Float32Array, to: number): void {
  const d = readF16(data, at + TQ_BLOCK / 4);
  for (let half = 0; half < 2; half++) {
    for (let n = 0; n < 4; n++) {
      for (let m = 0; m < 32; m++) {
        out[to + 128 * half + 32 * n + m] = (((data[at + 32 * half + m] >> (2 * n)) & 3) - 1) * d;
      }
    }
  }
}

type BlockEncoder = (src: Float32Array, off: number, out: Uint8Array, at: number) => void;
type BlockDecoder = (data: Uint8Array, at: number, out: Float32Array, to: number) => void;

/** A codec over 256-weight blocks; ggml ignores importance weights for ternary types. */
function ternaryCodec(what: string, typeSize: number, encodeBlock: BlockEncoder, decodeBlock: BlockDecoder): Codec {
  return {
    encode(src, rowLength) {
      const rows = checkRows(src, rowLength, TQ_BLOCK, what);
      const blocks = (rows * rowLength) / TQ_BLOCK;
      const out = new Uint8Array(blocks * typeSize);
      for (let b = 0; b < blocks; b++) encodeBlock(src, b * TQ_BLOCK, out, b * typeSize);
      return out;
    },
    decode(data, rows, rowLength) {
      const blocks = (rows * rowLength) / TQ_BLOCK;
      if (rowLength % TQ_BLOCK !== 0 || data.length < blocks * typeSize) {
        throw new RangeError(`${what}: ${data.length} bytes do not hold ${rows} rows of ${rowLength}`);
      }
      const out = new Float32Array(rows * rowLength);
      for (let b = 0; b < blocks; b++) decodeBlock(data, b * typeSize, out, b * TQ_BLOCK);
      return out;
    },
  };
}

/** TQ1_0: 1.6875 bits per weight, 5 trits per byte. */
export const TQ1_0 = ternaryCodec('tq1_0', TQ1_0_BYTES, encodeTq1Block, decodeTq1Block);

/** TQ2_0: 2.0625 bits per weight, 4 trits per byte. */
export const TQ2_0 = ternaryCodec('tq2_0', TQ2_0_BYTES, encodeTq2Block, decodeTq2Block);
