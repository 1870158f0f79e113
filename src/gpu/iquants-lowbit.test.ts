// GPU decode and matvec of the types of issue 18 (iq1_s, iq1_m, iq2_xxs, iq2_xs, iq2_s,
// iq3_xxs, iq3_s, nvfp4, q1_0, q2_0) against their CPU codecs (house rule 3): seeded
// realistic rows (gaussian, a few outliers) encoded by the CPU codec, decoded on the GPU,
// every value's f32 bits equal to the CPU decode; then the GPU product within the bar of
// matmul.test.ts. nvfp4, q1_0 and q2_0 also encode on the GPU (bytes equal to the CPU's on
// realistic and adversarial rows); the i-quants' encoders stay on the CPU
// (quantizeOnGpuDetailed reports every block as CPU-encoded). Dawn in Node (SwiftShader without a GPU).
import { beforeAll, describe, expect, it } from 'vitest';
import { quantType, type QuantType } from '../quant/types.ts';
import { relativeError, dequantizedProduct } from '../quant/matmul.ts';
import { gaussians, rng } from '../testing/random.ts';
import type { GpuContext } from './device.ts';
import { createTestGpu } from './gpu-test-setup.ts';
import { gpuMatmulSupportsType, matvecOnGpu } from './matmul.ts';
import { dequantizeOnGpu, gpuSupportsType, quantizeOnGpuDetailed } from './quantize.ts';
import { bitsOf, differingBlocks } from './testing.ts';

const TYPES = ['iq1_s', 'iq1_m', 'iq2_xxs', 'iq2_xs', 'iq2_s', 'iq3_xxs', 'iq3_s', 'nvfp4', 'q1_0', 'q2_0'];
const ROWS = 6;
/** Types whose WGSL codec encodes too (the i-quants' searches stay on the CPU: docs/formats.md). */
const GPU_ENCODED = ['nvfp4', 'q1_0', 'q2_0'];
const COLS = 512;
/** matmul.test.ts's bar: f32 rounding of a sum of a few hundred terms, norm-wise. */
const MAX_REL_ERROR = 1e-5;

let gpu: GpuContext;
beforeAll(async () => {
  gpu = await createTestGpu();
});

/** Gaussian rows with a few outliers and a row scale per row (weights as models have them). */
function realisticRows(seed: number): Float32Array {
  const x = gaussians(ROWS * COLS, seed, 0.02);
  const u = rng(seed + 1);
  for (let r = 0; r < ROWS; r++) {
    const scale = 0.25 + 4 * u();
    for (let j = 0; j < COLS; j++) x[r * COLS + j] *= scale;
    for (let k = 0; k < 3; k++) x[r * COLS + Math.floor(u() * COLS)] *= 8;
  }
  return x;
}

function importanceFor(seed: number): Float32Array {
  const u = rng(seed);
  return Float32Array.from({ length: COLS }, () => 0.05 + u() * u());
}

function differingValues(got: Float32Array, want: Float32Array): string[] {
  const g = bitsOf(got);
  const w = bitsOf(want);
  const bad: string[] = [];
  for (let i = 0; i < w.length; i++) if (g[i] !== w[i]) bad.push(`${i}: ${g[i].toString(16)} != ${w[i].toString(16)}`);
  return bad;
}

function encode(t: QuantType, x: Float32Array, seed: number): Uint8Array {
  return t.codec.encode(x, COLS, t.usesImportance ? importanceFor(seed) : undefined);
}

describe.each(TYPES)('%s on the GPU', (id) => {
  const t = quantType(id)!;

  it('has a WGSL codec and a matmul', () => {
    expect(gpuSupportsType(t)).toBe(true);
    expect(gpuMatmulSupportsType(t)).toBe(true);
  });

  it('decodes bit-exactly as the CPU (0 differing values)', async () => {
    for (const seed of [1, 2]) {
      const bytes = encode(t, realisticRows(seed), seed);
      const want = t.codec.decode(bytes, ROWS, COLS);
      const got = await dequantizeOnGpu(gpu, t, bytes, ROWS, COLS);
      expect(got.length).toBe(want.length);
      expect(differingValues(got, want).slice(0, 8), `seed ${seed}`).toEqual([]);
    }
    expect(gpu.uncapturedErrors).toEqual([]);
  });

  it('decodes random blocks as the CPU does (every grid point, NaN and Inf scales)', async () => {
    // 256 blocks of random bytes: grid indices cover (nearly) every point of each grid.
    const rows = 256;
    const cols = 256;
    const bytes = new Uint8Array((rows * cols / t.blockSize) * t.typeSize);
    const u = rng(21);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(u() * 256);
    // Mostly modest f16 scales where the block starts with one (random bytes would give many
    // Inf/NaN ones); a few blocks keep their random, possibly non-finite, scale.
    if (!['iq1_m', 'nvfp4'].includes(id)) {
      for (let b = 0; b < bytes.length / t.typeSize; b++) if (b % 16 !== 0) bytes[b * t.typeSize + 1] &= 0x3b;
      bytes.set([0x01, 0xfe], 0); // a negative NaN scale
      bytes.set([0x00, 0x7c], 16 * t.typeSize); // +Inf
    }
    const want = t.codec.decode(bytes, rows, cols);
    const got = await dequantizeOnGpu(gpu, t, bytes, rows, cols);
    expect(differingValues(got, want).slice(0, 8)).toEqual([]);
  });

  it('matvec within the bar of the existing types', async () => {
    const bytes = encode(t, realisticRows(7), 7);
    const x = gaussians(COLS, 8);
    const ref = dequantizedProduct(t, bytes, ROWS, COLS, x, 1);
    const y = await matvecOnGpu(gpu, t, bytes, ROWS, COLS, x, { subgroups: false });
    expect(relativeError(y, ref.f64)).toBeLessThan(MAX_REL_ERROR);
  });

  const encodesOnGpu = GPU_ENCODED.includes(id);
  it(`quantizeOnGpu gives the CPU codec's bytes, ${encodesOnGpu ? 'every block encoded on the GPU' : 'encoded by the CPU codec'}`, async () => {
    const rows = [realisticRows(11), ...(encodesOnGpu ? [adversarialRows(12)] : [])];
    for (const x of rows) {
      const imp = importanceFor(11);
      const { bytes, report } = await quantizeOnGpuDetailed(gpu, t, x, COLS, imp);
      const want = t.codec.encode(x, COLS, t.usesImportance ? imp : undefined);
      expect(differingBlocks(bytes, want, t.typeSize).slice(0, 8)).toEqual([]);
      expect(report.cpuBlocks.length).toBe(encodesOnGpu ? 0 : (ROWS * COLS) / t.blockSize);
      // Their decode too (Inf and NaN scales included, on the adversarial rows).
      expect(differingValues(await dequantizeOnGpu(gpu, t, want, ROWS, COLS), t.codec.decode(want, ROWS, COLS)).slice(0, 8)).toEqual([]);
    }
    expect(gpu.uncapturedErrors).toEqual([]);
  });
});

/**
 * Rows that probe the encoders' edges: ties between codes, zeros and -0, huge values, f32
 * subnormals (which SwiftShader flushes), Inf and NaN, a block of one value, powers of two.
 */
function adversarialRows(seed: number): Float32Array {
  const u = rng(seed);
  const x = realisticRows(seed);
  const specials = [0, -0, 1e-40, -1e-42, 1.4e-45, 3e38, -3e38, Infinity, -Infinity, NaN, 0.5, 0.25, 448 * 6, 1 / 512, 6, 3];
  for (let r = 0; r < ROWS; r++) {
    const row = x.subarray(r * COLS, (r + 1) * COLS);
    if (r === 0) row.fill(0);
    if (r === 1) for (let j = 0; j < COLS; j++) row[j] = specials[j % specials.length] * (j & 16 ? -1 : 1);
    if (r === 2) for (let j = 0; j < COLS; j++) row[j] = (1e-39 * (j % 13)) * (j & 1 ? -1 : 1); // subnormal blocks
    if (r === 3) for (let j = 0; j < COLS; j++) row[j] = Math.round(u() * 12 - 6) / 2; // ties on the E2M1 grid
    if (r === 4) row.fill(-2.5);
  }
  return x;
}
