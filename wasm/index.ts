// AssemblyScript entry of quantlab's fast codecs (built by scripts/build-wasm.mjs into
// wasm/build/quant.wasm; loaded by src/quant/fast/). The caller (JavaScript) owns memory
// from heapBase() on: it copies rows in, calls an encoder, and reads blocks and one flag
// byte per row back. A flagged row (Inf/NaN in its input or importance, or a NaN scale to
// store) is left for the reference codec, which alone reproduces ggml's NaN bits.
import { allFinite, clearRowFlag, f16ToF32, flagRow, rowNeedsReference, sumOfSquares } from './common';
import { decodeKBlock, decodeLegacyBlock } from './decode';
import { QK_K, encodeBlockQ2K, encodeBlockQ3K, encodeBlockQ4K, encodeBlockQ5K, encodeBlockQ6K } from './kquants';
import {
  QK, encodeAffineRowRef, encodeAffineWeighted, encodeQ8_0, encodeSymmetricRowRef, encodeSymmetricWeighted, fillLegacyWeights,
} from './legacy';
import { MXFP4_BYTES, QK_MXFP4, decodeMxfp4Block, encodeMxfp4Row } from './mxfp4';
import {
  IQ2_S_BYTES, IQ2_XS_BYTES, IQ2_XXS_BYTES, IQ3_S_BYTES, IQ3_XXS_BYTES, IQ_QK,
  encodeBlockIq2S, encodeBlockIq2Xs, encodeBlockIq2Xxs, encodeBlockIq3S, encodeBlockIq3Xxs,
} from './iqlattice';
import { IQ1_M_BYTES, IQ1_S_BYTES, encodeBlockIq1M, encodeBlockIq1S } from './iq1';
import {
  NVFP4_BYTES, NVFP4_VALUES, Q1_0_BYTES, Q1_0_VALUES, Q2_0_BYTES, Q2_0_VALUES, encodeNvfp4Row, encodeQ1_0Row, encodeQ2_0Row,
} from './lowbit';
import { QK_TQ, TQ1_0_BYTES, TQ2_0_BYTES, decodeTq1Block, decodeTq2Block, encodeTq1Row, encodeTq2Row } from './ternary';
export { encodeBF16, encodeF16 } from './floats';
export { matmulSlab, matmulSlabF32, widenF32 } from './matmul';
export { iqGridInit, iqGridReady } from './iqlattice';

export function heapBase(): usize {
  return __heap_base;
}

// Type codes shared with src/quant/fast/wasm-codecs.ts.
const Q4_0 = 0, Q4_1 = 1, Q5_0 = 2, Q5_1 = 3, Q8_0 = 4, Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14;
// Types without importance whose rows are encoded whole (ternary.ts, mxfp4.ts).
const TQ1_0 = 20, TQ2_0 = 21, MXFP4 = 22;
// Encode only (their decode stays the reference's): lattice i-quants, blocks of 256 with or
// without importance (iqlattice.ts), and rows without importance (lowbit.ts).
const IQ2_XXS = 30, IQ2_XS = 31, IQ2_S = 32, IQ3_XXS = 33, IQ3_S = 34, IQ1_S = 35, IQ1_M = 36;
const NVFP4 = 40, Q1_0 = 41, Q2_0 = 42;

@inline function isLatticeIq(type: i32): bool {
  return type >= IQ2_XXS && type <= IQ1_M; // and iq1_s, iq1_m (iq1.ts), on the same grids
}
@inline function isLowbit(type: i32): bool {
  return type >= NVFP4 && type <= Q2_0;
}

@inline function isKQuant(type: i32): bool {
  return type >= Q2_K && type <= Q6_K;
}

/** Weights per block. */
function blockValues(type: i32): i32 {
  if (isKQuant(type)) return QK_K;
  if (isLatticeIq(type)) return IQ_QK;
  if (type == NVFP4 || type == Q2_0) return NVFP4_VALUES;
  if (type == Q1_0) return Q1_0_VALUES;
  if (type == TQ1_0 || type == TQ2_0) return QK_TQ;
  if (type == MXFP4) return QK_MXFP4;
  return QK;
}

function blockBytes(type: i32): i32 {
  switch (type) {
    case Q4_0: return 18;
    case Q4_1: return 20;
    case Q5_0: return 22;
    case Q5_1: return 24;
    case Q8_0: return 34;
    case Q2_K: return 84;
    case Q3_K: return 110;
    case Q4_K: return 144;
    case Q5_K: return 176;
    case Q6_K: return 210;
    case TQ1_0: return TQ1_0_BYTES;
    case TQ2_0: return TQ2_0_BYTES;
    case MXFP4: return MXFP4_BYTES;
    case IQ2_XXS: return IQ2_XXS_BYTES;
    case IQ2_XS: return IQ2_XS_BYTES;
    case IQ2_S: return IQ2_S_BYTES;
    case IQ3_XXS: return IQ3_XXS_BYTES;
    case IQ3_S: return IQ3_S_BYTES;
    case IQ1_S: return IQ1_S_BYTES;
    case IQ1_M: return IQ1_M_BYTES;
    case NVFP4: return NVFP4_BYTES;
    case Q1_0: return Q1_0_BYTES;
    case Q2_0: return Q2_0_BYTES;
  }
  return 0;
}

function encodeKBlock(type: i32, x: usize, qw: usize, out: usize): void {
  switch (type) {
    case Q2_K: encodeBlockQ2K(x, qw, out); break;
    case Q3_K: encodeBlockQ3K(x, qw, out); break;
    case Q4_K: encodeBlockQ4K(x, qw, out); break;
    case Q5_K: encodeBlockQ5K(x, qw, out); break;
    case Q6_K: encodeBlockQ6K(x, qw, out); break;
    case IQ2_XXS: encodeBlockIq2Xxs(x, qw, out); break;
    case IQ2_XS: encodeBlockIq2Xs(x, qw, out); break;
    case IQ2_S: encodeBlockIq2S(x, qw, out); break;
    case IQ3_XXS: encodeBlockIq3Xxs(x, qw, out); break;
    case IQ3_S: encodeBlockIq3S(x, qw, out); break;
    case IQ1_S: encodeBlockIq1S(x, qw, out); break;
    case IQ1_M: encodeBlockIq1M(x, qw, out); break;
  }
}

/** A row of tq1_0, tq2_0 or mxfp4; false when it holds Inf or NaN (left to the reference). */
function encodeWholeRow(type: i32, x: usize, blocks: i32, out: usize): bool {
  if (type == TQ1_0) return encodeTq1Row(x, blocks, out);
  if (type == TQ2_0) return encodeTq2Row(x, blocks, out);
  return encodeMxfp4Row(x, blocks, out);
}

/** Decode one block of `type` at p into y; false when left to the reference (an Inf or NaN scale). */
function decodeBlock(type: i32, p: usize, y: usize): bool {
  if (isKQuant(type)) return decodeKBlock(type, p, y);
  if (type == TQ1_0) return decodeTq1Block(p, y);
  if (type == TQ2_0) return decodeTq2Block(p, y);
  if (type == MXFP4) return decodeMxfp4Block(p, y);
  return decodeLegacyBlock(type, p, y);
}

function encodeLegacyRow(type: i32, x: usize, blocks: i32, qw: usize, rowLength: i32, out: usize): void {
  const fiveBit = type == Q5_0 || type == Q5_1;
  const symmetric = type == Q4_0 || type == Q5_0;
  if (!qw) {
    // quantize_row_*_ref: whole rows (each block checks its own values instead of the row first).
    if (!(symmetric ? encodeSymmetricRowRef(x, blocks, fiveBit, out) : encodeAffineRowRef(x, blocks, fiveBit, out))) flagRow();
    return;
  }
  const bytes = blockBytes(type);
  const nmax = type == Q4_0 ? 8 : type == Q5_0 ? 16 : type == Q4_1 ? 15 : 31;
  const sigma2: f32 = sumOfSquares(x, rowLength) / <f32>rowLength;
  for (let b = 0; b < blocks; b++) {
    const xb = x + ((<usize>b) << 7);
    const o = out + <usize>(bytes * b);
    fillLegacyWeights(xb, qw + ((<usize>b) << 7), sigma2);
    if (symmetric) encodeSymmetricWeighted(xb, nmax, fiveBit, o);
    else encodeAffineWeighted(xb, nmax, fiveBit, o);
  }
}

/**
 * Encode `rows` rows of `rowLength` f32 at src into out (importance at imp, or 0: none);
 * flags[r] = 1 for each row left to the reference. Returns the number of such rows.
 */
export function encode(type: i32, src: usize, rows: i32, rowLength: i32, imp: usize, out: usize, flags: usize): i32 {
  return encodeRows(type, src, rows, rowLength, imp, out, flags, 0);
}

// The running error sums of encodeMeasured (metrics.ts accumulateErrors' six, in f64).
let sumSqErr: f64 = 0, sumAbsErr: f64 = 0, maxAbsErr: f64 = 0, sumSqRef: f64 = 0, sumSqDeq: f64 = 0, dot: f64 = 0;
/** The running sums from 0 (maxAbsErr from maxAbs0), for a new measurement. */
function resetSums(maxAbs0: f64): void {
  sumSqErr = 0;
  sumAbsErr = 0;
  maxAbsErr = maxAbs0;
  sumSqRef = 0;
  sumSqDeq = 0;
  dot = 0;
}
/** The six running sums into sums[0..6) (f64), in encodeMeasured's order. */
function storeSums(sums: usize): void {
  store<f64>(sums, sumSqErr);
  store<f64>(sums + 8, sumAbsErr);
  store<f64>(sums + 16, maxAbsErr);
  store<f64>(sums + 24, sumSqRef);
  store<f64>(sums + 32, sumSqDeq);
  store<f64>(sums + 40, dot);
}
/** Only sumSqErr is summed (all an RMSE needs: one chain of additions instead of five). */
let squaredErrorOnly = false;
/** Set when a block of the rows could not be decoded here (an Inf or NaN scale): the sums are incomplete. */
let measureFailed = false;

/**
 * encode, and the error of the result against the input in the same pass, each row measured
 * right after it is encoded (while its values are in cache): decoded into deq (one row of
 * f32) and accumulateErrors' sums carried on in element order, so they equal, to the last
 * bit, accumulateErrors(src, decode(out)) over all the rows (sums from 0, maxAbsErr from
 * maxAbs0). Into sums[0..7): sumSqErr, sumAbsErr, maxAbsErr, sumSqRef, sumSqDeq, dot, and 1
 * when every row was measured here (no flagged row, no block left to the reference), else 0.
 * With squaredOnly, only sumSqErr is summed (the others stay 0, maxAbsErr maxAbs0).
 */
export function encodeMeasured(
  type: i32, src: usize, rows: i32, rowLength: i32, imp: usize, out: usize, flags: usize, deq: usize, sums: usize, maxAbs0: f64, squaredOnly: bool,
): i32 {
  squaredErrorOnly = squaredOnly;
  resetSums(maxAbs0);
  measureFailed = false;
  const flagged = encodeRows(type, src, rows, rowLength, imp, out, flags, deq);
  storeSums(sums);
  store<f64>(sums + 48, flagged == 0 && !measureFailed ? 1 : 0);
  return flagged;
}

/**
 * Adds the error of one encoded row (blocks at o, values at x) to the running sums: the row
 * decoded into `deq` first, then one pass over it; nothing when a block is left to the reference.
 */
function measureRow(type: i32, x: usize, o: usize, blocks: i32, deq: usize): void {
  if (type == Q8_0 && squaredErrorOnly) {
    // Q8_0's values decoded on the fly, as decodeLegacyBlock does (q * d in f32).
    let sq = sumSqErr;
    for (let b = 0; b < blocks; b++) {
      const p = o + <usize>(34 * b);
      const h = <i32>load<u16>(p);
      if ((h & 0x7c00) == 0x7c00) {
        measureFailed = true;
        return;
      }
      const d = f16ToF32(h);
      const xb = x + ((<usize>b) << 7);
      for (let j = 0; j < 32; j++) {
        const e = <f64>(<f32>load<i8>(p + 2 + <usize>j) * d) - <f64>load<f32>(xb + ((<usize>j) << 2));
        sq += e * e;
      }
    }
    sumSqErr = sq;
    return;
  }
  const n = blockValues(type);
  const bytes = <usize>blockBytes(type);
  for (let b = 0; b < blocks; b++) {
    const y = deq + ((<usize>(b * n)) << 2);
    if (!decodeBlock(type, o + <usize>b * bytes, y)) {
      measureFailed = true;
      return;
    }
  }
  const count = blocks * n;
  if (squaredErrorOnly) {
    let sq = sumSqErr;
    for (let i = 0; i < count; i++) {
      const e = <f64>load<f32>(deq + ((<usize>i) << 2)) - <f64>load<f32>(x + ((<usize>i) << 2));
      sq += e * e;
    }
    sumSqErr = sq;
    return;
  }
  addErrors(x, deq, count);
}

/** Adds `count` values' errors (ref at x, decoded at deq, f32) to the running sums, in metrics.ts accumulateErrors' order. */
function addErrors(x: usize, deq: usize, count: i32): void {
  let s0 = sumSqErr, s1 = sumAbsErr, mx = maxAbsErr, s3 = sumSqRef, s4 = sumSqDeq, s5 = dot;
  for (let i = 0; i < count; i++) {
    const r = <f64>load<f32>(x + ((<usize>i) << 2));
    const d = <f64>load<f32>(deq + ((<usize>i) << 2));
    const e = d - r;
    const a = abs<f64>(e);
    s0 += e * e;
    s1 += a;
    mx = max<f64>(mx, a); // f64.max keeps a NaN, as accumulateErrors' `a > mx || isNaN(a)` does
    s3 += r * r;
    s4 += d * d;
    s5 += r * d;
  }
  sumSqErr = s0;
  sumAbsErr = s1;
  maxAbsErr = mx;
  sumSqRef = s3;
  sumSqDeq = s4;
  dot = s5;
}

/** encode's rows; with `deq` (room for one row of f32), each row's error measured after it (encodeMeasured). */
function encodeRows(type: i32, src: usize, rows: i32, rowLength: i32, imp: usize, out: usize, flags: usize, deq: usize): i32 {
  const bytes = blockBytes(type);
  const isK = isKQuant(type) || isLatticeIq(type); // blocks of 256 (QK_K), checked finite first
  const blocks = rowLength / blockValues(type);
  const rowBytes = blocks * bytes;
  memory.fill(flags, 0, rows);
  if (imp && !allFinite(imp, rowLength)) {
    memory.fill(flags, 1, rows);
    return rows;
  }
  let flagged = 0;
  for (let r = 0; r < rows; r++) {
    const x = src + <usize>r * <usize>rowLength * 4;
    const o = out + <usize>r * <usize>rowBytes;
    clearRowFlag();
    if (isLowbit(type)) {
      if (!allFinite(x, rowLength)) flagRow();
      else if (type == NVFP4) encodeNvfp4Row(x, blocks, o);
      else if (type == Q1_0) encodeQ1_0Row(x, blocks, o);
      else encodeQ2_0Row(x, blocks, o);
    } else if (type >= TQ1_0 && type <= MXFP4) {
      if (!encodeWholeRow(type, x, blocks, o)) flagRow();
    } else if (type == Q8_0) {
      encodeQ8_0(x, blocks, o);
    } else if (!imp && !isK) {
      encodeLegacyRow(type, x, blocks, 0, rowLength, o); // each block checks its own values instead
    } else if (!allFinite(x, rowLength)) {
      store<u8>(flags + <usize>r, 1);
      flagged++;
      continue;
    } else if (isK) {
      for (let b = 0; b < blocks; b++) encodeKBlock(type, x + ((<usize>b) << 10), imp ? imp + ((<usize>b) << 10) : 0, o + <usize>(b * bytes));
    } else {
      encodeLegacyRow(type, x, blocks, imp, rowLength, o);
    }
    if (rowNeedsReference) {
      store<u8>(flags + <usize>r, 1);
      flagged++;
    } else if (deq && !measureFailed && flagged == 0) {
      measureRow(type, x, o, blocks, deq);
    }
  }
  return flagged;
}


/**
 * Decode `blocks` blocks of `type` at src into f32 at out; flags[b] = 1 for each block left
 * to the reference (an Inf or NaN scale). Returns the number of such blocks.
 */
export function decode(type: i32, src: usize, blocks: i32, out: usize, flags: usize): i32 {
  const bytes = <usize>blockBytes(type);
  const valuesBytes = <usize>blockValues(type) * 4;
  let flagged = 0;
  for (let b = 0; b < blocks; b++) {
    const p = src + <usize>b * bytes;
    const y = out + <usize>b * valuesBytes;
    const ok = decodeBlock(type, p, y);
    store<u8>(flags + <usize>b, ok ? 0 : 1);
    if (!ok) flagged++;
  }
  return flagged;
}

/**
 * The error sums of src/quant/metrics.ts accumulateErrors over n values (ref and deq f32),
 * in f64 and in its order, so the figures are the same to the last bit: into sums[0..6)
 * as sumSqErr, sumAbsErr, maxAbsErr (from maxAbs0 on), sumSqRef, sumSqDeq, dot.
 */
export function accumulateErrors(ref: usize, deq: usize, n: i32, sums: usize, maxAbs0: f64): void {
  resetSums(maxAbs0);
  addErrors(ref, deq, n);
  storeSums(sums);
}
