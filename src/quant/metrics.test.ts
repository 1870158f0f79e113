import { describe, expect, it } from 'vitest';
import { accumulateErrors, emptySums, errorHistogram, errorMetrics, histogram, mergeSums, metricsFromSums, sharedErrorRange } from './metrics.ts';

describe('error metrics', () => {
  it('computes RMSE, max, mean, SNR, cosine and relative error by hand', () => {
    const ref = [1, -2, 3, 4];
    const deq = [1.5, -2, 2, 4];
    const m = errorMetrics(ref, deq);
    // errors: 0.5, 0, -1, 0
    expect(m.rmse).toBeCloseTo(Math.sqrt(1.25 / 4), 12);
    expect(m.maxAbs).toBe(1);
    expect(m.meanAbs).toBeCloseTo(0.375, 12);
    expect(m.snrDb).toBeCloseTo(10 * Math.log10(30 / 1.25), 12);
    const dot = 1.5 + 4 + 6 + 16;
    expect(m.cosine).toBeCloseTo(dot / (Math.sqrt(30) * Math.sqrt(2.25 + 4 + 4 + 16)), 12);
    expect(m.relFrobenius).toBeCloseTo(Math.sqrt(1.25 / 30), 12);
  });

  it('reports an exact copy as infinite SNR, cosine 1, zero error', () => {
    const m = errorMetrics([0, 1, -1], [0, 1, -1]);
    expect(m).toMatchObject({ rmse: 0, maxAbs: 0, snrDb: Infinity, cosine: 1, relFrobenius: 0 });
    expect(errorMetrics([0, 0], [0, 0]).cosine).toBe(1);
  });

  it('merges sums so a model aggregate weights tensors by size', () => {
    const a = accumulateErrors([1, 1, 1], [1, 1, 2]);
    const b = accumulateErrors([2], [0]);
    const whole = accumulateErrors([1, 1, 1, 2], [1, 1, 2, 0]);
    expect(metricsFromSums(mergeSums(a, b))).toEqual(metricsFromSums(whole));
    expect(metricsFromSums(accumulateErrors([2], [0], accumulateErrors([1, 1, 1], [1, 1, 2], emptySums())))).toEqual(metricsFromSums(whole));
  });

  it('propagates NaN into the max error instead of hiding it', () => {
    expect(errorMetrics([1, 2], [1, NaN]).maxAbs).toBeNaN();
  });
});

describe('histograms', () => {
  it('bins values, counting out-of-range ones apart', () => {
    const h = histogram([-1, -0.5, 0, 0.49, 0.5, 0.99, 1, 2], -1, 1, 4);
    expect(h.counts).toEqual([1, 1, 2, 2]);
    expect(h.below).toBe(0);
    expect(h.above).toBe(2);
    expect(h.counts.reduce((a, b) => a + b) + h.below + h.above).toBe(8);
  });

  it('bins errors deq - ref on a shared symmetric range', () => {
    const [lo, hi] = sharedErrorRange([0.5, 2, Infinity]);
    expect(hi).toBeGreaterThan(2);
    expect(lo).toBe(-hi);
    const h = errorHistogram([0, 0, 0], [-2, 0, 2], lo, hi, 2);
    expect(h.counts).toEqual([1, 2]);
    expect(sharedErrorRange([0, 0])[1]).toBeGreaterThan(0);
  });
});
