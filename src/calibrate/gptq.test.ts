// GPTQ: the blocked Cholesky algorithm equals an independent, unblocked OBS-style
// implementation (explicit inverse Hessian, the quantized column removed after each step)
// on a small matrix, in GPTQ's order and in act-order (static groups); on real stories260K
// layers, with inputs from held-out text (not the calibration text), its layer output MSE is
// below round-to-nearest's on the same grid, in both orders.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CALIBRATION_STORY_TEXT as CALIBRATION_TEXT } from './calibration-text.ts';
import { loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { EVAL_TEXT } from '../model/eval-text.ts';
import { collectInputs, openCalibrationModel, type CalibrationModel, type LayerInputs } from './activations.ts';
import { gram, groupParams, outputMse, quantizeRtn, quantizeValue, type Grid } from './grid.ts';
import { actOrder, gptqQ4_0, gptqQuantize, hessian, prepareHessian } from './gptq.ts';
import { quantType } from '../quant/types.ts';
import { rng } from '../testing/random.ts';

/** Gauss-Jordan inverse with partial pivoting (independent of the Cholesky code). */
function invert(a: Float64Array, n: number): Float64Array {
  const m = a.slice();
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) inv[i * n + i] = 1;
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r * n + c]) > Math.abs(m[p * n + c])) p = r;
    for (let k = 0; k < n; k++) {
      [m[c * n + k], m[p * n + k]] = [m[p * n + k], m[c * n + k]];
      [inv[c * n + k], inv[p * n + k]] = [inv[p * n + k], inv[c * n + k]];
    }
    const d = m[c * n + c];
    for (let k = 0; k < n; k++) {
      m[c * n + k] /= d;
      inv[c * n + k] /= d;
    }
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r * n + c];
      for (let k = 0; k < n; k++) {
        m[r * n + k] -= f * m[c * n + k];
        inv[r * n + k] -= f * inv[c * n + k];
      }
    }
  }
  return inv;
}

/**
 * OBS one column at a time: quantize column q (groups on the current values), spread
 * (w − q)/Hinv_qq · Hinv_q,· over the columns not yet quantized, then remove q from Hinv
 * (Hinv −= Hinv_·q Hinv_q· / Hinv_qq). The GPTQ paper's starting point, before Cholesky and blocks.
 * With `order` (act-order), the columns go in that order and each group's params are found
 * on w before any update (static groups).
 */
function obsQuantize(w: Float64Array, rows: number, cols: number, xs: Float64Array, n: number, grid: Grid & { kind: 'int' }, order?: number[]): Float64Array {
  const h = new Float64Array(cols * cols);
  for (let t = 0; t < n; t++) for (let i = 0; i < cols; i++) for (let j = 0; j < cols; j++) h[i * cols + j] += (2 / n) * xs[t * cols + i] * xs[t * cols + j];
  let mean = 0;
  for (let i = 0; i < cols; i++) mean += h[i * cols + i] / cols;
  for (let i = 0; i < cols; i++) h[i * cols + i] += 0.01 * mean;
  const hinv = invert(h, cols);
  const W = w.slice();
  const Q = new Float64Array(rows * cols);
  const params: ReturnType<typeof groupParams>[] = [];
  const done = new Uint8Array(cols);
  for (const q of order ?? Array.from({ length: cols }, (_, i) => i)) {
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      const g = Math.floor(q / grid.group) * grid.group;
      const end = o + Math.min(g + grid.group, cols);
      // A group's grid, from its values as they are when its first column comes up (static: as they were).
      if (order) params[r] = groupParams(grid, w, o + g, end);
      else if (q === g) params[r] = groupParams(grid, W, o + g, end);
      const p = params[r];
      Q[o + q] = quantizeValue(grid, W[o + q], p);
      const e = (W[o + q] - Q[o + q]) / hinv[q * cols + q];
      for (let j = 0; j < cols; j++) if (!done[j] && j !== q) W[o + j] -= e * hinv[q * cols + j];
    }
    done[q] = 1;
    const hq = hinv[q * cols + q];
    const col = Array.from({ length: cols }, (_, i) => hinv[i * cols + q]);
    const row = hinv.slice(q * cols, (q + 1) * cols);
    for (let i = 0; i < cols; i++) for (let j = 0; j < cols; j++) hinv[i * cols + j] -= (col[i] * row[j]) / hq;
  }
  return Q;
}

describe('GPTQ', () => {
  it('hessian is 2/N · the one-row-at-a-time XᵀX bit for bit, for every tile remainder (N = 1..9) and with zero inputs', () => {
    const rand = rng(5);
    for (const cols of [1, 5, 33]) {
      for (let n = 1; n <= 9; n++) {
        const x = Float64Array.from({ length: n * cols }, (_, k) => (k % 4 === 1 ? 0 : k % 9 === 2 ? -0 : rand() * 2 - 1));
        const upper = new Float64Array(cols * cols);
        for (let t = 0; t < n; t++) for (let i = 0; i < cols; i++) for (let j = i; j < cols; j++) upper[i * cols + j] += x[t * cols + i] * x[t * cols + j];
        const want = new Float64Array(cols * cols);
        for (let i = 0; i < cols; i++) for (let j = i; j < cols; j++) want[i * cols + j] = want[j * cols + i] = upper[i * cols + j] * (2 / n);
        const got = hessian(x, n, cols);
        for (let k = 0; k < got.length; k++) expect(Object.is(got[k], want[k]), `${cols} cols, ${n} rows, entry ${k}: ${got[k]} vs ${want[k]}`).toBe(true);
      }
    }
  });

  it("prepareHessian's U is upper with a positive diagonal and UᵀU the damped H's inverse (Gauss-Jordan), a dead column fixed (60 columns)", () => {
    const rand = rng(21);
    const [cols, n] = [60, 200];
    const x = Float64Array.from({ length: n * cols }, (_, k) => (k % cols === 17 ? 0 : rand() * 2 - 1 + (k % 3) * 0.4));
    const h = hessian(x, n, cols);
    const { u, dead } = prepareHessian(h, cols);
    expect(Array.from(dead.keys()).filter((i) => dead[i])).toEqual([17]);
    const damped = h.slice();
    damped[17 * cols + 17] = 1;
    let mean = 0;
    for (let i = 0; i < cols; i++) mean += damped[i * cols + i] / cols;
    for (let i = 0; i < cols; i++) damped[i * cols + i] += 0.01 * mean;
    const want = invert(damped, cols);
    let [worst, scale] = [0, 0];
    for (let i = 0; i < cols; i++) {
      expect(u[i * cols + i]).toBeGreaterThan(0);
      for (let j = 0; j < cols; j++) {
        if (j < i) expect(u[i * cols + j]).toBe(0);
        let s = 0;
        for (let k = 0; k < cols; k++) s += u[k * cols + i] * u[k * cols + j];
        worst = Math.max(worst, Math.abs(s - want[i * cols + j]));
        scale = Math.max(scale, Math.abs(want[i * cols + j]));
      }
    }
    expect(worst / scale).toBeLessThan(1e-12);
  });

  it('blocked (block 16, lazy updates) equals the unblocked OBS formulation on a 6 x 40 matrix (groups of 8, a last group of 8)', () => {
    const rand = rng(7);
    const rows = 6;
    const cols = 40;
    const n = 90;
    const w = Float64Array.from({ length: rows * cols }, () => rand() * 2 - 1);
    // Correlated inputs, so that error feedback matters.
    const base = Float64Array.from({ length: n * 8 }, () => rand() * 2 - 1);
    const x = Float64Array.from({ length: n * cols }, (_, k) => base[Math.floor(k / cols) * 8 + (k % 8)] + 0.3 * (rand() - 0.5));
    for (const grid of [{ kind: 'int', bits: 4, group: 8 }, { kind: 'int', bits: 3, group: 8 }] as const) {
      const blocked = gptqQuantize(w, rows, cols, hessian(x, n, cols), { grid, blockSize: 16 });
      const whole = gptqQuantize(w, rows, cols, hessian(x, n, cols), { grid, blockSize: 128 });
      const obs = obsQuantize(w, rows, cols, x, n, grid);
      for (let k = 0; k < w.length; k++) {
        expect(Math.abs(blocked[k] - obs[k])).toBeLessThan(1e-9);
        expect(Math.abs(whole[k] - obs[k])).toBeLessThan(1e-9);
      }
      // ...and it is not RTN.
      expect(Array.from(blocked)).not.toEqual(Array.from(quantizeRtn(w, rows, cols, grid)));
    }
  });

  it('act-order (static groups), blocked, equals OBS in the order of decreasing H_ii with groups found on the unupdated weights (6 x 40)', () => {
    const rand = rng(8);
    const [rows, cols, n] = [6, 40, 90];
    const w = Float64Array.from({ length: rows * cols }, () => rand() * 2 - 1);
    const base = Float64Array.from({ length: n * 8 }, () => rand() * 2 - 1);
    // Column scales that vary, so that the order is far from left to right.
    const x = Float64Array.from({ length: n * cols }, (_, k) => (base[Math.floor(k / cols) * 8 + (k % 8)] + 0.3 * (rand() - 0.5)) * (1 + ((k % cols) * 7) % 5));
    const h = hessian(x, n, cols);
    const order = Array.from(actOrder(h, cols));
    expect(order).not.toEqual([...order].sort((a, b) => a - b));
    for (let k = 1; k < cols; k++) expect(h[order[k] * cols + order[k]]).toBeLessThanOrEqual(h[order[k - 1] * cols + order[k - 1]]);
    for (const grid of [{ kind: 'int', bits: 4, group: 8 }, { kind: 'int', bits: 3, group: 16 }] as const) {
      const obs = obsQuantize(w, rows, cols, x, n, grid, order);
      for (const blockSize of [16, 128]) {
        const got = gptqQuantize(w, rows, cols, h, { grid, blockSize, actOrder: true });
        for (let k = 0; k < w.length; k++) expect(Math.abs(got[k] - obs[k])).toBeLessThan(1e-9);
      }
      expect(Array.from(gptqQuantize(w, rows, cols, h, { grid, actOrder: true }))).not.toEqual(Array.from(gptqQuantize(w, rows, cols, h, { grid })));
    }
  });

  let cm: CalibrationModel;
  let calib: Map<string, LayerInputs>;
  let held: Map<string, LayerInputs>;
  beforeAll(async () => {
    cm = await openCalibrationModel(await loadModel([await fileSource(join(FIXTURE_MODELS, 'stories260K.gguf'))]));
    calib = await collectInputs(cm, CALIBRATION_TEXT, 512);
    held = await collectInputs(cm, EVAL_TEXT, 64);
  });

  it.each([false, true])('GPTQ into Q4_0 (act-order %s) gives Q4_0 blocks that the Q4_0 codec decodes to exactly its values (blk.0.ffn_gate); the same values as the q4_0 grid', (actOrder) => {
    const name = 'blk.0.ffn_gate.weight';
    const w = cm.weights.get(name)!;
    const c = calib.get(name)!;
    const rows = w.length / c.cols;
    const h = hessian(c.x, c.n, c.cols);
    const { values, bytes } = gptqQ4_0(w, rows, c.cols, h, { actOrder });
    const q4 = quantType('q4_0')!;
    expect(bytes.length).toBe(q4.bytesFor(rows, c.cols));
    const decoded = q4.reference.decode(bytes, rows, c.cols);
    for (let k = 0; k < values.length; k++) expect(decoded[k]).toBe(Math.fround(values[k]));
    expect(Array.from(values)).toEqual(Array.from(gptqQuantize(w, rows, c.cols, h, { grid: { kind: 'q4_0' }, actOrder })));
    // Act-order's static groups are found on the weights as given: every block's scale is RTN's.
    const rtn = q4.reference.encode(w, c.cols);
    const scalesEqual = Array.from({ length: bytes.length / 18 }, (_, b) => bytes[b * 18] === rtn[b * 18] && bytes[b * 18 + 1] === rtn[b * 18 + 1]);
    expect(scalesEqual.every(Boolean)).toBe(actOrder);
  });

  it.each([
    ['blk.1.ffn_up.weight', { kind: 'int', bits: 4, group: 32 }],
    ['blk.3.attn_q.weight', { kind: 'int', bits: 3, group: 64 }],
    ['blk.2.ffn_down.weight', { kind: 'int', bits: 4, group: 128 }],
    ['blk.4.attn_output.weight', { kind: 'q4_0' }],
  ] as const)('stories260K %s, %j: held-out layer output MSE of GPTQ, in its order and in act-order, < RTN', (name, grid) => {
    const w = cm.weights.get(name)!;
    const c = calib.get(name)!;
    const t = held.get(name)!;
    const rows = w.length / c.cols;
    const g = gram(t.x, t.n, t.cols);
    const rtn = outputMse(w, quantizeRtn(w, rows, c.cols, grid), rows, c.cols, g, t.n);
    const h = hessian(c.x, c.n, c.cols);
    for (const actOrder of [false, true]) {
      const gptq = outputMse(w, gptqQuantize(w, rows, c.cols, h, { grid, actOrder }), rows, c.cols, g, t.n);
      expect(Number.isFinite(gptq) && gptq > 0).toBe(true);
      expect(gptq).toBeLessThan(rtn);
    }
  });
});
