// The operations of a trainable decoder's forward pass (Llama, Qwen2, Qwen3), each with its backward: pure
// functions over f64 activations (Float64Array) and f32 or f64 weights. Backward
// functions ADD into the gradients they are given (a weight or an activation may feed
// several operations), so callers zero them once per step.
//
// Why f64 activations: the gradient checks (ops.test.ts, model.test.ts) compare against
// central finite differences, which need a loss exact to ~1e-12; the forward still matches
// the inference pass (model/families/blocks.ts, f64 sums rounded to f32) within ~1e-6.
import type { RopeTable } from '../model/families/blocks.ts';

/** Weights as a forward pass reads them: f32 master or fake-quantized values, or f64 in tests. */
export type Weights = Float32Array | Float64Array;

// ---- linear ----------------------------------------------------------------------------

/**
 * y[t][r] = Σ_c w[r][c]·x[t][c]: n inputs of `cols` through a [rows, cols] matrix. Four
 * tokens at a time, so that each weight read serves four of them (model/families/linear.ts's
 * reason); each sum still runs over c in order.
 */
export function linearForward(w: Weights, rows: number, cols: number, x: Float64Array, n: number): Float64Array {
  const y = new Float64Array(n * rows);
  let t = 0;
  for (; t + 4 <= n; t += 4) {
    const x0 = t * cols;
    const x1 = x0 + cols;
    const x2 = x1 + cols;
    const x3 = x2 + cols;
    for (let r = 0; r < rows; r++) {
      const wo = r * cols;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let c = 0; c < cols; c++) {
        const a = w[wo + c];
        s0 += a * x[x0 + c];
        s1 += a * x[x1 + c];
        s2 += a * x[x2 + c];
        s3 += a * x[x3 + c];
      }
      y[t * rows + r] = s0;
      y[(t + 1) * rows + r] = s1;
      y[(t + 2) * rows + r] = s2;
      y[(t + 3) * rows + r] = s3;
    }
  }
  for (; t < n; t++) {
    const xo = t * cols;
    for (let r = 0; r < rows; r++) {
      const wo = r * cols;
      let s = 0;
      for (let c = 0; c < cols; c++) s += w[wo + c] * x[xo + c];
      y[t * rows + r] = s;
    }
  }
  return y;
}

/**
 * dx += dy·W and dw += dyᵀ·x (either may be null: no gradient wanted). dW's rows take four
 * tokens' contributions per pass, so that each row is read and written a quarter as often.
 */
export function linearBackward(w: Weights, rows: number, cols: number, x: Float64Array, n: number, dy: Float64Array, dx: Float64Array | null, dw: Float64Array | null): void {
  if (dx) {
    for (let t = 0; t < n; t++) {
      const xo = t * cols;
      for (let r = 0; r < rows; r++) {
        const g = dy[t * rows + r];
        if (g === 0) continue;
        const wo = r * cols;
        for (let c = 0; c < cols; c++) dx[xo + c] += g * w[wo + c];
      }
    }
  }
  if (!dw) return;
  let t = 0;
  for (; t + 4 <= n; t += 4) {
    const x0 = t * cols;
    const x1 = x0 + cols;
    const x2 = x1 + cols;
    const x3 = x2 + cols;
    for (let r = 0; r < rows; r++) {
      const g0 = dy[t * rows + r];
      const g1 = dy[(t + 1) * rows + r];
      const g2 = dy[(t + 2) * rows + r];
      const g3 = dy[(t + 3) * rows + r];
      if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0) continue;
      const wo = r * cols;
      for (let c = 0; c < cols; c++) dw[wo + c] += g0 * x[x0 + c] + g1 * x[x1 + c] + g2 * x[x2 + c] + g3 * x[x3 + c];
    }
  }
  for (; t < n; t++) {
    const xo = t * cols;
    for (let r = 0; r < rows; r++) {
      const g = dy[t * rows + r];
      if (g === 0) continue;
      const wo = r * cols;
      for (let c = 0; c < cols; c++) dw[wo + c] += g * x[xo + c];
    }
  }
}

// ---- bias ------------------------------------------------------------------------------

/** y[t] += bias for each of the rows of y, in place (qwen2's q/k/v biases, added after the product). */
export function biasForwardInPlace(y: Float64Array, bias: Weights): Float64Array {
  const d = bias.length;
  for (let j = 0; j < y.length; j++) y[j] += bias[j % d];
  return y;
}

/** dBias += Σ_t dy[t] (the rows' gradients; dy itself passes to the product unchanged). */
export function biasBackward(dy: Float64Array, dBias: Float64Array): void {
  const d = dBias.length;
  for (let j = 0; j < dy.length; j++) dBias[j % d] += dy[j];
}

// ---- embedding -------------------------------------------------------------------------

/** Rows of the embedding matrix for each token (get_rows). */
export function embedForward(table: Weights, d: number, tokens: readonly number[], nVocab: number): Float64Array {
  const x = new Float64Array(tokens.length * d);
  tokens.forEach((tok, i) => {
    if (!Number.isInteger(tok) || tok < 0 || tok >= nVocab) throw new RangeError(`token ${tok} is outside the vocabulary of ${nVocab}`);
    for (let j = 0; j < d; j++) x[i * d + j] = table[tok * d + j];
  });
  return x;
}

/** dTable[token] += dx[i] (a token seen twice gets both rows' gradients). */
export function embedBackward(d: number, tokens: readonly number[], dx: Float64Array, dTable: Float64Array): void {
  tokens.forEach((tok, i) => {
    for (let j = 0; j < d; j++) dTable[tok * d + j] += dx[i * d + j];
  });
}

// ---- RMSNorm ---------------------------------------------------------------------------

/**
 * y = x / sqrt(mean(x²) + eps) · w per row; returns y and each row's 1/rms for the backward.
 * A row may be one head (qwen3's q/k norms: n·heads rows of head_dim sharing one weight,
 * whose gradient the backward sums over them).
 */
export function rmsNormForward(x: Float64Array, n: number, d: number, w: Weights, eps: number): { y: Float64Array; inv: Float64Array } {
  const y = new Float64Array(n * d);
  const inv = new Float64Array(n);
  for (let t = 0; t < n; t++) {
    const o = t * d;
    let sum = 0;
    for (let j = 0; j < d; j++) sum += x[o + j] * x[o + j];
    const r = 1 / Math.sqrt(sum / d + eps);
    inv[t] = r;
    for (let j = 0; j < d; j++) y[o + j] = x[o + j] * r * w[j];
  }
  return { y, inv };
}

/** dx += r·(dy⊙w) − x·r³·Σ(dy⊙w⊙x)/d; dw += Σ_t dy⊙x·r. */
export function rmsNormBackward(x: Float64Array, n: number, d: number, w: Weights, inv: Float64Array, dy: Float64Array, dx: Float64Array | null, dw: Float64Array | null): void {
  for (let t = 0; t < n; t++) {
    const o = t * d;
    const r = inv[t];
    let s = 0;
    for (let j = 0; j < d; j++) s += dy[o + j] * w[j] * x[o + j];
    const k = (r * r * r * s) / d;
    for (let j = 0; j < d; j++) {
      if (dx) dx[o + j] += r * dy[o + j] * w[j] - x[o + j] * k;
      if (dw) dw[j] += dy[o + j] * x[o + j] * r;
    }
  }
}

// ---- RoPE ------------------------------------------------------------------------------

/**
 * Rotates each head's pairs of n rows (row t at position t) by the table's angles, in place;
 * `inverse` rotates by minus the angle, which is the backward (a rotation's transpose).
 * The pairs are the table's style: adjacent (NORM, a Llama GGUF) or halves (NEOX).
 */
export function ropeInPlace(a: Float64Array, n: number, heads: number, headDim: number, rope: RopeTable, inverse = false): void {
  const pairs = rope.p.nRot / 2;
  const neox = rope.p.style === 'neox';
  const sign = inverse ? -1 : 1;
  for (let t = 0; t < n; t++) {
    const cs = rope.at(t);
    for (let h = 0; h < heads; h++) {
      const offset = (t * heads + h) * headDim;
      for (let i = 0; i < pairs; i++) {
        const i0 = offset + (neox ? i : 2 * i);
        const i1 = neox ? i0 + pairs : i0 + 1;
        const cos = cs[2 * i];
        const sin = sign * cs[2 * i + 1];
        const x0 = a[i0];
        const x1 = a[i1];
        a[i0] = x0 * cos - x1 * sin;
        a[i1] = x0 * sin + x1 * cos;
      }
    }
  }
}

// ---- attention -------------------------------------------------------------------------

export interface AttentionGeometry {
  nHead: number;
  nHeadKv: number;
  headDim: number;
  /** Scale of q·k before the softmax. */
  scale: number;
}

/**
 * Causal grouped-query attention of n positions (all from position 0): query head h reads
 * kv head floor(h / (nHead / nHeadKv)). Returns the output and the softmax weights
 * (probs[h][i][j], j ≤ i) the backward needs.
 */
export function attentionForward(q: Float64Array, k: Float64Array, v: Float64Array, n: number, g: AttentionGeometry): { out: Float64Array; probs: Float64Array } {
  const hd = g.headDim;
  const qDim = g.nHead * hd;
  const kvDim = g.nHeadKv * hd;
  const group = g.nHead / g.nHeadKv;
  const out = new Float64Array(n * qDim);
  const probs = new Float64Array(g.nHead * n * n);
  for (let h = 0; h < g.nHead; h++) {
    const kvo = Math.floor(h / group) * hd;
    for (let i = 0; i < n; i++) {
      const qo = i * qDim + h * hd;
      const po = (h * n + i) * n;
      let max = -Infinity;
      for (let j = 0; j <= i; j++) {
        const ko = j * kvDim + kvo;
        let dot = 0;
        for (let e = 0; e < hd; e++) dot += q[qo + e] * k[ko + e];
        const s = dot * g.scale;
        probs[po + j] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let j = 0; j <= i; j++) {
        const e = Math.exp(probs[po + j] - max);
        probs[po + j] = e;
        sum += e;
      }
      for (let j = 0; j <= i; j++) {
        const p = probs[po + j] / sum;
        probs[po + j] = p;
        const vo = j * kvDim + kvo;
        for (let e = 0; e < hd; e++) out[qo + e] += p * v[vo + e];
      }
    }
  }
  return { out, probs };
}

/** The softmax attention's backward: dq, dk, dv += (dS = P⊙(dP − Σ P·dP), dP = dOut·vᵀ). */
export function attentionBackward(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  probs: Float64Array,
  n: number,
  g: AttentionGeometry,
  dOut: Float64Array,
  dq: Float64Array,
  dk: Float64Array,
  dv: Float64Array,
): void {
  const hd = g.headDim;
  const qDim = g.nHead * hd;
  const kvDim = g.nHeadKv * hd;
  const group = g.nHead / g.nHeadKv;
  const dp = new Float64Array(n);
  for (let h = 0; h < g.nHead; h++) {
    const kvo = Math.floor(h / group) * hd;
    for (let i = 0; i < n; i++) {
      const qo = i * qDim + h * hd;
      const po = (h * n + i) * n;
      let dot = 0;
      for (let j = 0; j <= i; j++) {
        const vo = j * kvDim + kvo;
        let s = 0;
        for (let e = 0; e < hd; e++) s += dOut[qo + e] * v[vo + e];
        dp[j] = s;
        dot += probs[po + j] * s;
      }
      for (let j = 0; j <= i; j++) {
        const p = probs[po + j];
        const ds = p * (dp[j] - dot) * g.scale;
        const ko = j * kvDim + kvo;
        for (let e = 0; e < hd; e++) {
          dq[qo + e] += ds * k[ko + e];
          dk[ko + e] += ds * q[qo + e];
          dv[ko + e] += p * dOut[qo + e];
        }
      }
    }
  }
}

// ---- SwiGLU ----------------------------------------------------------------------------

/** silu(gate)·up, element by element (ggml_swiglu_split). */
export function swigluForward(gate: Float64Array, up: Float64Array): Float64Array {
  const out = new Float64Array(gate.length);
  for (let j = 0; j < gate.length; j++) {
    const gv = gate[j];
    out[j] = (gv / (1 + Math.exp(-gv))) * up[j];
  }
  return out;
}

/** dgate += dh·up·silu'(gate), silu'(g) = σ(g)(1 + g(1 − σ(g))); dup += dh·silu(gate). */
export function swigluBackward(gate: Float64Array, up: Float64Array, dh: Float64Array, dGate: Float64Array, dUp: Float64Array): void {
  for (let j = 0; j < gate.length; j++) {
    const gv = gate[j];
    const sig = 1 / (1 + Math.exp(-gv));
    dGate[j] += dh[j] * up[j] * sig * (1 + gv * (1 - sig));
    dUp[j] += dh[j] * gv * sig;
  }
}

// ---- losses ----------------------------------------------------------------------------

/** Natural-log softmax of each of n rows of `v` logits. */
export function logSoftmaxRows(logits: Float64Array, n: number, v: number): Float64Array {
  const out = new Float64Array(n * v);
  for (let t = 0; t < n; t++) {
    const o = t * v;
    let max = -Infinity;
    for (let j = 0; j < v; j++) max = Math.max(max, logits[o + j]);
    let sum = 0;
    for (let j = 0; j < v; j++) sum += Math.exp(logits[o + j] - max);
    const lse = max + Math.log(sum);
    for (let j = 0; j < v; j++) out[o + j] = logits[o + j] - lse;
  }
  return out;
}

export interface LossResult {
  /** Mean over the rows. */
  loss: number;
  /** d loss / d logits. */
  dLogits: Float64Array;
}

/** Mean cross-entropy of row t's logits against targets[t] (the next token). */
export function crossEntropy(logits: Float64Array, n: number, v: number, targets: readonly number[]): LossResult {
  if (targets.length !== n) throw new Error(`cross-entropy: ${targets.length} targets for ${n} rows`);
  const lp = logSoftmaxRows(logits, n, v);
  const d = new Float64Array(n * v);
  let loss = 0;
  for (let t = 0; t < n; t++) {
    const o = t * v;
    loss -= lp[o + targets[t]];
    for (let j = 0; j < v; j++) d[o + j] = Math.exp(lp[o + j]) / n;
    d[o + targets[t]] -= 1 / n;
  }
  return { loss: loss / n, dLogits: d };
}

/** Mean KL(teacher ‖ student) over the rows, from the teacher's log-probabilities; d/dlogits = (q − p)/n. */
export function klToTeacher(logits: Float64Array, n: number, v: number, teacherLogProbs: Float64Array): LossResult {
  if (teacherLogProbs.length !== n * v) throw new Error(`KL: the teacher has ${teacherLogProbs.length / v} rows for ${n}`);
  const lq = logSoftmaxRows(logits, n, v);
  const d = new Float64Array(n * v);
  let loss = 0;
  for (let i = 0; i < n * v; i++) {
    const p = Math.exp(teacherLogProbs[i]);
    if (p > 0) loss += p * (teacherLogProbs[i] - lq[i]);
    d[i] = (Math.exp(lq[i]) - p) / n;
  }
  return { loss: loss / n, dLogits: d };
}
