// The f32 sums with relaxed SIMD (wasm/build/matmul-relaxed.wasm: f32x4.relaxed_madd a step)
// against scalar references of the kernel's order (four lanes, column c in lane c mod 4, lanes
// added (0+1)+(2+3)): with a fused multiply-add where the engine fuses, else mul then add; and
// the fallback (relaxed SIMD absent) against today's kernel, bit for bit.
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WASM_OUTPUT, WASM_RELAXED_OUTPUT } from '../../scripts/build-wasm.mjs';
import { loadFastCodecs } from '../quant/fast/node.ts';
import { installFastCodecs, relaxedMatmulInstalled, uninstallFastCodecs } from '../quant/fast/wasm-codecs.ts';
import { gaussians } from '../testing/random.ts';
import { f32Rows, matmulRows } from './fast-linear.ts';

const f64 = new Float64Array(1);
const bits = new BigInt64Array(f64.buffer);

/**
 * fma(a, b, c) of f32 values rounded once to f32: a·b is exact in f64; the f64 sum s = a·b + c
 * is made round-to-odd (its last bit set when inexact, moving toward the TwoSum error), which
 * then rounds to f32 (24 bits; 53 ≥ 24 + 2) as the exact sum does.
 */
function fmaF32(a: number, b: number, c: number): number {
  const p = a * b;
  const s = p + c;
  const z = s - p;
  const err = p - (s - z) + (c - z);
  f64[0] = s;
  if (err !== 0 && (bits[0] & 1n) === 0n) bits[0] += (err > 0) === (s > 0) ? 1n : -1n;
  return Math.fround(f64[0]);
}

const mulAdd = (a: number, b: number, c: number) => Math.fround(c + Math.fround(a * b));

/** W·x as the f32 kernel orders it, each step `step`. */
function laneSums(w: Float32Array, rows: number, cols: number, x: Float32Array, n: number, step: (a: number, b: number, c: number) => number): Float32Array {
  const y = new Float32Array(n * rows);
  for (let t = 0; t < n; t++) {
    for (let r = 0; r < rows; r++) {
      const l = [0, 0, 0, 0];
      for (let c = 0; c < cols; c++) l[c & 3] = step(w[r * cols + c], x[t * cols + c], l[c & 3]);
      y[t * rows + r] = Math.fround(Math.fround(l[0] + l[1]) + Math.fround(l[2] + l[3]));
    }
  }
  return y;
}

/** Whether the installed products fuse: 1 + 2^-12 squared, less 1, is 2^-11 + 2^-24 fused and 2^-11 after a rounded product. */
function fuses(): boolean {
  const a = 1 + 2 ** -12;
  const w = new Float32Array([1, 0, 0, 0, a, 0, 0, 0]);
  const y = matmulRows(f32Rows(w, 8), 0, 1, 8, new Float32Array([-1, 0, 0, 0, a, 0, 0, 0]), 1, 'f32')[0];
  expect([2 ** -11 + 2 ** -24, 2 ** -11]).toContain(y);
  return y !== 2 ** -11;
}

/** The x86 CPU here has FMA3 (V8 then fuses relaxed_madd); null off Linux x86. */
function cpuHasFma(): boolean | null {
  if (process.arch !== 'x64' || !existsSync('/proc/cpuinfo')) return null;
  return /^flags\s*:.*\bfma\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));
}

// Shapes: the four-token tile with a leftover row and tokens, several slabs (slabRows(36) = 910), long rows.
const SHAPES: [number, number, number][] = [[7, 36, 6], [1001, 36, 5], [131, 260, 4], [3, 8, 1]];

describe('f32 sums with relaxed SIMD (matmul-relaxed.wasm)', () => {
  beforeAll(async () => {
    expect(await loadFastCodecs()).toBe(true);
  });
  afterAll(async () => {
    uninstallFastCodecs();
    await loadFastCodecs(); // leave the modules as node.ts installs them
  });

  it('is installed in Node (behind V8 11.3\'s flag, set by node.ts), fused where the x86 CPU has FMA', () => {
    expect(relaxedMatmulInstalled()).toBe(true);
    const fma = cpuHasFma();
    if (fma !== null) expect(fuses()).toBe(fma);
  });

  for (const [rows, cols, n] of SHAPES) {
    it(`equals the scalar reference of its order, step by step, run to run: ${rows} x ${cols}, ${n} inputs`, () => {
      const w = gaussians(rows * cols, rows + cols);
      const x = gaussians(n * cols, 7 * n + cols);
      const y = matmulRows(f32Rows(w, cols), 0, rows, cols, x, n, 'f32');
      const fused = laneSums(w, rows, cols, x, n, fmaF32);
      const plain = laneSums(w, rows, cols, x, n, mulAdd);
      expect(y).toEqual(fuses() ? fused : plain);
      // The fused and plain orders differ (the test could tell them apart), and a second run gives the same bits.
      if (cols > 8) expect(fused).not.toEqual(plain);
      expect(matmulRows(f32Rows(w, cols), 0, rows, cols, x, n, 'f32')).toEqual(y);
    });
  }

  it('leaves the f64 sums bit-identical to quant.wasm\'s', () => {
    const [rows, cols, n] = [131, 260, 5];
    const w = gaussians(rows * cols, 3);
    const x = gaussians(n * cols, 4);
    const relaxed = matmulRows(f32Rows(w, cols), 0, rows, cols, x, n, 'f64');
    installFastCodecs(readFileSync(WASM_OUTPUT), null);
    expect(relaxedMatmulInstalled()).toBe(false);
    expect(matmulRows(f32Rows(w, cols), 0, rows, cols, x, n, 'f64')).toEqual(relaxed);
  });

  it('falls back to quant.wasm\'s kernel (mul then add: today\'s bits) where relaxed SIMD is absent or does not validate', () => {
    const [rows, cols, n] = [131, 260, 5];
    const w = gaussians(rows * cols, 5);
    const x = gaussians(n * cols, 6);
    const plain = laneSums(w, rows, cols, x, n, mulAdd);
    // A module the engine refuses: the relaxed module's bytes with an opcode the engine has not, standing in for an engine without relaxed SIMD.
    const refused = Uint8Array.from(readFileSync(WASM_RELAXED_OUTPUT));
    refused[refused.length - 1] ^= 0xff;
    expect(WebAssembly.validate(refused)).toBe(false);
    for (const relaxed of [null, refused]) {
      installFastCodecs(readFileSync(WASM_OUTPUT), relaxed);
      expect(relaxedMatmulInstalled()).toBe(false);
      expect(fuses()).toBe(false);
      expect(matmulRows(f32Rows(w, cols), 0, rows, cols, x, n, 'f32')).toEqual(plain);
    }
  });
});
