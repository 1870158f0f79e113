// Quantized matmul on the GPU (Node + Dawn; SwiftShader on GPU-less machines), for every
// type of the table that has a WGSL codec (new codecs are tested as soon as they land):
// the GPU product of the packed weights equals the product of the CPU-decoded weights to
// f32 rounding (norm-wise, against an f64 reference), on real weights of the fixture
// model and on synthetic shapes; the error quantization puts into the product is printed
// per type. A missing adapter fails (createTestGpu), never skips.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { loadModel, readTensorF32, type ModelIndex } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { QUANT_TYPES, quantType, whyNotApplicable, type QuantType } from '../quant/types.ts';
import { dequantizedProduct, matmulError, matvecError, relativeError } from '../quant/matmul.ts';
import { restrictLimits, type GpuContext } from './device.ts';
import { createTestGpu } from './gpu-test-setup.ts';
import { gaussians } from '../testing/random.ts';
import {
  canUseSubgroups,
  gpuMatmulSupportsType,
  matmulChunking,
  matmulConfig,
  matmulErrorOnGpu,
  matmulOnGpu,
  matvecErrorOnGpu,
  matvecOnGpu,
} from './matmul.ts';

const MODEL = join(import.meta.dirname, '../../../shared/fixtures/models/stories260K.gguf');
/** f32 rounding of a sum of a few hundred terms, norm-wise (the issue's bar). */
const MAX_REL_ERROR = 1e-5;

/** Every type with a WGSL codec and a plain block layout: GGUF types first. */
const TYPES = QUANT_TYPES.filter((t) => gpuMatmulSupportsType(t)).sort((a, b) => Number(!a.ggml) - Number(!b.ggml));

let gpu: GpuContext;
let model: ModelIndex;
const tensors = new Map<string, Float32Array>();
/** Reduction variants to run: always the workgroup tree, subgroups where the device has them. */
let variants: boolean[];
/**
 * The subgroup variant runs for the first type of each family only: the reduction does not
 * depend on the codec, and every variant x type is one more shader compile (slow on
 * SwiftShader). The workgroup tree runs for every type.
 */
const SUBGROUP_TYPES = new Set(TYPES.filter((t, i) => TYPES.findIndex((u) => u.family === t.family) === i).map((t) => t.id));

/** Report rows: type -> case -> GPU vs f64 rel error. */
const gpuErrors = new Map<string, Map<string, number>>();
/** Report rows: type -> quantization error of the product (real weights). */
const quantErrors = new Map<string, { matvec: number; matmul: number; gpu: number; shape: string }>();

function note(type: QuantType, name: string, rel: number) {
  let m = gpuErrors.get(type.id);
  if (!m) gpuErrors.set(type.id, (m = new Map()));
  m.set(name, Math.max(m.get(name) ?? 0, rel));
}

async function tensor(name: string): Promise<Float32Array> {
  let t = tensors.get(name);
  if (!t) {
    const info = model.tensors.find((x) => x.name === name);
    if (!info) throw new Error(`fixture has no tensor ${name}`);
    t = await readTensorF32(model, info);
    tensors.set(name, t);
  }
  return t;
}

/** n token embeddings (rows of token_embd, 64 values each) as activations, concatenated to `cols` per token. */
async function activations(cols: number, n: number, firstToken = 1): Promise<Float32Array> {
  const emb = await tensor('token_embd.weight');
  const x = new Float32Array(cols * n);
  for (let i = 0; i < x.length; i++) x[i] = emb[(firstToken * 64 + i) % emb.length];
  return x;
}

/** The FFN weights of all five layers, concatenated: 110,080 real values to reshape. */
async function ffnValues(): Promise<Float32Array> {
  const parts: Float32Array[] = [];
  for (let b = 0; b < 5; b++) for (const n of ['ffn_gate', 'ffn_up']) parts.push(await tensor(`blk.${b}.${n}.weight`));
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * The CPU codec's blocks of w; types whose quantizer requires an importance matrix (iq1_s,
 * iq2_xxs, iq2_xs) get uniform weights, as a product test needs any valid blocks.
 */
function encodeFor(type: QuantType, w: Float32Array, cols: number): Uint8Array {
  return type.codec.encode(w, cols, type.requiresImportance ? new Float32Array(cols).fill(1) : undefined);
}

interface Case {
  name: string;
  rows: number;
  cols: number;
  n: number;
  w: () => Promise<Float32Array>;
  x: () => Promise<Float32Array>;
}

/** Shapes for a type: real tensors where rows fit the block size, real values reshaped to 256-multiples, synthetic odd shapes. */
function casesFor(type: QuantType): Case[] {
  const cases: Case[] = [];
  const real = (name: string, rows: number, cols: number, n: number) =>
    cases.push({ name: `${name} ${rows}x${cols} n=${n}`, rows, cols, n, w: () => tensor(`blk.1.${name}.weight`), x: () => activations(cols, n) });
  if (!whyNotApplicable(type, 64)) {
    real('attn_q', 64, 64, 1);
    real('ffn_gate', 172, 64, 1);
    real('attn_k', 32, 64, 7);
  }
  if (!whyNotApplicable(type, 172)) real('ffn_down', 64, 172, 3);
  // Real values in rows of 512 (2 K-quant super-blocks): 215 rows, an odd count.
  cases.push({ name: 'ffn reshaped 215x512 n=1', rows: 215, cols: 512, n: 1, w: async () => (await ffnValues()).subarray(0, 215 * 512), x: () => activations(512, 1, 3) });
  cases.push({ name: 'ffn reshaped 53x1024 n=9', rows: 53, cols: 1024, n: 9, w: async () => (await ffnValues()).subarray(0, 53 * 1024), x: () => activations(1024, 9, 5) });
  // Synthetic: 3 blocks per row, so rows start off word boundaries for 18-, 22-, 34-byte blocks.
  const cols = 3 * Math.max(type.blockSize, type.blockSize === 1 ? 7 : 1);
  cases.push({ name: `gaussian 37x${cols} n=2`, rows: 37, cols, n: 2, w: async () => gaussians(37 * cols, 11, 0.02), x: async () => gaussians(cols * 2, 12) });
  return cases;
}

beforeAll(async () => {
  gpu = await createTestGpu();
  model = await loadModel([await fileSource(MODEL)]);
  variants = canUseSubgroups(gpu) ? [false, true] : [false];
});

afterAll(() => {
  if (!gpu) return;
  const lines = [`quantized matmul on ${gpu.description}; reductions: workgroup tree (every type)${variants.includes(true) ? `, subgroups (${[...SUBGROUP_TYPES].join(', ')})` : ''}`];
  lines.push('type       max ||y_gpu - y_ref|| / ||y_ref|| (y_ref: f64 product of CPU-decoded W) per case');
  for (const [id, m] of gpuErrors) lines.push(`  ${id.padEnd(14)} ${[...m].map(([k, v]) => `${k}: ${v.toExponential(2)}`).join(' | ')}`);
  lines.push('type       quantization error of the product ||W_q x - W x|| / ||W x|| (real weights)');
  for (const [id, e] of quantErrors) {
    lines.push(`  ${id.padEnd(14)} matvec ${e.matvec.toExponential(3)}  matmul ${e.matmul.toExponential(3)}  gpu matvec ${e.gpu.toExponential(3)}  (${e.shape})`);
  }
  console.log(lines.join('\n'));
  gpu.destroy();
});

describe('quantized matmul: setup', () => {
  it('runs on WebGPU, and the GGUF types with a WGSL codec are all here', () => {
    expect(gpu.device).toBeDefined();
    expect(gpu.description).not.toBe('');
    const ids = TYPES.map((t) => t.id);
    for (const id of ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1']) expect(ids, id).toContain(id);
    // Types whose blocks carry per-tensor or per-row data are not plain block layouts.
    expect(gpuMatmulSupportsType('fp8_e4m3')).toBe(false);
    expect(gpuMatmulSupportsType('int8')).toBe(false);
  });
});

describe.each(TYPES.map((t) => [t.id, t] as const))('%s: GPU product = CPU-decoded product to f32 rounding', (_id, type) => {
  for (const c of casesFor(type)) {
    it(c.name, async () => {
      const w = await c.w();
      const x = await c.x();
      const packed = encodeFor(type, w, c.cols);
      const ref = dequantizedProduct(type, packed, c.rows, c.cols, x, c.n);
      // The CPU's own f32 product is within the bar too (sanity of the bar).
      expect(relativeError(ref.f32, ref.f64)).toBeLessThan(MAX_REL_ERROR);
      for (const subgroups of variants.filter((v) => !v || SUBGROUP_TYPES.has(type.id))) {
        const y = c.n === 1
          ? await matvecOnGpu(gpu, type, packed, c.rows, c.cols, x, { subgroups })
          : await matmulOnGpu(gpu, type, packed, c.rows, c.cols, x, c.n, { subgroups });
        expect(y.length).toBe(c.rows * c.n);
        const rel = relativeError(y, ref.f64);
        note(type, c.name, rel);
        expect(rel, `${subgroups ? 'subgroups' : 'workgroup'} reduction`).toBeLessThan(MAX_REL_ERROR);
      }
      expect(gpu.uncapturedErrors).toEqual([]);
    });
  }

  it('quantization error of the product (real weights), CPU and GPU agree', async () => {
    // The same real values for every type (comparable across families): the FFN weights in rows of 512.
    const [rows, cols] = [215, 512];
    const w = (await ffnValues()).subarray(0, rows * cols);
    const x = await activations(cols, 1, 7);
    const X = await activations(cols, 4, 9);
    const importance = type.requiresImportance ? new Float32Array(cols).fill(1) : undefined;
    const matvec = matvecError(type, w, rows, cols, x, { importance });
    const matmul = matmulError(type, w, rows, cols, X, 4, { importance }).relError;
    // The CPU codec's blocks (the GPU quantizers have their own tests, and the K-quant
    // searches are slow on a software adapter).
    const onGpu = await matvecErrorOnGpu(gpu, type, w, rows, cols, x, { packed: encodeFor(type, w, cols), subgroups: false });
    quantErrors.set(type.id, { matvec, matmul, gpu: onGpu, shape: `${rows}x${cols}` });
    if (type.id === 'f32') {
      expect(matvec).toBe(0);
      expect(onGpu).toBe(0);
    } else {
      expect(matvec).toBeGreaterThan(0);
      expect(matvec).toBeLessThan(1); // ternary types on non-ternary weights come close
      // Same blocks, products differing by f32 rounding only.
      expect(Math.abs(onGpu - matvec)).toBeLessThan(1e-3 * matvec + MAX_REL_ERROR);
    }
  });
});

describe('quantized matmul: the hardware-GPU configuration', () => {
  // Software adapters get 16-wide workgroups of 8 rows; hardware GPUs 32..128-wide ones of 2
  // rows. Same kernel, other override constants: run those here too, whatever the adapter.
  // The generic kernel by name: on a hardware GPU the automatic choice would take the
  // cooperative or tiled kernels (src/gpu/matmul-kernels.test.ts tests those).
  for (const id of ['f32', 'f16', 'q4_0', 'q5_1', 'q6_K', 'iq4_xs']) {
    it(`${id}: wide workgroups, matvec and matmul, both reductions`, async () => {
      const type = quantType(id);
      if (!type || !gpuMatmulSupportsType(type)) return; // not in the table / no codec yet
      const hw: GpuContext = { ...gpu, isFallbackAdapter: false };
      const [rows, cols] = [45, 2048];
      const w = (await ffnValues()).subarray(0, rows * cols);
      const packed = encodeFor(type, w, cols);
      for (const n of [1, 9]) {
        const x = await activations(cols, n, 4);
        const config = matmulConfig(hw, type, cols, n, { kernel: 'generic' });
        expect(config.wgSize).toBeGreaterThanOrEqual(32);
        const ref = dequantizedProduct(type, packed, rows, cols, x, n);
        for (const subgroups of variants) {
          const y = await matmulOnGpu(hw, type, packed, rows, cols, x, n, { subgroups, kernel: 'generic' });
          const rel = relativeError(y, ref.f64);
          note(type, `hw wg ${config.wgSize} n=${n}`, rel);
          expect(rel, `n=${n} ${subgroups ? 'subgroups' : 'workgroup'}`).toBeLessThan(MAX_REL_ERROR);
        }
      }
    });
  }
});

describe('quantized matmul: chunking', () => {
  // 2 KiB bindings, 2 workgroups per dimension: W, X and Y all split (rows and tokens).
  const LIMITS = { maxStorageBufferBindingSize: 2048, maxComputeWorkgroupsPerDimension: 2 };

  // One type per block geometry (block size, bytes mod 4): rows that start on or off word
  // boundaries, groups of 1, 2 or 4 blocks; the chunking itself does not look at the type.
  const geometries = new Map<string, QuantType>();
  for (const t of TYPES) if (!whyNotApplicable(t, 256)) geometries.set(`${t.blockSize}/${t.typeSize % 4}`, geometries.get(`${t.blockSize}/${t.typeSize % 4}`) ?? t);
  for (const type of geometries.values()) {
    it(`${type.id}: split over rows and tokens, bit-identical to the unsplit product`, async () => {
      const small = restrictLimits(gpu, LIMITS);
      const [rows, cols, n] = [37, 256, 5];
      const w = (await ffnValues()).subarray(0, rows * cols);
      const x = await activations(cols, n, 2);
      const packed = encodeFor(type, w, cols);
      const config = matmulConfig(small, type, cols, n);
      const split = matmulChunking(small, type, config, rows, cols, n);
      expect(split.rowsPerChunk).toBeLessThan(rows);
      expect(split.tokensPerChunk).toBeLessThan(n);
      for (const tokens of [1, n]) {
        const X = x.subarray(0, cols * tokens);
        const whole = await matmulOnGpu(gpu, type, packed, rows, cols, X, tokens, { subgroups: false });
        const chunked = await matmulOnGpu(small, type, packed, rows, cols, X, tokens, { subgroups: false });
        expect(Buffer.from(chunked.buffer).equals(Buffer.from(whole.buffer)), `n=${tokens}`).toBe(true);
      }
    });
  }

  it('createGpu-style forced limits: a binding too small for one row is refused clearly', async () => {
    const tiny = restrictLimits(gpu, { maxStorageBufferBindingSize: 256 });
    await expect(matvecOnGpu(tiny, 'f32', new Uint8Array(128 * 4), 1, 128, new Float32Array(128))).rejects.toThrow(/does not fit/);
  });
});

describe('quantized matmul: input checks', () => {
  it('refuses bad shapes and types', async () => {
    await expect(matvecOnGpu(gpu, 'q4_0', new Uint8Array(18), 1, 48, new Float32Array(48))).rejects.toThrow(/multiple of the block size/);
    await expect(matvecOnGpu(gpu, 'q4_0', new Uint8Array(17), 1, 32, new Float32Array(32))).rejects.toThrow(/expected 18/);
    await expect(matvecOnGpu(gpu, 'q4_0', new Uint8Array(18), 1, 32, new Float32Array(31))).rejects.toThrow(/X has 31 values/);
    await expect(matvecOnGpu(gpu, 'nope', new Uint8Array(18), 1, 32, new Float32Array(32))).rejects.toThrow(/unknown/);
    await expect(matvecOnGpu(gpu, 'int8', new Uint8Array(36), 1, 32, new Float32Array(32))).rejects.toThrow();
  });

  it('returns an empty product for zero rows, and equal results for concurrent calls', async () => {
    expect((await matvecOnGpu(gpu, 'q8_0', new Uint8Array(0), 0, 32, new Float32Array(32))).length).toBe(0);
    const type = quantType('q8_0')!;
    const w = await tensor('blk.3.attn_q.weight');
    const packed = type.codec.encode(w, 64);
    const xs = await Promise.all([1, 2, 3].map((t) => activations(64, 1, t)));
    const ys = await Promise.all(xs.map((x) => matvecOnGpu(gpu, type, packed, 64, 64, x)));
    for (let i = 0; i < 3; i++) {
      const alone = await matvecOnGpu(gpu, type, packed, 64, 64, xs[i]);
      expect(Buffer.from(ys[i].buffer).equals(Buffer.from(alone.buffer))).toBe(true);
    }
  });

  it('matmulErrorOnGpu reports the product error with both products', async () => {
    const w = await tensor('blk.0.attn_q.weight');
    const X = await activations(64, 3);
    const r = await matmulErrorOnGpu(gpu, 'q4_0', w, 64, 64, X, 3);
    expect(r.y.length).toBe(192);
    expect(r.yRef.length).toBe(192);
    expect(r.relError).toBeGreaterThan(0);
    expect(r.cosine).toBeGreaterThan(0.9);
    expect(r.relError).toBeCloseTo(relativeError(r.y, r.yRef), 12);
  });
});
