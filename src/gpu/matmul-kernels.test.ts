// The cooperative matvec and the tiled prefill matmul (src/gpu/matmul.ts, kernels
// matmul_coop*.wgsl, matmul_tiled.wgsl): products equal the f64 product of the CPU-decoded
// weights to f32 rounding (the bar src/gpu/matmul.test.ts holds the generic kernel to),
// on rows that start off word boundaries, tails of rows and tokens, subnormal f16 scales,
// both reductions and both adapter configurations; bit-identical run to run and however
// the product is split. Small shapes: each case is one or two shader compiles.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quantType, type QuantType } from '../quant/types.ts';
import { dequantizedProduct, relativeError } from '../quant/matmul.ts';
import { restrictLimits, type GpuContext } from './device.ts';
import { createTestGpu } from './gpu-test-setup.ts';
import { gaussians } from '../testing/random.ts';
import { canUseSubgroups, COOP_CODECS, matmulChunking, matmulConfig, matmulOnGpu, TILED_MIN_TOKENS, type MatmulOptions } from './matmul.ts';

const MAX_REL_ERROR = 1e-5;
const COOP_TYPES = ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'iq4_nl', 'q2_K', 'q4_K', 'q5_K', 'q6_K'];
/**
 * Tiled kernel: blocks of 32 that start off word boundaries, and blocks of one value (a K
 * step of many blocks). The kernel is the same for every codec (dequantize_block fills
 * its tile); 256-value blocks are left to hardware runs, as SwiftShader takes 30-60 s to
 * compile their tile.
 */
const TILED_TYPES = ['q4_0', 'f16'];
/** Workgroup memory that gives the tiled kernel its 8 x 8 tile: a quarter of the 16 x 16 tile's compile time on SwiftShader. */
const SMALL_TILE_MEMORY = 3000;

let gpu: GpuContext;
let subgroupVariants: boolean[];

function type(id: string): QuantType {
  const t = quantType(id);
  if (!t) throw new Error(`no type ${id}`);
  return t;
}

/** Seeded weights; every 5th row scaled down to 1e-7 so that its f16 scales are subnormal. */
function weights(rows: number, cols: number, seed: number): Float32Array {
  const w = gaussians(rows * cols, seed, 0.02);
  for (let r = 0; r < rows; r += 5) for (let c = 0; c < cols; c++) w[r * cols + c] *= 1e-5;
  return w;
}

async function check(t: QuantType, rows: number, cols: number, n: number, options: MatmulOptions, gpuCtx = gpu): Promise<Float32Array> {
  const w = weights(rows, cols, 3 + rows);
  const x = gaussians(cols * n, 7 + n);
  const packed = t.codec.encode(w, cols);
  const ref = dequantizedProduct(t, packed, rows, cols, x, n);
  const y = await matmulOnGpu(gpuCtx, t, packed, rows, cols, x, n, options);
  expect(relativeError(y, ref.f64), `${t.id} ${rows}x${cols} n=${n} ${JSON.stringify(options)}`).toBeLessThan(MAX_REL_ERROR);
  return y;
}

beforeAll(async () => {
  gpu = await createTestGpu();
  subgroupVariants = canUseSubgroups(gpu) ? [false, true] : [false];
});

afterAll(() => gpu?.destroy());

describe('kernel choice', () => {
  it('coop for few tokens of its types, tiled from TILED_MIN_TOKENS, generic otherwise', () => {
    expect([...COOP_CODECS].sort()).toEqual(['iq4_nl', 'q2_k', 'q4_0', 'q4_1', 'q4_k', 'q5_0', 'q5_1', 'q5_k', 'q6_k', 'q8_0']);
    expect(matmulConfig(gpu, type('q4_0'), 256, 1).kernel).toBe('coop');
    expect(matmulConfig(gpu, type('q6_K'), 256, TILED_MIN_TOKENS - 1).kernel).toBe('coop');
    const hw: GpuContext = { ...gpu, isFallbackAdapter: false };
    expect(matmulConfig(hw, type('q6_K'), 256, TILED_MIN_TOKENS).kernel).toBe('tiled');
    expect(matmulConfig(hw, type('q5_0'), 256, TILED_MIN_TOKENS).kernel).toBe('tiled');
    // Software adapters keep the generic prefill kernel unless asked (compile time).
    expect(matmulConfig({ ...gpu, isFallbackAdapter: true }, type('q6_K'), 256, TILED_MIN_TOKENS).kernel).toBe('generic');
    expect(matmulConfig(gpu, type('q6_K'), 256, TILED_MIN_TOKENS, { kernel: 'tiled' }).kernel).toBe('tiled');
    // A K step never runs past a row: its blocks divide the row's (f16: 172 values, steps of 43).
    expect(matmulConfig(hw, type('f16'), 172, 16).stepBlocks).toBe(43);
    expect(matmulConfig(gpu, type('q3_K'), 256, 1).kernel).toBe('generic');
    expect(matmulConfig(gpu, type('q4_0'), 256, 1, { kernel: 'generic' }).kernel).toBe('generic');
    expect(() => matmulConfig(gpu, type('q3_K'), 256, 1, { kernel: 'coop' })).toThrow(/no cooperative matvec/);
    // A device whose workgroup memory cannot hold a K-quant tile falls back to the generic kernel.
    const small = restrictLimits({ ...gpu, isFallbackAdapter: false }, { maxComputeWorkgroupStorageSize: 8192 });
    expect(matmulConfig(small, type('q4_K'), 256, 16).kernel).toBe('generic');
    expect(matmulConfig(small, type('q4_0'), 256, 16)).toMatchObject({ kernel: 'tiled', rowsPerWg: 16, tokensPerWg: 16 });
  });
});

describe.each(COOP_TYPES)('%s: cooperative matvec = CPU-decoded product to f32 rounding', (id) => {
  it('odd rows, 3 blocks per row, n = 1 and 3, both reductions, software and hardware configurations', async () => {
    const t = type(id);
    const hw: GpuContext = { ...gpu, isFallbackAdapter: false };
    const cols = 3 * t.blockSize;
    // Software configuration with each reduction; the hardware one (other workgroup and
    // rows per workgroup) with the device's own (one compile less per type).
    for (const subgroups of subgroupVariants) {
      for (const n of [1, 3]) await check(t, 37, cols, n, { kernel: 'coop', subgroups }, gpu);
    }
    for (const n of [1, 3]) await check(t, 37, cols, n, { kernel: 'coop', subgroups: subgroupVariants.at(-1) }, hw);
    expect(gpu.uncapturedErrors).toEqual([]);
  });

  it('bit-identical run to run and when split over rows and tokens', async () => {
    const t = type(id);
    const [rows, cols, n] = [45, 2 * t.blockSize, 3];
    const w = weights(rows, cols, 5);
    const x = gaussians(cols * n, 9);
    const packed = t.codec.encode(w, cols);
    const opts: MatmulOptions = { kernel: 'coop', subgroups: false };
    const a = await matmulOnGpu(gpu, t, packed, rows, cols, x, n, opts);
    const b = await matmulOnGpu(gpu, t, packed, rows, cols, x, n, opts);
    expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
    const split = restrictLimits(gpu, { maxComputeWorkgroupsPerDimension: 2 });
    expect(matmulChunking(split, t, matmulConfig(split, t, cols, n, opts), rows, cols, n).rowsPerChunk).toBeLessThan(rows);
    const c = await matmulOnGpu(split, t, packed, rows, cols, x, n, opts);
    expect(Buffer.from(c.buffer).equals(Buffer.from(a.buffer))).toBe(true);
  });
});

describe.each(TILED_TYPES)('%s: tiled matmul = CPU-decoded product to f32 rounding', (id) => {
  it('odd rows and tokens (tails of both tiles), bit-identical when split', async () => {
    const t = type(id);
    // q4_0: 3 blocks a row (rows start off word boundaries); f16: 172 values (steps of 43).
    const cols = t.blockSize === 1 ? 172 : 3 * t.blockSize;
    const tiles = restrictLimits(gpu, { maxComputeWorkgroupStorageSize: SMALL_TILE_MEMORY });
    expect(matmulConfig(tiles, t, cols, 19, { kernel: 'tiled' })).toMatchObject({ rowsPerWg: 8, tokensPerWg: 8 });
    const y = await check(t, 37, cols, 19, { kernel: 'tiled' }, tiles);
    const split = restrictLimits(tiles, { maxComputeWorkgroupsPerDimension: 2 });
    const w = weights(37, cols, 3 + 37);
    const x = gaussians(cols * 19, 7 + 19);
    const again = await matmulOnGpu(split, t, t.codec.encode(w, cols), 37, cols, x, 19, { kernel: 'tiled' });
    expect(Buffer.from(again.buffer).equals(Buffer.from(y.buffer))).toBe(true);
    expect(gpu.uncapturedErrors).toEqual([]);
  });
});
