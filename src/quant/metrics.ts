// Error metrics of a quantized tensor against its f32 original. Everything is built from
// mergeable sums (ErrorSums), so per-tensor, per-chunk (GPU) and whole-model figures come
// from one formula; model aggregates are weighted by element count by construction.

export interface ErrorSums {
  count: number;
  sumSqErr: number;
  sumAbsErr: number;
  maxAbsErr: number;
  sumSqRef: number;
  sumSqDeq: number;
  /** Σ ref·deq, for the cosine. */
  dot: number;
}

export interface ErrorMetrics {
  rmse: number;
  maxAbs: number;
  meanAbs: number;
  /** 10·log10(Σref² / Σerr²); Infinity when exact. */
  snrDb: number;
  cosine: number;
  /** ‖err‖ / ‖ref‖ (relative Frobenius error). */
  relFrobenius: number;
}

export function emptySums(): ErrorSums {
  return { count: 0, sumSqErr: 0, sumAbsErr: 0, maxAbsErr: 0, sumSqRef: 0, sumSqDeq: 0, dot: 0 };
}

/** Accumulate the error of `deq` against `ref` into `into` (f64 sums). */
export function accumulateErrors(ref: ArrayLike<number>, deq: ArrayLike<number>, into: ErrorSums = emptySums()): ErrorSums {
  if (ref.length !== deq.length) throw new RangeError(`length mismatch: ${ref.length} vs ${deq.length}`);
  let sumSqErr = 0, sumAbsErr = 0, maxAbsErr = into.maxAbsErr, sumSqRef = 0, sumSqDeq = 0, dot = 0;
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i], d = deq[i], e = d - r, a = Math.abs(e);
    sumSqErr += e * e;
    sumAbsErr += a;
    if (a > maxAbsErr || Number.isNaN(a)) maxAbsErr = a;
    sumSqRef += r * r;
    sumSqDeq += d * d;
    dot += r * d;
  }
  return addSlabSums(into, ref.length, [sumSqErr, sumAbsErr, maxAbsErr, sumSqRef, sumSqDeq, dot]);
}

/**
 * Adds one slab's sums (sumSqErr, sumAbsErr, maxAbsErr, sumSqRef, sumSqDeq, dot, in that order)
 * to `into`. The slab's maxAbsErr is a running maximum that started from `into`'s, so it replaces it.
 */
export function addSlabSums(into: ErrorSums, count: number, slab: ArrayLike<number>): ErrorSums {
  into.count += count;
  into.sumSqErr += slab[0];
  into.sumAbsErr += slab[1];
  into.maxAbsErr = slab[2];
  into.sumSqRef += slab[3];
  into.sumSqDeq += slab[4];
  into.dot += slab[5];
  return into;
}

export function mergeSums(a: ErrorSums, b: ErrorSums): ErrorSums {
  return {
    count: a.count + b.count,
    sumSqErr: a.sumSqErr + b.sumSqErr,
    sumAbsErr: a.sumAbsErr + b.sumAbsErr,
    maxAbsErr: Math.max(a.maxAbsErr, b.maxAbsErr),
    sumSqRef: a.sumSqRef + b.sumSqRef,
    sumSqDeq: a.sumSqDeq + b.sumSqDeq,
    dot: a.dot + b.dot,
  };
}

export function metricsFromSums(s: ErrorSums): ErrorMetrics {
  const n = Math.max(s.count, 1);
  const normProduct = Math.sqrt(s.sumSqRef * s.sumSqDeq);
  return {
    rmse: Math.sqrt(s.sumSqErr / n),
    maxAbs: s.maxAbsErr,
    meanAbs: s.sumAbsErr / n,
    snrDb: s.sumSqErr === 0 ? Infinity : 10 * Math.log10(s.sumSqRef / s.sumSqErr),
    // Two all-zero tensors are identical: cosine 1.
    cosine: normProduct === 0 ? (s.sumSqErr === 0 ? 1 : 0) : s.dot / normProduct,
    relFrobenius: s.sumSqRef === 0 ? (s.sumSqErr === 0 ? 0 : Infinity) : Math.sqrt(s.sumSqErr / s.sumSqRef),
  };
}

export function errorMetrics(ref: ArrayLike<number>, deq: ArrayLike<number>): ErrorMetrics {
  return metricsFromSums(accumulateErrors(ref, deq));
}

export interface Histogram {
  /** Left edge of the first bin. */
  min: number;
  /** Right edge of the last bin. */
  max: number;
  counts: number[];
  /** Values outside [min, max), counted apart so that the chart never hides them. */
  below: number;
  above: number;
}

/** Histogram of `values` over [min, max) in `bins` equal bins. */
export function histogram(values: ArrayLike<number>, min: number, max: number, bins: number): Histogram {
  const counts = new Array<number>(bins).fill(0);
  let below = 0, above = 0;
  const scale = bins / (max - min);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < min) below++;
    else if (v >= max || Number.isNaN(v)) above++;
    else counts[Math.min(bins - 1, Math.floor((v - min) * scale))]++;
  }
  return { min, max, counts, below, above };
}

/**
 * A symmetric error range shared by the types being compared, so their histograms
 * overlay on one axis: ± the largest max-abs error, never zero width.
 */
export function sharedErrorRange(maxAbsErrors: readonly number[]): [number, number] {
  const m = Math.max(...maxAbsErrors.filter(Number.isFinite), 0);
  const half = m > 0 ? m * 1.0001 : 1e-6;
  return [-half, half];
}

/** Histogram of the error deq - ref. */
export function errorHistogram(ref: ArrayLike<number>, deq: ArrayLike<number>, min: number, max: number, bins: number): Histogram {
  const err = new Float64Array(ref.length);
  for (let i = 0; i < ref.length; i++) err[i] = deq[i] - ref[i];
  return histogram(err, min, max, bins);
}
