// INT8 / INT8_OUTLIER / INT4 codecs against the byte maps in intn.ts and a plain
// implementation written here from the references' formulas (bitsandbytes int8_vectorwise_quant,
// GPTQ's Quantizer), on real weights from stories260K and on edge cases.
import { describe, expect, it } from 'vitest';
import { f32ToF16Bits, f16BitsToF32 } from '../../formats/float16.ts';
import { quantType } from '../types.ts';
import { INT8, INT8_OUTLIER, int4BlockBytes, int4Codec, int8Bytes, int8OutlierBytes, outlierRecordBytes, type Int4Mode } from './intn.ts';
import { gaussian, readTensor, rmse } from './testing.ts';

const Q_PROJ = readTensor('model.layers.0.self_attn.q_proj.weight'); // 64 x 64
const DOWN_PROJ = readTensor('model.layers.0.mlp.down_proj.weight'); // 64 x 172

// ------------------------------------------------------------ plain reference, written here

/** Round half to even, spelled out. */
function roundEven(x: number): number {
  const floor = Math.floor(x);
  const frac = x - floor;
  if (frac !== 0.5) return frac < 0.5 ? floor : floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}
const f32 = Math.fround;

/** INT8 per row as documented: codes, padding, f32 absmax per row, then outlier column records. */
function referenceInt8(x: Float32Array, rowLength: number, splitOutliers: boolean): Uint8Array {
  const rows = x.length / rowLength;
  const outlierColumns: number[] = [];
  if (splitOutliers) {
    for (let c = 0; c < rowLength; c++) {
      let any = false;
      for (let r = 0; r < rows; r++) if (Math.abs(x[r * rowLength + c]) >= 6) any = true;
      if (any) outlierColumns.push(c);
    }
  }
  const bytes: number[] = [];
  const absmaxes: number[] = [];
  for (let r = 0; r < rows; r++) {
    const row = Array.from(x.subarray(r * rowLength, (r + 1) * rowLength));
    const absmax = Math.max(0, ...row.filter((_, c) => !outlierColumns.includes(c)).map(Math.abs));
    absmaxes.push(absmax);
    for (let c = 0; c < rowLength; c++) {
      const q = outlierColumns.includes(c) || absmax === 0 ? 0 : roundEven(f32(row[c] * f32(127 / absmax)));
      bytes.push(q & 0xff);
    }
  }
  while (bytes.length % 4) bytes.push(0);
  const out = new Uint8Array(bytes.length + 4 * rows + outlierColumns.length * (4 + Math.ceil((2 * rows) / 4) * 4));
  out.set(bytes);
  const view = new DataView(out.buffer);
  let at = bytes.length;
  for (const a of absmaxes) view.setFloat32((at += 4) - 4, a, true);
  for (const c of outlierColumns) {
    view.setUint32(at, c, true);
    for (let r = 0; r < rows; r++) view.setUint16(at + 4 + 2 * r, f32ToF16Bits(x[r * rowLength + c]), true);
    at += 4 + Math.ceil((2 * rows) / 4) * 4;
  }
  return out;
}

/** INT4 per group with the brief's GPTQ formulas; f16 scale, low nibble first. */
function referenceInt4(x: Float32Array, group: number, mode: Int4Mode): Uint8Array {
  const header = mode === 'sym' ? 2 : 4;
  const out = new Uint8Array((x.length / group) * (header + group / 2));
  const view = new DataView(out.buffer);
  for (let g = 0; g < x.length / group; g++) {
    const values = Array.from(x.subarray(g * group, (g + 1) * group));
    let xmin = Math.min(0, ...values);
    let xmax = Math.max(0, ...values);
    if (mode === 'sym') {
      xmax = Math.max(-xmin, xmax);
      xmin = -xmax;
    }
    if (xmin === 0 && xmax === 0) [xmin, xmax] = [-1, 1];
    const scale = f32(f32(xmax - xmin) / 15);
    const zero = mode === 'sym' ? 8 : roundEven(f32(-xmin / scale));
    const scaleBits = f32ToF16Bits(scale);
    const stored = f16BitsToF32(scaleBits);
    const at = g * (header + group / 2);
    view.setUint16(at, scaleBits, true);
    if (mode === 'asym') out[at + 2] = zero;
    values.forEach((v, i) => {
      const q = Math.min(15, Math.max(0, roundEven(f32(v / stored)) + zero));
      out[at + header + (i >> 1)] |= i % 2 === 0 ? q : q << 4;
    });
  }
  return out;
}

function referenceInt4Decode(bytes: Uint8Array, group: number, mode: Int4Mode): Float32Array {
  const header = mode === 'sym' ? 2 : 4;
  const blockBytes = header + group / 2;
  const out = new Float32Array((bytes.length / blockBytes) * group);
  for (let i = 0; i < out.length; i++) {
    const at = Math.floor(i / group) * blockBytes;
    const scale = f16BitsToF32(bytes[at] | (bytes[at + 1] << 8));
    const zero = mode === 'sym' ? 8 : bytes[at + 2];
    const byte = bytes[at + header + ((i % group) >> 1)];
    out[i] = f32(scale * ((i % 2 === 0 ? byte & 15 : byte >> 4) - zero));
  }
  return out;
}

// ------------------------------------------------------------------------------- tests

const MODES: Int4Mode[] = ['sym', 'asym'];
const GROUPS = [32, 64, 128];

describe('layouts', () => {
  it('pins the INT4 block sizes', () => {
    expect(GROUPS.flatMap((g) => MODES.map((m) => int4BlockBytes(g, m)))).toEqual([18, 20, 34, 36, 66, 68]);
  });

  it('pins the INT8 sizes: codes padded to 4, f32 absmax per row, outlier records', () => {
    expect(int8Bytes(64, 64)).toBe(4096 + 256);
    expect(int8Bytes(3, 5)).toBe(16 + 12);
    expect(outlierRecordBytes(3)).toBe(4 + 8);
    expect(int8OutlierBytes(3, 5, 2)).toBe(28 + 24);
  });

  it('matches the type table: block size, type size, bytesFor = encoded length', () => {
    for (const g of GROUPS) {
      for (const m of MODES) {
        const type = quantType(`int4_g${g}_${m}`)!;
        expect([type.blockSize, type.typeSize]).toEqual([g, int4BlockBytes(g, m)]);
        expect(type.codec.encode(DOWN_PROJ.data, 128).length).toBe(type.bytesFor(86, 128));
      }
    }
    for (const id of ['int8', 'int8_outlier']) {
      const type = quantType(id)!;
      expect(type.codec.encode(DOWN_PROJ.data, 172).length).toBe(type.bytesFor(64, 172));
    }
  });
});

describe('INT8 per row absmax', () => {
  for (const [name, t] of [['q_proj', Q_PROJ], ['down_proj', DOWN_PROJ]] as const) {
    it(`${name}: bytes equal the plain implementation, decode = q * absmax * f32(1/127)`, () => {
      const bytes = INT8.encode(t.data, t.rowLength);
      expect(bytes).toEqual(referenceInt8(t.data, t.rowLength, false));
      const decoded = INT8.decode(bytes, t.rows, t.rowLength);
      const codes = new Int8Array(bytes.buffer, 0, t.data.length);
      const view = new DataView(bytes.buffer);
      for (let i = 0; i < t.data.length; i++) {
        const absmax = view.getFloat32(Math.ceil(t.data.length / 4) * 4 + 4 * Math.floor(i / t.rowLength), true);
        expect(decoded[i]).toBe(f32(f32(codes[i] * absmax) * f32(7.874015718698502e-3)));
        expect(Math.abs(decoded[i] - t.data[i])).toBeLessThanOrEqual((absmax / 127) * 0.5001);
      }
      // Without outliers INT8_OUTLIER is the same bytes.
      expect(INT8_OUTLIER.encode(t.data, t.rowLength)).toEqual(bytes);
    });
  }

  it('int8_outlier: columns with |x| >= 6 kept in f16, the rest keeps its precision', () => {
    const x = Q_PROJ.data.slice();
    x[5 * 64 + 3] = 1e4; // a huge outlier in column 3
    x[40 * 64 + 17] = -6; // exactly the threshold, column 17
    const bytes = INT8_OUTLIER.encode(x, 64);
    expect(bytes).toEqual(referenceInt8(x, 64, true));
    expect(bytes.length).toBe(int8OutlierBytes(64, 64, 2));
    const decoded = INT8_OUTLIER.decode(bytes, 64, 64);
    for (let r = 0; r < 64; r++) {
      for (const c of [3, 17]) expect(decoded[r * 64 + c]).toBe(f16BitsToF32(f32ToF16Bits(x[r * 64 + c])));
    }
    expect(decoded[5 * 64 + 3]).toBe(1e4);
    // Plain INT8 crushes row 5 to the outlier's scale; the split keeps it.
    const plain = INT8.decode(INT8.encode(x, 64), 64, 64);
    const row5 = (d: Float32Array) => rmse(d.subarray(5 * 64, 5 * 64 + 64).filter((_, c) => c !== 3), x.subarray(5 * 64, 5 * 64 + 64).filter((_, c) => c !== 3));
    expect(row5(decoded)).toBeLessThan(row5(plain) / 20);
  });

  it('edge cases: all zeros, negative only, one row', () => {
    const zeros = new Float32Array(2 * 8);
    expect(INT8.decode(INT8.encode(zeros, 8), 2, 8)).toEqual(zeros);
    const negative = Float32Array.from({ length: 12 }, (_, i) => -0.5 - i);
    const bytes = INT8.encode(negative, 12);
    expect(bytes).toEqual(referenceInt8(negative, 12, false));
    expect(new Int8Array(bytes.buffer, 0, 12)[11]).toBe(-127);
    expect(INT8_OUTLIER.encode(negative, 12)).toEqual(referenceInt8(negative, 12, true));
    expect(INT8_OUTLIER.decode(INT8_OUTLIER.encode(negative, 12), 1, 12)[11]).toBe(-11.5);
  });

  it('refuses a byte length that does not fit the shape', () => {
    const bytes = INT8.encode(Q_PROJ.data, 64);
    expect(() => INT8.decode(bytes.subarray(4), 64, 64)).toThrow(RangeError);
    expect(() => INT8_OUTLIER.decode(bytes.subarray(0, bytes.length - 4), 64, 64)).toThrow(RangeError);
  });
});

describe('INT4 groups, GPTQ grid', () => {
  const cases = [
    { name: 'q_proj rows of 64', data: Q_PROJ.data, rowLength: 64 },
    { name: 'down_proj flat rows of 128', data: DOWN_PROJ.data, rowLength: 128 },
  ];
  for (const group of GROUPS) {
    for (const mode of MODES) {
      const codec = int4Codec(group, mode);
      for (const c of cases.filter((c) => c.rowLength % group === 0)) {
        it(`int4_g${group}_${mode} on ${c.name}: bytes and decode equal the plain implementation`, () => {
          const bytes = codec.encode(c.data, c.rowLength);
          expect(bytes).toEqual(referenceInt4(c.data, group, mode));
          const decoded = codec.decode(bytes, c.data.length / c.rowLength, c.rowLength);
          expect(decoded).toEqual(referenceInt4Decode(bytes, group, mode));
          const blockBytes = int4BlockBytes(group, mode);
          for (let i = 0; i < c.data.length; i++) {
            const at = Math.floor(i / group) * blockBytes;
            const scale = f16BitsToF32(bytes[at] | (bytes[at + 1] << 8));
            expect(Math.abs(decoded[i] - c.data[i])).toBeLessThanOrEqual(scale / 2 + Math.abs(c.data[i]) * 2 ** -10);
          }
        });
      }
    }
  }

  it('edge cases: all zeros, a huge outlier, negative only, positive only', () => {
    const zeros = new Float32Array(64);
    const outlier = Q_PROJ.data.slice(0, 64);
    outlier[10] = 1e4;
    const negative = Float32Array.from(Q_PROJ.data.slice(0, 64), (v) => -Math.abs(v) - 0.01);
    const positive = negative.map((v) => -v);
    for (const mode of MODES) {
      const codec = int4Codec(32, mode);
      expect(codec.decode(codec.encode(zeros, 32), 2, 32)).toEqual(zeros);
      for (const x of [outlier, negative, positive]) {
        const bytes = codec.encode(x, 64);
        expect(bytes).toEqual(referenceInt4(x, 32, mode));
        const decoded = codec.decode(bytes, 1, 64);
        expect(decoded).toEqual(referenceInt4Decode(bytes, 32, mode));
        // No clipping: even a one-signed group keeps its extremes within half a step.
        const step = f16BitsToF32(bytes[0] | (bytes[1] << 8));
        for (let i = 0; i < 32; i++) expect(Math.abs(decoded[i] - x[i])).toBeLessThanOrEqual(step / 2 + Math.abs(x[i]) * 2 ** -10);
      }
      // The outlier's group spends its grid on it: the outlier lands within half a step.
      const scale = f16BitsToF32(codec.encode(outlier, 64)[0] | (codec.encode(outlier, 64)[1] << 8));
      expect(Math.abs(codec.decode(codec.encode(outlier, 64), 1, 64)[10] - 1e4)).toBeLessThanOrEqual(scale / 2 + 10);
    }
    // Negative only, asym: the zero-point sits at the top of the grid.
    expect(int4Codec(32, 'asym').encode(negative, 64)[2]).toBe(15);
  });

  it('smaller groups quantize Gaussian data better', () => {
    const x = gaussian(128 * 64, 1);
    for (const mode of MODES) {
      const error = (group: number) => rmse(int4Codec(group, mode).decode(int4Codec(group, mode).encode(x, 128), 64, 128), x);
      expect(error(32)).toBeLessThan(error(64));
      expect(error(64)).toBeLessThan(error(128));
    }
  });

  it('refuses rows that are not whole groups and bytes that do not fit', () => {
    expect(() => int4Codec(128, 'sym').encode(Q_PROJ.data, 64)).toThrow(RangeError);
    expect(() => int4Codec(32, 'asym').decode(new Uint8Array(19), 1, 32)).toThrow(RangeError);
  });
});
