import { describe, expect, it } from 'vitest';
import { newParam } from './model.ts';
import { AdamW, clipGradNorm, cosineLr, gradNorm, seededPermutation } from './optim.ts';

describe('AdamW', () => {
  it('takes the textbook steps, with decoupled decay on matrices only', () => {
    const matrix = newParam('m', [1, 1], Float32Array.of(1));
    const vector = newParam('v', [1], Float32Array.of(1));
    const opt = new AdamW([matrix, vector], { weightDecay: 0.1 });
    matrix.grad[0] = 0.5;
    vector.grad[0] = 0.5;
    opt.step(0.1);
    // m̂ = g, v̂ = g², update = g/|g| = 1 (up to eps); decay multiplies by 1 − lr·λ first.
    expect(matrix.value[0]).toBeCloseTo(1 * (1 - 0.01) - 0.1, 6);
    expect(vector.value[0]).toBeCloseTo(1 - 0.1, 6);
    // Second step, gradient −0.25: m = 0.9·0.05 − 0.025, v = 0.999·0.00025 + 0.001·0.0625, bias-corrected.
    matrix.grad[0] = -0.25;
    const m = (0.9 * 0.05 + 0.1 * -0.25) / (1 - 0.81);
    const v = (0.999 * 0.00025 + 0.001 * 0.0625) / (1 - 0.999 ** 2);
    const before = matrix.value[0];
    opt.step(0.05);
    expect(matrix.value[0]).toBeCloseTo(before * (1 - 0.005) - (0.05 * m) / (Math.sqrt(v) + 1e-8), 6);
    expect(opt.steps).toBe(2);
  });

  it('minimizes a quadratic, the same bits on a second run', () => {
    const run = () => {
      const p = newParam('w', [2, 2], Float32Array.of(3, -2, 1, 0.5));
      const opt = new AdamW([p]);
      for (let s = 0; s < 300; s++) {
        for (let i = 0; i < 4; i++) p.grad[i] = 2 * (p.value[i] - i);
        opt.step(0.05);
      }
      return p.value;
    };
    const a = run();
    a.forEach((v, i) => expect(Math.abs(v - i)).toBeLessThan(0.05));
    expect(run()).toEqual(a);
  });
});

describe('gradient clipping', () => {
  it('scales the global norm down to the maximum and leaves smaller ones alone', () => {
    const a = newParam('a', [2], Float32Array.of(0, 0));
    const b = newParam('b', [1], Float32Array.of(0));
    a.grad.set([3, 0]);
    b.grad.set([4]);
    expect(clipGradNorm([a, b], 1)).toBe(5);
    expect(gradNorm([a, b])).toBeCloseTo(1, 12);
    expect(Array.from(a.grad)).toEqual([0.6000000000000001, 0]);
    expect(clipGradNorm([a, b], 10)).toBeCloseTo(1, 12);
    expect(gradNorm([a, b])).toBeCloseTo(1, 12);
  });
});

describe('cosine schedule', () => {
  it('warms up linearly, peaks, and ends at lr·minRatio', () => {
    const s = { lr: 1e-3, warmup: 4, steps: 20, minRatio: 0.1 };
    expect(cosineLr(s, 1)).toBeCloseTo(2.5e-4, 12);
    expect(cosineLr(s, 4)).toBeCloseTo(1e-3, 12);
    expect(cosineLr(s, 5)).toBeCloseTo(1e-3, 12);
    expect(cosineLr(s, 20)).toBeCloseTo(1e-4, 12);
    // Halfway through the cosine part: the mean of lr and min.
    expect(cosineLr({ ...s, steps: 25 }, 15)).toBeCloseTo(5.5e-4, 12);
    for (let t = 5; t < 20; t++) expect(cosineLr(s, t + 1)).toBeLessThan(cosineLr(s, t));
    expect(() => cosineLr(s, 21)).toThrow(/outside 1..20/);
  });
});

describe('seeded order', () => {
  it('is a permutation, the same for a seed and another for another seed', () => {
    const a = seededPermutation(50, 7);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(seededPermutation(50, 7)).toEqual(a);
    expect(seededPermutation(50, 8)).not.toEqual(a);
  });
});
