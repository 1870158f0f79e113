// The optimizer side of training: AdamW (Loshchilov & Hutter, decoupled weight decay, as
// torch.optim.AdamW computes it), clipping of the global gradient norm, and a cosine
// learning-rate schedule with linear warmup. Nothing here is random; with the same
// gradients every step gives the same bits.
import type { Param } from './model.ts';

export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay λ: p ← p − lr·λ·p before the Adam step; matrices only (norm weights are not decayed). */
  weightDecay?: number;
}

/** AdamW over a set of Params: f64 moments, f32 master values. */
export class AdamW {
  private readonly m = new Map<Param, Float64Array>();
  private readonly v = new Map<Param, Float64Array>();
  private t = 0;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;

  constructor(
    readonly params: readonly Param[],
    options: AdamWOptions = {},
  ) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    for (const p of params) {
      this.m.set(p, new Float64Array(p.value.length));
      this.v.set(p, new Float64Array(p.value.length));
    }
  }

  /** Steps taken. */
  get steps(): number {
    return this.t;
  }

  /** One update of every parameter from its grad, at learning rate lr. */
  step(lr: number): void {
    this.t++;
    const { beta1: b1, beta2: b2, eps } = this;
    const c1 = 1 - Math.pow(b1, this.t);
    const c2 = 1 - Math.pow(b2, this.t);
    for (const p of this.params) {
      const m = this.m.get(p)!;
      const v = this.v.get(p)!;
      const decay = p.shape.length >= 2 ? 1 - lr * this.weightDecay : 1;
      const w = p.value;
      const g = p.grad;
      for (let i = 0; i < w.length; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        const update = (m[i] / c1) / (Math.sqrt(v[i] / c2) + eps);
        w[i] = w[i] * decay - lr * update;
      }
    }
  }
}

/** The L2 norm of all the parameters' gradients together. */
export function gradNorm(params: readonly Param[]): number {
  let s = 0;
  for (const p of params) for (const g of p.grad) s += g * g;
  return Math.sqrt(s);
}

/**
 * Scales every gradient by maxNorm / norm when the global norm exceeds maxNorm
 * (torch.nn.utils.clip_grad_norm_); returns the norm before clipping.
 */
export function clipGradNorm(params: readonly Param[], maxNorm: number): number {
  const norm = gradNorm(params);
  if (norm > maxNorm && Number.isFinite(norm)) {
    const k = maxNorm / norm;
    for (const p of params) for (let i = 0; i < p.grad.length; i++) p.grad[i] *= k;
  }
  return norm;
}

export interface CosineSchedule {
  /** Peak learning rate. */
  lr: number;
  /** Steps of linear warmup from lr/warmup to lr. */
  warmup: number;
  /** Steps in all. */
  steps: number;
  /** The last step's rate as a fraction of lr (default 0.1). */
  minRatio?: number;
}

/** The learning rate of step `step` (1-based): linear warmup, then a half cosine from lr down to lr·minRatio at the last step. */
export function cosineLr(s: CosineSchedule, step: number): number {
  if (step < 1 || step > s.steps) throw new RangeError(`step ${step} is outside 1..${s.steps}`);
  if (step <= s.warmup) return (s.lr * step) / s.warmup;
  const min = s.lr * (s.minRatio ?? 0.1);
  const span = s.steps - s.warmup;
  const progress = span <= 1 ? 1 : (step - s.warmup - 1) / (span - 1);
  return min + 0.5 * (s.lr - min) * (1 + Math.cos(Math.PI * progress));
}

/** mulberry32: a small seeded generator (the training data order), uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seeded Fisher-Yates permutation of 0..n-1. */
export function seededPermutation(n: number, seed: number): number[] {
  const r = seededRandom(seed);
  const out = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
