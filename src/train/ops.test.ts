// Every operation's backward against central finite differences in f64: the loss is a
// fixed random projection of the output, Σ r⊙f(x), so d loss / d out = r.
import { describe, expect, it } from 'vitest';
import { RopeTable } from '../model/families/blocks.ts';
import { rng } from '../testing/random.ts';
import {
  attentionBackward,
  attentionForward,
  biasBackward,
  biasForwardInPlace,
  crossEntropy,
  embedBackward,
  embedForward,
  klToTeacher,
  linearBackward,
  linearForward,
  logSoftmaxRows,
  rmsNormBackward,
  rmsNormForward,
  ropeInPlace,
  swigluBackward,
  swigluForward,
} from './ops.ts';

function randoms(n: number, seed: number, scale = 1): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

const dotWith = (a: Float64Array, r: Float64Array) => a.reduce((s, v, i) => s + v * r[i], 0);

/**
 * The largest |analytic − numeric| / max(1e-3, |numeric|) over (up to `samples` of) the
 * entries of `x`, perturbing x in place by ±h.
 */
function worstError(x: Float64Array, analytic: Float64Array, loss: () => number, h = 1e-5, samples = 40): number {
  let worst = 0;
  const step = Math.max(1, Math.floor(x.length / samples));
  for (let i = 0; i < x.length; i += step) {
    const keep = x[i];
    x[i] = keep + h;
    const up = loss();
    x[i] = keep - h;
    const down = loss();
    x[i] = keep;
    const numeric = (up - down) / (2 * h);
    worst = Math.max(worst, Math.abs(analytic[i] - numeric) / Math.max(1e-3, Math.abs(numeric)));
  }
  return worst;
}

describe('training operations: backward = finite differences (f64)', () => {
  it('linear: dx and dW', () => {
    const [rows, cols, n] = [7, 5, 6];
    const w = randoms(rows * cols, 1);
    const x = randoms(n * cols, 2);
    const r = randoms(n * rows, 3);
    const dx = new Float64Array(x.length);
    const dw = new Float64Array(w.length);
    linearBackward(w, rows, cols, x, n, r, dx, dw);
    const loss = () => dotWith(linearForward(w, rows, cols, x, n), r);
    expect(worstError(x, dx, loss)).toBeLessThan(1e-7);
    expect(worstError(w, dw, loss)).toBeLessThan(1e-7);
  });

  it('embedding: a repeated token gets both rows of gradient', () => {
    const [vocab, d] = [6, 4];
    const table = randoms(vocab * d, 4);
    const tokens = [2, 5, 2, 0];
    const r = randoms(tokens.length * d, 5);
    const dTable = new Float64Array(table.length);
    embedBackward(d, tokens, r, dTable);
    expect(worstError(table, dTable, () => dotWith(embedForward(table, d, tokens, vocab), r))).toBeLessThan(1e-7);
    expect(dTable.subarray(2 * d, 3 * d).some((v) => v !== 0)).toBe(true);
    expect(dTable.subarray(3 * d, 4 * d).every((v) => v === 0)).toBe(true);
    expect(() => embedForward(table, d, [6], vocab)).toThrow(/outside the vocabulary of 6/);
  });

  it('RMSNorm: dx and dw', () => {
    const [n, d] = [3, 8];
    const x = randoms(n * d, 6);
    const w = randoms(d, 7);
    const r = randoms(n * d, 8);
    const { inv } = rmsNormForward(x, n, d, w, 1e-5);
    const dx = new Float64Array(x.length);
    const dw = new Float64Array(d);
    rmsNormBackward(x, n, d, w, inv, r, dx, dw);
    const loss = () => dotWith(rmsNormForward(x, n, d, w, 1e-5).y, r);
    expect(worstError(x, dx, loss)).toBeLessThan(1e-6);
    expect(worstError(w, dw, loss)).toBeLessThan(1e-7);
  });

  it("per-head RMSNorm (qwen3's q/k norms): each head its own rms, one weight of head_dim shared by every head", () => {
    const [n, heads, hd] = [3, 4, 8];
    const x = randoms(n * heads * hd, 16);
    const w = randoms(hd, 17);
    const r = randoms(x.length, 18);
    const { y, inv } = rmsNormForward(x, n * heads, hd, w, 1e-6);
    // Head 2 of row 1 on its own: the same values as the whole pass gives it.
    const o = (1 * heads + 2) * hd;
    expect(Array.from(rmsNormForward(x.slice(o, o + hd), 1, hd, w, 1e-6).y)).toEqual(Array.from(y.subarray(o, o + hd)));
    const dx = new Float64Array(x.length);
    const dw = new Float64Array(hd);
    rmsNormBackward(x, n * heads, hd, w, inv, r, dx, dw);
    const loss = () => dotWith(rmsNormForward(x, n * heads, hd, w, 1e-6).y, r);
    expect(worstError(x, dx, loss)).toBeLessThan(1e-6);
    expect(worstError(w, dw, loss, 1e-5, hd)).toBeLessThan(1e-7);
  });

  it("bias (qwen2's q/k/v): y + b on every row; db is the rows' gradients summed, dy passes on", () => {
    const [n, d] = [5, 6];
    const y = randoms(n * d, 19);
    const b = randoms(d, 20);
    const r = randoms(n * d, 21);
    const out = biasForwardInPlace(y.slice(), b);
    expect(out[3 * d + 4]).toBe(y[3 * d + 4] + b[4]);
    const db = new Float64Array(d);
    biasBackward(r, db);
    const loss = () => dotWith(biasForwardInPlace(y.slice(), b), r);
    expect(worstError(b, db, loss, 1e-5, d)).toBeLessThan(1e-7);
    expect(db[2]).toBeCloseTo(r.filter((_, j) => j % d === 2).reduce((a, v) => a + v, 0), 12);
  });

  for (const style of ['norm', 'neox'] as const) {
    it(`RoPE (${style} pairs, with frequency factors): the inverse rotation is the backward`, () => {
      const [n, heads, hd] = [5, 2, 8];
      const rope = new RopeTable({ nRot: hd, style, freqBase: 10000, freqScale: 0.5, factors: Float32Array.from([1, 2, 4, 8]), attnFactor: 1 });
      const x = randoms(n * heads * hd, 9);
      const r = randoms(x.length, 10);
      const dx = r.slice();
      ropeInPlace(dx, n, heads, hd, rope, true);
      const loss = () => {
        const y = x.slice();
        ropeInPlace(y, n, heads, hd, rope);
        return dotWith(y, r);
      };
      expect(worstError(x, dx, loss)).toBeLessThan(1e-7);
    });
  }

  it('causal GQA attention: dq, dk, dv (and no position sees a later one)', () => {
    const g = { nHead: 4, nHeadKv: 2, headDim: 3, scale: 1 / Math.sqrt(3) };
    const n = 5;
    const q = randoms(n * g.nHead * g.headDim, 11, 2);
    const k = randoms(n * g.nHeadKv * g.headDim, 12, 2);
    const v = randoms(k.length, 13);
    const r = randoms(q.length, 14);
    const { probs } = attentionForward(q, k, v, n, g);
    const dq = new Float64Array(q.length);
    const dk = new Float64Array(k.length);
    const dv = new Float64Array(v.length);
    attentionBackward(q, k, v, probs, n, g, r, dq, dk, dv);
    const loss = () => dotWith(attentionForward(q, k, v, n, g).out, r);
    expect(worstError(q, dq, loss)).toBeLessThan(1e-6);
    expect(worstError(k, dk, loss)).toBeLessThan(1e-6);
    expect(worstError(v, dv, loss)).toBeLessThan(1e-7);
    // Causality: the last position's keys and values do not move the first rows' output.
    const before = attentionForward(q, k, v, n, g).out.slice(0, (n - 1) * g.nHead * g.headDim);
    k.fill(7, (n - 1) * g.nHeadKv * g.headDim);
    v.fill(-3, (n - 1) * g.nHeadKv * g.headDim);
    expect(attentionForward(q, k, v, n, g).out.slice(0, before.length)).toEqual(before);
  });

  it('SwiGLU: dgate and dup', () => {
    const gate = randoms(20, 15, 4);
    const up = randoms(20, 16);
    const r = randoms(20, 17);
    const dg = new Float64Array(20);
    const du = new Float64Array(20);
    swigluBackward(gate, up, r, dg, du);
    const loss = () => dotWith(swigluForward(gate, up), r);
    expect(worstError(gate, dg, loss)).toBeLessThan(1e-7);
    expect(worstError(up, du, loss)).toBeLessThan(1e-7);
  });

  it('cross-entropy: its value is −mean log p(target), its gradient finite differences', () => {
    const [n, v] = [3, 6];
    const logits = randoms(n * v, 18, 3);
    const targets = [1, 5, 0];
    const { loss, dLogits } = crossEntropy(logits, n, v, targets);
    const lp = logSoftmaxRows(logits, n, v);
    expect(loss).toBeCloseTo(-(lp[1] + lp[v + 5] + lp[2 * v]) / 3, 12);
    expect(worstError(logits, dLogits, () => crossEntropy(logits, n, v, targets).loss)).toBeLessThan(1e-7);
  });

  it('KL to a teacher: 0 against itself, gradient finite differences otherwise', () => {
    const [n, v] = [3, 6];
    const logits = randoms(n * v, 19, 3);
    const self = klToTeacher(logits, n, v, logSoftmaxRows(logits, n, v));
    expect(Math.abs(self.loss)).toBeLessThan(1e-15);
    expect(Math.max(...self.dLogits.map(Math.abs))).toBeLessThan(1e-15);
    const teacher = logSoftmaxRows(randoms(n * v, 20, 3), n, v);
    const { loss, dLogits } = klToTeacher(logits, n, v, teacher);
    expect(loss).toBeGreaterThan(0.01);
    expect(worstError(logits, dLogits, () => klToTeacher(logits, n, v, teacher).loss)).toBeLessThan(1e-7);
  });
});
