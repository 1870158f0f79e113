// The pieces every family's forward pass is built from, each as llama.cpp's CPU backend
// computes it (ggml-cpu ops.cpp / vec.h): RMSNorm, RoPE (NORM and NEOX pairs, frequency
// factors, attn_factor), causal grouped-query attention with an optional sliding window
// and score soft-capping, the gated FFN activations (SwiGLU; GeGLU through ggml's f16
// GELU table), biases and soft-capping.
//
// Numerics: dot products and sums accumulate in f64 and are rounded to f32 when stored
// (closer to exact than ggml's f32 SIMD sums); where ggml rounds on purpose (the GELU
// table's f16 input and output), we round the same way, since that is no accident of
// summation order but part of what llama.cpp computes.
import { f16BitsToF32, f32ToF16Bits } from '../../formats/float16.ts';
import type { RopeStyle } from './config.ts';

/** RMSNorm of n rows: x / sqrt(mean(x²) + eps) · weight (ggml_rms_norm, then mul). */
export function rmsNorm(x: Float32Array, n: number, d: number, weight: Float32Array, eps: number): Float32Array {
  const out = new Float32Array(n * d);
  for (let t = 0; t < n; t++) {
    const o = t * d;
    let sum = 0;
    for (let j = 0; j < d; j++) sum += x[o + j] * x[o + j];
    const scale = 1 / Math.sqrt(sum / d + eps);
    for (let j = 0; j < d; j++) out[o + j] = Math.fround(x[o + j] * scale) * weight[j];
  }
  return out;
}

/** x += y, element by element (a residual add). */
export function addInPlace(x: Float32Array, y: Float32Array): void {
  for (let j = 0; j < x.length; j++) x[j] += y[j];
}

/** Adds a bias of `bias.length` to each of the rows of y (ggml_add with broadcast). */
export function addBias(y: Float32Array, bias: Float32Array): Float32Array {
  const d = bias.length;
  for (let j = 0; j < y.length; j++) y[j] += bias[j % d];
  return y;
}

/** Columns [from, from + width) of n rows of `cols` values (a fused product's part). */
export function sliceColumns(y: Float32Array, n: number, cols: number, from: number, width: number): Float32Array {
  const out = new Float32Array(n * width);
  for (let t = 0; t < n; t++) out.set(y.subarray(t * cols + from, t * cols + from + width), t * width);
  return out;
}

/** cap · tanh(x / cap) in place (gemma2's soft-capping, as ggml_scale, ggml_tanh, ggml_scale). */
export function softcapInPlace(x: Float32Array, cap: number): void {
  const inv = Math.fround(1 / cap);
  for (let j = 0; j < x.length; j++) x[j] = Math.fround(Math.tanh(Math.fround(x[j] * inv))) * cap;
}

/** silu(gate) · up into gate (ggml_swiglu_split). */
export function swiglu(gate: Float32Array, up: Float32Array): Float32Array {
  for (let j = 0; j < gate.length; j++) {
    const g = gate[j];
    gate[j] = (g / (1 + Math.exp(-g))) * up[j];
  }
  return gate;
}

/** ggml_gelu_f32: the tanh approximation, in f32 steps. */
function geluF32(x: number): number {
  const f = Math.fround;
  const inner = f(f(0.7978845608028654 * x) * f(1 + f(f(0.044715 * x) * x)));
  return f(f(0.5 * x) * f(1 + f(Math.tanh(inner))));
}

let geluTable: Float32Array | null = null;

/** ggml_table_gelu_f16: GELU of every f16 value, rounded to f16 (ggml-cpu.c's init). */
export function geluF16Table(): Float32Array {
  if (geluTable) return geluTable;
  geluTable = new Float32Array(1 << 16);
  for (let i = 0; i < 1 << 16; i++) geluTable[i] = f16BitsToF32(f32ToF16Bits(geluF32(f16BitsToF32(i))));
  return geluTable;
}

/**
 * gelu(gate) · up into gate, as ggml_vec_geglu_f32 with GGML_GELU_FP16 (set in ggml-cpu's
 * vec.h): the input rounded to f16, GELU looked up in the f16 table; x ≤ -10 gives 0 and
 * x ≥ 10 gives x.
 */
export function geglu(gate: Float32Array, up: Float32Array): Float32Array {
  const table = geluF16Table();
  for (let j = 0; j < gate.length; j++) {
    const x = gate[j];
    const g = x <= -10 ? 0 : x >= 10 ? x : table[f32ToF16Bits(x)];
    gate[j] = g * up[j];
  }
  return gate;
}

// ---- RoPE ----------------------------------------------------------------------------------

export interface RopeParams {
  nRot: number;
  style: RopeStyle;
  freqBase: number;
  /** 1 / linear scaling factor. */
  freqScale: number;
  /** Per-pair frequency divisors (rope_freqs, rope_factors_*), or null. */
  factors: Float32Array | null;
  /** ggml's attn_factor (mscale): cos and sin are multiplied by it. */
  attnFactor: number;
}

/** cos/sin per rotated pair and position, as ggml's rope cache (f32 angles), cached per position. */
export class RopeTable {
  private readonly cache = new Map<number, Float32Array>();

  constructor(readonly p: RopeParams) {
    if (p.factors && p.factors.length !== p.nRot / 2) throw new Error(`rope frequency factors have ${p.factors.length} values, expected ${p.nRot / 2}`);
  }

  /** ggml_rope_cache_init / rope_yarn with ext_factor 0: theta = freq_scale · pos · base^(-2i/n_rot) / factor. */
  at(pos: number): Float32Array {
    let cached = this.cache.get(pos);
    if (cached) return cached;
    const { nRot, freqBase, freqScale, factors, attnFactor } = this.p;
    const pairs = nRot / 2;
    cached = new Float32Array(pairs * 2);
    const thetaScale = Math.fround(Math.pow(freqBase, -2 / nRot));
    let theta = Math.fround(pos);
    for (let i = 0; i < pairs; i++) {
      const ff = factors ? factors[i] : 1;
      const angle = Math.fround(freqScale * Math.fround(theta / ff));
      cached[2 * i] = Math.cos(angle) * attnFactor;
      cached[2 * i + 1] = Math.sin(angle) * attnFactor;
      theta = Math.fround(theta * thetaScale);
    }
    if (this.cache.size < 1 << 16) this.cache.set(pos, cached);
    return cached;
  }

  /** Rotates `heads` heads of `headDim` of each of n rows (row t at position start + t). */
  apply(a: Float32Array, n: number, heads: number, headDim: number, start: number): void {
    const pairs = this.p.nRot / 2;
    const neox = this.p.style === 'neox';
    const rowLength = heads * headDim;
    for (let t = 0; t < n; t++) {
      const rope = this.at(start + t);
      for (let h = 0; h < heads; h++) {
        const offset = t * rowLength + h * headDim;
        for (let i = 0; i < pairs; i++) {
          const i0 = offset + (neox ? i : 2 * i);
          const i1 = neox ? i0 + pairs : i0 + 1;
          const cos = rope[2 * i];
          const sin = rope[2 * i + 1];
          const x0 = a[i0];
          const x1 = a[i1];
          a[i0] = x0 * cos - x1 * sin;
          a[i1] = x0 * sin + x1 * cos;
        }
      }
    }
  }
}

// ---- attention -----------------------------------------------------------------------------

export interface AttentionShape {
  nHead: number;
  nHeadKv: number;
  headDim: number;
  /** Scale of q·k (ggml_soft_max_ext's scale, or the q scaling before it). */
  scale: number;
  /** cap·tanh(s/cap) on the scaled scores; 0: none. */
  softcap: number;
  /** Keys `window` or more positions back are masked; 0: none. */
  window: number;
}

/**
 * Causal grouped-query attention of the chunk's n queries (positions start..start+n-1)
 * over the cache's positions 0..start+i (the last `window` of them when windowed).
 */
export function attend(q: Float32Array, kCache: Float32Array, vCache: Float32Array, n: number, start: number, s: AttentionShape): Float32Array {
  const hd = s.headDim;
  const qDim = s.nHead * hd;
  const kvDim = s.nHeadKv * hd;
  const group = s.nHead / s.nHeadKv;
  const out = new Float32Array(n * qDim);
  const scores = new Float64Array(start + n);
  const acc = new Float64Array(hd);
  for (let i = 0; i < n; i++) {
    const pos = start + i;
    const first = s.window > 0 ? Math.max(0, pos - s.window + 1) : 0;
    for (let h = 0; h < s.nHead; h++) {
      const qo = i * qDim + h * hd;
      const kvo = Math.floor(h / group) * hd;
      let max = -Infinity;
      for (let p = first; p <= pos; p++) {
        const ko = p * kvDim + kvo;
        let dot = 0;
        for (let j = 0; j < hd; j++) dot += q[qo + j] * kCache[ko + j];
        let sc = dot * s.scale;
        if (s.softcap > 0) sc = Math.tanh(sc / s.softcap) * s.softcap;
        scores[p] = sc;
        if (sc > max) max = sc;
      }
      let sum = 0;
      for (let p = first; p <= pos; p++) {
        const e = Math.exp(scores[p] - max);
        scores[p] = e;
        sum += e;
      }
      acc.fill(0);
      for (let p = first; p <= pos; p++) {
        const w = scores[p] / sum;
        const vo = p * kvDim + kvo;
        for (let j = 0; j < hd; j++) acc[j] += w * vCache[vo + j];
      }
      for (let j = 0; j < hd; j++) out[qo + j] = acc[j];
    }
  }
  return out;
}
