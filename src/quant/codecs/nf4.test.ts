// NF4 / FP4 (and their double-quantized forms) against bitsandbytes' code tables written out
// here, the byte maps in nf4.ts, and a plain nearest-value implementation written here, on
// real weights from stories260K and on edge cases.
import { describe, expect, it } from 'vitest';
import { quantType } from '../types.ts';
import { DYNAMIC_MAP, DQ_BLOCK_BYTES, FP4, FP4_DQ, FP4_VALUES, NF4, NF4_BLOCK_BYTES, NF4_DQ, NF4_VALUES, dqBytes } from './nf4.ts';
import { gaussian, readTensor, rmse } from './testing.ts';

const f32 = Math.fround;

// bitsandbytes functional.py get_4bit_type('nf4'), as written there.
const BNB_NF4 = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
];
// get_4bit_type('fp4') before normalization by 12, and csrc/kernels.cu fp4_dequantization_lut.
const BNB_FP4_RAW = [0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, -0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0];
const BNB_FP4_LUT = [0.0, 0.005208333333, 0.66666667, 1.0, 0.33333333, 0.5, 0.16666667, 0.25];

// ------------------------------------------------------------ plain reference, written here

/**
 * Index of the entry of an ascending table nearest to x, as bitsandbytes' default backend finds
 * it: bucketize over the midpoints rounded to f32, so x on a midpoint goes to the lower entry.
 */
function nearest(sorted: ArrayLike<number>, x: number): number {
  let index = 0;
  for (let k = 0; k + 1 < sorted.length; k++) if (x > f32((sorted[k] + sorted[k + 1]) / 2)) index = k + 1;
  return index;
}

/** FP4 magnitudes ascending (0, 0.0625, 2, 3, 4, 6, 8, 12 over 12) and their 3-bit codes. */
const FP4_ASCENDING = [0, 1, 6, 7, 4, 5, 2, 3];
const fp4Code = (x: number) => FP4_ASCENDING[nearest(FP4_ASCENDING.map((c) => f32(BNB_FP4_LUT[c])), Math.abs(x))] | (x < 0 ? 8 : 0);
const nf4Code = (x: number) => nearest(BNB_NF4.map(f32), x);

const isNf4 = (codec: unknown) => codec === NF4 || codec === NF4_DQ;

/** Per block of 64: absmax and the packed codes, first element in the high nibble. */
function referenceBlocks(x: Float32Array, code: (v: number) => number) {
  const blocks = x.length / 64;
  const absmax = new Float32Array(blocks);
  const codes = new Uint8Array(blocks * 32);
  for (let b = 0; b < blocks; b++) {
    const block = x.subarray(b * 64, b * 64 + 64);
    absmax[b] = Math.max(...Array.from(block, Math.abs));
    const inverse = absmax[b] === 0 ? 0 : f32(1 / absmax[b]);
    for (let i = 0; i < 64; i++) codes[b * 32 + (i >> 1)] |= code(f32(block[i] * inverse)) << (i % 2 === 0 ? 4 : 0);
  }
  return { absmax, codes };
}

function referencePlain(x: Float32Array, code: (v: number) => number): Uint8Array {
  const { absmax, codes } = referenceBlocks(x, code);
  const out = new Uint8Array(absmax.length * 36);
  const view = new DataView(out.buffer);
  for (let b = 0; b < absmax.length; b++) {
    view.setFloat32(b * 36, absmax[b], true);
    out.set(codes.subarray(b * 32, b * 32 + 32), b * 36 + 4);
  }
  return out;
}

/** Double quantization: absmax - mean, groups of 256, nearest entry of the 8-bit map. */
function referenceDoubleQuant(x: Float32Array, code: (v: number) => number): Uint8Array {
  const { absmax, codes } = referenceBlocks(x, code);
  const blocks = absmax.length;
  const offset = f32(absmax.reduce((s, a) => s + a, 0) / blocks);
  const groups = Math.ceil(blocks / 256);
  const padded = Math.ceil(blocks / 4) * 4;
  const out = new Uint8Array(blocks * 32 + padded + 4 * groups + 4);
  const view = new DataView(out.buffer);
  out.set(codes);
  for (let g = 0; g < groups; g++) {
    const centered = Array.from(absmax.subarray(g * 256, (g + 1) * 256), (a) => f32(a - offset));
    const scale = Math.max(...centered.map(Math.abs));
    const inverse = scale === 0 ? 0 : f32(1 / scale);
    centered.forEach((c, i) => (out[blocks * 32 + g * 256 + i] = nearest(DYNAMIC_MAP, f32(c * inverse))));
    view.setFloat32(blocks * 32 + padded + 4 * g, scale, true);
  }
  view.setFloat32(blocks * 32 + padded + 4 * groups, offset, true);
  return out;
}

/** Decode of the _dq layout, straight from the byte map. */
function referenceDoubleQuantDecode(bytes: Uint8Array, n: number, values: ArrayLike<number>): Float32Array {
  const blocks = n / 64;
  const padded = Math.ceil(blocks / 4) * 4;
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const offset = view.getFloat32(bytes.length - 4, true);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const b = Math.floor(i / 64);
    const scale = view.getFloat32(blocks * 32 + padded + 4 * Math.floor(b / 256), true);
    const absmax = f32(f32(DYNAMIC_MAP[bytes[blocks * 32 + b]] * scale) + offset);
    const byte = bytes[b * 32 + ((i % 64) >> 1)];
    out[i] = f32(values[i % 2 === 0 ? byte >> 4 : byte & 15] * absmax);
  }
  return out;
}

// ------------------------------------------------------------------------------- tests

const Q_PROJ = readTensor('model.layers.0.self_attn.q_proj.weight').data; // 64 x 64
const DOWN_PROJ = readTensor('model.layers.0.mlp.down_proj.weight').data; // 64 x 172: flat rows of 64
const EMBED = readTensor('model.embed_tokens.weight').data; // 512 x 64
const TENSORS = {
  q_proj: Q_PROJ,
  down_proj: DOWN_PROJ,
  'embed 300 rows (2 groups, last partial)': EMBED.subarray(0, 300 * 64),
  'embed 5 rows (padding)': EMBED.subarray(0, 5 * 64),
};

describe('tables and layouts', () => {
  it("NF4's 16 values are bitsandbytes'", () => {
    expect(Array.from(NF4_VALUES)).toEqual(BNB_NF4.map(f32));
  });

  it("FP4's table is bitsandbytes' (get_4bit_type / 12 and the kernel's lut)", () => {
    expect(Array.from(FP4_VALUES)).toEqual(BNB_FP4_RAW.map((v) => f32(v / 12)));
    expect(Array.from(FP4_VALUES.subarray(0, 8))).toEqual(BNB_FP4_LUT.map(f32));
    expect(Object.is(FP4_VALUES[8], -0)).toBe(true);
  });

  it('the dynamic 8-bit map is create_dynamic_map(signed=True)', () => {
    expect(DYNAMIC_MAP.length).toBe(256);
    for (let i = 1; i < 256; i++) expect(DYNAMIC_MAP[i]).toBeGreaterThan(DYNAMIC_MAP[i - 1]);
    expect([DYNAMIC_MAP[0], DYNAMIC_MAP[127], DYNAMIC_MAP[255]]).toEqual([f32(-0.99296875), 0, 1]);
    // The same construction in f64: for exponent e, 2^e means of linspace(0.1, 1) times 10^(e-6).
    const exact = [0, 1];
    for (let e = 0; e < 7; e++) {
      const n = 2 ** e;
      for (let k = 0; k < n; k++) {
        const mean = 0.1 + (0.9 * (k + 0.5)) / n;
        exact.push(mean * 10 ** (e - 6), -mean * 10 ** (e - 6));
      }
    }
    exact.sort((a, b) => a - b);
    exact.forEach((v, i) => expect(Math.abs(DYNAMIC_MAP[i] - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -22));
  });

  it('pins the block sizes', () => {
    expect([NF4_BLOCK_BYTES, DQ_BLOCK_BYTES]).toEqual([36, 33]);
    expect(dqBytes(1, 64)).toBe(32 + 4 + 4 + 4);
    expect(dqBytes(5, 64)).toBe(160 + 8 + 4 + 4);
    expect(dqBytes(300, 64)).toBe(300 * 32 + 300 + 8 + 4);
  });

  it('matches the type table: block size, type size, bytesFor = encoded length', () => {
    for (const id of ['nf4', 'fp4', 'nf4_dq', 'fp4_dq']) {
      const type = quantType(id)!;
      expect(type.blockSize).toBe(64);
      expect(type.typeSize).toBe(id.endsWith('_dq') ? DQ_BLOCK_BYTES : NF4_BLOCK_BYTES);
      for (const x of Object.values(TENSORS)) expect(type.codec.encode(x, 64).length).toBe(type.bytesFor(x.length / 64, 64));
    }
  });
});

describe('NF4 and FP4, blocks of 64', () => {
  for (const [codec, name] of [[NF4, 'nf4'], [FP4, 'fp4']] as const) {
    const values = isNf4(codec) ? NF4_VALUES : FP4_VALUES;
    const code = isNf4(codec) ? nf4Code : fp4Code;
    for (const [tensor, x] of Object.entries(TENSORS)) {
      it(`${name} on ${tensor}: bytes equal the plain nearest-value implementation; decode = table * absmax`, () => {
        const bytes = codec.encode(x, 64);
        expect(bytes).toEqual(referencePlain(x, code));
        const decoded = codec.decode(bytes, x.length / 64, 64);
        const view = new DataView(bytes.buffer);
        for (let i = 0; i < x.length; i++) {
          const at = Math.floor(i / 64) * 36;
          const byte = bytes[at + 4 + ((i % 64) >> 1)];
          expect(decoded[i]).toBe(f32(values[i % 2 === 0 ? byte >> 4 : byte & 15] * view.getFloat32(at, true)));
        }
      });
    }
  }

  it('edge cases: all zeros, a huge outlier, negative only', () => {
    const zeros = new Float32Array(128);
    expect(NF4.encode(zeros, 64).subarray(4, 36).every((b) => b === 0x77)).toBe(true); // code 7 is 0
    expect(FP4.encode(zeros, 64).subarray(4, 36).every((b) => b === 0)).toBe(true);
    const outlier = Q_PROJ.slice(0, 64);
    outlier[9] = 1e4;
    const negative = Float32Array.from(Q_PROJ.subarray(0, 64), (v) => -Math.abs(v) - 0.01);
    for (const codec of [NF4, FP4]) {
      expect(codec.decode(codec.encode(zeros, 64), 2, 64)).toEqual(zeros);
      expect(codec.decode(codec.encode(outlier, 64), 1, 64)[9]).toBe(1e4);
      const code = isNf4(codec) ? nf4Code : fp4Code;
      for (const x of [outlier, negative]) expect(codec.encode(x, 64)).toEqual(referencePlain(x, code));
      const min = Math.min(...negative);
      expect(codec.decode(codec.encode(negative, 64), 1, 64)[negative.indexOf(min)]).toBe(min);
    }
  });

  it("a value on a threshold takes the lower code, as the kernel's `x > t` (embed_tokens has one)", () => {
    const nextUp = (x: number) => new Float32Array(new Uint32Array([new Uint32Array(Float32Array.of(x).buffer)[0] + 1]).buffer)[0];
    const x = new Float32Array(64);
    x[0] = 1; // absmax 1: values are their own scaled values
    x[1] = f32(-0.8480964004993439); // NF4: between -1 and -0.696
    x[2] = f32(0.583333); // FP4 kernel: between 0.5 (0b101) and 0.667 (0b010)
    x[3] = nextUp(f32(0.583333));
    expect(NF4.encode(x, 64)[4] & 15).toBe(0);
    const fp4 = FP4.encode(x, 64);
    expect([fp4[5] >> 4, fp4[5] & 15]).toEqual([0b101, 0b010]);
  });

  it('NF4 beats FP4 on Gaussian data', () => {
    const x = gaussian(64 * 256, 7);
    expect(rmse(NF4.decode(NF4.encode(x, 64), 256, 64), x)).toBeLessThan(rmse(FP4.decode(FP4.encode(x, 64), 256, 64), x));
  });

  it('refuses rows that are not whole blocks and bytes that do not fit', () => {
    expect(() => NF4.encode(new Float32Array(96), 96)).toThrow(RangeError);
    expect(() => FP4.decode(new Uint8Array(35), 1, 64)).toThrow(RangeError);
    expect(() => NF4_DQ.decode(new Uint8Array(43), 1, 64)).toThrow(RangeError);
  });
});

describe('double quantization of the absmax', () => {
  for (const [codec, name] of [[NF4_DQ, 'nf4_dq'], [FP4_DQ, 'fp4_dq']] as const) {
    const values = isNf4(codec) ? NF4_VALUES : FP4_VALUES;
    const code = isNf4(codec) ? nf4Code : fp4Code;
    const plain = isNf4(codec) ? NF4 : FP4;
    for (const [tensor, x] of Object.entries(TENSORS)) {
      it(`${name} on ${tensor}: bytes and decode equal the plain implementation`, () => {
        const bytes = codec.encode(x, 64);
        expect(bytes).toEqual(referenceDoubleQuant(x, code));
        const decoded = codec.decode(bytes, x.length / 64, 64);
        expect(decoded).toEqual(referenceDoubleQuantDecode(bytes, x.length, values));
        // 8-bit absmax costs little next to the 4-bit codes.
        expect(rmse(decoded, x)).toBeLessThan(1.05 * rmse(plain.decode(plain.encode(x, 64), x.length / 64, 64), x));
      });
    }

    it(`${name} edge cases: all zeros, a huge outlier, negative only`, () => {
      const zeros = new Float32Array(3 * 64);
      expect(codec.decode(codec.encode(zeros, 64), 3, 64)).toEqual(zeros);
      const outlier = Q_PROJ.slice();
      outlier[200] = 1e4;
      const negative = Float32Array.from(Q_PROJ, (v) => -Math.abs(v) - 0.01);
      for (const x of [outlier, negative]) {
        const bytes = codec.encode(x, 64);
        expect(bytes).toEqual(referenceDoubleQuant(x, code));
        expect(codec.decode(bytes, 64, 64)).toEqual(referenceDoubleQuantDecode(bytes, x.length, values));
      }
      // The outlier's block sets the group's range, so its own absmax comes back nearly exact.
      expect(codec.decode(codec.encode(outlier, 64), 64, 64)[200]).toBeCloseTo(1e4, -1);
    });
  }
});
