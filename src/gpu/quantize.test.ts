// GPU codecs against ggml's own output (../shared/fixtures/golden), in Node on Dawn
// (SwiftShader on GPU-less machines): quantized bytes identical to the .bin files and
// dequantized floats identical, bit for bit, to the .deq.f32 files. A missing adapter fails.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quantType, type QuantType } from '../quant/types.ts';
import { f16BitsToF32 } from '../formats/float16.ts';
import { GpuDeviceLostError, restrictLimits, type GpuContext } from './device.ts';
import { createTestGpu } from './gpu-test-setup.ts';
import { groupBlocks } from './block-codecs.ts';
import { errorStatsOnGpu } from './error-stats.ts';
import { dequantizeOnGpu, gpuSupportsType, quantizeOnGpu } from './quantize.ts';
import { differingBlocks, readGolden as read, readGoldenF32 as readF32, rng, SETS } from './testing.ts';

const N_PER_ROW = 256;

/** Types with a WGSL codec so far. Blocks allowed to differ from ggml (ties): none. */
const GPU_TYPES = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1'];
const ALLOWED_TIE_BLOCKS: Record<string, number> = {};

const bytesOf = (f: Float32Array) => new Uint8Array(f.buffer, f.byteOffset, f.byteLength);

function goldenFor(type: QuantType, set: string): { bin: Uint8Array; deq: Float32Array } {
  if (type.id === 'f32') {
    const input = readF32(`${set}.input.f32`);
    return { bin: bytesOf(input), deq: input };
  }
  return { bin: read(`${set}.${type.id}.bin`), deq: readF32(`${set}.${type.id}.deq.f32`) };
}

/**
 * Why GPU and CPU bytes of one block may differ and still both be right: same scale bytes,
 * and every differing value one quantization step apart with the input at the midpoint
 * between the two (a rounding tie, up to f32 rounding of x * id). Returns null when the
 * difference is such a tie, else a description of what differs.
 */
function tieExplanation(type: QuantType, block: number, input: Float32Array, got: Uint8Array, want: Uint8Array, gpuDeq: Float32Array, cpuDeq: Float32Array): string | null {
  const at = block * type.typeSize;
  // Legacy layouts open with an f16 scale d (q4_1 / q5_1 then an f16 min).
  const scaleBytes = type.id === 'q4_1' || type.id === 'q5_1' ? 4 : 2;
  for (let i = 0; i < scaleBytes; i++) {
    if (got[at + i] !== want[at + i]) return `block ${block}: scale bytes differ`;
  }
  const d = Math.abs(f16BitsToF32(want[at] | (want[at + 1] << 8)));
  const reasons: string[] = [];
  for (let j = block * type.blockSize; j < (block + 1) * type.blockSize; j++) {
    const g = gpuDeq[j];
    const c = cpuDeq[j];
    if (Object.is(g, c)) continue;
    const step = Math.abs(g - c);
    const mid = (g + c) / 2;
    if (Math.abs(step - d) > d * 2 ** -20 || Math.abs(input[j] - mid) > d * 2 ** -18) {
      reasons.push(`value ${j}: x=${input[j]} gpu=${g} cpu=${c} (d=${d})`);
    }
  }
  return reasons.length ? `block ${block}: ${reasons.join('; ')}` : null;
}

const report: string[] = [];
let gpu: GpuContext;

beforeAll(async () => {
  gpu = await createTestGpu();
});

afterAll(() => {
  if (report.length) console.log(`GPU vs ggml golden (${gpu?.description}):\n  ${report.join('\n  ')}`);
  gpu?.destroy();
});

describe('WebGPU device', () => {
  it('has an adapter and device, and every type in GPU_TYPES has a WGSL codec', () => {
    expect(gpu.device).toBeDefined();
    expect(gpu.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    for (const id of GPU_TYPES) expect(gpuSupportsType(id), id).toBe(true);
  });
});

describe.each(GPU_TYPES)('%s on the GPU vs ggml golden', (id) => {
  const type = quantType(id)!;
  for (const set of SETS) {
    it(`${set}: quantized bytes and dequantized floats identical`, async () => {
      const input = readF32(`${set}.input.f32`);
      const golden = goldenFor(type, set);
      const rows = input.length / N_PER_ROW;

      const got = await quantizeOnGpu(gpu, type, input, N_PER_ROW);
      const differ = differingBlocks(got, golden.bin, type.typeSize);
      const deqOfGot = differ.length ? await dequantizeOnGpu(gpu, type, got, rows, N_PER_ROW) : undefined;
      const notTies = differ
        .map((b) => tieExplanation(type, b, input, got, golden.bin, deqOfGot!, golden.deq))
        .filter((s) => s !== null);
      const nBlocks = golden.bin.length / type.typeSize;
      report.push(`${id.padEnd(5)} ${set.padEnd(9)} quantize: ${differ.length}/${nBlocks} blocks differ${differ.length ? ` (ties: ${differ.length - notTies.length}; blocks ${differ.slice(0, 8).join(', ')})` : ''}`);
      expect(notTies, 'differences that are not one step at a rounding tie').toEqual([]);
      expect(differ.length, 'blocks differing at a rounding tie').toBeLessThanOrEqual(ALLOWED_TIE_BLOCKS[id] ?? 0);

      const deq = await dequantizeOnGpu(gpu, type, golden.bin, rows, N_PER_ROW);
      const gotBits = new Uint32Array(deq.buffer);
      const wantBits = new Uint32Array(golden.deq.buffer, golden.deq.byteOffset, golden.deq.length);
      const bad = [...gotBits.keys()].filter((i) => gotBits[i] !== wantBits[i]);
      expect(bad.slice(0, 8).map((i) => `${i}: ${gotBits[i].toString(16)} != ${wantBits[i].toString(16)}`)).toEqual([]);
    });
  }
});

/**
 * Rows of 256 that stress rounding: Gaussians from 1e-30 to 1e4, and grids where x * id
 * lands exactly on .5 (or x * id + 8.5 on an integer) for every legacy type's scale
 * (127, -8, -16, 15, 31 steps), zeros of both signs, constants, spikes, f32 subnormals.
 */
function stressRows(seed: number): Float32Array {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const rows: number[][] = [];
  for (const e of [-30, -20, -8, -4, -2, -1, 0, 1, 2, 4]) rows.push(Array.from({ length: 256 }, () => gauss() * 10 ** e));
  for (let k = 0; k < 6; k++) {
    const s = 2 ** (Math.floor(r() * 40) - 20);
    // Per 32-block: the extreme sets the scale to exactly s, the rest sit on half steps.
    rows.push(Array.from({ length: 256 }, (_, i) => (i % 32 === 0 ? 127 * s : (Math.floor(r() * 509) - 254) * 0.5 * s)));
    rows.push(Array.from({ length: 256 }, (_, i) => (i % 32 === 5 ? -8 * s : (Math.floor(r() * 33) - 16) * 0.5 * s)));
    rows.push(Array.from({ length: 256 }, (_, i) => (i % 32 === 7 ? -16 * s : (Math.floor(r() * 65) - 32) * 0.5 * s)));
    const m = (Math.floor(r() * 64) - 32) * s;
    rows.push(Array.from({ length: 256 }, (_, i) => (i % 32 === 0 ? m : i % 32 === 1 ? m + 15 * s : m + Math.floor(r() * 31) * 0.5 * s)));
    rows.push(Array.from({ length: 256 }, (_, i) => (i % 32 === 0 ? m : i % 32 === 1 ? m + 31 * s : m + Math.floor(r() * 63) * 0.5 * s)));
  }
  rows.push(Array.from({ length: 256 }, (_, i) => (i % 3 === 0 ? -0 : 0)));
  rows.push(Array.from({ length: 256 }, (_, i) => (i % 32 < 16 ? 0.3 : -0)));
  rows.push(Array.from({ length: 256 }, (_, i) => (i % 97 === 0 ? 1000 : gauss() * 1e-3)));
  rows.push(Array.from({ length: 256 }, () => Math.fround(gauss()) * 2 ** -60));
  rows.push(Array.from({ length: 256 }, () => (r() - 0.5) * 2 ** -130)); // f32 subnormals
  return new Float32Array(rows.flat());
}

describe.each(GPU_TYPES)('%s on the GPU vs the CPU codec on stress rows', (id) => {
  it('quantized bytes and dequantized floats identical', async () => {
    const type = quantType(id)!;
    const input = stressRows(7);
    const rows = input.length / N_PER_ROW;
    const want = type.codec.encode(input, N_PER_ROW);
    const got = await quantizeOnGpu(gpu, type, input, N_PER_ROW);
    const differ = differingBlocks(got, want, type.typeSize);
    const cpuDeq = type.codec.decode(want, rows, N_PER_ROW);
    const gpuDeqOfGot = differ.length ? await dequantizeOnGpu(gpu, type, got, rows, N_PER_ROW) : cpuDeq;
    const notTies = differ.map((b) => tieExplanation(type, b, input, got, want, gpuDeqOfGot, cpuDeq)).filter((s) => s !== null);
    report.push(`${id.padEnd(5)} stress    quantize: ${differ.length}/${want.length / type.typeSize} blocks differ from the CPU codec${differ.length ? ` (blocks ${differ.slice(0, 8).join(', ')})` : ''}`);
    expect(notTies, 'differences that are not one step at a rounding tie').toEqual([]);
    expect(differ.length, 'blocks differing at a rounding tie').toBeLessThanOrEqual(ALLOWED_TIE_BLOCKS[id] ?? 0);

    const deq = await dequantizeOnGpu(gpu, type, want, rows, N_PER_ROW);
    const g = new Uint32Array(deq.buffer);
    const c = new Uint32Array(cpuDeq.buffer, cpuDeq.byteOffset, cpuDeq.length);
    const bad = [...g.keys()].filter((i) => g[i] !== c[i] && !(Number.isNaN(deq[i]) && Number.isNaN(cpuDeq[i])));
    expect(bad.slice(0, 8).map((i) => `${i}: ${g[i].toString(16)} != ${c[i].toString(16)}`)).toEqual([]);
  });
});

describe('chunking and 2D dispatch', () => {
  let small: GpuContext;
  beforeAll(() => {
    // 1 KiB bindings and 2 workgroups per dimension: 4096 values take many chunks, each
    // dispatched as up to 2 x 2 workgroups. Same device, so the pipelines are reused.
    small = restrictLimits(gpu, { maxStorageBufferBindingSize: 1024, maxComputeWorkgroupsPerDimension: 2 });
    expect(small.limits.maxStorageBufferBindingSize).toBe(1024);
  });

  it('createGpu({ forceLimits }) plans with the forced limits', async () => {
    const forced = await createTestGpu({ label: 'test-forced', forceLimits: { maxStorageBufferBindingSize: 2048, maxBufferSize: 2 ** 40 } });
    try {
      expect(forced.limits.maxStorageBufferBindingSize).toBe(2048);
      expect(forced.limits.maxBufferSize).toBe(forced.device.limits.maxBufferSize); // never above the device's
      const input = readF32('real.input.f32');
      const got = await quantizeOnGpu(forced, 'q5_1', input, N_PER_ROW);
      expect(Buffer.from(got).equals(Buffer.from(read('real.q5_1.bin')))).toBe(true);
    } finally {
      forced.destroy();
    }
  });

  for (const id of ['q5_0', 'q4_1', 'f16', 'q8_0']) {
    it(`${id}: chunked bytes and floats equal the unchunked ones`, async () => {
      const type = quantType(id)!;
      const input = readF32('realistic.input.f32');
      const whole = await quantizeOnGpu(gpu, type, input, N_PER_ROW);
      const chunked = await quantizeOnGpu(small, type, input, N_PER_ROW);
      expect(differingBlocks(chunked, whole, type.typeSize)).toEqual([]);
      const rows = input.length / N_PER_ROW;
      const a = await dequantizeOnGpu(gpu, type, whole, rows, N_PER_ROW);
      const b = await dequantizeOnGpu(small, type, whole, rows, N_PER_ROW);
      expect(Buffer.from(bytesOf(b)).equals(Buffer.from(bytesOf(a)))).toBe(true);
    });
  }

  it('forces 2D dispatch: more workgroups than one dimension allows', async () => {
    // 1 KiB of f32 is 256 values per chunk = 128 f16 groups = 2 workgroups of 64: at the limit.
    // With a wide binding limit, 4096 f16 values = 2048 groups = 32 workgroups > 2: needs y.
    const wide = restrictLimits(gpu, { maxComputeWorkgroupsPerDimension: 3 });
    const input = readF32('edge.input.f32');
    const got = await quantizeOnGpu(wide, 'f16', input, N_PER_ROW);
    expect(Buffer.from(got).equals(Buffer.from(read('edge.f16.bin')))).toBe(true);
  });

  it('runs concurrent calls on one device correctly (one at a time underneath)', async () => {
    const input = readF32('real.input.f32');
    const ids = ['q4_0', 'q8_0', 'q5_1', 'bf16'];
    const results = await Promise.all(ids.map((id) => quantizeOnGpu(small, id, input, N_PER_ROW)));
    ids.forEach((id, i) => expect(Buffer.from(results[i]).equals(Buffer.from(read(`real.${id}.bin`))), id).toBe(true));
  });

  it('handles a block count that leaves the last group partial (odd blocks of 22 bytes)', async () => {
    const type = quantType('q5_0')!;
    expect(groupBlocks(type.typeSize)).toBe(2);
    const input = readF32('realistic.input.f32').subarray(0, 3 * 32);
    const got = await quantizeOnGpu(gpu, type, input, 32);
    expect(Buffer.from(got).equals(Buffer.from(read('realistic.q5_0.bin').subarray(0, 3 * 22)))).toBe(true);
    const deq = await dequantizeOnGpu(gpu, type, got, 3, 32);
    const want = readF32('realistic.q5_0.deq.f32').subarray(0, 96);
    expect(Buffer.from(bytesOf(deq)).equals(Buffer.from(bytesOf(want)))).toBe(true);
  });
});

describe('error statistics on the GPU', () => {
  /** The same sums on the CPU, in f64 over f32 terms. */
  function cpuStats(a: Float32Array, b: Float32Array, lo: number, hi: number, bins: number) {
    const f = Math.fround;
    const scale = f(bins / (hi - lo));
    let sse = 0, ssr = 0, ssa = 0, sae = 0, dot = 0, max = 0;
    const counts = new Uint32Array(bins + 2);
    for (let i = 0; i < a.length; i++) {
      const e = f(b[i] - a[i]);
      sse += e * e;
      ssr += a[i] * a[i];
      ssa += b[i] * b[i];
      sae += Math.abs(e);
      dot += a[i] * b[i];
      max = Math.max(max, Math.abs(e));
      const t = f(f(e - lo) * scale);
      counts[t < 0 ? bins : t >= bins ? bins + 1 : Math.min(Math.floor(t), bins - 1)]++;
    }
    return { sse, ssr, ssa, sae, dot, max, counts };
  }

  for (const id of ['q4_0', 'q8_0']) {
    it(`${id} on the real tensor: sums to 1e-6, max and histogram exact`, async () => {
      const input = readF32('real.input.f32');
      const deq = readF32(`real.${id}.deq.f32`);
      const [lo, hi, bins] = [-0.05, 0.05, 64];
      const s = await errorStatsOnGpu(gpu, input, deq, { histogram: { lo, hi, bins } });
      const c = cpuStats(input, deq, lo, hi, bins);
      expect(s.count).toBe(input.length);
      expect(s.nonFinite).toBe(0);
      const rel = (x: number, y: number) => Math.abs(x - y) / Math.abs(y);
      expect(rel(s.sumSqErr, c.sse)).toBeLessThan(1e-6);
      expect(rel(s.sumSqRef, c.ssr)).toBeLessThan(1e-6);
      expect(rel(s.sumSqApprox, c.ssa)).toBeLessThan(1e-6);
      expect(rel(s.sumAbsErr, c.sae)).toBeLessThan(1e-6);
      expect(rel(s.dot, c.dot)).toBeLessThan(1e-6);
      expect(s.maxAbsErr).toBe(c.max);
      expect([...s.histogram!.counts, s.histogram!.below, s.histogram!.above]).toEqual([...c.counts]);
      expect(s.cosine).toBeGreaterThan(0.99);
      report.push(`stats ${id} real: rmse ${s.rmse.toExponential(4)}, snr ${s.snrDb.toFixed(2)} dB, cosine ${s.cosine.toFixed(6)}`);
    });
  }

  it('chunked statistics equal the unchunked ones; non-finite pairs are counted and left out', async () => {
    const small = restrictLimits(gpu, { maxStorageBufferBindingSize: 4096, maxComputeWorkgroupsPerDimension: 2 });
    {
      const a = readF32('realistic.input.f32').slice();
      const b = readF32('realistic.q4_1.deq.f32').slice();
      b[5] = NaN;
      a[77] = Infinity;
      const opts = { histogram: { lo: -0.01, hi: 0.01, bins: 20 } };
      const whole = await errorStatsOnGpu(gpu, a, b, opts);
      const chunked = await errorStatsOnGpu(small, a, b, opts);
      expect(whole.nonFinite).toBe(2);
      expect(whole.count).toBe(a.length - 2);
      expect(chunked.histogram!.counts).toEqual(whole.histogram!.counts);
      expect(chunked.maxAbsErr).toBe(whole.maxAbsErr);
      expect(Math.abs(chunked.sumSqErr - whole.sumSqErr) / whole.sumSqErr).toBeLessThan(1e-6);
      const total = whole.histogram!.counts.reduce((x, y) => x + y, 0) + whole.histogram!.below + whole.histogram!.above;
      expect(total).toBe(whole.count);
    }
  });
});

describe('input checks and device loss', () => {
  it('refuses a row length that is not a multiple of the block size', async () => {
    await expect(quantizeOnGpu(gpu, 'q4_0', new Float32Array(48), 48)).rejects.toThrow(/multiple of the block size/);
    await expect(dequantizeOnGpu(gpu, 'q4_0', new Uint8Array(17), 1, 32)).rejects.toThrow(/bytes, expected 18/);
  });

  it('takes an empty tensor', async () => {
    expect((await quantizeOnGpu(gpu, 'q5_0', new Float32Array(0), 32)).length).toBe(0);
    expect((await dequantizeOnGpu(gpu, 'q5_0', new Uint8Array(0), 0, 32)).length).toBe(0);
  });

  it('reports a lost device as GpuDeviceLostError, and `lost` resolves', async () => {
    const doomed = await createTestGpu({ label: 'test-lost' });
    let heard = false;
    doomed.onLost(() => (heard = true));
    doomed.destroy();
    const info = await doomed.lost;
    expect(info.reason).toBe('destroyed');
    expect(heard).toBe(true);
    await expect(quantizeOnGpu(doomed, 'q8_0', new Float32Array(32), 32)).rejects.toBeInstanceOf(GpuDeviceLostError);
  });
});
