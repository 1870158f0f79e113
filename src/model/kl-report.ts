// The KL report of `llama-perplexity --kl-divergence` (llama.cpp tools/perplexity/perplexity.cpp),
// formula by formula: the base model's log-probabilities kept per token in perplexity.cpp's
// compressed form (two f32 and one uint16 per vocabulary entry, what its `_logits_` file
// holds), each token of the quantized model scored against them, the sums it keeps, its
// uncertainty estimates, its percentile indexing and its printed table.
//
// perplexity.cpp computes most per-token values in f32 (the logits are f32, and C++ keeps
// float*float in float); Math.fround marks each such rounding so that the sums are the ones
// llama.cpp forms, up to expf's last ulp and the order its threads add their partial sums in.

const f = Math.fround;

/** uint16 entries per token in perplexity.cpp's compressed log-probs: scale and min as two f32, the vocabulary padded to even. */
export function logProbRowLength(nVocab: number): number {
  return 2 * Math.floor((nVocab + 1) / 2) + 4;
}

/** perplexity.cpp's nearest_int: f32 round half to even (the 1.5·2^23 trick; exact below 2^22). */
function nearestInt(x: number): number {
  return f(x + 12582912) - 12582912;
}

const scratch = new DataView(new ArrayBuffer(8));

/**
 * One token's base log-probabilities in perplexity.cpp's compressed form, written at
 * `row[at .. at + logProbRowLength(n)]`: f32 scale and f32 min_log_prob (as four uint16, in
 * the machine's little-endian order), then per entry round((logit − min_logit)/scale) with
 * min_logit clamped to max_logit − 16, entries at or below it 0. Returns the token `tok`'s
 * negative log-likelihood as perplexity.cpp returns it (f32 sums, a double).
 */
export function compressLogProbs(logits: ArrayLike<number>, offset: number, nVocab: number, tok: number, row: Uint16Array, at: number): number {
  let max = f(logits[offset]);
  let min = max;
  for (let i = 1; i < nVocab; i++) {
    const v = f(logits[offset + i]);
    if (v > max) max = v;
    if (v < min) min = v;
  }
  min = Math.max(min, f(max - 16));
  let sumExp = 0;
  for (let i = 0; i < nVocab; i++) sumExp += f(Math.exp(f(f(logits[offset + i]) - max)));
  const logSumExp = f(Math.log(sumExp));
  const minLogProb = f(f(min - max) - logSumExp);
  const scale = f(f(max - min) / 65535);
  scratch.setFloat32(0, scale, true);
  scratch.setFloat32(4, minLogProb, true);
  for (let k = 0; k < 4; k++) row[at + k] = scratch.getUint16(2 * k, true);
  const q = at + 4;
  const width = logProbRowLength(nVocab) - 4;
  if (scale !== 0) {
    const inv = f(1 / scale);
    // A value that rounds to 65536 wraps to 0 as C's int-to-uint16 conversion does (Uint16Array wraps alike).
    for (let i = 0; i < nVocab; i++) {
      const v = f(logits[offset + i]);
      row[q + i] = v > min ? nearestInt(f(inv * f(v - min))) : 0;
    }
  } else {
    row.fill(0, q, q + nVocab);
  }
  // perplexity.cpp never writes the padding entry of an odd vocabulary; its buffer starts zeroed.
  row.fill(0, q + nVocab, q + width);
  return f(f(max + logSumExp) - f(logits[offset + tok]));
}

/** A compressed row's f32 scale and min_log_prob. */
export function rowScale(row: Uint16Array, at: number): { scale: number; minLogProb: number } {
  for (let k = 0; k < 4; k++) scratch.setUint16(2 * k, row[at + k], true);
  return { scale: scratch.getFloat32(0, true), minLogProb: scratch.getFloat32(4, true) };
}

/** perplexity.cpp's running sums (kl_divergence_result), and each token's KLD and Δp (f32, as its vectors hold them). */
export class KlAccumulator {
  sumNll = 0;
  sumNll2 = 0;
  sumNllBase = 0;
  sumNllBase2 = 0;
  sumNllNllBase = 0;
  sumKld = 0;
  sumKld2 = 0;
  sumPDiff = 0;
  sumPDiff2 = 0;
  sumPDiff4 = 0;
  maxPDiff = 0;
  nSameTop = 0;
  count = 0;
  readonly kld: number[] = [];
  readonly pDiff: number[] = [];
  /** The per-chunk line llama-perplexity prints after each chunk (running figures). */
  readonly chunks: ChunkLine[] = [];

  /**
   * One token: the quantized model's logits at `logits[offset ..]`, the base's compressed row
   * at `row[at ..]`, `tok` the true next token. perplexity.cpp's log_softmax(…, kld).
   */
  add(logits: ArrayLike<number>, offset: number, nVocab: number, row: Uint16Array, at: number, tok: number): void {
    let max = f(logits[offset]);
    let imax = 0;
    for (let i = 1; i < nVocab; i++) {
      const v = f(logits[offset + i]);
      if (v > max) {
        max = v;
        imax = i;
      }
    }
    let sumExp = 0;
    for (let i = 0; i < nVocab; i++) sumExp += f(Math.exp(f(f(logits[offset + i]) - max)));
    const logSumExp = f(Math.log(sumExp));
    const { scale, minLogProb } = rowScale(row, at);
    const q = at + 4;

    const nll = f(f(max + logSumExp) - f(logits[offset + tok]));
    const nllBase = -f(f(scale * row[q + tok]) + minLogProb);
    const logNorm = f(max + logSumExp);
    let kld = 0;
    let imaxBase = -1;
    let baseMax = 0;
    for (let i = 0; i < nVocab; i++) {
      const logPBase = f(f(scale * row[q + i]) + minLogProb);
      if (i === 0 || logPBase > baseMax) {
        baseMax = logPBase;
        imaxBase = i;
      }
      // Entries below e^-16 are left out of the sum, as perplexity.cpp does.
      if (logPBase > -16) {
        const pBase = f(Math.exp(logPBase));
        kld += f(pBase * f(f(logPBase - f(logits[offset + i])) + logNorm));
      }
    }
    this.addToken(nll, nllBase, kld, imax === imaxBase);
  }

  /**
   * One token from its figures: the quantized and the base model's negative log-likelihood of
   * the true token, the KLD, whether the argmaxes agree. add() computes them as perplexity.cpp
   * does; the whole-text eval hands over its own (f64, from the uncompressed base).
   */
  addToken(nll: number, nllBase: number, kld: number, sameTop: boolean): void {
    this.sumNll += nll;
    this.sumNll2 += f(nll * nll);
    this.sumNllBase += nllBase;
    this.sumNllBase2 += f(nllBase * nllBase);
    this.sumNllNllBase += f(nll * nllBase);
    this.sumKld += kld;
    this.sumKld2 += kld * kld;
    this.count++;
    if (sameTop) this.nSameTop++;

    const pDiff = f(f(Math.exp(-nll)) - f(Math.exp(-nllBase)));
    this.sumPDiff += pDiff;
    const pDiff2 = f(pDiff * pDiff);
    this.sumPDiff2 += pDiff2;
    this.sumPDiff4 += pDiff2 * pDiff2;
    this.maxPDiff = Math.max(this.maxPDiff, Math.abs(pDiff));
    this.kld.push(f(kld));
    this.pDiff.push(pDiff);
  }

  /** Closes a chunk: records llama-perplexity's per-chunk line (figures over all tokens so far). */
  endChunk(): void {
    const lnQ = meanAndUncertainty(this.sumNll, this.sumNll2, this.count);
    const lnBase = meanAndUncertainty(this.sumNllBase, this.sumNllBase2, this.count);
    const cov = covariance(this.sumNll, this.sumNllBase, this.sumNllNllBase, this.count);
    const kl = meanAndUncertainty(this.sumKld, this.sumKld2, this.count);
    const mse = meanAndUncertainty(this.sumPDiff2, this.sumPDiff4, this.count);
    const rms = Math.sqrt(mse.value);
    const top = this.nSameTop / this.count;
    this.chunks.push({
      ppl: { value: Math.exp(lnQ.value), uncertainty: Math.exp(lnQ.value) * lnQ.uncertainty },
      lnPplRatio: { value: lnQ.value - lnBase.value, uncertainty: Math.sqrt(lnQ.uncertainty ** 2 + lnBase.uncertainty ** 2 - 2 * cov) },
      kld: kl,
      rmsPDiff: { value: rms, uncertainty: (0.5 / rms) * mse.uncertainty },
      sameTop: { value: top, uncertainty: Math.sqrt((top * (1 - top)) / (this.count - 1)) },
    });
  }
}

export interface Estimate {
  value: number;
  uncertainty: number;
}

export interface ChunkLine {
  ppl: Estimate;
  lnPplRatio: Estimate;
  kld: Estimate;
  rmsPDiff: Estimate;
  sameTop: Estimate;
}

/** perplexity.cpp's mean_and_uncertainty: the mean and the standard error of the mean (0 for 10 values or fewer). */
export function meanAndUncertainty(sum: number, sum2: number, count: number): Estimate {
  if (count < 1) return { value: 0, uncertainty: 0 };
  const mean = sum / count;
  const variance = sum2 / count - mean * mean;
  return { value: mean, uncertainty: variance > 0 && count > 10 ? Math.sqrt(variance / (count - 1)) : 0 };
}

/** perplexity.cpp's covariance of two means (0 under 10 values). */
export function covariance(sumA: number, sumB: number, sumAB: number, count: number): number {
  if (count < 10) return 0;
  return (sumAB / count - (sumA / count) * (sumB / count)) / (count - 1);
}

/** perplexity.cpp's percentile of sorted f32 values: linear interpolation at fraction·(n−1), in f32. */
export function percentileF32(sorted: ArrayLike<number>, fraction: number): number {
  const fr = f(fraction);
  if (fr <= 0) return sorted[0];
  if (fr >= 1) return sorted[sorted.length - 1];
  let p = f(fr * (sorted.length - 1));
  const ip = Math.floor(p);
  p = f(p - ip);
  return f(f(f(1 - p) * sorted[ip]) + f(p * sorted[Math.min(ip + 1, sorted.length - 1)]));
}

/** perplexity.cpp's median: the middle value, or 0.5f times the sum of the middle two. */
export function medianF32(sorted: ArrayLike<number>): number {
  const n = sorted.length;
  return n % 2 === 0 ? f(0.5 * f(sorted[n / 2] + sorted[n / 2 - 1])) : sorted[(n - 1) / 2];
}

/** The percentiles llama-perplexity prints, highest first, with the labels it prints them under. */
export const KLD_QUANTILES = [
  ['Maximum', 1],
  ['99.9%', 0.999],
  ['99.0%', 0.99],
  ['95.0%', 0.95],
  ['90.0%', 0.9],
  ['Median', 0.5],
  ['10.0%', 0.1],
  [' 5.0%', 0.05],
  [' 1.0%', 0.01],
  [' 0.1%', 0.001],
  ['Minimum', 0],
] as const;
export const PDIFF_QUANTILES = [
  ['Maximum', 1],
  ['99.9%', 0.999],
  ['99.0%', 0.99],
  ['95.0%', 0.95],
  ['90.0%', 0.9],
  ['75.0%', 0.75],
  ['Median', 0.5],
  ['25.0%', 0.25],
  ['10.0%', 0.1],
  [' 5.0%', 0.05],
  [' 1.0%', 0.01],
  [' 0.1%', 0.001],
  ['Minimum', 0],
] as const;

export interface Quantile {
  label: string;
  fraction: number;
  value: number;
}

export interface KlReport {
  /** Scored tokens. llama-perplexity prints the summary only from 100 on. */
  count: number;
  pplQ: Estimate;
  pplBase: Estimate;
  /** Correlation of the per-token ln-probabilities' means (Cov / (σQ·σbase)). */
  lnPplCorrelation: number;
  lnPplRatio: Estimate;
  pplRatio: Estimate;
  pplDiff: Estimate;
  kldMean: Estimate;
  /** Maximum, 99.9 … 0.1 %, Minimum (the median at 0.5), in the printed order. */
  kldQuantiles: Quantile[];
  pDiffMean: Estimate;
  pDiffQuantiles: Quantile[];
  pDiffRms: Estimate;
  sameTop: Estimate;
  chunks: ChunkLine[];
  /** Tokens per KLD bin (quarter decades from 1e-6 to 10; the first bin from 0, the last open): the page's distribution chart. */
  kldHistogram: HistogramBin[];
}

export interface HistogramBin {
  lo: number;
  hi: number;
  count: number;
}

/** Counts of `values` in quarter-decade bins [10^(k/4), 10^((k+1)/4)), k = −24 … 3; below 1e-6 (and ≤ 0) in the first, 10 and above in the last. */
export function kldHistogram(values: readonly number[]): HistogramBin[] {
  const bins: HistogramBin[] = [];
  for (let k = -24; k < 4; k++) bins.push({ lo: k === -24 ? 0 : 10 ** (k / 4), hi: k === 3 ? Infinity : 10 ** ((k + 1) / 4), count: 0 });
  for (const v of values) {
    const k = v > 0 ? Math.floor(4 * Math.log10(v)) : -Infinity;
    bins[Math.min(Math.max(k, -24), 3) + 24].count++;
  }
  return bins;
}

function quantiles(values: readonly number[], table: readonly (readonly [string, number])[]): Quantile[] {
  const sorted = Float32Array.from(values).sort();
  return table.map(([label, fraction]) => ({
    label: label.trim(),
    fraction,
    value: fraction === 0.5 ? medianF32(sorted) : percentileF32(sorted, fraction),
  }));
}

/** The summary llama-perplexity prints after the last chunk, from the accumulated sums. */
export function klReport(acc: KlAccumulator): KlReport {
  const n = acc.count;
  if (n < 2) throw new Error(`a KL report needs at least 2 scored tokens, not ${n}`);
  const lnQ = meanAndUncertainty(acc.sumNll, acc.sumNll2, n);
  const lnBase = meanAndUncertainty(acc.sumNllBase, acc.sumNllBase2, n);
  const pplQ = Math.exp(lnQ.value);
  const pplBase = Math.exp(lnBase.value);
  const cov = covariance(acc.sumNll, acc.sumNllBase, acc.sumNllNllBase, n);
  const lnRatio = lnQ.value - lnBase.value;
  const lnRatioUnc = Math.sqrt(lnQ.uncertainty ** 2 + lnBase.uncertainty ** 2 - 2 * cov);
  const pplUnc = pplQ * lnQ.uncertainty;
  const pplBaseUnc = pplBase * lnBase.uncertainty;
  const mse = meanAndUncertainty(acc.sumPDiff2, acc.sumPDiff4, n);
  const rms = Math.sqrt(mse.value);
  const top = acc.nSameTop / n;
  return {
    count: n,
    pplQ: { value: pplQ, uncertainty: pplUnc },
    pplBase: { value: pplBase, uncertainty: pplBaseUnc },
    lnPplCorrelation: cov / (lnQ.uncertainty * lnBase.uncertainty),
    lnPplRatio: { value: lnRatio, uncertainty: lnRatioUnc },
    pplRatio: { value: Math.exp(lnRatio), uncertainty: Math.exp(lnRatio) * lnRatioUnc },
    pplDiff: { value: pplQ - pplBase, uncertainty: Math.sqrt(pplUnc ** 2 + pplBaseUnc ** 2 - 2 * pplQ * pplBase * cov) },
    kldMean: meanAndUncertainty(acc.sumKld, acc.sumKld2, n),
    kldQuantiles: quantiles(acc.kld, KLD_QUANTILES),
    pDiffMean: meanAndUncertainty(acc.sumPDiff, acc.sumPDiff2, n),
    pDiffQuantiles: quantiles(acc.pDiff, PDIFF_QUANTILES),
    pDiffRms: { value: rms, uncertainty: (0.5 / rms) * mse.uncertainty },
    sameTop: { value: top, uncertainty: Math.sqrt((top * (1 - top)) / (n - 1)) },
    chunks: acc.chunks.slice(),
    kldHistogram: kldHistogram(acc.kld),
  };
}

/** C's %W.Pf (nan and inf as glibc spells them; JS keeps no NaN sign, so never "-nan"). */
export function printfFixed(value: number, width: number, precision: number): string {
  const s = Number.isNaN(value) ? 'nan' : Number.isFinite(value) ? value.toFixed(precision) : value > 0 ? 'inf' : '-inf';
  return s.padStart(width);
}

const p = printfFixed;

/** The per-chunk lines llama-perplexity prints (its header, then one line per chunk). */
export function formatChunkLines(report: KlReport): string {
  const lines = ['chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p'];
  report.chunks.forEach((c, i) => {
    lines.push(
      `${String(i + 1).padStart(4)}` +
        `    ${p(c.ppl.value, 9, 4)} ± ${p(c.ppl.uncertainty, 9, 4)}` +
        `    ${p(c.lnPplRatio.value, 10, 5)} ± ${p(c.lnPplRatio.uncertainty, 10, 5)}` +
        `    ${p(c.kld.value, 10, 5)} ± ${p(c.kld.uncertainty, 10, 5)}` +
        `    ${p(100 * c.rmsPDiff.value, 6, 3)} ± ${p(100 * c.rmsPDiff.uncertainty, 6, 3)} %` +
        `    ${p(100 * c.sameTop.value, 6, 3)} ± ${p(100 * c.sameTop.uncertainty, 6, 3)} %`,
    );
  });
  return `${lines.join('\n')}\n`;
}

/** The summary exactly as llama-perplexity prints it (labels, order, printf widths). */
export function formatKlReport(r: KlReport): string {
  const out: string[] = [];
  out.push('====== Perplexity statistics ======');
  out.push(`Mean PPL(Q)                   : ${p(r.pplQ.value, 10, 6)} ± ${p(r.pplQ.uncertainty, 10, 6)}`);
  out.push(`Mean PPL(base)                : ${p(r.pplBase.value, 10, 6)} ± ${p(r.pplBase.uncertainty, 10, 6)}`);
  out.push(`Cor(ln(PPL(Q)), ln(PPL(base))): ${p(100 * r.lnPplCorrelation, 6, 2)}%`);
  out.push(`Mean ln(PPL(Q)/PPL(base))     : ${p(r.lnPplRatio.value, 10, 6)} ± ${p(r.lnPplRatio.uncertainty, 10, 6)}`);
  out.push(`Mean PPL(Q)/PPL(base)         : ${p(r.pplRatio.value, 10, 6)} ± ${p(r.pplRatio.uncertainty, 10, 6)}`);
  out.push(`Mean PPL(Q)-PPL(base)         : ${p(r.pplDiff.value, 10, 6)} ± ${p(r.pplDiff.uncertainty, 10, 6)}`);
  out.push('');
  out.push('====== KL divergence statistics ======');
  out.push(`Mean    KLD: ${p(r.kldMean.value, 10, 6)} ± ${p(r.kldMean.uncertainty, 10, 6)}`);
  for (const [i, [label]] of KLD_QUANTILES.entries()) out.push(`${(label + ' ').padEnd(8)}KLD: ${p(r.kldQuantiles[i].value, 10, 6)}`);
  out.push('');
  out.push('====== Token probability statistics ======');
  out.push(`Mean    Δp: ${p(100 * r.pDiffMean.value, 6, 3)} ± ${p(100 * r.pDiffMean.uncertainty, 5, 3)} %`);
  for (const [i, [label]] of PDIFF_QUANTILES.entries()) out.push(`${(label + ' ').padEnd(8)}Δp: ${p(100 * r.pDiffQuantiles[i].value, 6, 3)}%`);
  out.push(`RMS Δp    : ${p(100 * r.pDiffRms.value, 6, 3)} ± ${p(100 * r.pDiffRms.uncertainty, 5, 3)} %`);
  out.push(`Same top p: ${p(100 * r.sameTop.value, 6, 3)} ± ${p(100 * r.sameTop.uncertainty, 5, 3)} %`);
  return `${out.join('\n')}\n`;
}
