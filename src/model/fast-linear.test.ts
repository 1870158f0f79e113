import { beforeAll, describe, expect, it } from 'vitest';
import { loadFastCodecs } from '../quant/fast/node.ts';
import { quantType } from '../quant/types.ts';
import { gaussians } from '../testing/random.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { writeFamilyGguf } from '../testing/family-gguf.ts';
import { fixture } from '../formats/testing.ts';
import { evaluateModel } from './eval.ts';
import { cpuLinear, matmulF32 } from './families/linear.ts';
import { f32Rows, fastCpuLinear, fastMatmulAvailable, matmulRows, packedRows, slabRows, type Sums } from './fast-linear.ts';

/** Distance in f32 ulps between two finite f32 values of the same sign. */
function ulps(a: number, b: number): number {
  const f = new Float32Array([a, b]);
  const i = new Int32Array(f.buffer);
  return Math.abs(i[0] - i[1]);
}

function maxUlps(a: Float32Array, b: Float32Array): { max: number; differing: number } {
  let max = 0;
  let differing = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    differing++;
    max = Math.max(max, Math.sign(a[i]) === Math.sign(b[i]) ? ulps(a[i], b[i]) : Infinity);
  }
  return { max, differing };
}

describe('fast CPU matrix products (WebAssembly SIMD)', () => {
  beforeAll(async () => {
    expect(await loadFastCodecs()).toBe(true);
  });

  it('runs in WebAssembly once the module is installed', () => {
    expect(fastMatmulAvailable()).toBe(true);
    expect(slabRows(896)).toBe(36);
    expect(slabRows(1 << 20)).toBe(2);
  });

  // Odd row counts (the kernel's single-row tail), odd token counts, slabs that do not divide the rows.
  for (const [rows, cols, n] of [[1, 4, 1], [7, 64, 3], [301, 256, 5], [96, 896, 8], [37, 4864, 2]] as const) {
    it(`equals the reference within one f32 ulp: ${rows} x ${cols}, ${n} inputs`, () => {
      const w = gaussians(rows * cols, 11 + rows);
      const x = gaussians(n * cols, 7 + cols);
      const ref = matmulF32(w, rows, cols, x, n);
      const fast = matmulRows(f32Rows(w, cols), 0, rows, cols, x, n);
      const { max, differing } = maxUlps(ref, fast);
      expect(max).toBeLessThanOrEqual(1);
      // Only values next to a rounding boundary may differ.
      expect(differing).toBeLessThanOrEqual(Math.max(1, Math.ceil(ref.length * 0.01)));
    });
  }

  it('gives each output the same bits whichever tile computes it (4-token tiles, the 2-token tail, one row, one token)', () => {
    const [rows, cols, n] = [45, 512, 7];
    const w = gaussians(rows * cols, 23);
    const x = gaussians(n * cols, 24);
    const all = matmulRows(f32Rows(w, cols), 0, rows, cols, x, n);
    for (let t = 0; t < n; t++) {
      expect(matmulRows(f32Rows(w, cols), 0, rows, cols, x.subarray(t * cols, (t + 1) * cols), 1)).toEqual(all.subarray(t * rows, (t + 1) * rows));
      expect(matmulRows(f32Rows(w, cols), 44, 45, cols, x, n)[t]).toBe(all[t * rows + 44]);
    }
  });

  it('takes a row range: rows [r0, r1) of the whole product', () => {
    const [rows, cols, n] = [50, 128, 3];
    const w = gaussians(rows * cols, 3);
    const x = gaussians(n * cols, 4);
    const all = matmulRows(f32Rows(w, cols), 0, rows, cols, x, n);
    const part = matmulRows(f32Rows(w, cols), 10, 33, cols, x, n);
    for (let t = 0; t < n; t++) expect(part.subarray(t * 23, (t + 1) * 23)).toEqual(all.subarray(t * rows + 10, t * rows + 33));
  });

  it('falls back to the reference for a column count that is not a multiple of 4', () => {
    const w = gaussians(6 * 10, 5);
    const x = gaussians(2 * 10, 6);
    expect(matmulRows(f32Rows(w, 10), 0, 6, 10, x, 2)).toEqual(matmulF32(w, 6, 10, x, 2));
  });

  it('decodes packed tensors slab by slab: the product over the dequantized weights', () => {
    const [rows, cols, n] = [40, 512, 4];
    const q4k = quantType('q4_K')!;
    const w = gaussians(rows * cols, 9);
    const bytes = q4k.codec.encode(w, cols);
    const deq = q4k.codec.decode(bytes, rows, cols);
    const x = gaussians(n * cols, 10);
    const viaPacked = matmulRows(packedRows({ type: q4k, bytes, rows, cols }), 0, rows, cols, x, n);
    expect(viaPacked).toEqual(matmulRows(f32Rows(deq, cols), 0, rows, cols, x, n));
    expect(maxUlps(matmulF32(deq, rows, cols, x, n), viaPacked).max).toBeLessThanOrEqual(1);
    const noF32 = () => {
      throw new Error('packed tensors are not read as f32');
    };
    const packed = new Map([['w', { type: q4k, bytes, rows, cols }]]);
    // Budget 0: decoded slab by slab in every product; the default budget: decoded once and kept.
    for (const linear of [fastCpuLinear(noF32, packed, 0), fastCpuLinear(noF32, packed)]) {
      expect(linear('w', x, n, rows, cols)).toEqual(viaPacked);
      expect(linear('w', x, n, rows, cols)).toEqual(viaPacked);
      expect(() => linear('w', x, n, rows + 1, cols)).toThrow(/40 x 512, expected 41 x 512/);
    }
  });

  it("eval's figures on the fast products stay within 1e-6 relative of the reference path's", async () => {
    const model = await loadModel([await fixture('stories260K.gguf')]);
    const options = { presets: ['Q4_K_M', 'Q2_K'], greedyTokens: 8, chunk: 8 };
    const fast = await evaluateModel(model, options);
    const reference = await evaluateModel(model, { ...options, linear: (_config, weights) => cpuLinear(weights) });
    const relative = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
    expect(relative(fast.f32.ppl, reference.f32.ppl)).toBeLessThan(1e-6);
    for (const [i, r] of reference.results.entries()) {
      const f = fast.results[i];
      expect(r.klMean).toBeGreaterThan(0);
      for (const key of ['klMean', 'klMedian', 'klP99', 'ppl'] as const) expect(relative(f[key], r[key]), `${r.preset} ${key}`).toBeLessThan(1e-6);
      expect(f.top1Agree).toBe(r.top1Agree);
      expect(f.greedy.tokens).toEqual(r.greedy.tokens);
      let worst = 0;
      for (let p = 0; p < r.kl.length; p++) worst = Math.max(worst, relative(f.kl[p], r.kl[p]));
      console.log(`${r.preset}: KL mean ${r.klMean.toExponential(4)}; fast vs reference, worst per-position KL relative difference ${worst.toExponential(2)}`);
    }
  });

  it('a reduced Qwen2.5 shape (qwen2: n_embd 896, biases, GQA 14/2 heads of 64, tied): the same eval figures within 1e-6 relative', async () => {
    // The 0.5B model itself is the bench's (bench/forward.ts); here 1 layer of its width and heads, vocabulary 512.
    const dir = await mkdtemp(join(tmpdir(), 'quantlab-fast-linear-'));
    try {
      const file = join(dir, 'qwen2.gguf');
      await writeFamilyGguf(file, { family: 'qwen2', nLayer: 1, nEmbd: 896, nFf: 1216, nHead: 14, nHeadKv: 2, headDim: 64, tied: true, ropeFreqBase: 1000000, embeddingStd: 0.05, seed: 5 });
      const model = await loadModel([await fileSource(file)]);
      const options = { presets: ['Q4_K_M'], text: 'Once upon a time there was a cat.', greedyTokens: 2, chunk: 8 };
      const fast = await evaluateModel(model, options);
      const reference = await evaluateModel(model, { ...options, linear: (_config, weights) => cpuLinear(weights) });
      const relative = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
      expect(reference.results[0].klMean).toBeGreaterThan(0);
      for (const key of ['klMean', 'klMedian', 'klP99', 'ppl'] as const) expect(relative(fast.results[0][key], reference.results[0][key]), key).toBeLessThan(1e-6);
      expect(relative(fast.f32.ppl, reference.f32.ppl)).toBeLessThan(1e-6);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("fast CPU matrix products with f32 sums (accumulate 'f32', llama.cpp's numerics)", () => {
  beforeAll(async () => {
    expect(await loadFastCodecs()).toBe(true);
  });

  /** Σ_c |w[r][c]·x[t][c]| for every output: the scale of an f32 summation's error. */
  function absSums(w: Float32Array, rows: number, cols: number, x: Float32Array, n: number): Float64Array {
    const out = new Float64Array(n * rows);
    for (let t = 0; t < n; t++) for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += Math.abs(w[r * cols + c] * x[t * cols + c]);
      out[t * rows + r] = s;
    }
    return out;
  }

  // Odd rows (the single-row tail), token counts below, at and past the 4-token tile, several slabs.
  for (const [rows, cols, n] of [[1, 4, 1], [7, 64, 3], [301, 256, 5], [96, 896, 8], [37, 4864, 6]] as const) {
    it(`is within f32 summation's bound of the f64 reference, and not bit-equal to it: ${rows} x ${cols}, ${n} inputs`, () => {
      const w = gaussians(rows * cols, 11 + rows);
      const x = gaussians(n * cols, 7 + cols);
      const ref = matmulF32(w, rows, cols, x, n);
      const fast = matmulRows(f32Rows(w, cols), 0, rows, cols, x, n, 'f32');
      const scale = absSums(w, rows, cols, x, n);
      // Each lane sums cols/4 rounded products in f32, then two rounds of lane adds and the
      // f64 reference's own rounding: (cols/4 + 4) units of 2^-24, times Σ|w·x|.
      const bound = (cols / 4 + 4) * 2 ** -24;
      let worst = 0;
      for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(fast[i] - ref[i]) / scale[i]);
      expect(worst).toBeLessThanOrEqual(bound);
      if (cols >= 256) expect(fast).not.toEqual(ref);
    });
  }

  it('gives each output the same bits whichever tile computes it (row ranges, token counts)', () => {
    const [rows, cols, n] = [45, 512, 7];
    const w = gaussians(rows * cols, 21);
    const x = gaussians(n * cols, 22);
    const all = matmulRows(f32Rows(w, cols), 0, rows, cols, x, n, 'f32');
    const part = matmulRows(f32Rows(w, cols), 9, 30, cols, x, n, 'f32');
    for (let t = 0; t < n; t++) {
      expect(part.subarray(t * 21, (t + 1) * 21)).toEqual(all.subarray(t * rows + 9, t * rows + 30));
      // Token t alone runs the one-row, one-token loop; in the batch it sat in a 4-token tile or the tail.
      expect(matmulRows(f32Rows(w, cols), 0, rows, cols, x.subarray(t * cols, (t + 1) * cols), 1, 'f32')).toEqual(all.subarray(t * rows, (t + 1) * rows));
    }
  });

  it('fastCpuLinear passes it on, packed tensors included; the default stays the f64 sums', () => {
    const [rows, cols, n] = [40, 512, 4];
    const q4k = quantType('q4_K')!;
    const w = gaussians(rows * cols, 9);
    const bytes = q4k.codec.encode(w, cols);
    const deq = q4k.codec.decode(bytes, rows, cols);
    const x = gaussians(n * cols, 10);
    const packed = new Map([['w', { type: q4k, bytes, rows, cols }]]);
    const weights = (name: string) => (name === 'f' ? w : deq);
    const f32Sums = matmulRows(f32Rows(deq, cols), 0, rows, cols, x, n, 'f32');
    for (const budget of [0, undefined]) expect(fastCpuLinear(weights, packed, budget, 'f32')('w', x, n, rows, cols)).toEqual(f32Sums);
    expect(fastCpuLinear(weights, null, undefined, 'f32')('f', x, n, rows, cols)).toEqual(matmulRows(f32Rows(w, cols), 0, rows, cols, x, n, 'f32'));
    expect(fastCpuLinear(weights, packed)('w', x, n, rows, cols)).toEqual(matmulRows(f32Rows(deq, cols), 0, rows, cols, x, n));
    // 'ggml': llama.cpp's sums by weight type: f32 for F32 weights, f64 for packed ones.
    const ggml = fastCpuLinear(weights, packed, undefined, 'ggml');
    expect(ggml('f', x, n, rows, cols)).toEqual(matmulRows(f32Rows(w, cols), 0, rows, cols, x, n, 'f32'));
    expect(ggml('w', x, n, rows, cols)).toEqual(matmulRows(f32Rows(deq, cols), 0, rows, cols, x, n));
  });

  it("eval hands a CPU linear 'ggml' sums under --activations ggml (the F32 pass's included), the f64 sums otherwise", async () => {
    const model = await loadModel([await fixture('stories260K.gguf')]);
    const run = async (activations: 'ggml' | 'f32') => {
      const seen = new Set<Sums>();
      const r = await evaluateModel(model, {
        presets: ['F32'],
        activations,
        greedyTokens: 0,
        chunk: 64,
        linear: (_c, w, q, sums) => {
          seen.add(sums);
          return fastCpuLinear(w, q?.packed ?? null, undefined, sums);
        },
      });
      return { seen: [...seen], ppl: r.f32.ppl, kl: r.results[0].klMean };
    };
    const [ggml, f32] = [await run('ggml'), await run('f32')];
    expect(ggml.seen).toEqual(['ggml']);
    expect(f32.seen).toEqual(['f64']);
    expect(ggml.kl).toBe(0); // F32 weights: both passes sum alike
    expect(ggml.ppl).not.toBe(f32.ppl);
    expect(Math.abs(ggml.ppl / f32.ppl - 1)).toBeLessThan(1e-5);
  });
});
