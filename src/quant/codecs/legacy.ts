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
// quantize_row_*_impl (q4_0/q5_0: make_qx_quants, q4_1/q5_1: make_qkx3_quants), one row
// at a time. q8_0 ignores the weights. All arithmetic below is C float: every operation
// is rounded with `f32`, in the C code's evaluation order (gcc -O3, no FMA contraction).
import { checkRows, type Codec } from '../codec.ts';
import * as float16 from '../../formats/float16.ts';
import * as rounding from './rounding.ts';

// Local copies of the helpers: transpiled modules (tsx, vitest) reach imports through
// getters, which V8 does not inline; in the hot loops that cost 100x.
const f32 = rounding.f32;
const nearestInt = rounding.nearestInt;
const f32ToF16Bits = float16.f32ToF16Bits;
const f16BitsToF32 = float16.f16BitsToF32;

const QK = 32;
const FLT_MAX = 3.4028234663852886e38;
const GROUP_MAX_EPS = f32(1e-15);

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

function checkImportance(importance: Float32Array | undefined, rowLength: number, what: string): void {
  if (importance && importance.length !== rowLength) {
    throw new RangeError(`${what}: ${importance.length} importance weights for rows of ${rowLength}`);
  }
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

/** Pack 32 quants (each < 32) as q4_0's nibbles at `offset`, and return q5's high-bit word. */
function packNibbles(L: ArrayLike<number>, out: Uint8Array, offset: number): number {
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    const q0 = L[j];
    const q1 = L[j + 16];
    out[offset + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
    qh |= ((q0 & 0x10) >>> 4) << j;
    qh |= ((q1 & 0x10) >>> 4) << (j + 16);
  }
  return qh >>> 0;
}

// ---------------------------------------------------------------- importance weights

// Scratch for one block (the C code's stack arrays): no allocation per block.
const blockWeights = new Float64Array(QK);
const bestL = new Uint8Array(QK);
const trialL = new Uint8Array(QK);

/** sum(x^2) / n over one row, accumulated in float as the _impl functions do. */
function rowSigma2(x: Float32Array, start: number, n: number): number {
  let sum = 0;
  for (let j = 0; j < n; j++) {
    const v = x[start + j];
    sum = f32(sum + f32(v * v));
  }
  return f32(sum / n);
}

/** weight[j] = qw[j] * sqrtf(sigma2 + x[j]^2) for one block (quantize_row_q*_impl). */
function fillBlockWeights(x: Float32Array, xStart: number, qw: Float32Array, qwStart: number, sigma2: number): void {
  for (let j = 0; j < QK; j++) {
    const v = x[xStart + j];
    // sqrt of an f32 in double, then rounded to f32, is exactly sqrtf.
    blockWeights[j] = f32(qw[qwStart + j] * f32(Math.sqrt(f32(sigma2 + f32(v * v)))));
  }
}

const TENTH = f32(0.1);

/**
 * ggml's make_qx_quants(32, nmax, x, L, rmse_type = 1, qw = blockWeights): symmetric
 * scale search around -nmax/max. Leaves quants (offset by nmax) in bestL, returns the scale.
 */
function makeQxQuants(x: Float32Array, start: number, nmax: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < QK; i++) {
    const ax = Math.abs(x[start + i]);
    if (ax > amax) {
      amax = ax;
      max = x[start + i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    bestL.fill(0);
    return 0;
  }
  quantizeSymmetric(x, start, nmax, f32(-nmax / max));
  bestL.set(trialL);
  let sumlx = weightedSumLX(x, start, nmax);
  let suml2 = weightedSumL2(nmax);
  let scale = suml2 !== 0 ? f32(sumlx / suml2) : 0;
  let best = f32(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    const iscale = f32(-f32(nmax + f32(TENTH * is)) / max);
    // Same quants as the trial before give the same sums, hence the same verdict (a
    // repeat acceptance changes nothing): skip them. The C code evaluates every trial.
    if (!quantizeSymmetric(x, start, nmax, iscale)) continue;
    sumlx = weightedSumLX(x, start, nmax);
    suml2 = weightedSumL2(nmax);
    if (suml2 > 0 && f32(sumlx * sumlx) > f32(best * suml2)) {
      bestL.set(trialL);
      scale = f32(sumlx / suml2);
      best = f32(scale * sumlx);
    }
  }
  return scale;
}

/**
 * trialL[i] = nmax + clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1); returns whether
 * any quant differs from what trialL held before.
 */
function quantizeSymmetric(x: Float32Array, start: number, nmax: number, iscale: number): boolean {
  let changed = false;
  for (let i = 0; i < QK; i++) {
    const l0 = nearestInt(f32(iscale * x[start + i]));
    // `| 0` maps NaN (from a NaN or Inf weight) to 0, as C's nearest_int does.
    const l = nmax + ((l0 < -nmax ? -nmax : l0 > nmax - 1 ? nmax - 1 : l0) | 0);
    if (l !== trialL[i]) {
      trialL[i] = l;
      changed = true;
    }
  }
  return changed;
}

/** make_qx_quants' sumlx += w*x[i]*l over trialL (l = trialL - nmax), in float, in order. */
function weightedSumLX(x: Float32Array, start: number, nmax: number): number {
  let sum = 0;
  for (let i = 0; i < QK; i++) sum = f32(sum + f32(f32(blockWeights[i] * x[start + i]) * (trialL[i] - nmax)));
  return sum;
}

/** make_qx_quants' suml2 += w*l*l over trialL. */
function weightedSumL2(nmax: number): number {
  let sum = 0;
  for (let i = 0; i < QK; i++) {
    const l = trialL[i] - nmax;
    sum = f32(sum + f32(f32(blockWeights[i] * l) * l));
  }
  return sum;
}

const QKX3_RMIN = f32(-0.9);
const QKX3_RDELTA = f32(0.05);
const QKX3_NSTEP = 36;
/** Not a quant (quants are <= 31): marks trialL as holding no trial yet. */
const NO_QUANT = 255;

/** The block minimum found by makeQkx3Quants (C's *the_min out-parameter). */
let qkx3Min = 0;

/**
 * ggml's make_qkx3_quants(32, nmax, x, weights = blockWeights, L, &the_min, Laux,
 * -0.9f, 0.05f, 36, use_mad = false): affine scale + min search minimising the weighted
 * squared error. Quants in bestL, returns the scale and leaves the_min in qkx3Min.
 */
function makeQkx3Quants(x: Float32Array, start: number, nmax: number): number {
  const w = blockWeights;
  let min = x[start];
  let max = x[start];
  let sumW = w[0];
  let sumX = f32(sumW * x[start]);
  let weightsNonNegative = w[0] >= 0;
  for (let i = 1; i < QK; i++) {
    const xi = x[start + i];
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    sumW = f32(sumW + w[i]);
    sumX = f32(sumX + f32(w[i] * xi));
    if (!(w[i] >= 0)) weightsNonNegative = false;
  }
  if (min > 0) min = 0;
  if (max <= min) {
    bestL.fill(0);
    qkx3Min = -min;
    return 0;
  }
  let iscale = f32(nmax / f32(max - min));
  let scale = f32(1 / iscale);
  let bestMad = 0;
  for (let i = 0; i < QK; i++) {
    const xi = x[start + i];
    const l = Math.max(0, Math.min(nmax, nearestInt(f32(iscale * f32(xi - min)))));
    bestL[i] = l;
    const diff = f32(f32(f32(scale * l) + min) - xi);
    bestMad = f32(bestMad + f32(w[i] * f32(diff * diff)));
  }
  trialL.fill(NO_QUANT);
  for (let is = 0; is <= QKX3_NSTEP; is++) {
    // `min` moves to each better candidate's min, so max - min (and x - min) move too.
    iscale = f32(f32(f32(QKX3_RMIN + f32(QKX3_RDELTA * is)) + nmax) / f32(max - min));
    // The sums, D, this_scale, this_min and mad depend only on the quants: a trial with
    // the previous trial's quants repeats its verdict (and a repeat win changes nothing).
    if (!quantizeAffine(x, start, nmax, iscale, min)) continue;
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < QK; i++) {
      const l = trialL[i];
      const wl = f32(w[i] * l);
      sumL = f32(sumL + wl);
      sumL2 = f32(sumL2 + f32(wl * l));
      sumXL = f32(sumXL + f32(wl * x[start + i]));
    }
    const D = f32(f32(sumW * sumL2) - f32(sumL * sumL));
    if (!(D > 0)) continue;
    let thisScale = f32(f32(f32(sumW * sumXL) - f32(sumX * sumL)) / D);
    let thisMin = f32(f32(f32(sumL2 * sumX) - f32(sumL * sumXL)) / D);
    if (thisMin > 0) {
      thisMin = 0;
      thisScale = f32(sumXL / sumL2);
    }
    const mad = weightedSquaredError(x, start, thisScale, thisMin, weightsNonNegative ? bestMad : Infinity);
    if (mad < bestMad) {
      bestL.set(trialL);
      bestMad = mad;
      scale = thisScale;
      min = thisMin;
    }
  }
  qkx3Min = -min;
  return scale;
}

/**
 * trialL[i] = clamp(nearest_int(iscale * (x[i] - min)), 0, nmax); returns whether any
 * quant differs from what trialL held before.
 */
function quantizeAffine(x: Float32Array, start: number, nmax: number, iscale: number, min: number): boolean {
  let changed = false;
  for (let i = 0; i < QK; i++) {
    const l0 = nearestInt(f32(iscale * f32(x[start + i] - min)));
    const l = (l0 < 0 ? 0 : l0 > nmax ? nmax : l0) | 0; // NaN -> 0, as nearest_int
    if (l !== trialL[i]) {
      trialL[i] = l;
      changed = true;
    }
  }
  return changed;
}

/**
 * make_qkx3_quants' mad = sum of w[i] * (scale*L[i] + min - x[i])^2 over trialL, added in
 * float in order, as C does. With weights >= 0 (`toBeat` finite) every term is >= 0 (or
 * NaN, which loses anyway), so once the running sum reaches `toBeat` the trial cannot win
 * and the loop stops early.
 */
function weightedSquaredError(x: Float32Array, start: number, scale: number, min: number, toBeat: number): number {
  let mad = 0;
  for (let i = 0; i < QK; i++) {
    const diff = f32(f32(f32(scale * trialL[i]) + min) - x[start + i]);
    mad = f32(mad + f32(blockWeights[i] * f32(diff * diff)));
    if (mad >= toBeat) break;
  }
  return mad;
}

/**
 * Run `quantizeBlock(x, xStart, out, outStart)` over every block, first filling
 * blockWeights from the row's importance as quantize_row_*_impl does.
 */
function encodeWeightedRows(
  src: Float32Array,
  rowLength: number,
  importance: Float32Array,
  typeSize: number,
  quantizeBlock: (x: Float32Array, start: number, out: Uint8Array, offset: number) => void,
): Uint8Array {
  const rows = src.length / rowLength;
  const blocksPerRow = rowLength / QK;
  const out = new Uint8Array(rows * blocksPerRow * typeSize);
  for (let r = 0, o = 0; r < rows; r++) {
    const rowStart = r * rowLength;
    const sigma2 = rowSigma2(src, rowStart, rowLength);
    for (let b = 0; b < blocksPerRow; b++, o += typeSize) {
      fillBlockWeights(src, rowStart + b * QK, importance, b * QK, sigma2);
      quantizeBlock(src, rowStart + b * QK, out, o);
    }
  }
  return out;
}

// ---------------------------------------------------------------- non-finite scales

// A block whose d or m is Inf or NaN decodes (partly) to NaN, and JS cannot choose a NaN's
// bits. Such blocks are redone bit by bit with SSE's rules, as ggml's x86 build computes
// them: a NaN operand passes through (quieted; the first if both are NaN), and 0 * Inf or
// Inf - Inf give the "default" NaN 0xffc00000.
const DEFAULT_NAN_BITS = 0xffc00000;
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);
const blockQuants = new Int32Array(QK);

function bitsOf(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

function valueOf(bits: number): number {
  scratchU32[0] = bits;
  return scratchF32[0];
}

/** The block's f16 at `offset` is Inf or NaN (exponent all ones). */
function isNonFiniteF16(data: Uint8Array, offset: number): boolean {
  return (data[offset + 1] & 0x7c) === 0x7c;
}

/** ggml's f16 -> f32 as bits: NaNs keep sign and payload and come out quiet. */
function f16ToF32Bits(h: number): number {
  if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) return (((h & 0x8000) << 16) | 0x7fc00000 | ((h & 0x3ff) << 13)) >>> 0;
  return bitsOf(f16BitsToF32(h));
}

/** SSE's (float)q * d as bits, for an integer q. */
function mulBits(q: number, dBits: number): number {
  const d = valueOf(dBits);
  if (d !== d) return (dBits | 0x00400000) >>> 0;
  if (q === 0 && !Number.isFinite(d)) return DEFAULT_NAN_BITS;
  return bitsOf(q * d);
}

/** SSE's a + b as bits. */
function addBits(aBits: number, bBits: number): number {
  const a = valueOf(aBits);
  const b = valueOf(bBits);
  if (a !== a) return (aBits | 0x00400000) >>> 0;
  if (b !== b) return (bBits | 0x00400000) >>> 0;
  if (a === -b && !Number.isFinite(a)) return DEFAULT_NAN_BITS;
  return bitsOf(a + b);
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
    const product = mulBits(blockQuants[j], dBits);
    bits[j] = mBits >= 0 ? addBits(product, mBits) : product;
  }
}

/** blockQuants = the 32 nibbles at data[qsAt..qsAt+16), minus `offset`. */
function nibbleQuants(data: Uint8Array, qsAt: number, offset: number): void {
  for (let j = 0; j < 16; j++) {
    blockQuants[j] = (data[qsAt + j] & 0x0f) - offset;
    blockQuants[j + 16] = (data[qsAt + j] >>> 4) - offset;
  }
}

// ---------------------------------------------------------------- q4_0

const Q4_0_BYTES = 18;

/** quantize_row_q4_0_ref: d = max / -8 (max = the signed value of largest magnitude). */
function encodeQ4_0Ref(x: Float32Array): Uint8Array {
  const blocks = x.length / QK;
  const out = new Uint8Array(blocks * Q4_0_BYTES);
  for (let b = 0, s = 0, o = 0; b < blocks; b++, s += QK, o += Q4_0_BYTES) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const v = x[s + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = f32(max / -8);
    const id = d !== 0 ? f32(1 / d) : 0;
    writeF16(out, o, d);
    for (let j = 0; j < 16; j++) {
      // MIN(15, (int8_t)(x*id + 8.5f)): the float sum is rounded before truncation.
      const q0 = Math.min(15, toInt8(f32(f32(x[s + j] * id) + 8.5)));
      const q1 = Math.min(15, toInt8(f32(f32(x[s + 16 + j] * id) + 8.5)));
      out[o + 2 + j] = (q0 & 0xff) | (q1 << 4);
    }
  }
  return out;
}

/** quantize_row_q4_0_impl's block: make_qx_quants(32, 8, ...). */
function quantizeQ4_0Weighted(x: Float32Array, start: number, out: Uint8Array, o: number): void {
  writeF16(out, o, makeQxQuants(x, start, 8));
  for (let j = 0; j < 16; j++) out[o + 2 + j] = bestL[j] | (bestL[j + 16] << 4);
}

export const Q4_0: Codec = {
  encode(src, rowLength, importance) {
    checkRows(src, rowLength, QK, 'q4_0');
    checkImportance(importance, rowLength, 'q4_0');
    if (!importance) return encodeQ4_0Ref(src);
    return encodeWeightedRows(src, rowLength, importance, Q4_0_BYTES, quantizeQ4_0Weighted);
  },
  decode(data, rows, rowLength) {
    const blocks = checkBlocks(data, rows, rowLength, Q4_0_BYTES, 'q4_0');
    const out = new Float32Array(blocks * QK);
    for (let b = 0, p = 0, o = 0; b < blocks; b++, p += Q4_0_BYTES, o += QK) {
      const d = readF16(data, p);
      for (let j = 0; j < 16; j++) {
        const byte = data[p + 2 + j];
        out[o + j] = ((byte & 0x0f) - 8) * d;
        out[o + 16 + j] = ((byte >>> 4) - 8) * d;
      }
      if (isNonFiniteF16(data, p)) {
        nibbleQuants(data, p + 2, 8);
        redoNonFiniteBlock(out, o, data, p, -1);
      }
    }
    return out;
  },
};

// ---------------------------------------------------------------- q4_1

const Q4_1_BYTES = 20;

/** quantize_row_q4_1_ref: d = (max - min) / 15, m = min. */
function encodeQ4_1Ref(x: Float32Array): Uint8Array {
  const blocks = x.length / QK;
  const out = new Uint8Array(blocks * Q4_1_BYTES);
  for (let b = 0, s = 0, o = 0; b < blocks; b++, s += QK, o += Q4_1_BYTES) {
    let min = FLT_MAX;
    let max = -FLT_MAX;
    for (let j = 0; j < QK; j++) {
      const v = x[s + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = f32(f32(max - min) / 15);
    const id = d !== 0 ? f32(1 / d) : 0;
    writeF16(out, o, d);
    writeF16(out, o + 2, min);
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, toInt8(f32(f32(f32(x[s + j] - min) * id) + 0.5)));
      const q1 = Math.min(15, toInt8(f32(f32(f32(x[s + 16 + j] - min) * id) + 0.5)));
      out[o + 4 + j] = (q0 & 0xff) | (q1 << 4);
    }
  }
  return out;
}

/** quantize_row_q4_1_impl's block: make_qkx3_quants(32, 15, ...), m = -the_min. */
function quantizeQ4_1Weighted(x: Float32Array, start: number, out: Uint8Array, o: number): void {
  writeF16(out, o, makeQkx3Quants(x, start, 15));
  writeF16(out, o + 2, -qkx3Min);
  for (let j = 0; j < 16; j++) out[o + 4 + j] = bestL[j] | (bestL[j + 16] << 4);
}

export const Q4_1: Codec = {
  encode(src, rowLength, importance) {
    checkRows(src, rowLength, QK, 'q4_1');
    checkImportance(importance, rowLength, 'q4_1');
    if (!importance) return encodeQ4_1Ref(src);
    return encodeWeightedRows(src, rowLength, importance, Q4_1_BYTES, quantizeQ4_1Weighted);
  },
  decode(data, rows, rowLength) {
    const blocks = checkBlocks(data, rows, rowLength, Q4_1_BYTES, 'q4_1');
    const out = new Float32Array(blocks * QK);
    for (let b = 0, p = 0, o = 0; b < blocks; b++, p += Q4_1_BYTES, o += QK) {
      const d = readF16(data, p);
      const m = readF16(data, p + 2);
      for (let j = 0; j < 16; j++) {
        const byte = data[p + 4 + j];
        // q*d is exact and q*d + m is exact in double (multiples of 2^-24 below 2^22), so
        // the Float32Array store rounds once, as C's x0*d + m does.
        out[o + j] = (byte & 0x0f) * d + m;
        out[o + 16 + j] = (byte >>> 4) * d + m;
      }
      if (isNonFiniteF16(data, p) || isNonFiniteF16(data, p + 2)) {
        nibbleQuants(data, p + 4, 0);
        redoNonFiniteBlock(out, o, data, p, p + 2);
      }
    }
    return out;
  },
};

// ---------------------------------------------------------------- q5_0

const Q5_0_BYTES = 22;

/** quantize_row_q5_0_ref: d = max / -16. */
function encodeQ5_0Ref(x: Float32Array): Uint8Array {
  const blocks = x.length / QK;
  const out = new Uint8Array(blocks * Q5_0_BYTES);
  for (let b = 0, s = 0, o = 0; b < blocks; b++, s += QK, o += Q5_0_BYTES) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const v = x[s + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = f32(max / -16);
    const id = d !== 0 ? f32(1 / d) : 0;
    writeF16(out, o, d);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(31, toInt8(f32(f32(x[s + j] * id) + 16.5))) & 0xff;
      const q1 = Math.min(31, toInt8(f32(f32(x[s + 16 + j] * id) + 16.5))) & 0xff;
      out[o + 6 + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
      qh |= ((q0 & 0x10) >>> 4) << j;
      qh |= ((q1 & 0x10) >>> 4) << (j + 16);
    }
    writeU32(out, o + 2, qh);
  }
  return out;
}

/** quantize_row_q5_0_impl's block: make_qx_quants(32, 16, ...). */
function quantizeQ5_0Weighted(x: Float32Array, start: number, out: Uint8Array, o: number): void {
  writeF16(out, o, makeQxQuants(x, start, 16));
  writeU32(out, o + 2, packNibbles(bestL, out, o + 6));
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
      // x = q*d + m: exact in double (see q4_1), so the store rounds once, as C does.
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

export const Q5_0: Codec = {
  encode(src, rowLength, importance) {
    checkRows(src, rowLength, QK, 'q5_0');
    checkImportance(importance, rowLength, 'q5_0');
    if (!importance) return encodeQ5_0Ref(src);
    return encodeWeightedRows(src, rowLength, importance, Q5_0_BYTES, quantizeQ5_0Weighted);
  },
  decode: (data, rows, rowLength) => decodeQ5(data, rows, rowLength, false),
};

// ---------------------------------------------------------------- q5_1

const Q5_1_BYTES = 24;

/** quantize_row_q5_1_ref: d = (max - min) / 31, m = min; no clamp, only a uint8 cast. */
function encodeQ5_1Ref(x: Float32Array): Uint8Array {
  const blocks = x.length / QK;
  const out = new Uint8Array(blocks * Q5_1_BYTES);
  for (let b = 0, s = 0, o = 0; b < blocks; b++, s += QK, o += Q5_1_BYTES) {
    let min = FLT_MAX;
    let max = -FLT_MAX;
    for (let j = 0; j < QK; j++) {
      const v = x[s + j];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = f32(f32(max - min) / 31);
    const id = d !== 0 ? f32(1 / d) : 0;
    writeF16(out, o, d);
    writeF16(out, o + 2, min);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = f32(f32(f32(x[s + j] - min) * id) + 0.5) & 0xff;
      const q1 = f32(f32(f32(x[s + 16 + j] - min) * id) + 0.5) & 0xff;
      out[o + 8 + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
      qh |= ((q0 & 0x10) >>> 4) << j;
      qh |= ((q1 & 0x10) >>> 4) << (j + 16);
    }
    writeU32(out, o + 4, qh);
  }
  return out;
}

/** quantize_row_q5_1_impl's block: make_qkx3_quants(32, 31, ...), m = -the_min. */
function quantizeQ5_1Weighted(x: Float32Array, start: number, out: Uint8Array, o: number): void {
  writeF16(out, o, makeQkx3Quants(x, start, 31));
  writeF16(out, o + 2, -qkx3Min);
  writeU32(out, o + 4, packNibbles(bestL, out, o + 8));
}

export const Q5_1: Codec = {
  encode(src, rowLength, importance) {
    checkRows(src, rowLength, QK, 'q5_1');
    checkImportance(importance, rowLength, 'q5_1');
    if (!importance) return encodeQ5_1Ref(src);
    return encodeWeightedRows(src, rowLength, importance, Q5_1_BYTES, quantizeQ5_1Weighted);
  },
  decode: (data, rows, rowLength) => decodeQ5(data, rows, rowLength, true),
};

// ---------------------------------------------------------------- q8_0

const Q8_0_BYTES = 34;

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

export const Q8_0: Codec = {
  encode(src, rowLength, importance) {
    checkRows(src, rowLength, QK, 'q8_0');
    checkImportance(importance, rowLength, 'q8_0');
    return encodeQ8_0(src);
  },
  decode(data, rows, rowLength) {
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
  },
};
