// K-quants: ggml's super-blocks of QK_K = 256 values, byte for byte as ggml_quantize_chunk
// writes them and as the dequantize_row_* functions read them back.
//
// Followed (ggml-org/ggml d99724f2b141fed9e1a9f402213506c081433465):
//   src/ggml-quants.c  get_scale_min_k4, quantize_row_qN_K_ref, quantize_row_qN_K_impl,
//                      dequantize_row_qN_K, quantize_row_q8_K_ref, dequantize_row_q8_K;
//                      their make_*_quants scale searches are in search.ts (shared with
//                      the legacy types, as in ggml), nearest_int in rounding.ts
//   src/ggml-common.h  block_q2_K .. block_q8_K
//   src/ggml.c         ggml_quantize_chunk -> quantize_qN_K: the _ref function without
//                      importance weights, the _impl function with them.
//
// Byte maps, little-endian; "element e" is value e of the super-block (0..255).
//
// Q2_K, 84 bytes                                   value = d*sc_j*q - dmin*m_j, q in 0..3
//   0..15    scales[16]  sub-block j (16 values): low nibble sc_j, high nibble m_j
//   16..79   qs[64]      byte 32h+l, bits 2s..2s+1: element 128h + 32s + l
//   80..81   d           f16, scale of the 4-bit scales
//   82..83   dmin        f16, scale of the 4-bit mins
// Q3_K, 110 bytes                                  value = d*(sc_j-32)*(q-4), q in 0..7
//   0..31    hmask[32]   bit h of byte l: bit 2 of q for element 32h + l
//   32..95   qs[64]      bits 0..1 of q, laid out as Q2_K's qs
//   96..107  scales[12]  16 6-bit sc_j: bits 0..3 in the low (j<8) or high (j>=8) nibble
//                        of byte j%8, bits 4..5 in byte 8 + j%4 at bit 2*(j/4)
//   108..109 d           f16
// Q4_K, 144 bytes                                  value = d*sc_j*q - dmin*m_j, q in 0..15
//   0..1 d f16, 2..3 dmin f16
//   4..15    scales[12]  8 6-bit sc_j and m_j (sub-blocks of 32), get_scale_min_k4:
//                        j<4: sc_j = byte j & 63, m_j = byte j+4 & 63;
//                        j>=4: low nibbles in byte j+4 (sc low, m high), bits 4..5 in the
//                        top 2 bits of byte j-4 (sc) and byte j (m)
//   16..143  qs[128]     byte 32c+l: low nibble element 64c + l, high nibble 64c + 32 + l
// Q5_K, 176 bytes                                  as Q4_K with q in 0..31
//   0..1 d, 2..3 dmin, 4..15 scales[12] as Q4_K
//   16..47   qh[32]      byte l: bit 2c = bit 4 of element 64c + l, bit 2c+1 of 64c + 32 + l
//   48..175  qs[128]     bits 0..3 of q, as Q4_K's qs
// Q6_K, 210 bytes                                  value = d*sc_j*(q-32), q in 0..63
//   0..127   ql[128]     byte 64h+l (l<32): low nibble element 128h+l, high 128h+64+l;
//                        byte 64h+32+l: low nibble 128h+32+l, high 128h+96+l
//   128..191 qh[64]      byte 32h+l, bits 2s..2s+1: bits 4..5 of element 128h + 32s + l
//   192..207 scales[16]  int8 sc_j, sub-blocks of 16
//   208..209 d           f16
// Q8_K, 292 bytes (matmul activations; no imatrix) value = d*q
//   0..3     d           f32
//   4..259   qs[256]     int8
//   260..291 bsums[16]   int16, sum of qs over each 16 values
//
// C float semantics: every float operation is rounded to single precision with f32()
// (gcc -O3, no FMA, no reassociation: sums accumulate in the C order); C's `if (!d)` is
// `d === 0` here because !NaN is true in JS but false in C; stores into uint8_t/int8_t
// truncate as Uint8Array/Int8Array stores do.
import { checkRows, dataView, type Codec } from '../codec.ts';
import { f16BitsToF32, f32FromBits, f32ToF16Bits } from '../../formats/float16.ts';
import * as rounding from './rounding.ts';
import * as search from './search.ts';

// Module-level copies: transpiled imports are getters that V8 does not inline (rounding.ts).
const f32 = rounding.f32;
const nearestIntC = rounding.nearestIntC;
const clampInt = rounding.clampInt;
const isFiniteBits = rounding.isFiniteBits;
const f16ToF32Bits = rounding.f16ToF32Bits;
const sseMulInt = rounding.sseMulInt;
const sseSub = rounding.sseSub;
const makeQxQuants = search.makeQxQuants;
const makeQ3Quants = search.makeQ3Quants;
const makeQkxQuants = search.makeQkxQuants;
const makeQpQuants = search.makeQpQuants;
const maxByMagnitude = search.maxByMagnitude;
const sumOfSquares = search.sumOfSquares;
const fillImportanceWeights = search.fillImportanceWeights;
const GROUP_MAX_EPS = search.GROUP_MAX_EPS;
const ONE_TENTH = search.ONE_TENTH;
const RMIN_NEG_0_5 = search.RMIN_NEG_0_5;
const RMIN_NEG_0_9 = search.RMIN_NEG_0_9;
const RDELTA_0_05 = search.RDELTA_0_05;

/** The searches' proven skips (search.ts); tests turn them off to check they change no byte. */
export const setSearchShortcuts = search.setSearchShortcuts;

export const QK_K = 256;
export const Q2_K_BLOCK_BYTES = 2 + 2 + QK_K / 16 + QK_K / 4; // 84
export const Q3_K_BLOCK_BYTES = QK_K / 8 + QK_K / 4 + 12 + 2; // 110
export const Q4_K_BLOCK_BYTES = 2 + 2 + 12 + QK_K / 2; // 144
export const Q5_K_BLOCK_BYTES = 2 + 2 + 12 + QK_K / 8 + QK_K / 2; // 176
export const Q6_K_BLOCK_BYTES = QK_K / 2 + QK_K / 4 + QK_K / 16 + 2; // 210
export const Q8_K_BLOCK_BYTES = 4 + QK_K + (QK_K / 16) * 2; // 292

// ---------------------------------------------------------------------------------------
// Scratch: one set per module (a worker has its own), so no block allocates.

const groupWeights = new Float32Array(32); // per-value weights handed to the make_* helpers
const quantsU = new Uint8Array(QK_K); // L of the unsigned quantizers
const quantsS = new Int8Array(QK_K); // L of make_qx_quants / make_q3_quants
const subScales = new Float32Array(16);
const subMins = new Float32Array(16);
const subWeightSums = new Float32Array(16); // sw
const scaleLevels = new Uint8Array(16); // Ls
const minLevels = new Uint8Array(16); // Lm
const scaleLevelsSigned = new Int8Array(16);
const packedScales = new Uint8Array(12); // Q3_K/Q4_K/Q5_K scale bytes under construction

// ---------------------------------------------------------------------------------------
// Shared packing

/** Pack 2-bit values L[0..255] into 64 bytes (Q2_K's and Q3_K's qs). */
function pack2Bit(L: Uint8Array | Int8Array, out: Uint8Array, o: number): void {
  for (let j = 0; j < QK_K; j += 128) {
    for (let l = 0; l < 32; l++) {
      out[o + j / 4 + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6);
    }
  }
}

/** Q4_K/Q5_K scale bytes from 6-bit scale and min levels, in the C's store order. */
function packScalesMinsK4(ls: Uint8Array, lm: Uint8Array, s: Uint8Array): void {
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      s[j] = ls[j];
      s[j + 4] = lm[j];
    } else {
      s[j + 4] = (ls[j] & 0xf) | ((lm[j] & 0xf) << 4);
      s[j - 4] |= (ls[j] >> 4) << 6;
      s[j] |= (lm[j] >> 4) << 6;
    }
  }
}

/** get_scale_min_k4: sub-block j's 6-bit scale (low 8 bits) and min (high 8 bits). */
function scaleMinK4(j: number, q: Uint8Array, o: number): number {
  if (j < 4) return (q[o + j] & 63) | ((q[o + j + 4] & 63) << 8);
  const sc = (q[o + j + 4] & 0xf) | ((q[o + j - 4] >> 6) << 4);
  const m = (q[o + j + 4] >> 4) | ((q[o + j] >> 6) << 4);
  return sc | (m << 8);
}

/** Q3_K sub-block j's 6-bit scale (biased by 32) from its 12 scale bytes. */
function scaleQ3K(j: number, s: Uint8Array, o: number): number {
  const low = j < 8 ? s[o + j] & 0xf : s[o + j - 8] >> 4;
  return low | (((s[o + 8 + (j % 4)] >> (2 * (j >> 2))) & 3) << 4);
}

/** Q3_K's 12 scale bytes from 16 levels (0..63, biased by 32); s must start zeroed. */
function packScalesQ3K(levels: Int8Array, s: Uint8Array, o: number): void {
  for (let j = 0; j < 16; j++) {
    let l = levels[j];
    if (j < 8) s[o + j] = l & 0xf;
    else s[o + j - 8] |= (l & 0xf) << 4;
    l >>= 4;
    s[o + 8 + (j % 4)] |= l << (2 * (j >> 2));
  }
}

/**
 * Final quants of the scale-and-min types: with the stored (f16 and 4/6-bit) scales,
 * L = clamp(round((x + dm)/d)) per sub-block; sub-blocks with d == 0 keep their L.
 */
function requantizeWithMins(
  x: Float32Array, x0: number, L: Uint8Array, j: number, groupSize: number, nmax: number, d: number, dm: number,
): void {
  if (d === 0) return;
  for (let ii = 0; ii < groupSize; ii++) {
    const v = groupSize * j + ii;
    L[v] = clampInt(nearestIntC(f32(f32(x[x0 + v] + dm) / d)), 0, nmax);
  }
}

/** Symmetric final quants: L = clamp(round(x/d)) + bias; sub-blocks with d == 0 keep L. */
function requantizeSymmetric(
  x: Float32Array, x0: number, L: Int8Array, j: number, nmin: number, nmax: number, d: number,
): void {
  if (d === 0) return;
  for (let ii = 0; ii < 16; ii++) {
    const v = 16 * j + ii;
    L[v] = clampInt(nearestIntC(f32(x[x0 + v] / d)), nmin, nmax) - nmin;
  }
}

// ---------------------------------------------------------------------------------------
// Q2_K

function encodeBlockQ2K(x: Float32Array, x0: number, qw: Float32Array | undefined, q0: number, out: Uint8Array, view: DataView, o: number): void {
  const L = quantsU;
  let dmBits: number;
  let mmBits: number;
  if (!qw) {
    // quantize_row_q2_K_ref
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 16; j++) {
      for (let l = 0; l < 16; l++) groupWeights[l] = Math.abs(x[x0 + 16 * j + l]);
      const scale = makeQkxQuants(16, 3, x, x0 + 16 * j, groupWeights, L, 16 * j, subMins, j, RMIN_NEG_0_5, ONE_TENTH, 15, true);
      subScales[j] = scale;
      if (subScales[j] > maxScale) maxScale = subScales[j];
      if (subMins[j] > maxMin) maxMin = subMins[j];
    }
    if (maxScale > 0) {
      const iscale = f32(15 / maxScale);
      for (let j = 0; j < 16; j++) out[o + j] = nearestIntC(f32(iscale * subScales[j]));
      dmBits = f32ToF16Bits(f32(maxScale / 15));
    } else {
      out.fill(0, o, o + 16);
      dmBits = f32ToF16Bits(0);
    }
    if (maxMin > 0) {
      const iscale = f32(15 / maxMin);
      for (let j = 0; j < 16; j++) out[o + j] |= nearestIntC(f32(iscale * subMins[j])) << 4;
      mmBits = f32ToF16Bits(f32(maxMin / 15));
    } else {
      mmBits = f32ToF16Bits(0);
    }
  } else {
    // quantize_row_q2_K_impl
    const sigma2 = f32(sumOfSquares(x, x0, QK_K) / QK_K);
    for (let j = 0; j < 16; j++) {
      subWeightSums[j] = fillImportanceWeights(groupWeights, 16, x, x0 + 16 * j, qw, q0 + 16 * j, sigma2);
      subScales[j] = makeQkxQuants(16, 3, x, x0 + 16 * j, groupWeights, L, 16 * j, subMins, j, RMIN_NEG_0_9, RDELTA_0_05, 36, false);
    }
    dmBits = f32ToF16Bits(makeQpQuants(16, 15, subScales, scaleLevels, subWeightSums));
    mmBits = f32ToF16Bits(makeQpQuants(16, 15, subMins, minLevels, subWeightSums));
    for (let j = 0; j < 16; j++) out[o + j] = scaleLevels[j] | (minLevels[j] << 4);
  }
  view.setUint16(o + 80, dmBits, true);
  view.setUint16(o + 82, mmBits, true);
  const dAll = f16BitsToF32(dmBits);
  const mAll = f16BitsToF32(mmBits);
  for (let j = 0; j < 16; j++) {
    const sc = out[o + j];
    requantizeWithMins(x, x0, L, j, 16, 3, f32(dAll * (sc & 0xf)), f32(mAll * (sc >> 4)));
  }
  pack2Bit(L, out, o + 16);
}

// ---------------------------------------------------------------------------------------
// Q3_K

function encodeBlockQ3K(x: Float32Array, x0: number, qw: Float32Array | undefined, q0: number, out: Uint8Array, view: DataView, o: number): void {
  const L = quantsS;
  const s = packedScales;
  s.fill(0);
  let dBits: number;
  if (!qw) {
    // quantize_row_q3_K_ref
    for (let j = 0; j < 16; j++) subScales[j] = makeQ3Quants(16, 4, x, x0 + 16 * j, L, 16 * j);
    const maxScale = maxByMagnitude(subScales, 0, 16);
    if (maxScale !== 0) {
      const iscale = f32(-32 / maxScale);
      for (let j = 0; j < 16; j++) {
        const l = (nearestIntC(f32(iscale * subScales[j])) << 24) >> 24; // int8_t l = ...
        scaleLevelsSigned[j] = clampInt(l, -32, 31) + 32;
      }
      packScalesQ3K(scaleLevelsSigned, s, 0);
      dBits = f32ToF16Bits(f32(1 / iscale));
    } else {
      dBits = f32ToF16Bits(0);
    }
  } else {
    // quantize_row_q3_K_impl
    const sigma2 = f32(f32(2 * sumOfSquares(x, x0, QK_K)) / QK_K);
    for (let j = 0; j < 16; j++) {
      subWeightSums[j] = fillImportanceWeights(groupWeights, 16, x, x0 + 16 * j, qw, q0 + 16 * j, sigma2);
      subScales[j] = makeQxQuants(16, 4, x, x0 + 16 * j, L, 16 * j, groupWeights, 0);
    }
    const dBlock = makeQxQuants(16, 32, subScales, 0, scaleLevelsSigned, 0, subWeightSums, 0);
    packScalesQ3K(scaleLevelsSigned, s, 0);
    dBits = f32ToF16Bits(dBlock);
  }
  out.set(s, o + 96);
  view.setUint16(o + 108, dBits, true);
  const dAll = f16BitsToF32(dBits);
  for (let j = 0; j < 16; j++) {
    requantizeSymmetric(x, x0, L, j, -4, 3, f32(dAll * (scaleQ3K(j, s, 0) - 32)));
  }
  // hmask: the high bit of value 32h + m goes to bit h of byte m.
  out.fill(0, o, o + 32);
  for (let j = 0; j < QK_K; j++) {
    if (L[j] > 3) {
      out[o + (j & 31)] |= 1 << (j >> 5);
      L[j] -= 4;
    }
  }
  pack2Bit(L, out, o + 32);
}

// ---------------------------------------------------------------------------------------
// Q4_K and Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins

/**
 * Sub-block scales and mins of Q4_K/Q5_K into subScales/subMins (L into quantsU), and
 * the super-block scale and min as f16 bits into `out` (d at o, dmin at o + 2); the packed
 * 6-bit levels go to packedScales.
 */
function chooseScalesMinsK4(
  x: Float32Array, x0: number, qw: Float32Array | undefined, q0: number, nmax: number,
  refSearch: readonly [number, number, number], clampImpl: boolean, view: DataView, o: number,
): void {
  const L = quantsU;
  let dBits: number;
  let mBits: number;
  if (!qw) {
    // quantize_row_q4_K_ref / quantize_row_q5_K_ref
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 8; j++) {
      const avX = f32(Math.sqrt(f32(sumOfSquares(x, x0 + 32 * j, 32) / 32)));
      for (let l = 0; l < 32; l++) groupWeights[l] = f32(avX + Math.abs(x[x0 + 32 * j + l]));
      subScales[j] = makeQkxQuants(32, nmax, x, x0 + 32 * j, groupWeights, L, 32 * j, subMins, j, refSearch[0], refSearch[1], refSearch[2], false);
      if (subScales[j] > maxScale) maxScale = subScales[j];
      if (subMins[j] > maxMin) maxMin = subMins[j];
    }
    const invScale = maxScale > 0 ? f32(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? f32(63 / maxMin) : 0;
    for (let j = 0; j < 8; j++) {
      scaleLevels[j] = Math.min(63, nearestIntC(f32(invScale * subScales[j])) & 0xff);
      minLevels[j] = Math.min(63, nearestIntC(f32(invMin * subMins[j])) & 0xff);
    }
    dBits = f32ToF16Bits(f32(maxScale / 63));
    mBits = f32ToF16Bits(f32(maxMin / 63));
  } else {
    // quantize_row_q4_K_impl / quantize_row_q5_K_impl
    const sigma2 = f32(f32(2 * sumOfSquares(x, x0, QK_K)) / QK_K);
    for (let j = 0; j < 8; j++) {
      subWeightSums[j] = fillImportanceWeights(groupWeights, 32, x, x0 + 32 * j, qw, q0 + 32 * j, sigma2);
      subScales[j] = makeQkxQuants(32, nmax, x, x0 + 32 * j, groupWeights, L, 32 * j, subMins, j, RMIN_NEG_0_9, RDELTA_0_05, 36, false);
    }
    dBits = f32ToF16Bits(makeQpQuants(8, 63, subScales, scaleLevels, subWeightSums));
    mBits = f32ToF16Bits(makeQpQuants(8, 63, subMins, minLevels, subWeightSums));
    if (clampImpl) {
      // Only the Q5_K impl clamps to 63 (make_qp_quants already keeps L <= 63).
      for (let j = 0; j < 8; j++) {
        scaleLevels[j] = Math.min(63, scaleLevels[j]);
        minLevels[j] = Math.min(63, minLevels[j]);
      }
    }
  }
  packScalesMinsK4(scaleLevels, minLevels, packedScales);
  view.setUint16(o, dBits, true);
  view.setUint16(o + 2, mBits, true);
  const dAll = f16BitsToF32(dBits);
  const mAll = f16BitsToF32(mBits);
  for (let j = 0; j < 8; j++) {
    const sm = scaleMinK4(j, packedScales, 0);
    requantizeWithMins(x, x0, L, j, 32, nmax, f32(dAll * (sm & 0xff)), f32(mAll * (sm >> 8)));
  }
}

const Q4_K_REF_SEARCH = [-1, ONE_TENTH, 20] as const;
const Q5_K_REF_SEARCH = [RMIN_NEG_0_5, ONE_TENTH, 15] as const;

function encodeBlockQ4K(x: Float32Array, x0: number, qw: Float32Array | undefined, q0: number, out: Uint8Array, view: DataView, o: number): void {
  chooseScalesMinsK4(x, x0, qw, q0, 15, Q4_K_REF_SEARCH, false, view, o);
  out.set(packedScales, o + 4);
  const L = quantsU;
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) out[o + 16 + 32 * c + l] = L[64 * c + l] | (L[64 * c + 32 + l] << 4);
  }
}

function encodeBlockQ5K(x: Float32Array, x0: number, qw: Float32Array | undefined, q0: number, out: Uint8Array, view: DataView, o: number): void {
  chooseScalesMinsK4(x, x0, qw, q0, 31, Q5_K_REF_SEARCH, true, view, o);
  out.set(packedScales, o + 4);
  const L = quantsU;
  const qh = o + 16;
  const ql = o + 48;
  out.fill(0, qh, qh + 32);
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) {
      const lo = L[64 * c + l];
      const hi = L[64 * c + 32 + l];
      out[qh + l] |= ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1));
      out[ql + 32 * c + l] = (lo & 0xf) | ((hi & 0xf) << 4);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Q6_K: quantize_row_q6_K_ref and _impl are the same but for make_qx_quants' weights.

function encodeBlockQ6K(x: Float32Array, x0: number, qw: Float32Array | undefined, q0: number, out: Uint8Array, view: DataView, o: number): void {
  const L = quantsS;
  for (let j = 0; j < 16; j++) subScales[j] = makeQxQuants(16, 32, x, x0 + 16 * j, L, 16 * j, qw ?? null, q0 + 16 * j);
  const maxScale = maxByMagnitude(subScales, 0, 16);
  if (Math.abs(maxScale) < GROUP_MAX_EPS) {
    out.fill(0, o, o + Q6_K_BLOCK_BYTES); // d = f32ToF16Bits(0) is 0 too
    return;
  }
  const iscale = f32(-128 / maxScale);
  const dBits = f32ToF16Bits(f32(1 / iscale));
  view.setUint16(o + 208, dBits, true);
  for (let j = 0; j < 16; j++) out[o + 192 + j] = Math.min(127, nearestIntC(f32(iscale * subScales[j])));
  const dAll = f16BitsToF32(dBits);
  for (let j = 0; j < 16; j++) {
    const sc = (out[o + 192 + j] << 24) >> 24;
    requantizeSymmetric(x, x0, L, j, -32, 31, f32(dAll * sc));
  }
  for (let h = 0; h < 2; h++) {
    const ql = o + 64 * h;
    const qh = o + 128 + 32 * h;
    const v = 128 * h;
    for (let l = 0; l < 32; l++) {
      const a = L[v + l], b = L[v + l + 32], c = L[v + l + 64], e = L[v + l + 96];
      out[ql + l] = (a & 0xf) | ((c & 0xf) << 4);
      out[ql + l + 32] = (b & 0xf) | ((e & 0xf) << 4);
      out[qh + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Q8_K: quantize_row_q8_K_ref (the importance weights do not apply)

function encodeBlockQ8K(x: Float32Array, x0: number, _qw: Float32Array | undefined, _q0: number, out: Uint8Array, view: DataView, o: number): void {
  const max = maxByMagnitude(x, x0, QK_K);
  if (max === 0) {
    out.fill(0, o, o + Q8_K_BLOCK_BYTES); // C leaves bsums unwritten here; zero is their sum

    return;
  }
  // -127, not -128: ggml keeps q in -127..127 for its IQ2_XXS dot products.
  const iscale = f32(-127 / max);
  for (let j = 0; j < QK_K; j++) out[o + 4 + j] = Math.min(127, nearestIntC(f32(iscale * x[x0 + j])));
  for (let j = 0; j < 16; j++) {
    let sum = 0;
    for (let ii = 0; ii < 16; ii++) sum += (out[o + 4 + 16 * j + ii] << 24) >> 24;
    view.setInt16(o + 4 + QK_K + 2 * j, sum, true);
  }
  view.setFloat32(o, f32(1 / iscale), true);
}

// ---------------------------------------------------------------------------------------
// Decoding: each type unpacks a block into integer quants (as the C formula uses them) and
// per-sub-block integer scales and mins; then one of two float formulas applies.

const blockQuants = new Int32Array(QK_K);
const subScaleInts = new Int32Array(16);
const subMinInts = new Int32Array(16);

function unpackQ2K(q: Uint8Array, o: number): void {
  for (let j = 0; j < 16; j++) {
    subScaleInts[j] = q[o + j] & 0xf;
    subMinInts[j] = q[o + j] >> 4;
  }
  unpack2Bit(q, o + 16);
}

/** Q2_K's and Q3_K's qs: value 128h + 32s + l is bits 2s..2s+1 of byte 32h + l. */
function unpack2Bit(q: Uint8Array, qs: number): void {
  for (let e = 0; e < QK_K; e++) {
    const h = e >> 7, s = (e >> 5) & 3, l = e & 31;
    blockQuants[e] = (q[qs + 32 * h + l] >> (2 * s)) & 3;
  }
}

function unpackQ3K(q: Uint8Array, o: number): void {
  for (let j = 0; j < 16; j++) subScaleInts[j] = scaleQ3K(j, q, o + 96) - 32;
  unpack2Bit(q, o + 32);
  // hmask: bit e>>5 of byte e&31 set means no -4.
  for (let e = 0; e < QK_K; e++) blockQuants[e] -= q[o + (e & 31)] & (1 << (e >> 5)) ? 0 : 4;
}

function unpackScalesMinsK4(q: Uint8Array, o: number): void {
  for (let j = 0; j < 8; j++) {
    const sm = scaleMinK4(j, q, o + 4);
    subScaleInts[j] = sm & 0xff;
    subMinInts[j] = sm >> 8;
  }
}

function unpackQ4K(q: Uint8Array, o: number): void {
  unpackScalesMinsK4(q, o);
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) {
      const byte = q[o + 16 + 32 * c + l];
      blockQuants[64 * c + l] = byte & 0xf;
      blockQuants[64 * c + 32 + l] = byte >> 4;
    }
  }
}

function unpackQ5K(q: Uint8Array, o: number): void {
  unpackScalesMinsK4(q, o);
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) {
      const byte = q[o + 48 + 32 * c + l];
      const high = q[o + 16 + l];
      blockQuants[64 * c + l] = (byte & 0xf) | (((high >> (2 * c)) & 1) << 4);
      blockQuants[64 * c + 32 + l] = (byte >> 4) | (((high >> (2 * c + 1)) & 1) << 4);
    }
  }
}

function unpackQ6K(q: Uint8Array, o: number): void {
  for (let j = 0; j < 16; j++) subScaleInts[j] = (q[o + 192 + j] << 24) >> 24;
  for (let e = 0; e < QK_K; e++) {
    const h = e >> 7, s = (e >> 5) & 3, l = e & 31;
    const low = (q[o + 64 * h + 32 * (s & 1) + l] >> (4 * (s >> 1))) & 0xf;
    const high = (q[o + 128 + 32 * h + l] >> (2 * s)) & 3;
    blockQuants[e] = (low | (high << 4)) - 32;
  }
}

function unpackQ8K(q: Uint8Array, o: number): void {
  subScaleInts[0] = 1; // d*1 is d bit for bit, so Q8_K's d*q fits the scaled formula
  for (let e = 0; e < QK_K; e++) blockQuants[e] = (q[o + 4 + e] << 24) >> 24;
}

/**
 * dequantize_row_q2_K/q4_K/q5_K: y = (d*sc_j)*q - (dmin*m_j) over sub-blocks of
 * `groupSize`, from d and dmin as f32 bits (an Inf or NaN one: on bits, rounding.ts).
 */
function applyScalesAndMins(dBits: number, mBits: number, groupSize: number, y: Float32Array, yBits: Uint32Array, y0: number): void {
  if (isFiniteBits(dBits) && isFiniteBits(mBits)) {
    const d = f32FromBits(dBits);
    const dmin = f32FromBits(mBits);
    const quants = blockQuants;
    for (let j = 0, e = 0; j < QK_K / groupSize; j++) {
      const dl = f32(d * subScaleInts[j]);
      const ml = f32(dmin * subMinInts[j]);
      for (const end = e + groupSize; e < end; e++) y[y0 + e] = Math.fround(dl * quants[e]) - ml;
    }
    return;
  }
  for (let j = 0; j < QK_K / groupSize; j++) {
    const dl = sseMulInt(dBits, subScaleInts[j]);
    const ml = sseMulInt(mBits, subMinInts[j]);
    for (let e = groupSize * j; e < groupSize * (j + 1); e++) yBits[y0 + e] = sseSub(sseMulInt(dl, blockQuants[e]), ml);
  }
}

/** dequantize_row_q3_K/q6_K/q8_K: y = (d*sc_j)*q over sub-blocks of `groupSize`. */
function applyScales(dBits: number, groupSize: number, y: Float32Array, yBits: Uint32Array, y0: number): void {
  if (isFiniteBits(dBits)) {
    const d = f32FromBits(dBits);
    const quants = blockQuants;
    for (let j = 0, e = 0; j < QK_K / groupSize; j++) {
      const dl = f32(d * subScaleInts[j]);
      for (const end = e + groupSize; e < end; e++) y[y0 + e] = dl * quants[e];
    }
    return;
  }
  for (let j = 0; j < QK_K / groupSize; j++) {
    const dl = sseMulInt(dBits, subScaleInts[j]);
    for (let e = groupSize * j; e < groupSize * (j + 1); e++) yBits[y0 + e] = sseMulInt(dl, blockQuants[e]);
  }
}

type DecodeBlock = (q: Uint8Array, view: DataView, o: number, y: Float32Array, yBits: Uint32Array, y0: number) => void;

const halfBits = (view: DataView, at: number) => f16ToF32Bits(view.getUint16(at, true));

const decodeBlockQ2K: DecodeBlock = (q, view, o, y, yBits, y0) => {
  unpackQ2K(q, o);
  applyScalesAndMins(halfBits(view, o + 80), halfBits(view, o + 82), 16, y, yBits, y0);
};
const decodeBlockQ3K: DecodeBlock = (q, view, o, y, yBits, y0) => {
  unpackQ3K(q, o);
  applyScales(halfBits(view, o + 108), 16, y, yBits, y0);
};
const decodeBlockQ4K: DecodeBlock = (q, view, o, y, yBits, y0) => {
  unpackQ4K(q, o);
  applyScalesAndMins(halfBits(view, o), halfBits(view, o + 2), 32, y, yBits, y0);
};
const decodeBlockQ5K: DecodeBlock = (q, view, o, y, yBits, y0) => {
  unpackQ5K(q, o);
  applyScalesAndMins(halfBits(view, o), halfBits(view, o + 2), 32, y, yBits, y0);
};
const decodeBlockQ6K: DecodeBlock = (q, view, o, y, yBits, y0) => {
  unpackQ6K(q, o);
  applyScales(halfBits(view, o + 208), 16, y, yBits, y0);
};
const decodeBlockQ8K: DecodeBlock = (q, view, o, y, yBits, y0) => {
  unpackQ8K(q, o);
  applyScales(view.getUint32(o, true), QK_K, y, yBits, y0);
};

// ---------------------------------------------------------------------------------------
// Codecs

type EncodeBlock = (x: Float32Array, x0: number, qw: Float32Array | undefined, q0: number, out: Uint8Array, view: DataView, o: number) => void;

function kQuantCodec(name: string, blockBytes: number, encodeBlock: EncodeBlock, decodeBlock: DecodeBlock): Codec {
  return {
    encode(src, rowLength, importance) {
      const rows = checkRows(src, rowLength, QK_K, name);
      if (importance && importance.length !== rowLength) {
        throw new RangeError(`${name}: ${importance.length} importance weights for rows of ${rowLength}`);
      }
      const blocksPerRow = rowLength / QK_K;
      const out = new Uint8Array(rows * blocksPerRow * blockBytes);
      const view = dataView(out);
      let o = 0;
      for (let r = 0; r < rows; r++) {
        for (let b = 0; b < blocksPerRow; b++, o += blockBytes) {
          encodeBlock(src, r * rowLength + b * QK_K, importance, b * QK_K, out, view, o);
        }
      }
      return out;
    },
    decode(data, rows, rowLength) {
      if (rowLength <= 0 || rowLength % QK_K !== 0) {
        throw new RangeError(`${name}: row length ${rowLength} is not a multiple of ${QK_K}`);
      }
      const blocks = (rows * rowLength) / QK_K;
      if (data.length < blocks * blockBytes) {
        throw new RangeError(`${name}: ${data.length} bytes hold fewer than ${blocks} blocks of ${blockBytes}`);
      }
      const y = new Float32Array(rows * rowLength);
      const yBits = new Uint32Array(y.buffer);
      const view = dataView(data);
      for (let b = 0; b < blocks; b++) decodeBlock(data, view, b * blockBytes, y, yBits, b * QK_K);
      return y;
    },
  };
}

export const Q2_K: Codec = kQuantCodec('q2_K', Q2_K_BLOCK_BYTES, encodeBlockQ2K, decodeBlockQ2K);
export const Q3_K: Codec = kQuantCodec('q3_K', Q3_K_BLOCK_BYTES, encodeBlockQ3K, decodeBlockQ3K);
export const Q4_K: Codec = kQuantCodec('q4_K', Q4_K_BLOCK_BYTES, encodeBlockQ4K, decodeBlockQ4K);
export const Q5_K: Codec = kQuantCodec('q5_K', Q5_K_BLOCK_BYTES, encodeBlockQ5K, decodeBlockQ5K);
export const Q6_K: Codec = kQuantCodec('q6_K', Q6_K_BLOCK_BYTES, encodeBlockQ6K, decodeBlockQ6K);
/** Q8_K ignores importance weights: ggml only makes it from activations. */
export const Q8_K: Codec = kQuantCodec('q8_K', Q8_K_BLOCK_BYTES, encodeBlockQ8K, decodeBlockQ8K);
