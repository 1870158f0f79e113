import { describe, expect, it } from 'vitest';
import { compressLogProbs, formatKlReport, KlAccumulator, klReport, logProbRowLength, meanAndUncertainty, percentileF32, medianF32, rowScale } from './kl-report.ts';
import { rng } from '../testing/random.ts';

/** The row's log-probabilities as the test reads them back: scale·q + min, from the two f32 read off the raw bytes. */
function decompress(row: Uint16Array, at: number, nVocab: number): number[] {
  const bytes = new Uint8Array(row.buffer, row.byteOffset + 2 * at, 8);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const scale = dv.getFloat32(0, true);
  const min = dv.getFloat32(4, true);
  return Array.from({ length: nVocab }, (_, i) => scale * row[at + 4 + i] + min);
}

function logSoftmax64(logits: number[]): number[] {
  const max = Math.max(...logits);
  const lse = max + Math.log(logits.reduce((s, v) => s + Math.exp(v - max), 0));
  return logits.map((v) => v - lse);
}

describe('compressLogProbs (perplexity.cpp log_softmax → uint16)', () => {
  it('writes f32 scale and min_log_prob, then round((logit − min)/scale), min clamped to max − 16, odd vocabulary padded with 0', () => {
    const logits = [0, 1, 2, -20, 2];
    const row = new Uint16Array(logProbRowLength(5)).fill(7);
    expect(row.length).toBe(10);
    const nll = compressLogProbs(logits, 0, 5, 1, row, 0);
    const lse = Math.log(Math.exp(-2) + Math.exp(-1) + 1 + Math.exp(-22) + 1);
    // min logit −20 is below max − 16 = −14: the range is 16 wide.
    expect(rowScale(row, 0).scale).toBe(Math.fround(16 / 65535));
    expect(rowScale(row, 0).minLogProb).toBeCloseTo(-16 - lse, 5);
    expect(Array.from(row.subarray(4))).toEqual([57343, 61439, 65535, 0, 65535, 0]); // 14/16·65535 = 57343.1, 15/16·65535 = 61439.06
    expect(nll).toBeCloseTo(2 + lse - 1, 5);
    // Read back: each entry within half a step of its log-probability (those above the clamp).
    const back = decompress(row, 0, 5);
    const lp = logSoftmax64(logits);
    for (const i of [0, 1, 2, 4]) expect(Math.abs(back[i] - lp[i])).toBeLessThan(16 / 65535);
  });

  it('a flat row (scale 0) is all zeros after the header', () => {
    const row = new Uint16Array(logProbRowLength(4)).fill(9);
    compressLogProbs([3, 3, 3, 3], 0, 4, 0, row, 0);
    expect(rowScale(row, 0).scale).toBe(0);
    expect(rowScale(row, 0).minLogProb).toBeCloseTo(-Math.log(4), 6);
    expect(Array.from(row.subarray(4))).toEqual([0, 0, 0, 0]);
  });
});

describe('KlAccumulator and klReport', () => {
  const V = 37;
  const N = 150;
  const r = rng(19);
  const base: number[][] = [];
  const quant: number[][] = [];
  const next: number[] = [];
  for (let t = 0; t < N; t++) {
    const b = Array.from({ length: V }, () => 4 * (r() - 0.5) + (r() < 0.1 ? 3 : 0));
    base.push(b.map((v) => Math.fround(v)));
    quant.push(b.map((v) => Math.fround(v + 0.4 * (r() - 0.5))));
    next.push(Math.floor(r() * V));
  }
  const nv = logProbRowLength(V);
  const rows = new Uint16Array(N * nv);
  base.forEach((b, t) => compressLogProbs(b, 0, V, next[t], rows, t * nv));
  const acc = new KlAccumulator();
  quant.forEach((q, t) => {
    acc.add(q, 0, V, rows, t * nv, next[t]);
    if (t === 74 || t === N - 1) acc.endChunk();
  });
  const report = klReport(acc);

  // The test's own figures, in f64, from the rows read back and the quantized logits.
  const nll: number[] = [];
  const nllBase: number[] = [];
  const kld: number[] = [];
  const pDiff: number[] = [];
  let same = 0;
  for (let t = 0; t < N; t++) {
    const lq = logSoftmax64(quant[t]);
    const lb = decompress(rows, t * nv, V);
    nll.push(-lq[next[t]]);
    nllBase.push(-lb[next[t]]);
    let k = 0;
    for (let i = 0; i < V; i++) if (lb[i] > -16) k += Math.exp(lb[i]) * (lb[i] - lq[i]);
    kld.push(k);
    pDiff.push(Math.exp(lq[next[t]]) - Math.exp(lb[next[t]]));
    if (quant[t].indexOf(Math.max(...quant[t])) === lb.indexOf(Math.max(...lb))) same++;
  }
  const mean = (x: number[]) => x.reduce((s, v) => s + v, 0) / x.length;
  /** Standard error of the mean: sample standard deviation / √n, two-pass. */
  const stderr = (x: number[]) => {
    const m = mean(x);
    return Math.sqrt(x.reduce((s, v) => s + (v - m) ** 2, 0) / (x.length - 1) / x.length);
  };
  const pearson = (a: number[], b: number[]) => {
    const ma = mean(a);
    const mb = mean(b);
    let sab = 0;
    let saa = 0;
    let sbb = 0;
    for (let i = 0; i < a.length; i++) {
      sab += (a[i] - ma) * (b[i] - mb);
      saa += (a[i] - ma) ** 2;
      sbb += (b[i] - mb) ** 2;
    }
    return sab / Math.sqrt(saa * sbb);
  };
  /** Rank fraction·(n−1), interpolated between its neighbours. */
  const quantile = (x: number[], fr: number) => {
    const s = [...x].sort((a, b) => a - b);
    const pos = fr * (s.length - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(lo + 1, s.length - 1);
    return s[lo] + (pos - lo) * (s[hi] - s[lo]);
  };
  const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

  it('perplexities, their ratio, ln-ratio and difference, with perplexity.cpp uncertainties', () => {
    expect(report.count).toBe(N);
    expect(rel(report.pplQ.value, Math.exp(mean(nll)))).toBeLessThan(1e-6);
    expect(rel(report.pplBase.value, Math.exp(mean(nllBase)))).toBeLessThan(1e-6);
    expect(rel(report.pplQ.uncertainty, Math.exp(mean(nll)) * stderr(nll))).toBeLessThan(1e-5);
    expect(rel(report.pplBase.uncertainty, Math.exp(mean(nllBase)) * stderr(nllBase))).toBeLessThan(1e-5);
    expect(report.lnPplCorrelation).toBeCloseTo(pearson(nll, nllBase), 5);
    const diff = nll.map((v, i) => v - nllBase[i]);
    // ln-ratio: the mean of per-token differences; its uncertainty the standard error of that difference.
    expect(report.lnPplRatio.value).toBeCloseTo(mean(diff), 6);
    expect(rel(report.lnPplRatio.uncertainty, stderr(diff))).toBeLessThan(1e-4);
    expect(rel(report.pplRatio.value, Math.exp(mean(diff)))).toBeLessThan(1e-6);
    expect(rel(report.pplRatio.uncertainty, Math.exp(mean(diff)) * stderr(diff))).toBeLessThan(1e-4);
    expect(report.pplDiff.value).toBeCloseTo(Math.exp(mean(nll)) - Math.exp(mean(nllBase)), 5);
  });

  it('KLD mean ± stderr and its percentiles by rank fraction·(n−1); the median of the middle two', () => {
    expect(report.kldMean.value).toBeGreaterThan(1e-3);
    expect(rel(report.kldMean.value, mean(kld))).toBeLessThan(1e-4);
    expect(rel(report.kldMean.uncertainty, stderr(kld))).toBeLessThan(1e-3);
    const labels = report.kldQuantiles.map((q) => q.label);
    expect(labels).toEqual(['Maximum', '99.9%', '99.0%', '95.0%', '90.0%', 'Median', '10.0%', '5.0%', '1.0%', '0.1%', 'Minimum']);
    for (const q of report.kldQuantiles) expect(rel(q.value, quantile(kld, q.fraction))).toBeLessThan(1e-3);
    const sorted = [...kld].sort((a, b) => a - b);
    expect(rel(report.kldQuantiles[5].value, (sorted[74] + sorted[75]) / 2)).toBeLessThan(1e-3); // N = 150: middle two
  });

  it('Δp mean, percentiles (75/25 too) and RMS; same top p ± √(p(1−p)/(n−1))', () => {
    expect(report.pDiffMean.value).toBeCloseTo(mean(pDiff), 5);
    expect(rel(report.pDiffMean.uncertainty, stderr(pDiff))).toBeLessThan(1e-3);
    expect(report.pDiffQuantiles.map((q) => q.label)).toEqual(['Maximum', '99.9%', '99.0%', '95.0%', '90.0%', '75.0%', 'Median', '25.0%', '10.0%', '5.0%', '1.0%', '0.1%', 'Minimum']);
    for (const q of report.pDiffQuantiles) expect(Math.abs(q.value - quantile(pDiff, q.fraction))).toBeLessThan(2e-5);
    const sq = pDiff.map((v) => v * v);
    const rms = Math.sqrt(mean(sq));
    expect(rel(report.pDiffRms.value, rms)).toBeLessThan(1e-3);
    // RMS uncertainty: d√x/dx · stderr(Δp²).
    expect(rel(report.pDiffRms.uncertainty, (0.5 / rms) * stderr(sq))).toBeLessThan(1e-2);
    expect(same).toBeGreaterThan(N / 2);
    expect(same).toBeLessThan(N);
    expect(report.sameTop.value).toBe(same / N);
    expect(report.sameTop.uncertainty).toBeCloseTo(Math.sqrt(((same / N) * (1 - same / N)) / (N - 1)), 12);
  });

  it('the KLD histogram counts every token once, in quarter decades', () => {
    expect(report.kldHistogram.reduce((s, b) => s + b.count, 0)).toBe(N);
    const bin = report.kldHistogram.findIndex((b) => b.lo <= 0.01 && 0.01 < b.hi);
    expect(report.kldHistogram[bin].lo).toBeCloseTo(0.01, 12);
    expect(report.kldHistogram[bin].count).toBe(kld.filter((v) => v >= 0.01 && v < 10 ** -1.75).length);
  });

  it('a chunk line per chunk, the last equal to the summary', () => {
    expect(report.chunks).toHaveLength(2);
    expect(report.chunks[1].kld).toEqual(report.kldMean);
    expect(report.chunks[1].ppl.value).toBe(report.pplQ.value);
    expect(report.chunks[1].sameTop).toEqual(report.sameTop);
    expect(rel(report.chunks[0].kld.value, mean(kld.slice(0, 75)))).toBeLessThan(1e-4);
  });

  it('identical logits: KLD at the compression step only, same top 100%, Δp ≈ 0', () => {
    const a = new KlAccumulator();
    base.forEach((b, t) => a.add(b, 0, V, rows, t * nv, next[t]));
    const same = klReport(a);
    expect(Math.abs(same.kldMean.value)).toBeLessThan(1e-6); // f32 sums and the uint16 step (~1e-4 nats here): llama.cpp shows the same floor
    expect(same.sameTop.value).toBe(1);
    expect(Math.abs(same.pDiffMean.value)).toBeLessThan(1e-5);
    expect(same.lnPplCorrelation).toBeGreaterThan(0.9999);
  });

  it('addToken with the test\'s own per-token figures gives the same report (the whole-text eval\'s path)', () => {
    const a = new KlAccumulator();
    for (let t = 0; t < N; t++) {
      const lb = decompress(rows, t * nv, V);
      a.addToken(nll[t], nllBase[t], kld[t], quant[t].indexOf(Math.max(...quant[t])) === lb.indexOf(Math.max(...lb)));
    }
    const r2 = klReport(a);
    expect(r2.sameTop).toEqual(report.sameTop);
    expect(rel(r2.kldMean.value, report.kldMean.value)).toBeLessThan(1e-4);
    expect(rel(r2.pplQ.value, report.pplQ.value)).toBeLessThan(1e-6);
    expect(r2.lnPplCorrelation).toBeCloseTo(report.lnPplCorrelation, 5);
  });

  it('prints llama-perplexity\'s labels in its order and printf widths', () => {
    const text = formatKlReport(report);
    const lines = text.trimEnd().split('\n');
    const labels = lines.map((l) => l.split(':')[0]);
    expect(labels).toEqual([
      '====== Perplexity statistics ======', 'Mean PPL(Q)                   ', 'Mean PPL(base)                ', 'Cor(ln(PPL(Q)), ln(PPL(base)))',
      'Mean ln(PPL(Q)/PPL(base))     ', 'Mean PPL(Q)/PPL(base)         ', 'Mean PPL(Q)-PPL(base)         ', '',
      '====== KL divergence statistics ======', 'Mean    KLD', 'Maximum KLD', '99.9%   KLD', '99.0%   KLD', '95.0%   KLD', '90.0%   KLD',
      'Median  KLD', '10.0%   KLD', ' 5.0%   KLD', ' 1.0%   KLD', ' 0.1%   KLD', 'Minimum KLD', '',
      '====== Token probability statistics ======', 'Mean    Δp', 'Maximum Δp', '99.9%   Δp', '99.0%   Δp', '95.0%   Δp', '90.0%   Δp',
      '75.0%   Δp', 'Median  Δp', '25.0%   Δp', '10.0%   Δp', ' 5.0%   Δp', ' 1.0%   Δp', ' 0.1%   Δp', 'Minimum Δp', 'RMS Δp    ', 'Same top p',
    ]);
    // "%10.6lf ± %10.6lf" and "%6.3lf ± %5.3lf %%".
    expect(lines[1]).toBe(`Mean PPL(Q)                   : ${report.pplQ.value.toFixed(6).padStart(10)} ± ${report.pplQ.uncertainty.toFixed(6).padStart(10)}`);
    expect(lines.at(-1)).toBe(`Same top p: ${(100 * same / N).toFixed(3).padStart(6)} ± ${(100 * report.sameTop.uncertainty).toFixed(3).padStart(5)} %`);
  });
});

describe('perplexity.cpp helpers', () => {
  it('mean_and_uncertainty: 0 uncertainty for 10 values or fewer', () => {
    expect(meanAndUncertainty(10, 30, 10)).toEqual({ value: 1, uncertainty: 0 });
    // 11 values 0..10: mean 5, E[x²] = 35, variance 10, /(n−1) = 1.
    expect(meanAndUncertainty(55, 385, 11)).toEqual({ value: 5, uncertainty: 1 });
  });
  it('percentile in f32 at fraction·(n−1); median of an odd count the middle value', () => {
    const s = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(percentileF32(s, 0.999)).toBeCloseTo(9.99, 5);
    expect(percentileF32(s, 0.05)).toBeCloseTo(0.5, 6);
    expect(percentileF32(s, 0)).toBe(0);
    expect(percentileF32(s, 1)).toBe(10);
    expect(medianF32(s)).toBe(5);
    expect(medianF32(Float32Array.from([1, 2, 4, 8]))).toBe(3);
  });
});
