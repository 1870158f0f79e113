// bitsandbytes 4-bit reference codecs: NF4 and FP4 in blocks of 64 with an f32 absmax, and
// their double-quantized forms (_dq: the absmax values themselves in 8 bits).
// Followed: bitsandbytes-foundation/bitsandbytes (commit 95f9af3) functional.py
// (get_4bit_type, quantize_4bit with compress_statistics, create_dynamic_map,
// quantize_blockwise), csrc/kernels.cu (nf4/fp4 tables, dQuantizeNF4 / dQuantizeFP4
// decision trees, kQuantizeBlockwise packing) and backends/default/ops.py (bucketize for the
// 8-bit map, absmax clamped to 1e-38 so an all-zero block encodes 0).
// The layouts are ours (bitsandbytes keeps codes and absmax in separate tensors), little-endian,
// built for a GPU to read as u32 words. Blocks of 64 never cross rows (rowLength % 64 === 0).
//
// NF4 / FP4 block of 64 values                                 NF4_BLOCK_BYTES = 36
//   offset  bytes  field
//   0       4      f32 absmax = max |x| over the block
//   4       32     64 codes of 4 bits: element 2i in the HIGH nibble of byte i, 2i+1 in the low
//                  one (bitsandbytes' packing: qvals[j] = q(x[2j]) << 4 | q(x[2j+1]))
//   value = TABLE[code] * absmax; the code is the table entry nearest to x * f32(1 / absmax),
//   found with the CUDA kernel's thresholds, ties to the lower entry. (Its FP4 thresholds are
//   rounded literals, 0.583333 for 7/12: bitsandbytes' torch backend, using exact midpoints,
//   can differ for a value within 3.3e-7 of one.)
//
// NF4_DQ / FP4_DQ tensor of B = rows * rowLength / 64 blocks     size dqBytes(rows, rowLength)
//   0                  32 * B       the blocks' codes, as above, without their absmax
//   32B                pad4(B)      u8 code of each block's absmax in the dynamic 8-bit map,
//                                   zero-padded to a multiple of 4
//   32B + pad4(B)      4 * ceil(B / 256)  f32 scale of each group of 256 blocks: max |absmax - offset|
//   ... + 4 ceil(B/256) 4           f32 offset = mean of all blocks' absmax
//   absmax = DYNAMIC_MAP[u8] * groupScale + offset (quantize_4bit, compress_statistics=True:
//   quantize_blockwise(absmax - mean, blocksize=256) with create_dynamic_map(signed=True));
//   u8 = the map entry nearest to (absmax - offset) * f32(1 / groupScale), ties to the lower.
//   The codes are made with the exact absmax, as bitsandbytes; only decoding sees the 8-bit one.
//
// Importance weights are ignored: bitsandbytes' absmax scaling has no weighted form.
// Not bit-exact with every bitsandbytes build, by construction: the mean is summed in f64
// (torch's f32 reduction order varies by device), and torch.linspace's rounding in
// create_dynamic_map depends on the CPU's vector width (we follow its scalar path).
import { checkRows, dataView, type Codec } from '../codec.ts';
import { BLOCK_VALUES, DQ_BLOCK_BYTES, DQ_GROUP_BLOCKS, dqBytes, dqLayout, NF4_ABSMAX_BYTES as ABSMAX_BYTES, NF4_BLOCK_BYTES, NF4_CODE_BYTES as CODE_BYTES } from '../sizes.ts';

// The block and _dq layouts' sizes live in quant/sizes.ts (the type table reads them too).
export { BLOCK_VALUES, DQ_BLOCK_BYTES, DQ_GROUP_BLOCKS, dqBytes, dqLayout, NF4_BLOCK_BYTES };
/** bitsandbytes' default backend clamps absmax to this before taking 1 / absmax. */
const MIN_ABSMAX = Math.fround(1e-38);

// --------------------------------------------------------------------------- code tables

/** NF4 values by code (get_4bit_type('nf4'), kernels.cu nf4_dequantization_lut). */
export const NF4_VALUES = Float32Array.of(
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
  -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
  0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
);

/**
 * FP4 (1 sign, 2 exponent, 1 mantissa bit, bias 3) by code, normalized by its max 12:
 * [0, 0.0625, 8, 12, 4, 6, 2, 3] / 12, the sign in bit 3 (get_4bit_type('fp4'),
 * kernels.cu fp4_dequantization_lut; code 8 is -0).
 */
const FP4_MAGNITUDES = [0, 0.0625, 8, 12, 4, 6, 2, 3];
export const FP4_VALUES = Float32Array.from({ length: 16 }, (_, code) => (code & 0b1000 ? -1 : 1) * Math.fround(FP4_MAGNITUDES[code & 0b111] / 12));

/** dQuantizeNF4's thresholds (midpoints of NF4_VALUES), as the f32 literals the kernel compares with. */
const NF4_THRESHOLDS = Float32Array.of(
  -0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544,
  -0.23460740596055984, -0.13791173323988914, -0.045525018125772476, 0.03979014977812767,
  0.1202552504837513, 0.2035212516784668, 0.2920137718319893, 0.3893125355243683,
  0.5016634166240692, 0.6427869200706482, 0.8614784181118011,
);

/** dQuantizeFP4's thresholds on |x|, ascending, as written in the kernel. */
const FP4_MAGNITUDE_THRESHOLDS = Float32Array.of(0.00260417, 0.0859375, 0.20833333, 0.29166667, 0.4166667, 0.583333, 0.8333333);
/** FP4's 3 magnitude bits by rank of |value| (0, 0.0625, 2, 3, 4, 6, 8, 12). */
const FP4_CODE_BY_RANK = Uint8Array.of(0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011);

/**
 * NF4 code of x in [-1, 1]: the kernel's decision tree is a binary search over the 15
 * thresholds with `x > t`, so ties go to the lower code and NaN to code 0, as there.
 * `+(x > t) << k` keeps it branchless: 3-4x faster than if/else on weights.
 */
export function quantizeNf4(x: number): number {
  let code = +(x > NF4_THRESHOLDS[7]) << 3;
  code += +(x > NF4_THRESHOLDS[code + 3]) << 2;
  code += +(x > NF4_THRESHOLDS[code + 1]) << 1;
  return code + +(x > NF4_THRESHOLDS[code]);
}

/** FP4 code of x in [-1, 1]: sign bit for x < 0, then dQuantizeFP4's tree on |x|. */
export function quantizeFp4(x: number): number {
  const magnitude = Math.abs(x);
  let rank = +(magnitude > FP4_MAGNITUDE_THRESHOLDS[3]) << 2;
  rank += +(magnitude > FP4_MAGNITUDE_THRESHOLDS[rank + 1]) << 1;
  rank += +(magnitude > FP4_MAGNITUDE_THRESHOLDS[rank]);
  return FP4_CODE_BY_RANK[rank] | (+(x < 0) << 3);
}

// ---------------------------------------------------------------------- dynamic 8-bit map

/** torch.linspace on f32, its scalar path: the first half counts up from start, the rest down from end. */
function linspaceF32(start: number, end: number, steps: number): Float32Array {
  const from = Math.fround(start);
  const to = Math.fround(end);
  const step = Math.fround(Math.fround(to - from) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  return Float32Array.from({ length: steps }, (_, i) =>
    i < halfway ? Math.fround(from + Math.fround(step * i)) : Math.fround(to - Math.fround(step * (steps - i - 1))),
  );
}

/**
 * create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): for exponent e = 0..6,
 * 2^e linear fractions in (0.1, 1] scaled by 10^(e-6), both signs, plus 0 and 1; sorted.
 */
export function createDynamicMap(): Float32Array {
  const maxExponentBits = 7;
  const values: number[] = [0, 1];
  for (let e = 0; e < maxExponentBits; e++) {
    const boundaries = linspaceF32(0.1, 1, 2 ** e + 1);
    const power = Math.fround(Number(`1e${e - (maxExponentBits - 1)}`));
    for (let k = 0; k + 1 < boundaries.length; k++) {
      const mean = Math.fround(Math.fround(boundaries[k] + boundaries[k + 1]) / 2);
      values.push(Math.fround(power * mean), -Math.fround(power * mean));
    }
  }
  return Float32Array.from(values).sort();
}

/** The signed dynamic 8-bit map, ascending: [0] = -0.99296875, [127] = 0, [255] = 1. */
export const DYNAMIC_MAP = createDynamicMap();
/** Midpoints between neighbours, in f32: (code[:-1] + code[1:]) / 2 in the default backend. */
const DYNAMIC_BOUNDS = DYNAMIC_MAP.subarray(1).map((upper, i) => Math.fround(Math.fround(DYNAMIC_MAP[i] + upper) / 2));

/** torch.bucketize(x, bounds): the number of midpoints below x, so ties go to the lower entry. */
export function quantizeDynamic(x: number): number {
  let low = 0;
  let high = DYNAMIC_BOUNDS.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (x > DYNAMIC_BOUNDS[mid]) low = mid + 1;
    else high = mid;
  }
  return low;
}

// ------------------------------------------------------------------------ shared helpers

interface FourBitFormat {
  readonly name: string;
  readonly values: Float32Array;
  readonly quantize: (x: number) => number;
}

const NF4_FORMAT: FourBitFormat = { name: 'nf4', values: NF4_VALUES, quantize: quantizeNf4 };
const FP4_FORMAT: FourBitFormat = { name: 'fp4', values: FP4_VALUES, quantize: quantizeFp4 };

function blockAbsmax(src: Float32Array, start: number): number {
  let absmax = 0;
  for (let i = start; i < start + BLOCK_VALUES; i++) {
    const a = Math.abs(src[i]);
    if (a > absmax) absmax = a;
  }
  return absmax;
}

/** Codes of one block, scaled by the f32 reciprocal of absmax as the kernel does. */
function writeBlockCodes(src: Float32Array, start: number, absmax: number, quantize: (x: number) => number, out: Uint8Array, at: number): void {
  const inverse = Math.fround(1 / Math.max(absmax, MIN_ABSMAX));
  for (let i = 0; i < BLOCK_VALUES; i += 2) {
    const first = quantize(Math.fround(src[start + i] * inverse));
    const second = quantize(Math.fround(src[start + i + 1] * inverse));
    out[at + i / 2] = (first << 4) | second;
  }
}

function readBlockCodes(data: Uint8Array, at: number, absmax: number, values: Float32Array, out: Float32Array, start: number): void {
  for (let i = 0; i < BLOCK_VALUES; i += 2) {
    const byte = data[at + i / 2];
    out[start + i] = Math.fround(values[byte >> 4] * absmax);
    out[start + i + 1] = Math.fround(values[byte & 0x0f] * absmax);
  }
}

function checkBlocks(rows: number, rowLength: number, what: string): number {
  if (rowLength <= 0 || rowLength % BLOCK_VALUES !== 0) throw new RangeError(`${what}: row length ${rowLength} is not a multiple of ${BLOCK_VALUES}`);
  return (rows * rowLength) / BLOCK_VALUES;
}

function checkLength(data: Uint8Array, expected: number, what: string): void {
  if (data.length !== expected) throw new RangeError(`${what}: expected ${expected} bytes, got ${data.length}`);
}

// ------------------------------------------------------------------------- NF4 and FP4

function blockCodec(format: FourBitFormat): Codec {
  return {
    encode(src, rowLength) {
      checkRows(src, rowLength, BLOCK_VALUES, format.name);
      const blocks = src.length / BLOCK_VALUES;
      const out = new Uint8Array(blocks * NF4_BLOCK_BYTES);
      const view = dataView(out);
      for (let b = 0; b < blocks; b++) {
        const at = b * NF4_BLOCK_BYTES;
        const absmax = blockAbsmax(src, b * BLOCK_VALUES);
        view.setFloat32(at, absmax, true);
        writeBlockCodes(src, b * BLOCK_VALUES, absmax, format.quantize, out, at + ABSMAX_BYTES);
      }
      return out;
    },
    decode(data, rows, rowLength) {
      const blocks = checkBlocks(rows, rowLength, format.name);
      checkLength(data, blocks * NF4_BLOCK_BYTES, format.name);
      const out = new Float32Array(rows * rowLength);
      const view = dataView(data);
      for (let b = 0; b < blocks; b++) {
        const at = b * NF4_BLOCK_BYTES;
        readBlockCodes(data, at + ABSMAX_BYTES, view.getFloat32(at, true), format.values, out, b * BLOCK_VALUES);
      }
      return out;
    },
  };
}

export const NF4 = blockCodec(NF4_FORMAT);
export const FP4 = blockCodec(FP4_FORMAT);

// ------------------------------------------------------------------- double quantization

/** The offset bitsandbytes subtracts: absmax.mean(), here summed in f64 and rounded to f32. */
function meanF32(values: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  return values.length === 0 ? 0 : Math.fround(sum / values.length);
}

/** quantize_blockwise(absmax - offset, blocksize=256) into the u8 and group-scale sections. */
function writeAbsmaxCodes(absmax: Float32Array, offset: number, out: Uint8Array): void {
  const layout = dqLayout(absmax.length);
  const view = dataView(out);
  for (let g = 0; g < layout.groups; g++) {
    const first = g * DQ_GROUP_BLOCKS;
    const end = Math.min(first + DQ_GROUP_BLOCKS, absmax.length);
    let scale = 0;
    for (let b = first; b < end; b++) scale = Math.max(scale, Math.abs(Math.fround(absmax[b] - offset)));
    const inverse = Math.fround(1 / Math.max(scale, MIN_ABSMAX));
    for (let b = first; b < end; b++) {
      out[layout.absmaxCodesAt + b] = quantizeDynamic(Math.fround(Math.fround(absmax[b] - offset) * inverse));
    }
    view.setFloat32(layout.groupScalesAt + 4 * g, scale, true);
  }
  view.setFloat32(layout.offsetAt, offset, true);
}

function doubleQuantCodec(format: FourBitFormat): Codec {
  const name = `${format.name}_dq`;
  return {
    encode(src, rowLength) {
      checkRows(src, rowLength, BLOCK_VALUES, name);
      const blocks = src.length / BLOCK_VALUES;
      const out = new Uint8Array(dqLayout(blocks).bytes);
      const absmax = new Float32Array(blocks);
      for (let b = 0; b < blocks; b++) {
        absmax[b] = blockAbsmax(src, b * BLOCK_VALUES);
        writeBlockCodes(src, b * BLOCK_VALUES, absmax[b], format.quantize, out, b * CODE_BYTES);
      }
      writeAbsmaxCodes(absmax, meanF32(absmax), out);
      return out;
    },
    decode(data, rows, rowLength) {
      const blocks = checkBlocks(rows, rowLength, name);
      const layout = dqLayout(blocks);
      checkLength(data, layout.bytes, name);
      const view = dataView(data);
      const offset = view.getFloat32(layout.offsetAt, true);
      const out = new Float32Array(rows * rowLength);
      for (let g = 0; g < layout.groups; g++) {
        const scale = view.getFloat32(layout.groupScalesAt + 4 * g, true);
        const end = Math.min((g + 1) * DQ_GROUP_BLOCKS, blocks);
        for (let b = g * DQ_GROUP_BLOCKS; b < end; b++) {
          const absmax = Math.fround(Math.fround(DYNAMIC_MAP[data[layout.absmaxCodesAt + b]] * scale) + offset);
          readBlockCodes(data, b * CODE_BYTES, absmax, format.values, out, b * BLOCK_VALUES);
        }
      }
      return out;
    },
  };
}

export const NF4_DQ = doubleQuantCodec(NF4_FORMAT);
export const FP4_DQ = doubleQuantCodec(FP4_FORMAT);
