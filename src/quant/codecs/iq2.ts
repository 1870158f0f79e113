// IQ2_XXS, IQ2_XS and IQ2_S: 2-bit i-quants, groups of 8 weights stored as one point of an
// 8-dimensional lattice grid (iquants-grid.ts) plus signs, byte for byte as ggml makes them
// (the llama.cpp bundled with node-llama-cpp 3.22.1, ggml/src/ggml-quants.c:
// quantize_row_iq2_xxs_impl, quantize_row_iq2_xs_impl, quantize_row_iq2_s_impl,
// dequantize_row_iq2_xxs/_xs/_s; ggml-common.h: block_iq2_xxs/_xs/_s).
//
// block_iq2_xxs, 66 bytes per 256 weights (8 sub-blocks of 32, 4 groups of 8 each):
//   0..1    d        f16 super-block scale
//   2..65   qs       per sub-block two u32 LE: the first holds 4 grid indices (byte k =
//                    group k), the second 4 x 7 sign bits (group k at bit 7k) and the
//                    4-bit sub-block scale s in bits 28..31. Weight = d*(0.5+s)/4 * grid.
// block_iq2_xs, 74 bytes (16 sub-blocks of 16, 2 groups each):
//   0..1    d
//   2..65   qs       u16 LE per group: grid index (9 bits) | 7 sign bits << 9
//   66..73  scales   byte ib/2: low nibble = sub-block 2k, high = 2k+1; d*(0.5+s)/4
// block_iq2_s, 82 bytes (16 sub-blocks of 16, 2 groups each):
//   0..1    d
//   2..33   qs       low 8 bits of each group's grid index (10 bits)
//   34..65  signs    8 sign bits per group (all stored: no parity rule)
//   66..73  qh       byte j: bits 2i..2i+1 = high bits of group 4j+i's index
//   74..81  scales   as iq2_xs
// In iq2_xxs and iq2_xs the eighth sign of a group is implied: the count of minus signs is
// even (KSIGNS_IQ2XS); the quantizer flips the least important weight to make it so.
//
// ggml's quantizer needs importance weights for iq2_xxs and iq2_xs (ggml_quantize_chunk
// asserts an imatrix; llama-quantize refuses without one): their encoders throw without.
import type { Codec } from '../codec.ts';
import * as rounding from './rounding.ts';
import * as search from './search.ts';
import * as blocks from './iq-blocks.ts';
import * as lattice from './lattice-search.ts';
import { KSIGNS_IQ2XS, iq2sGrid, iq2xsGrid, iq2xxsGrid, type IqGrid } from './iquants-grid.ts';

const f32 = rounding.f32;
const nearestIntC = rounding.nearestIntC;
const { countBlocks, readU16, readU32, writeU16, writeU32, writeF16, f16Value, isNaNF16, nanWithSigns } = blocks;
const xval = lattice.xval;
const weight = lattice.weight;
const levels = lattice.levels;

export const QK_K = 256;
export const IQ2_XXS_BYTES = 2 + QK_K / 4;
export const IQ2_XS_BYTES = 2 + QK_K / 4 + QK_K / 32;
export const IQ2_S_BYTES = 2 + QK_K / 4 + QK_K / 16;

const GROUP_MAX_EPS = search.GROUP_MAX_EPS;
const GROUP_MAX_EPS_IQ2_S = f32(1e-8);
const ONE_TENTH = f32(0.1);
const QUARTER = 0.25;
/** iq2_s's fudge factor on the stored scale (ggml: "small improvement"). */
const IQ2_S_SCALE_FUDGE = f32(0.9875);

// ---------------------------------------------------------------------------------------
// Decoding

/** Eight weights of grid point `index` at scale db, minus where the sign bit is set. */
function putGroup(out: Float32Array, o: number, values: Int8Array, index: number, db: number, signs: number): void {
  const p = index * 8;
  for (let j = 0; j < 8; j++) {
    const v = db * values[p + j];
    out[o + j] = signs & (1 << j) ? -v : v;
  }
}

/** d * (0.5f + s) * 0.25f, rounded as C does. */
const subScale = (d: number, s: number) => f32(f32(d * (0.5 + s)) * QUARTER);

function decodeIq2Xxs(data: Uint8Array, rows: number, rowLength: number): Float32Array {
  const n = countBlocks('iq2_xxs', data, rows, rowLength, QK_K, IQ2_XXS_BYTES);
  const values = iq2xxsGrid().values;
  const out = new Float32Array(n * QK_K);
  for (let b = 0; b < n; b++) {
    const at = b * IQ2_XXS_BYTES;
    const h = readU16(data, at);
    const d = isNaNF16(h) ? 1 : f16Value(h);
    for (let ib = 0; ib < 8; ib++) {
      const q = at + 2 + 8 * ib;
      const aux = readU32(data, q + 4);
      const db = subScale(d, aux >>> 28);
      for (let l = 0; l < 4; l++) {
        putGroup(out, b * QK_K + 32 * ib + 8 * l, values, data[q + l], db, KSIGNS_IQ2XS[(aux >>> (7 * l)) & 127]);
      }
    }
    if (isNaNF16(h)) nanWithSigns(out, b * QK_K, QK_K, h);
  }
  return out;
}

function decodeIq2Xs(data: Uint8Array, rows: number, rowLength: number): Float32Array {
  const n = countBlocks('iq2_xs', data, rows, rowLength, QK_K, IQ2_XS_BYTES);
  const values = iq2xsGrid().values;
  const out = new Float32Array(n * QK_K);
  for (let b = 0; b < n; b++) {
    const at = b * IQ2_XS_BYTES;
    const h = readU16(data, at);
    const d = isNaNF16(h) ? 1 : f16Value(h);
    for (let ib = 0; ib < 8; ib++) {
      const sc = data[at + 66 + ib];
      const db0 = subScale(d, sc & 0xf);
      const db1 = subScale(d, sc >> 4);
      for (let l = 0; l < 4; l++) {
        const q = readU16(data, at + 2 + 2 * (4 * ib + l));
        putGroup(out, b * QK_K + 32 * ib + 8 * l, values, q & 511, l < 2 ? db0 : db1, KSIGNS_IQ2XS[q >> 9]);
      }
    }
    if (isNaNF16(h)) nanWithSigns(out, b * QK_K, QK_K, h);
  }
  return out;
}

function decodeIq2S(data: Uint8Array, rows: number, rowLength: number): Float32Array {
  const n = countBlocks('iq2_s', data, rows, rowLength, QK_K, IQ2_S_BYTES);
  const values = iq2sGrid().values;
  const out = new Float32Array(n * QK_K);
  for (let b = 0; b < n; b++) {
    const at = b * IQ2_S_BYTES;
    const h = readU16(data, at);
    const d = isNaNF16(h) ? 1 : f16Value(h);
    for (let ib = 0; ib < 8; ib++) {
      const sc = data[at + 74 + ib];
      const db0 = subScale(d, sc & 0xf);
      const db1 = subScale(d, sc >> 4);
      const qh = data[at + 66 + ib];
      for (let l = 0; l < 4; l++) {
        const index = data[at + 2 + 4 * ib + l] | ((qh << (8 - 2 * l)) & 0x300);
        putGroup(out, b * QK_K + 32 * ib + 8 * l, values, index, l < 2 ? db0 : db1, data[at + 34 + 4 * ib + l]);
      }
    }
    if (isNaNF16(h)) nanWithSigns(out, b * QK_K, QK_K, h);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Encoding

const KMAXQ = 3;
const qpLevels = new Uint8Array(32);
const scales = new Float32Array(16);
const groupSigns = new Uint8Array(4);
const q2 = new Uint32Array(16);

/** The grid index of levels[l0..l0+8): the search only leaves on-grid levels there. */
function gridIndexOf(grid: IqGrid, l0: number): number {
  const index = grid.map[lattice.levelVector(grid, levels, l0)];
  if (index < 0) throw new Error(`${grid.name}: levels off the grid after the search`);
  return index;
}

/** nearest_int(0.5f*(id*scale - 1)) clamped to 0..15: a 4-bit sub-block scale. */
function subScaleCode(id: number, scale: number): number {
  const l = nearestIntC(f32(0.5 * f32(f32(id * scale) - 1)));
  return l < 0 ? 0 : l > 15 ? 15 : l;
}

function requireImportance(what: string, importance: Float32Array | undefined): Float32Array {
  if (!importance) {
    throw new Error(`${what} needs importance weights (an imatrix): ggml_quantize_chunk and llama-quantize refuse it without`);
  }
  return importance;
}

function sigmaSquared(x: Float32Array, off: number, twice: boolean): number {
  const sumx2 = search.sumOfSquares(x, off, QK_K);
  return twice ? f32(f32(2 * sumx2) / QK_K) : f32(sumx2 / QK_K);
}

const noFallback = () => 0;

function encodeIq2XxsBlock(x: Float32Array, off: number, imp: Float32Array, col: number, out: Uint8Array, at: number): void {
  const grid = iq2xxsGrid();
  const shape: lattice.SearchShape = { grid, n: 32, kMaxQ: KMAXQ, range: 6, step: ONE_TENTH, startOnGrid: true, refineAll: true };
  q2.fill(0);
  let maxScale = 0;
  const sigma2 = sigmaSquared(x, off, false);
  for (let ib = 0; ib < 8; ib++) {
    const xb = off + 32 * ib;
    lattice.fillWeights(x, xb, 32, imp, col + 32 * ib, sigma2, noFallback);
    for (let k = 0; k < 4; k++) groupSigns[k] = lattice.splitSigns(x, xb, k, true);
    const max = lattice.maxOfXval(32);
    scales[ib] = 0;
    if (max < GROUP_MAX_EPS) continue;
    let scale = search.makeQpQuants(32, KMAXQ + 1, xval, qpLevels, weight);
    const effMax = f32(scale * KMAXQ);
    if (effMax <= 0) continue;
    for (let i = 0; i < 32; i++) levels[i] = qpLevels[i];
    scale = lattice.searchScaleFromEffMax(shape, effMax, scale);
    if (scale < 0) {
      scale = -scale;
      for (let k = 0; k < 4; k++) groupSigns[k] = ~groupSigns[k] & 127;
    }
    for (let k = 0; k < 4; k++) {
      q2[2 * ib] |= gridIndexOf(grid, 8 * k) << (8 * k);
      q2[2 * ib + 1] |= groupSigns[k] << (7 * k);
    }
    scales[ib] = scale;
    maxScale = maxScale > scale ? maxScale : scale;
  }
  if (!maxScale) {
    out.fill(0, at, at + IQ2_XXS_BYTES);
    return;
  }
  const d = f32(maxScale / 31);
  writeF16(out, at, d);
  const id = f32(1 / d);
  for (let ib = 0; ib < 8; ib++) q2[2 * ib + 1] |= subScaleCode(id, scales[ib]) << 28;
  for (let i = 0; i < 16; i++) writeU32(out, at + 2 + 4 * i, q2[i]);
}

/** The 16-weight sub-block search of iq2_xs and iq2_s; returns its scale, or -1 when its absmax is below eps (all zero). */
function encodeSubBlock16(
  shape: lattice.SearchShape, x: Float32Array, xb: number, evenSigns: boolean, eps: number,
): number {
  for (let k = 0; k < 2; k++) groupSigns[k] = lattice.splitSigns(x, xb, k, evenSigns);
  const max = lattice.maxOfXval(16);
  levels.fill(0, 0, 16);
  if (max < eps) return -1;
  let scale = lattice.searchScale(shape, max);
  if (scale < 0) {
    scale = -scale;
    for (let k = 0; k < 2; k++) groupSigns[k] = ~groupSigns[k] & (evenSigns ? 127 : 255);
  }
  return scale;
}

function encodeIq2XsBlock(x: Float32Array, off: number, imp: Float32Array, col: number, out: Uint8Array, at: number): void {
  const grid = iq2xsGrid();
  const shape: lattice.SearchShape = { grid, n: 16, kMaxQ: KMAXQ, range: 9, step: ONE_TENTH, startOnGrid: true, refineAll: false };
  out.fill(0, at, at + IQ2_XS_BYTES);
  let maxScale = 0;
  const sigma2 = sigmaSquared(x, off, false);
  for (let ib = 0; ib < 16; ib++) {
    const xb = off + 16 * ib;
    lattice.fillWeights(x, xb, 16, imp, col + 16 * ib, sigma2, noFallback);
    const scale = encodeSubBlock16(shape, x, xb, true, GROUP_MAX_EPS);
    scales[ib] = scale < 0 ? 0 : scale;
    if (scale < 0) continue;
    for (let k = 0; k < 2; k++) writeU16(out, at + 2 + 2 * (2 * ib + k), gridIndexOf(grid, 8 * k) | (groupSigns[k] << 9));
    maxScale = maxScale > scale ? maxScale : scale;
  }
  if (!maxScale) {
    out.fill(0, at, at + IQ2_XS_BYTES);
    return;
  }
  const d = f32(maxScale / 31);
  writeF16(out, at, d);
  const id = f32(1 / d);
  for (let ib = 0; ib < 16; ib++) out[at + 66 + (ib >> 1)] |= subScaleCode(id, scales[ib]) << (4 * (ib & 1));
}

function encodeIq2SBlock(x: Float32Array, off: number, imp: Float32Array | undefined, col: number, out: Uint8Array, at: number): void {
  const grid = iq2sGrid();
  const shape: lattice.SearchShape = { grid, n: 16, kMaxQ: KMAXQ, range: 9, step: ONE_TENTH, startOnGrid: true, refineAll: false };
  out.fill(0, at, at + IQ2_S_BYTES);
  let maxScale = 0;
  const sigma2 = sigmaSquared(x, off, true);
  const quarterSigma2 = f32(QUARTER * sigma2);
  const fallback = (xi: number) => f32(quarterSigma2 + f32(xi * xi));
  for (let ib = 0; ib < 16; ib++) {
    const xb = off + 16 * ib;
    lattice.fillWeights(x, xb, 16, imp, col + 16 * ib, sigma2, fallback);
    const scale = encodeSubBlock16(shape, x, xb, false, GROUP_MAX_EPS_IQ2_S);
    scales[ib] = scale < 0 ? 0 : scale;
    if (scale < 0) continue;
    for (let k = 0; k < 2; k++) {
      const i8 = 2 * ib + k;
      const index = gridIndexOf(grid, 8 * k);
      out[at + 2 + i8] = index & 255;
      out[at + 66 + (i8 >> 2)] |= (index >> 8) << (2 * (i8 % 4));
      out[at + 34 + i8] = groupSigns[k];
    }
    maxScale = maxScale > scale ? maxScale : scale;
  }
  if (!maxScale) return;
  const d = f32(maxScale / 31);
  writeF16(out, at, f32(d * IQ2_S_SCALE_FUDGE));
  const id = f32(1 / d);
  for (let ib = 0; ib < 16; ib++) out[at + 74 + (ib >> 1)] |= subScaleCode(id, scales[ib]) << (4 * (ib & 1));
}

function encodeRowWith(
  blockBytes: number,
  encodeBlock: (x: Float32Array, off: number, imp: Float32Array, col: number, out: Uint8Array, at: number) => void,
  what: string,
  needsImportance: boolean,
) {
  return (x: Float32Array, off: number, n: number, imp: Float32Array | undefined, out: Uint8Array, at: number) => {
    const weights = needsImportance ? requireImportance(what, imp) : (imp as Float32Array);
    for (let b = 0; b < n / QK_K; b++) encodeBlock(x, off + b * QK_K, weights, b * QK_K, out, at + b * blockBytes);
  };
}

/** IQ2_XXS: 2.0625 bits per weight; encoding needs importance weights. */
export const IQ2_XXS: Codec = {
  encode: blocks.encodeRows('iq2_xxs', QK_K, IQ2_XXS_BYTES, encodeRowWith(IQ2_XXS_BYTES, encodeIq2XxsBlock, 'iq2_xxs', true), true),
  decode: decodeIq2Xxs,
};

/** IQ2_XS: 2.3125 bits per weight; encoding needs importance weights. */
export const IQ2_XS: Codec = {
  encode: blocks.encodeRows('iq2_xs', QK_K, IQ2_XS_BYTES, encodeRowWith(IQ2_XS_BYTES, encodeIq2XsBlock, 'iq2_xs', true), true),
  decode: decodeIq2Xs,
};

/** IQ2_S: 2.5625 bits per weight; importance weights optional. */
export const IQ2_S: Codec = {
  encode: blocks.encodeRows('iq2_s', QK_K, IQ2_S_BYTES, encodeRowWith(IQ2_S_BYTES, encodeIq2SBlock, 'iq2_s', false), true),
  decode: decodeIq2S,
};
