// IQ3_XXS and IQ3_S: 3-bit i-quants, groups of 4 weights stored as one point of a
// 4-dimensional lattice grid (iquants-grid.ts) plus signs, byte for byte as ggml makes them
// (the llama.cpp bundled with node-llama-cpp 3.22.1, ggml/src/ggml-quants.c:
// quantize_row_iq3_xxs_impl, quantize_row_iq3_s_impl, dequantize_row_iq3_xxs/_s;
// ggml-common.h: block_iq3_xxs, block_iq3_s).
//
// block_iq3_xxs, 98 bytes per 256 weights (8 sub-blocks of 32, 8 groups of 4 each):
//   0..1    d        f16 super-block scale (stored times 1.0125, ggml's fudge factor)
//   2..65   qs       grid index (8 bits) per group of 4
//   66..97  u32 LE per sub-block: 4 x 7 sign bits (8 weights each, the eighth sign implied
//           by an even count of minus signs) and the 4-bit scale s in bits 28..31;
//           weight = d*(0.5+s)/2 * grid.
// block_iq3_s, 110 bytes (8 sub-blocks of 32):
//   0..1    d        f16 (stored times 1.033)
//   2..65   qs       low 8 bits of each group's grid index (9 bits)
//   66..73  qh       byte ib, bit k: high bit of sub-block ib's group k
//   74..105 signs    one bit per weight
//   106..109 scales  byte j: low nibble = sub-block 2j, high = 2j+1; weight = d*(1+2s) * grid
// Both encode with or without importance weights.
import type { Codec } from '../codec.ts';
import * as rounding from './rounding.ts';
import * as search from './search.ts';
import * as blocks from './iq-blocks.ts';
import * as lattice from './lattice-search.ts';
import { KSIGNS_IQ2XS, iq3sGrid, iq3xxsGrid, type IqGrid } from './iquants-grid.ts';

const f32 = rounding.f32;
const nearestIntC = rounding.nearestIntC;
const { countBlocks, readU16, readU32, writeU32, writeF16, f16Value, isNaNF16, nanWithSigns } = blocks;
const levels = lattice.levels;

export const QK_K = 256;
export const IQ3_XXS_BYTES = 2 + 3 * (QK_K / 8);
export const IQ3_S_BYTES = 2 + 13 * (QK_K / 32) + QK_K / 64;

const GROUP_MAX_EPS_IQ3_XXS = f32(1e-8);
const TWO_TENTHS = f32(0.2);
const IQ3_XXS_SCALE_FUDGE = f32(1.0125);
const IQ3_S_SCALE_FUDGE = f32(1.033);
const KMAXQ = 8;

// ---------------------------------------------------------------------------------------
// Decoding

/** Four weights of grid point `index` at scale db; sign bit j0+j of `signs` negates. */
function putQuad(out: Float32Array, o: number, values: Int8Array, index: number, db: number, signs: number, j0: number): void {
  const p = index * 4;
  for (let j = 0; j < 4; j++) {
    const v = db * values[p + j];
    out[o + j] = signs & (1 << (j0 + j)) ? -v : v;
  }
}

function decodeIq3Xxs(data: Uint8Array, rows: number, rowLength: number): Float32Array {
  const n = countBlocks('iq3_xxs', data, rows, rowLength, QK_K, IQ3_XXS_BYTES);
  const values = iq3xxsGrid().values;
  const out = new Float32Array(n * QK_K);
  for (let b = 0; b < n; b++) {
    const at = b * IQ3_XXS_BYTES;
    const h = readU16(data, at);
    const d = isNaNF16(h) ? 1 : f16Value(h);
    for (let ib = 0; ib < 8; ib++) {
      const aux = readU32(data, at + 66 + 4 * ib);
      const db = f32(f32(d * (0.5 + (aux >>> 28))) * 0.5);
      for (let l = 0; l < 4; l++) {
        const signs = KSIGNS_IQ2XS[(aux >>> (7 * l)) & 127];
        const o = b * QK_K + 32 * ib + 8 * l;
        putQuad(out, o, values, data[at + 2 + 8 * ib + 2 * l], db, signs, 0);
        putQuad(out, o + 4, values, data[at + 2 + 8 * ib + 2 * l + 1], db, signs, 4);
      }
    }
    if (isNaNF16(h)) nanWithSigns(out, b * QK_K, QK_K, h);
  }
  return out;
}

function decodeIq3S(data: Uint8Array, rows: number, rowLength: number): Float32Array {
  const n = countBlocks('iq3_s', data, rows, rowLength, QK_K, IQ3_S_BYTES);
  const values = iq3sGrid().values;
  const out = new Float32Array(n * QK_K);
  for (let b = 0; b < n; b++) {
    const at = b * IQ3_S_BYTES;
    const h = readU16(data, at);
    const d = isNaNF16(h) ? 1 : f16Value(h);
    for (let ib = 0; ib < 8; ib++) {
      const sc = data[at + 106 + (ib >> 1)];
      const db = f32(d * (1 + 2 * (ib & 1 ? sc >> 4 : sc & 0xf)));
      const qh = data[at + 66 + ib];
      for (let l = 0; l < 4; l++) {
        const qs = at + 2 + 8 * ib + 2 * l;
        const signs = data[at + 74 + 4 * ib + l];
        const o = b * QK_K + 32 * ib + 8 * l;
        putQuad(out, o, values, data[qs] | ((qh << (8 - 2 * l)) & 256), db, signs, 0);
        putQuad(out, o + 4, values, data[qs + 1] | ((qh << (7 - 2 * l)) & 256), db, signs, 4);
      }
    }
    if (isNaNF16(h)) nanWithSigns(out, b * QK_K, QK_K, h);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Encoding

const scales = new Float32Array(8);
const groupSigns = new Uint8Array(4);

function gridIndexOf(grid: IqGrid, l0: number): number {
  const index = grid.map[lattice.levelVector(grid, levels, l0)];
  if (index < 0) throw new Error(`${grid.name}: levels off the grid after the search`);
  return index;
}

function subScaleCode(id: number, scale: number): number {
  const l = nearestIntC(f32(0.5 * f32(f32(id * scale) - 1)));
  return l < 0 ? 0 : l > 15 ? 15 : l;
}

const squared = (xi: number) => f32(xi * xi);

function sigmaSquared(x: Float32Array, off: number): number {
  return f32(f32(2 * search.sumOfSquares(x, off, QK_K)) / QK_K);
}

function encodeIq3XxsBlock(x: Float32Array, off: number, imp: Float32Array | undefined, col: number, out: Uint8Array, at: number): void {
  const grid = iq3xxsGrid();
  const shape: lattice.SearchShape = { grid, n: 32, kMaxQ: KMAXQ, range: 15, step: TWO_TENTHS, startOnGrid: true, refineAll: false };
  out.fill(0, at, at + IQ3_XXS_BYTES);
  let maxScale = 0;
  const sigma2 = sigmaSquared(x, off);
  for (let ib = 0; ib < 8; ib++) {
    const xb = off + 32 * ib;
    lattice.fillWeights(x, xb, 32, imp, col + 32 * ib, sigma2, squared);
    for (let k = 0; k < 4; k++) groupSigns[k] = lattice.splitSigns(x, xb, k, true);
    const max = lattice.maxOfXval(32);
    scales[ib] = 0;
    if (max < GROUP_MAX_EPS_IQ3_XXS) continue;
    let scale = lattice.searchScale(shape, max);
    if (scale < 0) {
      scale = -scale;
      for (let k = 0; k < 4; k++) groupSigns[k] = ~groupSigns[k] & 127;
    }
    for (let k = 0; k < 8; k++) out[at + 2 + 8 * ib + k] = gridIndexOf(grid, 4 * k);
    writeU32(out, at + 66 + 4 * ib, groupSigns[0] | (groupSigns[1] << 7) | (groupSigns[2] << 14) | (groupSigns[3] << 21));
    scales[ib] = scale;
    maxScale = maxScale > scale ? maxScale : scale;
  }
  if (!maxScale) {
    out.fill(0, at, at + IQ3_XXS_BYTES);
    return;
  }
  const d = f32(maxScale / 31);
  writeF16(out, at, f32(d * IQ3_XXS_SCALE_FUDGE));
  const id = f32(1 / d);
  for (let ib = 0; ib < 8; ib++) out[at + 66 + 4 * ib + 3] |= subScaleCode(id, scales[ib]) << 4;
}

function encodeIq3SBlock(x: Float32Array, off: number, imp: Float32Array | undefined, col: number, out: Uint8Array, at: number): void {
  const grid = iq3sGrid();
  const shape: lattice.SearchShape = { grid, n: 32, kMaxQ: KMAXQ, range: 9, step: TWO_TENTHS, startOnGrid: false, refineAll: true };
  out.fill(0, at, at + IQ3_S_BYTES);
  let maxScale = 0;
  const sigma2 = sigmaSquared(x, off);
  // ggml advances its qs and signs pointers only past sub-blocks it quantizes: after an
  // all-zero sub-block, the next one's grid bytes and signs land in its slot (while qh and
  // the scales stay indexed by sub-block). Decoders read them as written.
  let slot = 0;
  for (let ib = 0; ib < 8; ib++) {
    const xb = off + 32 * ib;
    lattice.fillWeights(x, xb, 32, imp, col + 32 * ib, sigma2, squared);
    for (let k = 0; k < 4; k++) groupSigns[k] = lattice.splitSigns(x, xb, k, false);
    const max = lattice.maxOfXval(32);
    scales[ib] = 0;
    if (!max) continue;
    let scale = lattice.searchScale(shape, max);
    if (scale < 0) {
      scale = -scale;
      for (let k = 0; k < 4; k++) groupSigns[k] = ~groupSigns[k] & 255;
    }
    for (let k = 0; k < 8; k++) {
      const index = gridIndexOf(grid, 4 * k);
      out[at + 2 + 8 * slot + k] = index & 255;
      out[at + 66 + ib] |= (index >> 8) << k;
    }
    for (let k = 0; k < 4; k++) out[at + 74 + 4 * slot + k] = groupSigns[k];
    slot++;
    scales[ib] = scale;
    maxScale = maxScale > scale ? maxScale : scale;
  }
  if (!maxScale) return;
  const d = f32(maxScale / 31);
  writeF16(out, at, f32(d * IQ3_S_SCALE_FUDGE));
  const id = f32(1 / d);
  for (let ib = 0; ib < 8; ib += 2) out[at + 106 + ib / 2] = subScaleCode(id, scales[ib]) | (subScaleCode(id, scales[ib + 1]) << 4);
}

function encodeRowWith(blockBytes: number, encodeBlock: typeof encodeIq3SBlock) {
  return (x: Float32Array, off: number, n: number, imp: Float32Array | undefined, out: Uint8Array, at: number) => {
    for (let b = 0; b < n / QK_K; b++) encodeBlock(x, off + b * QK_K, imp, b * QK_K, out, at + b * blockBytes);
  };
}

/** IQ3_XXS: 3.0625 bits per weight; importance weights optional. */
export const IQ3_XXS: Codec = {
  encode: blocks.encodeRows('iq3_xxs', QK_K, IQ3_XXS_BYTES, encodeRowWith(IQ3_XXS_BYTES, encodeIq3XxsBlock), true),
  decode: decodeIq3Xxs,
};

/** IQ3_S: 3.4375 bits per weight; importance weights optional. */
export const IQ3_S: Codec = {
  encode: blocks.encodeRows('iq3_s', QK_K, IQ3_S_BYTES, encodeRowWith(IQ3_S_BYTES, encodeIq3SBlock), true),
  decode: decodeIq3S,
};
