// K-quants on the GPU (shaders/codecs/q{2,3,4,5,6,8}_k.wgsl, shaders/lib/kquant.wgsl) against
// ggml's own output (../shared/fixtures/golden) and against the CPU codec
// (src/quant/codecs/kquants.ts) on real tensors and on stress rows: quantized bytes
// identical, dequantized floats identical bit for bit; without and with importance weights
// (the *_impl paths, legacy q4_0..q5_1 included). Blocks the GPU hands to the CPU
// (block_to_cpu: their searches leave f32's normal range) are reported, and must hold tiny,
// huge or subnormal values. In Node on Dawn (SwiftShader on GPU-less machines); a missing
// adapter fails.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { quantType, type QuantType } from '../quant/types.ts';
import { f16BitsToF32 } from '../formats/float16.ts';
import { loadModel, readTensorF32 } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { restrictLimits, type GpuContext } from './device.ts';
import { createTestGpu } from './gpu-test-setup.ts';
import { groupBlocks } from './block-codecs.ts';
import { dequantizeOnGpu, gpuSupportsType, quantizeOnGpu, quantizeOnGpuDetailed } from './quantize.ts';
import { bitsOf, differingBlocks, FIXTURES, readGolden as read, readGoldenF32 as readF32, rng, SETS } from './testing.ts';

const MODEL = join(FIXTURES, 'models/stories260K.gguf');
const QK_K = 256;

/** The K types with golden files (q8_K has none: ggml makes it from activations only). */
const GOLDEN_TYPES = ['q2_K', 'q3_K', 'q4_K', 'q5_K', 'q6_K'];
const K_TYPES = [...GOLDEN_TYPES, 'q8_K'];
/** Blocks allowed to differ from the reference at a rounding tie: none. */
const ALLOWED_TIE_BLOCKS: Record<string, number> = {};

/** Byte ranges of a block that hold scales (everything but the quants), per type. */
const SCALE_BYTES: Record<string, [number, number][]> = {
  q2_K: [[0, 16], [80, 84]],
  q3_K: [[96, 110]],
  q4_K: [[0, 16]],
  q5_K: [[0, 16]],
  q6_K: [[192, 210]],
  q8_K: [[0, 4]],
};

/** The quantization step of value e (0..255) of a block: its sub-block's |d * sc|. */
function stepOf(id: string, q: Uint8Array, o: number, e: number): number {
  const f16 = (at: number) => f16BitsToF32(q[o + at] | (q[o + at + 1] << 8));
  switch (id) {
    case 'q2_K':
      return Math.abs(f16(80) * (q[o + (e >> 4)] & 0xf));
    case 'q3_K': {
      const j = e >> 4;
      const low = j < 8 ? q[o + 96 + j] & 0xf : q[o + 96 + j - 8] >> 4;
      const sc = low | (((q[o + 104 + (j % 4)] >> (2 * (j >> 2))) & 3) << 4);
      return Math.abs(f16(108) * (sc - 32));
    }
    case 'q4_K':
    case 'q5_K': {
      const j = e >> 5;
      const sc = j < 4 ? q[o + 4 + j] & 63 : (q[o + 4 + j + 4] & 0xf) | ((q[o + 4 + j - 4] >> 6) << 4);
      return Math.abs(f16(0) * sc);
    }
    case 'q6_K':
      return Math.abs(f16(208) * ((q[o + 192 + (e >> 4)] << 24) >> 24));
    default:
      return Math.abs(new DataView(q.buffer, q.byteOffset + o, 4).getFloat32(0, true));
  }
}

/**
 * Why GPU and CPU bytes of one block may differ and still both be right: the same scale
 * bytes, and every differing value one quantization step apart with the input at the
 * midpoint between the two (a rounding tie, up to f32 rounding). Null when that is so.
 */
function tieExplanation(type: QuantType, block: number, input: Float32Array, got: Uint8Array, want: Uint8Array, gpuDeq: Float32Array, cpuDeq: Float32Array): string | null {
  const at = block * type.typeSize;
  for (const [lo, hi] of SCALE_BYTES[type.id]) {
    for (let i = lo; i < hi; i++) if (got[at + i] !== want[at + i]) return `block ${block}: scale byte ${i} differs`;
  }
  const reasons: string[] = [];
  for (let e = 0; e < QK_K; e++) {
    const j = block * QK_K + e;
    const g = gpuDeq[j];
    const c = cpuDeq[j];
    if (Object.is(g, c)) continue;
    const d = stepOf(type.id, want, at, e);
    const step = Math.abs(g - c);
    const mid = (g + c) / 2;
    if (Math.abs(step - d) > d * 2 ** -20 || Math.abs(input[j] - mid) > d * 2 ** -18) {
      reasons.push(`value ${e}: x=${input[j]} gpu=${g} cpu=${c} (step ${d})`);
    }
  }
  return reasons.length ? `block ${block}: ${reasons.slice(0, 4).join('; ')}` : null;
}

const report: string[] = [];
let gpu: GpuContext;

beforeAll(async () => {
  gpu = await createTestGpu({ label: 'test-kquants' });
});

afterAll(() => {
  if (report.length) console.log(`K-quants, GPU vs reference (${gpu?.description}):\n  ${report.join('\n  ')}`);
  gpu?.destroy();
});

/**
 * Quantize on the GPU, compare with `want` block by block (differences must be ties),
 * dequantize `want` on the GPU and compare with `wantDeq` bit for bit. Returns a report line.
 */
/**
 * Whether the GPU may hand block b to the CPU: it has a subnormal or non-finite value, a
 * sub-block of 16 whose largest |x| is below 1e-4, or a value of 1e4 or more (the
 * searches' x^6..x^8-sized products of such values leave f32's normal range, where the
 * GPU's arithmetic is not trusted to be C's). Real weights have none of these.
 */
function mayNeedCpu(input: Float32Array, b: number): boolean {
  for (let j = 0; j < QK_K; j += 16) {
    let amax = 0;
    for (let i = b * QK_K + j; i < b * QK_K + j + 16; i++) {
      const a = Math.abs(input[i]);
      if (!Number.isFinite(a) || (a !== 0 && a < 2 ** -126) || a >= 1e4) return true;
      amax = Math.max(amax, a);
    }
    if (amax < 1e-4) return true;
  }
  return false;
}

async function checkType(type: QuantType, input: Float32Array, want: Uint8Array, wantDeq: Float32Array, what: string, importance?: Float32Array): Promise<number[]> {
  const rows = input.length / QK_K;
  let t0 = performance.now();
  const { bytes: got, report: gpuReport } = await quantizeOnGpuDetailed(gpu, type, input, QK_K, importance);
  const tq = performance.now() - t0;
  const { cpuBlocks } = gpuReport;
  const differ = differingBlocks(got, want, type.typeSize);
  const gpuDeqOfGot = differ.length ? await dequantizeOnGpu(gpu, type, got, rows, QK_K) : wantDeq;
  const notTies = differ.map((b) => tieExplanation(type, b, input, got, want, gpuDeqOfGot, wantDeq)).filter((s) => s !== null);

  t0 = performance.now();
  const deq = await dequantizeOnGpu(gpu, type, want, rows, QK_K);
  const td = performance.now() - t0;
  const g = bitsOf(deq);
  const c = bitsOf(wantDeq);
  const bad = [...g.keys()].filter((i) => g[i] !== c[i] && !(Number.isNaN(deq[i]) && Number.isNaN(wantDeq[i])));

  report.push(
    `${type.id.padEnd(4)} ${what.padEnd(22)} ${differ.length}/${want.length / type.typeSize} blocks differ` +
      `${differ.length ? ` (ties ${differ.length - notTies.length}; blocks ${differ.slice(0, 8).join(', ')})` : ''}` +
      `, ${cpuBlocks.length} encoded on the CPU${cpuBlocks.length ? ` (blocks ${cpuBlocks.slice(0, 12).join(', ')}${cpuBlocks.length > 12 ? ', ...' : ''})` : ''}` +
      `, quantize ${tq.toFixed(0)} ms, dequantize ${td.toFixed(0)} ms`,
  );
  expect(notTies.slice(0, 4), 'differences that are not one step at a rounding tie').toEqual([]);
  expect(differ.length, 'blocks differing at a rounding tie').toBeLessThanOrEqual(ALLOWED_TIE_BLOCKS[type.id] ?? 0);
  expect(bad.slice(0, 8).map((i) => `${i}: ${g[i].toString(16)} != ${c[i].toString(16)}`)).toEqual([]);
  expect(cpuBlocks.filter((b) => !mayNeedCpu(input, b)), 'blocks the GPU left to the CPU without tiny values').toEqual([]);
  return [...cpuBlocks];
}

describe('K-quant codecs on the GPU', () => {
  it('every K type has a WGSL codec, groups of whole words', () => {
    for (const id of K_TYPES) {
      const t = quantType(id)!;
      expect(gpuSupportsType(t), id).toBe(true);
      expect(t.wgsl).toBe(id.toLowerCase());
      expect((groupBlocks(t.typeSize) * t.typeSize) % 4).toBe(0);
    }
  });
});

describe.each(GOLDEN_TYPES)('%s on the GPU vs ggml golden', (id) => {
  const type = quantType(id)!;
  for (const set of SETS) {
    it(`${set}: quantized bytes and dequantized floats identical`, async () => {
      await checkType(type, readF32(`${set}.input.f32`), read(`${set}.${id}.bin`), readF32(`${set}.${id}.deq.f32`), `golden ${set}`);
    });
  }
});

/** The K types whose ggml quantizer takes importance weights (all but q8_K). */
const IMATRIX_TYPES = GOLDEN_TYPES;

describe.each(IMATRIX_TYPES)('%s with importance weights on the GPU vs ggml golden (imatrix.f32)', (id) => {
  const type = quantType(id)!;
  for (const set of SETS) {
    it(`${set}: quantized bytes and dequantized floats identical`, async () => {
      const imatrix = readF32('imatrix.f32');
      await checkType(type, readF32(`${set}.input.f32`), read(`${set}.imatrix.${id}.bin`), readF32(`${set}.imatrix.${id}.deq.f32`), `imatrix golden ${set}`, imatrix);
    });
  }
});

/** Importance weights for rows of `n`: positive, spread over six orders of magnitude, a few zeros. */
function syntheticImportance(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, (_, i) => (i % 37 === 5 ? 0 : 10 ** (6 * r() - 3)));
}

/** Every f32 tensor of stories260K, flattened and cut into rows of 256 (the tail dropped). */
async function realRows(): Promise<Float32Array> {
  const model = await loadModel([await fileSource(MODEL)]);
  const parts: Float32Array[] = [];
  for (const t of model.tensors) {
    if (t.dtype !== 'F32' && t.dtype !== 'f32') continue;
    parts.push(await readTensorF32(model, t));
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Float32Array(Math.floor(total / QK_K) * QK_K);
  let at = 0;
  for (const p of parts) {
    const n = Math.min(p.length, out.length - at);
    out.set(p.subarray(0, n), at);
    at += n;
  }
  return out;
}

/**
 * Rows of 256 that stress the K searches: Gaussians from 1e-30 to 1e4 (tiny ones make
 * subnormal weights, sums and errors), f32 subnormals, zeros of both signs, constants,
 * constant sub-blocks, one-signed rows, spikes, few distinct values, grids on half steps
 * (ties in the searches and the final rounding), and mixed sub-block magnitudes.
 */
function stressRows(seed: number): Float32Array {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const row = (f: (i: number) => number) => Array.from({ length: QK_K }, (_, i) => f(i));
  const rows: number[][] = [];
  for (const e of [-30, -20, -19, -18, -8, -4, -2, -1, 0, 1, 2, 4]) rows.push(row(() => gauss() * 10 ** e));
  rows.push(row(() => Math.fround(gauss()) * 2 ** -60));
  rows.push(row(() => (r() - 0.5) * 2 ** -130)); // f32 subnormals
  rows.push(row(() => (r() - 0.5) * 2 ** -120)); // subnormal squares, differences
  rows.push(row((i) => (i % 2 ? 1 : -1) * 2 ** -149 * Math.floor(r() * 8)));
  rows.push(row((i) => (i % 3 === 0 ? -0 : 0)));
  rows.push(row(() => 0.3));
  rows.push(row(() => -1.5));
  rows.push(row((i) => (i % 32 < 16 ? 0.3 : -0)));
  rows.push(row((i) => (i >> 4) % 3 === 0 ? 0.25 : gauss())); // constant sub-blocks of 16
  rows.push(row((i) => (i >> 5) % 2 === 0 ? -2 : gauss() * 0.01)); // constant sub-blocks of 32
  rows.push(row(() => Math.abs(gauss()))); // one-signed
  rows.push(row(() => -Math.abs(gauss()) - 3));
  rows.push(row(() => Math.abs(gauss()) + 100));
  rows.push(row((i) => (i % 97 === 0 ? 1000 : gauss() * 1e-3)));
  rows.push(row((i) => (i === 5 ? -1e4 : gauss() * 1e-6)));
  rows.push(row(() => Math.floor(r() * 3) - 1)); // ternary
  rows.push(row(() => Math.floor(r() * 4))); // 2-bit grid
  rows.push(row(() => Math.floor(r() * 16) - 8)); // 4-bit grid
  rows.push(row(() => Math.floor(r() * 64) - 32));
  for (let k = 0; k < 6; k++) {
    const s = 2 ** (Math.floor(r() * 40) - 20);
    rows.push(row(() => (Math.floor(r() * 17) - 8) * 0.5 * s));
    rows.push(row(() => (Math.floor(r() * 65) - 32) * 0.5 * s));
    rows.push(row((i) => (i % 16 === 0 ? 3 * s : Math.floor(r() * 7) * 0.5 * s)));
    rows.push(row((i) => (i % 32 === 0 ? 15 * s : i % 32 === 1 ? -s : Math.floor(r() * 31) * 0.5 * s)));
    rows.push(row((i) => (i % 16 === 0 ? -32 * s : (Math.floor(r() * 65) - 32) * 0.5 * s)));
  }
  // Sub-blocks of very different magnitudes in one super-block.
  rows.push(row((i) => gauss() * 10 ** ((i >> 4) % 8 - 4)));
  rows.push(row((i) => gauss() * 10 ** ((i >> 5) * 2 - 8)));
  rows.push(row((i) => gauss() * 2 ** ((i >> 4) * -8)));
  return new Float32Array(rows.flat());
}

describe.each(K_TYPES)('%s on the GPU vs the CPU codec', (id) => {
  const type = quantType(id)!;

  it('real tensors of stories260K (rows of 256)', async () => {
    const input = await realRows();
    expect(input.length).toBeGreaterThan(100 * QK_K);
    const want = type.codec.encode(input, QK_K);
    await checkType(type, input, want, type.codec.decode(want, input.length / QK_K, QK_K), 'stories260K');
  });

  it('stress rows', async () => {
    const input = stressRows(11);
    const want = type.codec.encode(input, QK_K);
    await checkType(type, input, want, type.codec.decode(want, input.length / QK_K, QK_K), 'stress');
  });

  it('real tensors and stress rows with importance weights', async () => {
    // Rows of 1024 (4 blocks) for the real data: each block takes its own columns' weights.
    const real = await realRows();
    const rows4 = real.subarray(0, Math.floor(real.length / 1024) * 1024);
    const imp4 = syntheticImportance(1024, 5);
    let want = type.codec.encode(rows4, 1024, imp4);
    const got = await quantizeOnGpuDetailed(gpu, type, rows4, 1024, imp4);
    const differ = differingBlocks(got.bytes, want, type.typeSize);
    report.push(`${type.id.padEnd(4)} ${'imatrix stories260K'.padEnd(22)} ${differ.length}/${want.length / type.typeSize} blocks differ, ${got.report.cpuBlocks.length} encoded on the CPU`);
    expect(differ).toEqual([]);
    expect(got.report.cpuBlocks).toEqual([]);

    const input = stressRows(11);
    const imp = syntheticImportance(QK_K, 9);
    want = type.codec.encode(input, QK_K, imp);
    await checkType(type, input, want, type.codec.decode(want, input.length / QK_K, QK_K), 'imatrix stress', imp);
  });
});

describe('K-quants: chunks, partial groups, blocks left to the CPU', () => {
  it('q3_K and q6_K (two blocks per group): an odd block count and many small chunks', async () => {
    // 2 KiB bindings: q6_K's 2 x 1 KiB input group fits once per chunk; 3 rows of 256 make
    // a partial last group; 2 workgroups per dimension.
    const small = restrictLimits(gpu, { maxStorageBufferBindingSize: 2048, maxComputeWorkgroupsPerDimension: 2 });
    const input = readF32('real.input.f32').subarray(0, 3 * QK_K);
    for (const id of ['q3_K', 'q6_K']) {
      const type = quantType(id)!;
      expect(groupBlocks(type.typeSize)).toBe(2);
      const want = read(`real.${id}.bin`).subarray(0, 3 * type.typeSize);
      expect(Buffer.from(await quantizeOnGpu(small, type, input, QK_K)).equals(Buffer.from(want)), id).toBe(true);
      const deq = await dequantizeOnGpu(small, type, want, 3, QK_K);
      expect(bitsOf(deq)).toEqual(bitsOf(readF32(`real.${id}.deq.f32`).subarray(0, 3 * QK_K)));
    }
  });

  it('a block the GPU hands back is encoded on the CPU, in a row of several blocks', async () => {
    // Row of 4 blocks: the third is tiny (x 1e-12: the searches' products underflow) and
    // holds an f32 subnormal (q8_K's plain scaling only balks at that); the rest normal.
    const input = readF32('realistic.input.f32').slice(0, 4 * QK_K);
    for (let i = 2 * QK_K; i < 3 * QK_K; i++) input[i] *= 1e-12;
    input[2 * QK_K + 7] = 1e-40;
    for (const id of K_TYPES) {
      const type = quantType(id)!;
      const { bytes, report: r } = await quantizeOnGpuDetailed(gpu, type, input, 4 * QK_K);
      expect(r.cpuBlocks, id).toEqual([2]);
      expect(Buffer.from(bytes).equals(Buffer.from(type.codec.encode(input, 4 * QK_K))), id).toBe(true);
    }
  });
});

// The legacy types' *_impl paths share the K searches (lib/kquant.wgsl): tested here too.
describe.each(['q4_0', 'q4_1', 'q5_0', 'q5_1'])('%s with importance weights on the GPU', (id) => {
  const type = quantType(id)!;
  const checkBytes = async (input: Float32Array, rowLength: number, importance: Float32Array, want: Uint8Array, what: string) => {
    const t0 = performance.now();
    const got = await quantizeOnGpuDetailed(gpu, type, input, rowLength, importance);
    const ms = performance.now() - t0;
    const differ = differingBlocks(got.bytes, want, type.typeSize);
    const cpu = got.report.cpuBlocks;
    report.push(`${id.padEnd(4)} ${what.padEnd(22)} ${differ.length}/${want.length / type.typeSize} blocks differ, ${cpu.length} encoded on the CPU, quantize ${ms.toFixed(0)} ms`);
    expect(differ).toEqual([]);
    return cpu;
  };

  it('ggml golden (imatrix.f32): bytes identical', async () => {
    for (const set of SETS) {
      const cpu = await checkBytes(readF32(`${set}.input.f32`), QK_K, readF32('imatrix.f32'), read(`${set}.imatrix.${id}.bin`), `imatrix golden ${set}`);
      expect(cpu.filter((b) => !mayNeedCpu(readF32(`${set}.input.f32`), Math.floor(b / 8)))).toEqual([]);
    }
  });

  it('real tensors (rows of 1024) and stress rows: bytes identical to the CPU codec', async () => {
    const real = await realRows();
    const rows = real.subarray(0, Math.floor(real.length / 1024) * 1024);
    const imp = syntheticImportance(1024, 5);
    expect(await checkBytes(rows, 1024, imp, type.codec.encode(rows, 1024, imp), 'imatrix stories260K')).toEqual([]);
    const stress = stressRows(11);
    const imp256 = syntheticImportance(QK_K, 9);
    const cpu = await checkBytes(stress, QK_K, imp256, type.codec.encode(stress, QK_K, imp256), 'imatrix stress');
    expect(cpu.filter((b) => !mayNeedCpu(stress, Math.floor(b / 8)))).toEqual([]);
  });
});
