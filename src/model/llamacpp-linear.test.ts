import { describe, expect, it } from 'vitest';
import { f16BitsToF32, f32ToF16Bits } from '../formats/float16.ts';
import { cpuLinear } from './llama.ts';
import { llamaCppCpuLinear, roundActivations } from './llamacpp-linear.ts';

function randomRow(n: number, seed: number): Float32Array {
  let s = seed;
  const next = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  return Float32Array.from({ length: n }, () => next() * 3);
}

describe('roundActivations (llama.cpp vec_dot_type rounding)', () => {
  it('q8_0: 32-value blocks on a grid of f16(amax/127), the largest value at ±127 steps', () => {
    const x = randomRow(128, 1);
    x.fill(0, 96); // one all-zero block
    const y = roundActivations(x, 128, 'q8_0');
    for (let b = 0; b < 96; b += 32) {
      const block = Array.from(x.subarray(b, b + 32));
      const amax = Math.max(...block.map(Math.abs));
      const d = f16BitsToF32(f32ToF16Bits(Math.fround(amax / 127)));
      for (let j = 0; j < 32; j++) {
        const q = y[b + j] / d;
        expect(Math.abs(q - Math.round(q))).toBeLessThan(1e-4);
        expect(Math.abs(Math.round(q))).toBeLessThanOrEqual(127);
        expect(Math.abs(y[b + j] - x[b + j])).toBeLessThanOrEqual(d * 0.5 + Math.abs(x[b + j]) * 1e-3);
      }
      const at = block.findIndex((v) => Math.abs(v) === amax);
      expect(Math.abs(y[b + at] / d)).toBeCloseTo(127, 3);
    }
    expect(Array.from(y.subarray(96))).toEqual(new Array(32).fill(0));
  });

  it('q8_K: 256-value blocks with an f32 scale from the signed maximum', () => {
    const x = randomRow(256, 2);
    const y = roundActivations(x, 256, 'q8_K');
    let at = 0;
    for (let j = 1; j < 256; j++) if (Math.abs(x[j]) > Math.abs(x[at])) at = j;
    expect(y[at]).toBeCloseTo(x[at], 5);
    const d = Math.abs(x[at]) / 127;
    for (let j = 0; j < 256; j++) expect(Math.abs(y[j] - x[j])).toBeLessThanOrEqual(d * 0.5 + 1e-6);
  });

  it('f16 and f32 inputs', () => {
    const x = randomRow(64, 3);
    expect(roundActivations(x, 64, 'f32')).toBe(x);
    const h = roundActivations(x, 64, 'f16');
    for (let j = 0; j < 64; j++) expect(h[j]).toBe(f16BitsToF32(f32ToF16Bits(x[j])));
    expect(() => roundActivations(x.subarray(0, 48), 48, 'q8_0')).toThrow(/blocks/);
  });

  it('is the plain product for f32 weights and refuses types it does not know', () => {
    const w = randomRow(64 * 8, 4);
    const x = randomRow(64 * 2, 5);
    const weights = () => w;
    expect(llamaCppCpuLinear(weights, () => 'f32')('w', x, 2, 8, 64)).toEqual(cpuLinear(weights)('w', x, 2, 8, 64));
    expect(llamaCppCpuLinear(weights, () => undefined)('w', x, 2, 8, 64)).toEqual(cpuLinear(weights)('w', x, 2, 8, 64));
    expect(() => llamaCppCpuLinear(weights, () => 'nf4')('w', x, 2, 8, 64)).toThrow(/nf4/);
  });
});
