// GPU codecs of the types beyond the legacy, float and K-quant ones (house rule 3: the CPU
// codecs are the reference): IQ4_NL, IQ4_XS, TQ1_0, TQ2_0 and MXFP4 against ggml's own bytes
// (../shared/fixtures/golden); those and NF4, FP4, INT4 (6 variants), and the non-block
// layouts INT8, INT8_OUTLIER, FP8 E4M3/E5M2, NF4_DQ, FP4_DQ against their CPU codec on the
// real stories260K weights, stress rows (tiny and subnormal values, ties, powers of two, inf,
// NaN), decision boundaries, odd shapes and chunked runs; lib/softfloat.wgsl on its own.
// Bytes and floats must be identical, and every block encoded on the GPU: nothing may differ.
// In Node on Dawn (SwiftShader on GPU-less machines, which flushes subnormals: the codecs must
// not depend on it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { quantType, type QuantType } from '../quant/types.ts';
import { f32Bits, f32FromBits } from '../formats/float16.ts';
import { loadModel, readTensorF32, type ModelIndex } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { restrictLimits, type GpuContext } from './device.ts';
import { createTestGpu } from './gpu-test-setup.ts';
import { dequantizeOnGpu, gpuSupportsType, quantizeOnGpuDetailed } from './quantize.ts';
import { bitsOf, differingBlocks, FIXTURES, GOLDEN, readBytes as read, readF32File as readF32, rng, runOpsShader, SETS } from './testing.ts';

const N_PER_ROW = 256;

/** GGUF types checked against ggml's golden files (no importance weights). */
const GGUF_TYPES = ['iq4_nl', 'iq4_xs', 'tq1_0', 'tq2_0', 'mxfp4'];
/** Block types of this file (plain sequences of blocks), checked against their CPU codec. */
const BLOCK_TYPES = [
  ...GGUF_TYPES,
  'nf4',
  'fp4',
  ...[32, 64, 128].flatMap((g) => [`int4_g${g}_sym`, `int4_g${g}_asym`]),
];

/** Values whose f32 bits differ (NaN equals NaN: payloads are not part of the contract). */
function differingValues(got: Float32Array, want: Float32Array): string[] {
  expect(got.length).toBe(want.length);
  const g = bitsOf(got);
  const w = bitsOf(want);
  const bad: string[] = [];
  for (let i = 0; i < g.length; i++) {
    if (g[i] !== w[i] && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) {
      bad.push(`${i}: ${g[i].toString(16)} (${got[i]}) != ${w[i].toString(16)} (${want[i]})`);
    }
  }
  return bad;
}

const report: string[] = [];
let gpu: GpuContext;

/** Quantize on the GPU; every block must have been encoded there (no block handed to the CPU). */
async function quantizeOnGpu(g: GpuContext, type: QuantType, input: Float32Array, rowLength: number): Promise<Uint8Array> {
  const { bytes, report: r } = await quantizeOnGpuDetailed(g, type, input, rowLength);
  expect(r.cpuBlocks.slice(0, 8), `${type.id}: blocks encoded on the CPU (of ${r.cpuBlocks.length})`).toEqual([]);
  return bytes;
}

beforeAll(async () => {
  gpu = await createTestGpu();
});

afterAll(() => {
  if (report.length) console.log(`GPU codecs (${gpu?.description}):\n  ${report.join('\n  ')}`);
  gpu?.destroy();
});

/**
 * Quantize on the GPU and on the CPU, and dequantize the CPU bytes on both: bytes and floats
 * identical. Returns the GPU bytes.
 */
async function expectSameAsCpu(type: QuantType, input: Float32Array, rowLength: number, what: string): Promise<Uint8Array> {
  const rows = input.length / rowLength;
  const want = type.codec.encode(input, rowLength);
  const got = await quantizeOnGpu(gpu, type, input, rowLength);
  const differ = differingBlocks(got, want, type.typeSize);
  report.push(`${type.id.padEnd(14)} ${what.padEnd(28)} ${differ.length}/${Math.ceil(want.length / type.typeSize)} blocks differ from the CPU codec`);
  expect(differ.slice(0, 8), `${what}: blocks that differ (of ${differ.length})`).toEqual([]);
  const deq = await dequantizeOnGpu(gpu, type, want, rows, rowLength);
  expect(differingValues(deq, type.codec.decode(want, rows, rowLength)).slice(0, 8), `${what}: dequantized`).toEqual([]);
  return got;
}

/** Types whose tensors are not a plain sequence of blocks (quant/types.ts: layout other than 'blocks', with a gpuLayout). */
const LAYOUT_TYPES = ['int8', 'int8_outlier', 'fp8_e4m3', 'fp8_e5m2', 'nf4_dq', 'fp4_dq'];

describe('types have GPU codecs', () => {
  it.each([...BLOCK_TYPES, ...LAYOUT_TYPES])('%s', (id) => expect(gpuSupportsType(id)).toBe(true));
});

describe.each(GGUF_TYPES)('%s on the GPU vs ggml golden', (id) => {
  const type = quantType(id)!;
  for (const set of SETS) {
    it(`${set}: quantized bytes and dequantized floats identical`, async () => {
      const input = readF32(join(GOLDEN, `${set}.input.f32`));
      const bin = read(join(GOLDEN, `${set}.${id}.bin`));
      const deqWant = readF32(join(GOLDEN, `${set}.${id}.deq.f32`));
      const rows = input.length / N_PER_ROW;
      const got = await quantizeOnGpu(gpu, type, input, N_PER_ROW);
      const differ = differingBlocks(got, bin, type.typeSize);
      report.push(`${id.padEnd(14)} golden ${set.padEnd(21)} ${differ.length}/${bin.length / type.typeSize} blocks differ from ggml`);
      expect(differ.slice(0, 8), `blocks that differ (of ${differ.length})`).toEqual([]);
      const deq = await dequantizeOnGpu(gpu, type, bin, rows, N_PER_ROW);
      expect(differingValues(deq, deqWant).slice(0, 8)).toEqual([]);
    });
  }
});

/**
 * Rows of 256 that stress exactness: Gaussians from 1e-30 to 1e4 (the 1e-14..1e-12 ones make
 * IQ4's x^2 weights and w*q*x sums subnormal), rows around the f32 normal limit (2^-126) and
 * of subnormals, values on half steps of power-of-two scales, exact powers of two and their
 * neighbours (MXFP4's exponents, NF4/FP4's absmax), sparse spikes, zeros of both signs.
 */
function stressRows(seed: number): Float32Array {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const rows: number[][] = [];
  const row = (f: (i: number) => number) => rows.push(Array.from({ length: N_PER_ROW }, (_, i) => f(i)));
  for (const e of [-30, -20, -14, -13, -12, -8, -4, -2, -1, 0, 1, 2, 4]) row(() => gauss() * 10 ** e);
  for (const e of [-149, -140, -130, -127, -126, -125, -120]) row(() => gauss() * 2 ** e);
  for (let k = 0; k < 6; k++) {
    const s = 2 ** (Math.floor(r() * 40) - 20);
    row((i) => (i % 32 === 0 ? 127 * s : (Math.floor(r() * 509) - 254) * 0.5 * s));
    row((i) => (i % 32 === 5 ? -8 * s : (Math.floor(r() * 33) - 16) * 0.5 * s));
    row((i) => (i % 16 === 3 ? 6 * s : (Math.floor(r() * 25) - 12) * 0.25 * s)); // E2M1 grid
    row((i) => (i % 8 === 0 ? s : Math.floor(r() * 3 - 1) * s * (0.5 + Math.floor(r() * 2) * 2 ** -24)));
  }
  // Powers of two and their f32 neighbours, signed, at many exponents.
  row(() => {
    const p = 2 ** (Math.floor(r() * 160) - 130);
    const bits = f32Bits(p) + Math.floor(r() * 7) - 3;
    return (r() < 0.5 ? -1 : 1) * f32FromBits(bits);
  });
  row((i) => (i % 3 === 0 ? -0 : 0));
  row((i) => (i % 32 < 16 ? 0.3 : -0));
  row((i) => (i % 97 === 0 ? 1000 : gauss() * 1e-3));
  row(() => Math.fround(gauss()) * 2 ** -60);
  row(() => (r() - 0.5) * 2 ** -130);
  return new Float32Array(rows.flat());
}

/**
 * Rows with values near the f32 maximum, infinities and NaN. Not for IQ4: its sums of
 * x^2-weighted products overflow there, and C's nearest_int of NaN is no contract.
 */
function extremeRows(seed: number): Float32Array {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const sign = () => (r() < 0.5 ? -1 : 1);
  const rows: number[][] = [];
  const row = (f: (i: number) => number) => rows.push(Array.from({ length: N_PER_ROW }, (_, i) => f(i)));
  row((i) => (i % 64 === 0 ? 3e38 * sign() : gauss() * 1e30));
  row((i) => (i % 40 === 0 ? 3.4028234e38 * sign() : gauss() * 1e37));
  row((i) => (i % 50 === 7 ? Infinity * sign() : gauss()));
  row((i) => (i % 33 === 2 ? NaN : gauss()));
  row((i) => (i % 70 === 1 ? NaN : i % 70 === 2 ? -Infinity : gauss() * 1e-3));
  row((i) => (i < 128 ? NaN : gauss()));
  row(() => 65504 * sign() + gauss());
  return new Float32Array(rows.flat());
}

/** Types whose extreme rows (overflow, inf, NaN) are compared too. */
const EXTREME_TYPES = (id: string) => !id.startsWith('iq4');

describe.each(BLOCK_TYPES)('%s on the GPU vs the CPU codec', (id) => {
  const type = quantType(id)!;
  it('stress rows: quantized bytes and dequantized floats identical', async () => {
    await expectSameAsCpu(type, stressRows(11), N_PER_ROW, 'stress rows');
  });
  if (EXTREME_TYPES(id)) it('rows with huge values, infinities and NaN: identical', async () => {
    await expectSameAsCpu(type, extremeRows(5), N_PER_ROW, 'extreme rows (inf, NaN, 3e38)');
  });
});

let storiesModel: Promise<ModelIndex> | undefined;
const storiesIndex = () => (storiesModel ??= fileSource(join(FIXTURES, 'models/stories260K.gguf')).then((s) => loadModel([s])));

/** stories260K's weights, every tensor flattened and cut to rows of 256 (all f32 in the file). */
let storiesRows: Promise<Float32Array> | undefined;
function stories(): Promise<Float32Array> {
  storiesRows ??= (async () => {
    const model = await storiesIndex();
    const parts: Float32Array[] = [];
    for (const t of model.tensors) {
      const values = await readTensorF32(model, t);
      parts.push(values.subarray(0, values.length - (values.length % N_PER_ROW)));
    }
    const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    return all;
  })();
  return storiesRows;
}

describe.each(BLOCK_TYPES)('%s on the GPU vs the CPU codec on stories260K', (id) => {
  const type = quantType(id)!;
  it('every tensor, as rows of 256: quantized bytes and dequantized floats identical', async () => {
    const input = await stories();
    expect(input.length).toBeGreaterThan(200_000);
    await expectSameAsCpu(type, input, N_PER_ROW, 'stories260K (all tensors)');
  });
});

describe('MXFP4 shared exponent: floor(log2f(absmax)) at every binade', () => {
  it('the GPU rounds log2 up exactly where the CPU codec does, subnormals included', async () => {
    const type = quantType('mxfp4')!;
    // Per binade [2^k, 2^(k+1)): the first f32 whose exponent byte is that of 2^(k+1), if any
    // (found on the CPU codec), and the f32 just below it. Blocks of 32 with that absmax.
    const exponentOf = (x: number) => {
      const block = new Float32Array(32);
      block[0] = x;
      return type.codec.encode(block, 32)[0];
    };
    const probes: number[] = [];
    let thresholds = 0;
    for (let k = -149; k <= 127; k++) {
      let lo = f32Bits(2 ** k);
      let hi = k === 127 ? 0x7f7fffff : f32Bits(2 ** (k + 1)) - 1;
      probes.push(f32FromBits(lo), f32FromBits(hi));
      if (exponentOf(f32FromBits(hi)) === exponentOf(f32FromBits(lo))) continue;
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (exponentOf(f32FromBits(mid)) === exponentOf(f32FromBits(lo))) lo = mid;
        else hi = mid;
      }
      thresholds++;
      probes.push(f32FromBits(lo), f32FromBits(hi));
    }
    expect(thresholds).toBeGreaterThan(200);
    const input = new Float32Array(probes.length * 32);
    probes.forEach((p, i) => {
      input[32 * i] = i % 2 ? -p : p;
      input[32 * i + 1 + (i % 31)] = p / 3;
    });
    await expectSameAsCpu(type, input, 32, `${thresholds} log2 round-up thresholds`);
  });
});

/** Order-preserving integer of a finite f32 (and back): bisection over floats. */
const floatKey = (x: number) => (f32Bits(x) >= 0x80000000 ? -(f32Bits(x) & 0x7fffffff) : f32Bits(x));
const fromFloatKey = (k: number) => (k < 0 ? f32FromBits((-k | 0x80000000) >>> 0) : f32FromBits(k));

describe('NF4 / FP4 codes switch exactly where the CPU codec switches', () => {
  for (const id of ['nf4', 'fp4']) {
    it(`${id}: every code boundary in [-1, 1], and its neighbours`, async () => {
      const type = quantType(id)!;
      // A block [1, x, 0, ...]: absmax 1 scales x by exactly 1; x's code is byte 0's low nibble.
      const codeOf = (x: number) => {
        const block = new Float32Array(64);
        block[0] = 1;
        block[1] = x;
        return type.codec.encode(block, 64)[4] & 0xf;
      };
      const probes: number[] = [];
      const steps = 4096;
      for (let s = 0; s < steps; s++) {
        let lo = floatKey(-1 + (2 * s) / steps);
        let hi = floatKey(-1 + (2 * (s + 1)) / steps);
        if (codeOf(fromFloatKey(lo)) === codeOf(fromFloatKey(hi))) continue;
        while (hi - lo > 1) {
          const mid = Math.floor((lo + hi) / 2);
          if (codeOf(fromFloatKey(mid)) === codeOf(fromFloatKey(lo))) lo = mid;
          else hi = mid;
        }
        for (let k = lo - 2; k <= hi + 2; k++) probes.push(fromFloatKey(k)); // 6 floats
      }
      // 15 boundaries: NF4's 15 thresholds; FP4's 7 magnitude thresholds either side of 0, and 0.
      expect(probes.length).toBe(6 * 15);
      const input = new Float32Array(64 * Math.ceil(probes.length / 63));
      probes.forEach((p, i) => {
        const b = Math.floor(i / 63);
        input[64 * b] = 1;
        input[64 * b + 1 + (i % 63)] = p;
      });
      await expectSameAsCpu(type, input, 64, `${probes.length / 6} code boundaries (+-3 ulps)`);
    });
  }
});

// ------------------------------------------------------------------- layouts, not blocks

/**
 * Quantize with a layout type on the GPU and on the CPU: the whole byte strings identical
 * (every section: codes, per-row or per-tensor scales, outlier records, double-quantized
 * absmax). Then the CPU bytes dequantized on both: floats identical.
 */
async function expectLayoutSameAsCpu(type: QuantType, input: Float32Array, rowLength: number, what: string, g = gpu, quiet = false): Promise<Uint8Array> {
  const rows = input.length / rowLength;
  const want = type.codec.encode(input, rowLength);
  const got = await quantizeOnGpu(g, type, input, rowLength);
  expect(got.length, `${what}: bytes`).toBe(want.length);
  const bad = [...want.keys()].filter((i) => got[i] !== want[i]);
  if (!quiet) report.push(`${type.id.padEnd(14)} ${what.padEnd(28)} ${bad.length}/${want.length} bytes differ from the CPU codec`);
  expect(bad.slice(0, 8).map((i) => `byte ${i}: ${got[i]} != ${want[i]}`), `${what}: differing bytes (of ${bad.length})`).toEqual([]);
  const deq = await dequantizeOnGpu(g, type, want, rows, rowLength);
  expect(differingValues(deq, type.codec.decode(want, rows, rowLength)).slice(0, 8), `${what}: dequantized`).toEqual([]);
  return got;
}

/** Rows with LLM.int8 outlier columns (|x| >= 6, infinities, exactly 6, just below 6), and NaN. */
function outlierRows(rows: number, rowLength: number, seed: number): Float32Array {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const out = new Float32Array(rows * rowLength);
  for (let i = 0; i < out.length; i++) out[i] = gauss() * 0.5;
  const at = (row: number, col: number, x: number) => (out[(row % rows) * rowLength + (col % rowLength)] = x);
  at(0, 3, 6); // exactly the threshold: an outlier
  at(1, 5, Math.fround(6 - 2 ** -21)); // just below: not one
  at(2, 7, -9.5);
  at(3, 7, 120);
  at(4, rowLength - 1, -Infinity);
  at(5, 11, NaN); // NaN is never an outlier, and stays out of the absmax
  at(6, 2, 65520); // rounds to f16 infinity in its record
  at(7, 13, 1e-7); // an outlier column's other rows keep their f16 values, subnormal ones too
  at(7, 3, 3e-6);
  return out;
}

/** Values for FP8's per-tensor scale: spread over many binades, with ties on the FP8 grid. */
function fp8Rows(rows: number, rowLength: number, seed: number, amplitude: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(rows * rowLength);
  for (let i = 0; i < out.length; i++) out[i] = (r() < 0.5 ? -1 : 1) * amplitude * 2 ** (-30 * r()) * (1 + Math.floor(r() * 16) / 16);
  out[0] = amplitude * 1.5;
  return out;
}

describe.each(LAYOUT_TYPES)('%s on the GPU vs the CPU codec', (id) => {
  const type = quantType(id)!;
  const odd = id.endsWith('_dq') ? 64 : 7; // a row length that leaves partial u32 words

  it('stories260K, every tensor in its own shape: identical bytes and floats', async () => {
    const model = await storiesIndex();
    let checked = 0;
    let bytes = 0;
    for (const t of model.tensors) {
      const rowLength = t.shape[t.shape.length - 1];
      if (rowLength % type.blockSize !== 0) continue; // _dq types: rows of 64 (dim 64 tensors)
      bytes += (await expectLayoutSameAsCpu(type, await readTensorF32(model, t), rowLength, `stories ${t.name}`, gpu, true)).length;
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(id.endsWith('_dq') ? 20 : 48);
    report.push(`${id.padEnd(14)} ${`stories, ${checked} tensors`.padEnd(28)} 0/${bytes} bytes differ from the CPU codec`);
  });

  it('all of stories260K as rows of 256, and stress rows', async () => {
    await expectLayoutSameAsCpu(type, await stories(), N_PER_ROW, 'stories260K as rows of 256');
    await expectLayoutSameAsCpu(type, stressRows(3), N_PER_ROW, 'stress rows');
  });

  it('huge values, infinities, NaN; odd shapes; empty', async () => {
    await expectLayoutSameAsCpu(type, extremeRows(9), N_PER_ROW, 'extreme rows (inf, NaN, 3e38)');
    await expectLayoutSameAsCpu(type, stressRows(5).subarray(0, odd * 37), odd, `${37} rows of ${odd}`);
    await expectLayoutSameAsCpu(type, new Float32Array(0), odd, 'empty');
    await expectLayoutSameAsCpu(type, new Float32Array(odd * 3), odd, 'all zero');
  });

  if (id.startsWith('int8')) it('outlier columns: thresholds, infinities, NaN, f16 records', async () => {
    await expectLayoutSameAsCpu(type, outlierRows(9, 17, 1), 17, '9 rows of 17 with outliers');
    await expectLayoutSameAsCpu(type, outlierRows(64, 96, 2), 96, '64 rows of 96 with outliers');
    const bytes = await expectLayoutSameAsCpu(type, outlierRows(3, 4096, 3), 4096, '3 rows of 4096 with outliers');
    if (id === 'int8_outlier') expect(bytes.length).toBeGreaterThan(3 * 4096 + 12); // records present
  });

  if (id.startsWith('fp8')) it('per-tensor scales from 2^-140 to 2^120, ties on the FP8 grid', async () => {
    for (const e of [-140, -126, -100, -20, 0, 20, 120]) {
      await expectLayoutSameAsCpu(type, fp8Rows(5, 50, e + 200, 2 ** e), 50, `amplitude 2^${e}`);
    }
  });

  if (id.endsWith('_dq')) it('several groups of 256 blocks, a partial last group, tiny and huge absmax', async () => {
    // 600 blocks: 3 groups (the last of 88), absmax from 2^-130 to 2^100.
    const r = rng(17);
    const input = new Float32Array(600 * 64).map((_, i) => (r() - 0.5) * 2 ** (Math.floor(i / 64) % 230 - 130));
    await expectLayoutSameAsCpu(type, input, 64 * 8, '600 blocks, 3 groups');
  });

  it('chunked (tiny binding limits, 2D dispatch) equals unchunked', async () => {
    const small = restrictLimits(gpu, { maxStorageBufferBindingSize: 1024, maxComputeWorkgroupsPerDimension: 2 });
    const input = id.startsWith('int8') ? outlierRows(40, 24, 4) : id.endsWith('_dq') ? stressRows(6).subarray(0, 64 * 300) : stressRows(6).subarray(0, 1000);
    const rowLength = id.startsWith('int8') ? 24 : id.endsWith('_dq') ? 64 : 8;
    const whole = await quantizeOnGpu(gpu, type, input, rowLength);
    const chunked = await expectLayoutSameAsCpu(type, input, rowLength, 'chunked, 1 KiB bindings', small);
    expect(Buffer.from(chunked).equals(Buffer.from(whole))).toBe(true);
  });
});

// --------------------------------------------------------------- lib/softfloat.wgsl alone

describe('lib/softfloat.wgsl: C float * and + on the bits', () => {
  /** out[i] = op(a[i], b[i]) through shaders/tests/softfloat-ops.wgsl. */
  const SOFTFLOAT_OPS = {
    name: 'test.softfloat-ops',
    label: 'test.softfloat',
    files: ['lib/rounding.wgsl', 'lib/softfloat.wgsl', 'tests/softfloat-ops.wgsl'],
  };
  const runOp = (op: number, a: Uint32Array<ArrayBuffer>, b: Uint32Array<ArrayBuffer>) => runOpsShader(gpu, SOFTFLOAT_OPS, op, a, b);

  /** Operand pairs: random bits, and pairs steered into the subnormal range, to cancellation and overflow. */
  function operands(seed: number, n: number): [Uint32Array<ArrayBuffer>, Uint32Array<ArrayBuffer>] {
    const r = rng(seed);
    const bits = () => (r() * 2 ** 32) >>> 0;
    // Exponent fields biased to the edges: subnormal, small normal, around 1, huge, inf/NaN.
    const edgy = () => {
      const e = [0, 0, 1, 2, 30, 60, 100, 127, 127, 200, 253, 254, 255][Math.floor(r() * 13)];
      return (((r() < 0.5 ? 1 : 0) << 31) | (e << 23) | (r() < 0.2 ? Math.floor(r() * 4) : bits() & 0x7fffff)) >>> 0;
    };
    const a = new Uint32Array(n);
    const b = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      const kind = i % 5;
      a[i] = kind === 0 ? bits() : edgy();
      b[i] = kind === 0 ? bits() : edgy();
      if (kind === 3) b[i] = (a[i] ^ 0x80000000) + Math.floor(r() * 5) - 2; // near -a: sums cancel
      if (kind === 4) b[i] = ((((-127 - ((a[i] >>> 23) & 0xff) + 127 + Math.floor(r() * 40) - 20 + 127) & 0xff) << 23) | (bits() & 0x807fffff)) >>> 0; // a * b near 2^-127
    }
    return [a, b];
  }

  const same = (g: number, w: number) => g === w || (f32FromBits(g) !== f32FromBits(g) && f32FromBits(w) !== f32FromBits(w));

  for (const [op, name, ref] of [
    [0, 'sf_mul', (x: number, y: number) => Math.fround(x * y)],
    [1, 'sf_add', (x: number, y: number) => Math.fround(x + y)],
    [2, 'sf_sub', (x: number, y: number) => Math.fround(x - y)],
  ] as const) {
    it(`${name}: correctly rounded, subnormals, signed zeros, inf and NaN (NaN payloads aside)`, async () => {
      const [a, b] = operands(31 + op, 200_000);
      const got = await runOp(op, a, b);
      const bad: string[] = [];
      let subnormal = 0;
      for (let i = 0; i < a.length; i++) {
        const want = f32Bits(ref(f32FromBits(a[i]), f32FromBits(b[i])));
        if ((want & 0x7f800000) === 0 && (want & 0x7fffff) !== 0) subnormal++;
        if (!same(got[i], want)) bad.push(`${a[i].toString(16)} ${name} ${b[i].toString(16)}: ${got[i].toString(16)} != ${want.toString(16)}`);
      }
      expect(subnormal).toBeGreaterThan(1000);
      expect(bad.slice(0, 8), `${bad.length} wrong`).toEqual([]);
    });
  }
});
