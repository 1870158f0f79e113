// NVFP4, Q1_0 and Q2_0, byte for byte as ggml makes them (the llama.cpp bundled with
// node-llama-cpp 3.22.1, ggml/src/ggml-quants.c: quantize_row_nvfp4_ref, quantize_row_q1_0_ref,
// quantize_row_q2_0_ref, dequantize_row_nvfp4/_q1_0/_q2_0; ggml-impl.h: ggml_fp32_to_ue4m3,
// ggml_ue4m3_to_fp32; ggml-common.h: block_nvfp4, block_q1_0, block_q2_0). ggml_quantize_chunk
// ignores importance weights for all three.
//
// block_nvfp4, 36 bytes per 64 weights (4 sub-blocks of 16):
//   0..3    d[4]     UE4M3 scale per sub-block (unsigned E4M3, bias 7; 0x7f reads as 0)
//   4..35   qs       8 bytes per sub-block: byte j = E2M1 code of weight j (low nibble) and
//                    of weight j+8 (high nibble); weight = kvalues_mxfp4[code] * ue4m3/2.
// block_q1_0, 18 bytes per 128 weights: f16 d = mean |x|, then one bit per weight (bit j%8
//   of byte j/8): 1 -> +d, 0 -> -d.
// block_q2_0, 18 bytes per 64 weights: f16 d = max |x|, then 2 bits per weight (bits
//   2(j%4).. of byte j/4): q in 0..3 -> (q - 1) * d.
import type { Codec } from '../codec.ts';
import * as rounding from './rounding.ts';
import * as float16 from '../../formats/float16.ts';
import * as blocks from './iq-blocks.ts';
import { KVALUES_MXFP4, bestIndexMxfp4 } from './mxfp4.ts';

const f32 = rounding.f32;
const fabsf = Math.abs;
const roundfToInt = rounding.roundfToInt;
const f16ToF32Bits = rounding.f16ToF32Bits;
const sseMulInt = rounding.sseMulInt;
const isFiniteBits = rounding.isFiniteBits;
const f32Bits = float16.f32Bits;
const { countBlocks, readU16, writeF16, f16Value, isNaNF16 } = blocks;

export const NVFP4_BLOCK = 64;
export const NVFP4_SUB = 16;
export const NVFP4_BYTES = NVFP4_BLOCK / NVFP4_SUB + NVFP4_BLOCK / 2;
export const Q1_0_BLOCK = 128;
export const Q1_0_BYTES = 2 + Q1_0_BLOCK / 8;
export const Q2_0_BLOCK = 64;
export const Q2_0_BYTES = 2 + Q2_0_BLOCK / 4;

const UE4M3_MAX = 448;
const E2M1_MAX = 6;

/** ggml_ue4m3_to_fp32: the scale times 1/2 (kvalues_mxfp4 holds doubled E2M1 values). */
export function ue4m3ToF32Half(x: number): number {
  if (x === 0 || x === 0x7f) return 0;
  const exp = (x >> 3) & 0xf;
  const man = x & 7;
  const raw = exp === 0 ? man * 2 ** -9 : (1 + man / 8) * 2 ** (exp - 7);
  return raw * 0.5;
}

/**
 * ggml_fp32_to_ue4m3: round to UE4M3 by the mantissa's next bit (ties away from zero),
 * saturating at 0x7e (448); subnormals as (int)(x*512 + 0.5); <= 0 or NaN -> 0.
 */
export function f32ToUe4m3(value: number): number {
  if (!(value > 0)) return 0;
  const x = value > UE4M3_MAX ? UE4M3_MAX : value;
  const bits = f32Bits(x);
  let exp = ((bits >>> 23) & 0xff) - 127 + 7;
  if (exp <= 0) {
    const man = Math.trunc(f32(f32(x * 512) + 0.5));
    if (man > 7) return 7;
    return man < 1 ? 0 : man;
  }
  if (exp >= 15) return 0x7e;
  let man = ((bits >>> 20) & 7) + ((bits >>> 19) & 1);
  if (man > 7) {
    man = 0;
    exp++;
    if (exp >= 15) return 0x7e;
  }
  return (exp << 3) | man;
}

function encodeNvfp4(x: Float32Array, off: number, n: number, _imp: Float32Array | undefined, out: Uint8Array, at: number): void {
  for (let b = 0; b < n / NVFP4_BLOCK; b++) {
    const y = at + b * NVFP4_BYTES;
    for (let s = 0; s < 4; s++) {
      const xb = off + b * NVFP4_BLOCK + s * NVFP4_SUB;
      let amax = 0;
      for (let j = 0; j < NVFP4_SUB; j++) if (amax < fabsf(x[xb + j])) amax = fabsf(x[xb + j]);
      const ue = f32ToUe4m3(f32(amax / E2M1_MAX));
      out[y + s] = ue;
      const d = ue4m3ToF32Half(ue);
      for (let j = 0; j < NVFP4_SUB / 2; j++) {
        out[y + 4 + 8 * s + j] = bestIndexMxfp4(x[xb + j], d) | (bestIndexMxfp4(x[xb + j + 8], d) << 4);
      }
    }
  }
}

function decodeNvfp4(data: Uint8Array, rows: number, rowLength: number): Float32Array {
  const n = countBlocks('nvfp4', data, rows, rowLength, NVFP4_BLOCK, NVFP4_BYTES);
  const out = new Float32Array(n * NVFP4_BLOCK);
  for (let b = 0; b < n; b++) {
    const at = b * NVFP4_BYTES;
    for (let s = 0; s < 4; s++) {
      const d = ue4m3ToF32Half(data[at + s]);
      const o = b * NVFP4_BLOCK + s * NVFP4_SUB;
      for (let j = 0; j < 8; j++) {
        const byte = data[at + 4 + 8 * s + j];
        out[o + j] = KVALUES_MXFP4[byte & 0xf] * d;
        out[o + j + 8] = KVALUES_MXFP4[byte >> 4] * d;
      }
    }
  }
  return out;
}

function encodeQ1_0(x: Float32Array, off: number, n: number, _imp: Float32Array | undefined, out: Uint8Array, at: number): void {
  for (let b = 0; b < n / Q1_0_BLOCK; b++) {
    const xb = off + b * Q1_0_BLOCK;
    const y = at + b * Q1_0_BYTES;
    let sumAbs = 0;
    for (let j = 0; j < Q1_0_BLOCK; j++) sumAbs = f32(sumAbs + fabsf(x[xb + j]));
    writeF16(out, y, f32(sumAbs / Q1_0_BLOCK));
    for (let j = 0; j < Q1_0_BLOCK / 8; j++) {
      let byte = 0;
      for (let i = 0; i < 8; i++) if (x[xb + 8 * j + i] >= 0) byte |= 1 << i;
      out[y + 2 + j] = byte;
    }
  }
}

function decodeQ1_0(data: Uint8Array, rows: number, rowLength: number): Float32Array {
  const n = countBlocks('q1_0', data, rows, rowLength, Q1_0_BLOCK, Q1_0_BYTES);
  const out = new Float32Array(n * Q1_0_BLOCK);
  const outBits = new Uint32Array(out.buffer);
  for (let b = 0; b < n; b++) {
    const at = b * Q1_0_BYTES;
    const h = readU16(data, at);
    const o = b * Q1_0_BLOCK;
    if (isNaNF16(h)) {
      // -d flips the sign bit of the NaN (xorps), which JS arithmetic cannot express.
      const dBits = f16ToF32Bits(h);
      for (let j = 0; j < Q1_0_BLOCK; j++) outBits[o + j] = (data[at + 2 + (j >> 3)] >> (j & 7)) & 1 ? dBits : (dBits ^ 0x80000000) >>> 0;
      continue;
    }
    const d = f16Value(h);
    for (let j = 0; j < Q1_0_BLOCK; j++) out[o + j] = (data[at + 2 + (j >> 3)] >> (j & 7)) & 1 ? d : -d;
  }
  return out;
}

function encodeQ2_0(x: Float32Array, off: number, n: number, _imp: Float32Array | undefined, out: Uint8Array, at: number): void {
  for (let b = 0; b < n / Q2_0_BLOCK; b++) {
    const xb = off + b * Q2_0_BLOCK;
    const y = at + b * Q2_0_BYTES;
    let amax = 0;
    for (let j = 0; j < Q2_0_BLOCK; j++) {
      const a = fabsf(x[xb + j]);
      if (a > amax) amax = a;
    }
    const id = amax > 0 ? f32(1 / amax) : 0;
    writeF16(out, y, amax);
    out.fill(0, y + 2, y + Q2_0_BYTES);
    for (let j = 0; j < Q2_0_BLOCK; j++) {
      const v = f32(x[xb + j] * id);
      // (int)roundf of Inf or NaN is INT_MIN on x86: q clamps to 0.
      let q = Number.isFinite(v) ? roundfToInt(v) + 1 : 0;
      q = q < 0 ? 0 : q > 3 ? 3 : q;
      out[y + 2 + (j >> 2)] |= q << (2 * (j & 3));
    }
  }
}

function decodeQ2_0(data: Uint8Array, rows: number, rowLength: number): Float32Array {
  const n = countBlocks('q2_0', data, rows, rowLength, Q2_0_BLOCK, Q2_0_BYTES);
  const out = new Float32Array(n * Q2_0_BLOCK);
  const outBits = new Uint32Array(out.buffer);
  for (let b = 0; b < n; b++) {
    const at = b * Q2_0_BYTES;
    const h = readU16(data, at);
    const o = b * Q2_0_BLOCK;
    const dBits = f16ToF32Bits(h);
    const finite = isFiniteBits(dBits);
    const d = f16Value(h);
    for (let j = 0; j < Q2_0_BLOCK; j++) {
      const q = ((data[at + 2 + (j >> 2)] >> (2 * (j & 3))) & 3) - 1;
      // An Inf or NaN scale: SSE's NaN rules, on bits (Inf * 0 is the default NaN).
      if (finite) out[o + j] = q * d;
      else outBits[o + j] = sseMulInt(dBits, q);
    }
  }
  return out;
}

/** NVFP4: 4.5 bits per weight, E2M1 with a UE4M3 scale per 16; importance ignored, as ggml does. */
export const NVFP4: Codec = { encode: blocks.encodeRows('nvfp4', NVFP4_BLOCK, NVFP4_BYTES, encodeNvfp4), decode: decodeNvfp4 };

/** Q1_0: 1.125 bits per weight, signs times the mean magnitude; importance ignored. */
export const Q1_0: Codec = { encode: blocks.encodeRows('q1_0', Q1_0_BLOCK, Q1_0_BYTES, encodeQ1_0), decode: decodeQ1_0 };

/** Q2_0: 2.25 bits per weight, levels {-1, 0, 1, 2} times the absmax; importance ignored. */
export const Q2_0: Codec = { encode: blocks.encodeRows('q2_0', Q2_0_BLOCK, Q2_0_BYTES, encodeQ2_0), decode: decodeQ2_0 };
