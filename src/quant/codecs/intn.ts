// Integer reference codecs: INT8 per output channel (LLM.int8, with and without the outlier
// split) and INT4 in groups of 32/64/128, symmetric or with a zero-point (GPTQ/AWQ storage).
// Not GGUF types: the layouts below are ours, little-endian, built for a GPU to read as u32
// words. A tensor is `rows` rows of `rowLength` values, row-major; a row is one output channel.
//
// INT8 tensor (two sections; n = rows * rowLength)             size int8Bytes(rows, rowLength)
//   offset              bytes            field
//   0                   pad4(n)          i8 codes, row-major, zero-padded to a multiple of 4
//   pad4(n)             4 * rows         f32 absmax of each row (bitsandbytes' SCB)
//   value = code * absmax * f32(1/127)   (bitsandbytes int8_vectorwise_dequant)
//
// INT8_OUTLIER tensor = the INT8 tensor, then k outlier column records in ascending column order
//   int8Bytes(...)      k * recordBytes  record: u32 column, then rows x f16 (that column's value
//                                        in each row), zero-padded to a multiple of 4
//   recordBytes = 4 + pad4(2 * rows); k = (byteLength - int8Bytes) / recordBytes, so with no
//   outlier the size is exactly int8Bytes (the table's nominal size). Outlier columns hold code 0
//   and take no part in their rows' absmax (bitsandbytes zeroes only the elements >= 6 before
//   its absmax; leaving out the whole column, as the paper's decomposition does, never hurts).
//
// INT4 block of G = 32 | 64 | 128 values                       size int4BlockBytes(G, mode)
//   sym:  0 f16 scale | 2 .. 2+G/2 codes                        = 2 + G/2 (18, 34, 66 bytes)
//   asym: 0 f16 scale | 2 u8 zero-point (0..15) | 3 u8 reserved, 0 | 4 .. 4+G/2 codes
//                                                               = 4 + G/2 (20, 36, 68 bytes)
//   codes: 4 bits each, element 2i in the low nibble of byte i, 2i+1 in the high one, so a
//   u32 word holds elements 8w..8w+7 at bits 4k (GPTQ's qweight packing order).
//   value = scale * (code - zero), zero = 8 for sym. GPTQ packs the zero-point in 4 bits; we
//   give it a byte plus a reserved byte so asym blocks stay 4-byte aligned (12 bits more per
//   group than GPTQ: +0.09 bpw at G=128, +0.375 at G=32).
//   Sym blocks are not 4-aligned (18 bytes, as ggml's q4_0); padding them would cost 2 bytes.
//
// Importance weights are ignored by all of these codecs: absmax and min/max grids have no
// weighted form in bitsandbytes or GPTQ's quantizer (GPTQ's own error feedback needs
// calibration activations; this is the round-to-nearest grid it stores).
// Followed: bitsandbytes-foundation/bitsandbytes 95f9af3 (backends/default/ops.py
// int8_vectorwise_quant, _ops.py int8_vectorwise_dequant); IST-DASLab/gptq 2d65066 quant.py
// (Quantizer.find_params, quantize, QuantLinear.pack: codes made with the stored f16 scale).
import { checkRows, dataView, type Codec } from '../codec.ts';
import { f16BitsToF32, f32ToF16Bits } from '../../formats/float16.ts';
import { int4BlockBytes, int4HeaderBytes, int8Bytes, type Int4Mode } from '../sizes.ts';

// INT8 and INT4 sizes live in quant/sizes.ts (the type table reads them too).
export { int4BlockBytes, int8Bytes, type Int4Mode };

/** LLM.int8's threshold (the paper; transformers' llm_int8_threshold): columns with any |x| >= 6 stay f16. */
export const OUTLIER_THRESHOLD = 6;
const INT8_MAX = 127;
/** bitsandbytes dequantizes with this f32 constant, 7.874015718698502e-3, not a division. */
const INV_INT8_MAX = Math.fround(1 / 127);
const INT4_MAX_CODE = 15;
/** GPTQ's symmetric zero-point: (maxq + 1) / 2. */
const INT4_SYM_ZERO = 8;
/** Largest finite f16: a larger scale would store as infinity and decode to NaN. */
const F16_MAX = 65504;

const pad4 = (bytes: number) => Math.ceil(bytes / 4) * 4;

/** Adding then subtracting 1.5 * 2^52 rounds a double to an integer, to nearest even (JS's only mode). */
const ROUND_MAGIC = 1.5 * 2 ** 52;

/**
 * torch.round: round half to even, exact for |x| < 2^51 (larger doubles are integers already,
 * and every caller clamps). Three times faster here than Math.round plus a tie fix-up.
 */
export function roundHalfEven(x: number): number {
  return x + ROUND_MAGIC - ROUND_MAGIC;
}

const clamp = (x: number, lo: number, hi: number) => (x < lo ? lo : x > hi ? hi : x);

// ---------------------------------------------------------------------------------- INT8

/** Bytes of one INT8_OUTLIER column record. */
export function outlierRecordBytes(rows: number): number {
  return 4 + pad4(2 * rows);
}

/** Exact size of an INT8_OUTLIER tensor with `outlierColumns` columns kept in f16. */
export function int8OutlierBytes(rows: number, rowLength: number, outlierColumns: number): number {
  return int8Bytes(rows, rowLength) + outlierColumns * outlierRecordBytes(rows);
}

/** Columns holding any |x| >= OUTLIER_THRESHOLD, as a 0/1 flag per column. */
export function findOutlierColumns(src: Float32Array, rowLength: number): Uint8Array {
  const isOutlier = new Uint8Array(rowLength);
  for (let i = 0; i < src.length; i++) {
    if (Math.abs(src[i]) >= OUTLIER_THRESHOLD) isOutlier[i % rowLength] = 1;
  }
  return isOutlier;
}

/** Row absmax over the columns not kept in f16. */
function rowAbsmax(src: Float32Array, start: number, rowLength: number, isOutlier: Uint8Array | null): number {
  let absmax = 0;
  for (let c = 0; c < rowLength; c++) {
    if (isOutlier && isOutlier[c]) continue;
    const a = Math.abs(src[start + c]);
    if (a > absmax) absmax = a;
  }
  return absmax;
}

/** The INT8 sections: codes q = round(x * (127 / absmax)) in f32, as bitsandbytes int8_vectorwise_quant. */
function writeInt8Sections(src: Float32Array, rowLength: number, isOutlier: Uint8Array | null, out: Uint8Array): void {
  const rows = src.length / rowLength;
  const codes = new Int8Array(out.buffer, out.byteOffset, rows * rowLength);
  const view = dataView(out);
  const absmaxAt = pad4(rows * rowLength);
  for (let r = 0; r < rows; r++) {
    const start = r * rowLength;
    const absmax = rowAbsmax(src, start, rowLength, isOutlier);
    // An all-zero row keeps codes 0 (bitsandbytes would divide by zero here).
    const toCode = absmax > 0 ? Math.fround(INT8_MAX / absmax) : 0;
    for (let c = 0; c < rowLength; c++) {
      const keptInF16 = isOutlier !== null && isOutlier[c] === 1;
      codes[start + c] = keptInF16 ? 0 : clamp(roundHalfEven(Math.fround(src[start + c] * toCode)), -INT8_MAX, INT8_MAX);
    }
    view.setFloat32(absmaxAt + 4 * r, absmax, true);
  }
}

function readInt8Sections(data: Uint8Array, rows: number, rowLength: number, out: Float32Array): void {
  const codes = new Int8Array(data.buffer, data.byteOffset, rows * rowLength);
  const view = dataView(data);
  const absmaxAt = pad4(rows * rowLength);
  for (let r = 0; r < rows; r++) {
    const absmax = view.getFloat32(absmaxAt + 4 * r, true);
    const start = r * rowLength;
    for (let c = 0; c < rowLength; c++) {
      out[start + c] = Math.fround(Math.fround(codes[start + c] * absmax) * INV_INT8_MAX);
    }
  }
}

function writeOutlierRecords(src: Float32Array, rowLength: number, isOutlier: Uint8Array, out: Uint8Array): void {
  const rows = src.length / rowLength;
  const view = dataView(out);
  let at = int8Bytes(rows, rowLength);
  for (let c = 0; c < rowLength; c++) {
    if (!isOutlier[c]) continue;
    view.setUint32(at, c, true);
    for (let r = 0; r < rows; r++) view.setUint16(at + 4 + 2 * r, f32ToF16Bits(src[r * rowLength + c]), true);
    at += outlierRecordBytes(rows);
  }
}

function readOutlierRecords(data: Uint8Array, rows: number, rowLength: number, out: Float32Array): void {
  const view = dataView(data);
  const recordBytes = outlierRecordBytes(rows);
  for (let at = int8Bytes(rows, rowLength); at < data.length; at += recordBytes) {
    const column = view.getUint32(at, true);
    if (column >= rowLength) throw new RangeError(`int8_outlier: outlier column ${column} at byte ${at} is past the row length ${rowLength}`);
    for (let r = 0; r < rows; r++) out[r * rowLength + column] = f16BitsToF32(view.getUint16(at + 4 + 2 * r, true));
  }
}

function checkInt8Length(data: Uint8Array, rows: number, rowLength: number, withOutliers: boolean, what: string): void {
  const base = int8Bytes(rows, rowLength);
  const extra = data.length - base;
  const ok = withOutliers ? extra >= 0 && extra % outlierRecordBytes(rows) === 0 : extra === 0;
  if (!ok) throw new RangeError(`${what}: ${data.length} bytes do not hold ${rows} rows of ${rowLength}`);
}

export const INT8: Codec = {
  encode(src, rowLength) {
    const rows = checkRows(src, rowLength, 1, 'int8');
    const out = new Uint8Array(int8Bytes(rows, rowLength));
    writeInt8Sections(src, rowLength, null, out);
    return out;
  },
  decode(data, rows, rowLength) {
    checkInt8Length(data, rows, rowLength, false, 'int8');
    const out = new Float32Array(rows * rowLength);
    readInt8Sections(data, rows, rowLength, out);
    return out;
  },
};

export const INT8_OUTLIER: Codec = {
  encode(src, rowLength) {
    const rows = checkRows(src, rowLength, 1, 'int8_outlier');
    const isOutlier = findOutlierColumns(src, rowLength);
    const outliers = isOutlier.reduce((n, flag) => n + flag, 0);
    const out = new Uint8Array(int8OutlierBytes(rows, rowLength, outliers));
    writeInt8Sections(src, rowLength, isOutlier, out);
    writeOutlierRecords(src, rowLength, isOutlier, out);
    return out;
  },
  decode(data, rows, rowLength) {
    checkInt8Length(data, rows, rowLength, true, 'int8_outlier');
    const out = new Float32Array(rows * rowLength);
    readInt8Sections(data, rows, rowLength, out);
    readOutlierRecords(data, rows, rowLength, out);
    return out;
  },
};

// ---------------------------------------------------------------------------------- INT4

/**
 * GPTQ's Quantizer.find_params grid (IST-DASLab/gptq quant.py) for a group with extremes
 * min, max: sym spans +-max(|min|, |max|), asym spans [min(min, 0), max(max, 0)]; an
 * all-zero group gets the span [-1, 1]. f32 arithmetic, as torch.
 * Unlike GPTQ, sym is symmetric for all-positive groups too: GPTQ leaves xmin = 0 there,
 * so its scale is max/15 and values above 7 * scale clip.
 */
export function int4Scale(min: number, max: number, mode: Int4Mode): number {
  let low = Math.min(min, 0);
  let high = Math.max(max, 0);
  if (mode === 'sym') {
    high = Math.max(-low, high);
    low = -high;
  }
  if (low === 0 && high === 0) {
    low = -1;
    high = 1;
  }
  return Math.fround(Math.fround(high - low) / INT4_MAX_CODE);
}

/** GPTQ's zero-point: 8 for sym, round(-min(min, 0) / scale) for asym (with the f32 scale, as GPTQ). */
export function int4Zero(min: number, max: number, scale: number, mode: Int4Mode): number {
  if (mode === 'sym') return INT4_SYM_ZERO;
  const low = min === 0 && max === 0 ? -1 : Math.min(min, 0);
  return clamp(roundHalfEven(Math.fround(-low / scale)), 0, INT4_MAX_CODE);
}

/** The scale as stored: f16 (GPTQ checkpoints keep f16 scales), clamped to stay finite. */
function storedScaleBits(scale: number): number {
  return f32ToF16Bits(Math.min(scale, F16_MAX));
}

/** q = clamp(round(x / scale) + zero, 0, 15), GPTQ's quantize(); a zero scale keeps the zero-point. */
export function int4Code(x: number, scale: number, zero: number): number {
  if (scale === 0) return zero;
  return clamp(roundHalfEven(Math.fround(x / scale)) + zero, 0, INT4_MAX_CODE);
}

function encodeInt4Block(src: Float32Array, start: number, group: number, mode: Int4Mode, out: Uint8Array, view: DataView, at: number): void {
  let min = Infinity;
  let max = -Infinity;
  for (let i = start; i < start + group; i++) {
    if (src[i] < min) min = src[i];
    if (src[i] > max) max = src[i];
  }
  const scale = int4Scale(min, max, mode);
  const zero = int4Zero(min, max, scale, mode);
  const bits = storedScaleBits(scale);
  // Codes use the f16 scale that decoding will use, as GPTQ's QuantLinear.pack does.
  const stored = f16BitsToF32(bits);
  view.setUint16(at, bits, true);
  if (mode === 'asym') view.setUint16(at + 2, zero, true); // zero byte, then the reserved 0
  const codesAt = at + int4HeaderBytes(mode);
  for (let i = 0; i < group; i += 2) {
    const low = int4Code(src[start + i], stored, zero);
    const high = int4Code(src[start + i + 1], stored, zero);
    out[codesAt + i / 2] = low | (high << 4);
  }
}

function decodeInt4Block(data: Uint8Array, view: DataView, at: number, group: number, mode: Int4Mode, out: Float32Array, start: number): void {
  const scale = f16BitsToF32(view.getUint16(at, true));
  const zero = mode === 'asym' ? data[at + 2] : INT4_SYM_ZERO;
  const codesAt = at + int4HeaderBytes(mode);
  for (let i = 0; i < group; i += 2) {
    const byte = data[codesAt + i / 2];
    out[start + i] = Math.fround(scale * ((byte & 0x0f) - zero));
    out[start + i + 1] = Math.fround(scale * ((byte >> 4) - zero));
  }
}

/** The INT4 codec for one group size and mode (table rows int4_g{32,64,128}_{sym,asym}). */
export function int4Codec(group: number, mode: Int4Mode): Codec {
  const name = `int4_g${group}_${mode}`;
  const blockBytes = int4BlockBytes(group, mode);
  return {
    encode(src, rowLength) {
      checkRows(src, rowLength, group, name);
      const blocks = src.length / group;
      const out = new Uint8Array(blocks * blockBytes);
      const view = dataView(out);
      for (let b = 0; b < blocks; b++) encodeInt4Block(src, b * group, group, mode, out, view, b * blockBytes);
      return out;
    },
    decode(data, rows, rowLength) {
      if (rowLength % group !== 0) throw new RangeError(`${name}: row length ${rowLength} is not a multiple of ${group}`);
      const blocks = (rows * rowLength) / group;
      if (data.length !== blocks * blockBytes) throw new RangeError(`${name}: ${data.length} bytes do not hold ${blocks} blocks of ${blockBytes}`);
      const out = new Float32Array(rows * rowLength);
      const view = dataView(data);
      for (let b = 0; b < blocks; b++) decodeInt4Block(data, view, b * blockBytes, group, mode, out, b * group);
      return out;
    },
  };
}
