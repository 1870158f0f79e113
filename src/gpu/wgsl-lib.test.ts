// The WGSL libraries (shaders/lib) against the CPU's definitions, on many inputs: correctly
// rounded division, C roundf, ggml's nearest_int, f16/bf16 conversions, C (int8_t) casts
// and float comparison on bits. Ties, subnormals, overflow and NaN included.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { f16BitsToF32, f32Bits, f32FromBits, f32ToBf16Bits, f32ToF16Bits } from '../formats/float16.ts';
import { nearestInt, roundf } from '../quant/codecs/rounding.ts';
import type { GpuContext } from './device.ts';
import { createTestGpu } from './gpu-test-setup.ts';
import { rng, runOpsShader } from './testing.ts';

const OPS = { div: 0, roundf: 1, nearestInt: 2, f32ToF16: 3, f16ToF32: 4, f32ToBf16: 5, cInt8: 6, fltLt: 7 } as const;

let gpu: GpuContext;
beforeAll(async () => {
  gpu = await createTestGpu();
});
afterAll(() => gpu?.destroy());

/** Run shaders/tests/lib-ops.wgsl: out[i] = op(a[i], b[i]) on bit patterns. */
const LIB_OPS = {
  name: 'test.lib-ops',
  label: 'test.lib-ops',
  files: ['lib/rounding.wgsl', 'lib/f16.wgsl', 'lib/bf16.wgsl', 'tests/lib-ops.wgsl'],
};
const runOp = (op: number, a: Uint32Array<ArrayBuffer>, b: Uint32Array<ArrayBuffer> = new Uint32Array(a.length)) => runOpsShader(gpu, LIB_OPS, op, a, b);

const bitsOfRandom = (r: () => number) => (r() * 2 ** 32) >>> 0;

/** Indices where got != want, described (the first few). */
function mismatches(a: Uint32Array, b: Uint32Array, got: Uint32Array, want: (i: number) => number, same = (g: number, w: number) => g === w) {
  const bad: string[] = [];
  let count = 0;
  for (let i = 0; i < got.length; i++) {
    const w = want(i) >>> 0;
    if (!same(got[i], w)) {
      count++;
      if (bad.length < 6) bad.push(`a=${a[i].toString(16)} (${f32FromBits(a[i])}) b=${b[i].toString(16)} (${f32FromBits(b[i])}): got ${got[i].toString(16)} want ${w.toString(16)}`);
    }
  }
  return { count, bad };
}

const isNanBits = (x: number) => (x & 0x7fffffff) >>> 0 > 0x7f800000;

describe('lib/rounding.wgsl', () => {
  it('div_rn is IEEE division, round to nearest even, subnormals and specials included', async () => {
    const r = rng(1);
    const a: number[] = [];
    const b: number[] = [];
    const push = (x: number, y: number) => (a.push(x >>> 0), b.push(y >>> 0));
    for (let i = 0; i < 60000; i++) push(bitsOfRandom(r), bitsOfRandom(r)); // anything, NaN and inf included
    for (let i = 0; i < 60000; i++) {
      // Results near 1 and ordinary magnitudes: the codecs' d = max / 127, id = 1 / d.
      const e = 100 + Math.floor(r() * 54);
      push((e << 23) | bitsOfRandom(r) % 0x800000 | (r() < 0.5 ? 0x80000000 : 0), ((100 + Math.floor(r() * 54)) << 23) | bitsOfRandom(r) % 0x800000);
    }
    for (let i = 0; i < 30000; i++) push(f32Bits(1), bitsOfRandom(r) & 0x7fffffff); // reciprocals
    for (let i = 0; i < 30000; i++) push(bitsOfRandom(r) & 0x807fffff, bitsOfRandom(r) & 0x7fffffff); // subnormal / anything
    for (let i = 0; i < 30000; i++) push(bitsOfRandom(r) & 0x0fffffff, (0x7e000000 + (bitsOfRandom(r) % 0x1000000)) >>> 0); // subnormal results
    for (const d of [127, 15, 31, -8, -16, 3, 7, 0, -0, Infinity, NaN]) {
      for (let i = 0; i < 2000; i++) push(bitsOfRandom(r), f32Bits(d));
    }
    const A = new Uint32Array(a);
    const B = new Uint32Array(b);
    const got = await runOp(OPS.div, A, B);
    const { count, bad } = mismatches(A, B, got, (i) => f32Bits(Math.fround(f32FromBits(A[i]) / f32FromBits(B[i]))), (g, w) =>
      isNanBits(w) ? isNanBits(g) : g === w,
    );
    expect(bad, `${count} of ${A.length} quotients differ`).toEqual([]);
  });

  it('roundf_i rounds half away from zero, nearest_int half to even, c_int8 truncates and wraps', async () => {
    const r = rng(2);
    const xs: number[] = [];
    for (let k = -300; k <= 300; k++) {
      for (const off of [0, 0.5, 0.25, 0.75]) xs.push(f32Bits(k + off));
      const tie = Math.fround(k + 0.5);
      xs.push(f32Bits(tie) + 1, f32Bits(tie) - 1); // one ulp either side of the tie
    }
    for (let i = 0; i < 50000; i++) xs.push(f32Bits(Math.fround((r() - 0.5) * 2 ** (1 + Math.floor(r() * 23)))));
    for (let i = 0; i < 5000; i++) xs.push(bitsOfRandom(r) & 0x807fffff); // subnormals
    xs.push(f32Bits(-0), f32Bits(0.5), f32Bits(-0.5), f32Bits(0.49999997), f32Bits(4194303.5), f32Bits(-4194302.5));
    const X = new Uint32Array(xs.map((x) => x >>> 0));
    const Z = new Uint32Array(X.length);
    const rf = await runOp(OPS.roundf, X);
    expect(mismatches(X, Z, rf, (i) => roundf(f32FromBits(X[i])) | 0).bad).toEqual([]);
    const ni = await runOp(OPS.nearestInt, X);
    expect(mismatches(X, Z, ni, (i) => nearestInt(f32FromBits(X[i])) | 0).bad).toEqual([]);
    const c8 = await runOp(OPS.cInt8, X);
    expect(mismatches(X, Z, c8, (i) => (Math.trunc(f32FromBits(X[i])) << 24) >> 24).bad).toEqual([]);
  });

  it('flt_lt is C float <: -0 == +0, NaN compares false, subnormals ordered', async () => {
    const r = rng(3);
    const special = [0, 0x80000000, 1, 0x80000001, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x00800000, 0x7f7fffff, 0xff7fffff];
    const a: number[] = [];
    const b: number[] = [];
    for (const x of special) {
      for (const y of special) {
        a.push(x);
        b.push(y);
      }
    }
    for (let i = 0; i < 20000; i++) {
      const x = bitsOfRandom(r);
      a.push(x);
      b.push(r() < 0.3 ? x ^ (1 + (bitsOfRandom(r) & 0xff)) : bitsOfRandom(r));
    }
    const A = new Uint32Array(a);
    const B = new Uint32Array(b);
    const got = await runOp(OPS.fltLt, A, B);
    expect(mismatches(A, B, got, (i) => (f32FromBits(A[i]) < f32FromBits(B[i]) ? 1 : 0)).bad).toEqual([]);
  });
});

describe('lib/f16.wgsl and lib/bf16.wgsl', () => {
  it('f16 -> f32 is exact for all 65536 patterns (NaN payload kept, made quiet)', async () => {
    const H = new Uint32Array(65536).map((_, i) => i);
    const got = await runOp(OPS.f16ToF32, H);
    const want = (h: number) => {
      const x = f16BitsToF32(h);
      return Number.isNaN(x) ? ((h & 0x8000) << 16) | 0x7fc00000 | ((h & 0x3ff) << 13) : f32Bits(x);
    };
    expect(mismatches(H, H, got, (i) => want(H[i])).bad).toEqual([]);
  });

  it('f32 -> f16 rounds to nearest even at every f16 boundary, subnormals and overflow included', async () => {
    const xs: number[] = [];
    for (let h = 0; h < 0x7c00; h++) {
      // Each f16 value, the midpoint to the next one (a tie) and one f32 ulp either side.
      const lo = f16BitsToF32(h);
      const mid = f32Bits((lo + f16BitsToF32(h + 1)) / 2);
      for (const x of [f32Bits(lo), mid, mid - 1, mid + 1]) xs.push(x, (x | 0x80000000) >>> 0);
    }
    const r = rng(4);
    for (let i = 0; i < 50000; i++) xs.push(bitsOfRandom(r));
    xs.push(0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x477fefff, 0x477ff000, 0x47800000, 0x33000000, 0x33000001, 0x32ffffff);
    const X = new Uint32Array(xs.map((x) => x >>> 0));
    const got = await runOp(OPS.f32ToF16, X);
    expect(mismatches(X, X, got, (i) => f32ToF16Bits(f32FromBits(X[i]))).bad).toEqual([]);
  });

  it('f32 -> bf16 rounds to nearest even, NaN quiet', async () => {
    const r = rng(5);
    const xs: number[] = [];
    for (let i = 0; i < 100000; i++) {
      const x = bitsOfRandom(r);
      xs.push(i % 4 === 0 ? ((x & 0xffff0000) | 0x8000) >>> 0 : x); // every 4th an exact tie
    }
    xs.push(0x7f800000, 0x7fc00000, 0x7f800001, 0xff800001, 0x7f7fffff, 0x00008000, 0x00018000);
    const X = new Uint32Array(xs.map((x) => x >>> 0));
    const got = await runOp(OPS.f32ToBf16, X);
    expect(mismatches(X, X, got, (i) => f32ToBf16Bits(f32FromBits(X[i]))).bad).toEqual([]);
  });
});
