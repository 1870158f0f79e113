// The resident forward pass: the whole decoder (every family of families/) on WebGPU, with
// one readback per chunk of positions. What runs where:
//   - GPU: embedding gather (the packed token embedding dequantized by its codec,
//     shaders/forward/embed.wgsl), RMSNorms (input, post, per-head q/k), q/k/v biases,
//     RoPE (NORM/NEOX; k written straight into the KV cache), attention over the
//     resident KV cache (causal, GQA, sliding window, soft-capping), SwiGLU/GeGLU,
//     residual adds, every weight product (the engine's matmul kernel, gpu/matmul.ts, on
//     each tensor's packed blocks), the output head, final soft-capping, and the
//     per-position scores eval needs (argmax, log-sum-exp, NLL of the next token, KL
//     against the F32 pass's logits kept resident in a BaseLogits buffer).
//   - CPU: the RoPE cos/sin table of the chunk's positions (blocks.ts RopeTable, uploaded:
//     ggml's f32 angles exactly, not the GPU's cos/sin), GeGLU's f16 table (uploaded once),
//     the chunk's token ids and targets (uploaded).
// Weights are uploaded once at create() and stay until dispose(); activation buffers are
// sized for `maxTokens` positions and the KV cache for `capacity`; the bind groups of each
// mode (one position, or several: the matmul kernel's two configurations) are made once
// and reused. A chunk is one command buffer: its parameters go up in one writeBuffer, it
// is submitted once inside one pair of error scopes, and one mapRead brings back 4 words
// per position (and the logits only when a test asks for them).
//
// Numerics: f32 everywhere (the CPU reference sums in f64): logits within ~1e-6 relative
// of the CPU pass; every reduction is a fixed tree, so results are identical run to run.
// Gemma (GeGLU, whose f16 rounding turns an f32 ulp into an f16 step) rounds its layers as
// the CPU's f64 does: RMSNorm, RoPE and attention in double-f32 (forward/df.wgsl), the layer
// products summed near-exactly and rounded once (forward/matmul_dot2.wgsl).
import { countForwardPass, mapRead, submit } from '../gpu/counters.ts';
import type { GpuContext } from '../gpu/device.ts';
import { withErrorScopes } from '../gpu/dispatch.ts';
import {
  gpuMatmulSupportsType,
  MATMUL_PARAMS_BYTES,
  matmulBindingBytes,
  matmulConfig,
  matmulDispatch,
  matmulParams,
  matmulPipeline,
  matmulWeightBufferBytes,
  type MatmulConfig,
} from '../gpu/matmul.ts';
import { getPipeline } from '../gpu/pipelines.ts';
import { codecLibs, composeShader } from '../gpu/shaders.ts';
import { quantType, type QuantType, type VecDotType } from '../quant/types.ts';
import { geluF16Table, RopeTable } from './families/blocks.ts';
import type { ModelConfig } from './families/config.ts';
import type { WeightProvider } from './families/linear.ts';
import type { QuantizedWeights } from './weights.ts';

/** Why a model cannot run resident (the caller keeps the per-product path). */
export class ResidentUnsupportedError extends Error {
  override name = 'ResidentUnsupportedError';
}

/** What one chunk brings back, per position of the chunk. */
export interface ChunkScores {
  argmax: Int32Array;
  /** -log p(target) (NaN where no target was given). */
  nll: Float64Array;
  /** KL(p_base || p) in nats, or null without a base. */
  kl: Float64Array | null;
  /** n × vocab logits, only when asked (readLogits). */
  logits: Float32Array | null;
}

export interface ForwardChunkOptions {
  /** The next token of each position (for the NLL); absent: NLL is NaN. */
  targets?: readonly number[];
  /** Store this chunk's logits in `keep` (rows = sequence positions): the F32 pass. */
  keep?: BaseLogits;
  /** KL against these stored logits (same positions). */
  base?: BaseLogits;
  /** Also read back the logits (tests). */
  readLogits?: boolean;
}

/** The F32 pass's logits, resident: positions × vocab f32. */
let baseIds = 0;

export class BaseLogits {
  readonly buffer: GPUBuffer;
  /** Tells programs bound to different stores apart. */
  readonly id = ++baseIds;
  constructor(
    readonly gpu: GpuContext,
    readonly positions: number,
    readonly vocab: number,
  ) {
    const bytes = positions * vocab * 4;
    if (bytes > gpu.limits.maxStorageBufferBindingSize) throw new ResidentUnsupportedError(`the F32 logits (${bytes} bytes) exceed one storage binding`);
    this.buffer = gpu.device.createBuffer({ label: 'forward.base-logits', size: Math.max(16, bytes), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  }

  /** All of them back on the CPU (one readback: when a later model cannot run resident). */
  async read(): Promise<Float32Array> {
    const { device } = this.gpu;
    const size = this.positions * this.vocab * 4;
    const rb = device.createBuffer({ label: 'forward.base-logits.readback', size: Math.max(16, size), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    try {
      return await withErrorScopes(this.gpu, 'forward.base-logits', async () => {
        const enc = device.createCommandEncoder({ label: 'forward.base-logits.copy' });
        enc.copyBufferToBuffer(this.buffer, 0, rb, 0, size);
        submit(device, [enc.finish()]);
        await mapRead(device, rb, 0, size);
        const out = new Float32Array(rb.getMappedRange(0, size).slice(0));
        rb.unmap();
        return out;
      });
    } finally {
      rb.destroy();
    }
  }

  destroy(): void {
    this.buffer.destroy();
  }
}

interface WeightChunk {
  r0: number;
  rows: number;
  buffer: GPUBuffer;
}

interface ResidentWeight {
  type: QuantType;
  rows: number;
  cols: number;
  rowBytes: number;
  chunks: WeightChunk[];
}

/** Bytes between two parameter slots (WebGPU's largest uniform offset alignment). */
const SLOT = 256;
const WG = 64;
const SCORE_WG = 256;
/** Tokens per workgroup of forward/matmul_dot2.wgsl (its D2_TOKENS). */
const DOT2_TOKENS = 8;
/**
 * Workgroup size of attention (n_head x n workgroups, ~15 barriers each) on a software
 * adapter: SwiftShader runs a workgroup's invocations as coroutines and every barrier
 * switches all of them, so there one invocation per (head, query) is the fastest
 * (stories260K eval, 81 positions: 50 s with 64, 26 s with 1 on the loaded 2-core machine).
 * So do gemma's matmul_dot2 and rmsnorm_df (near-exact sums: the tree hardly matters).
 * The f32 RMSNorm and the scores keep their trees: their sums decide KL's last digits.
 */
const SOFTWARE_ATTENTION_WG = 1;

/** A recorded step: a pipeline, its bind group, its dispatch and its parameters for a chunk. */
export interface Step {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  dispatch: (n: number) => [number, number];
  /** The step's uniform words (f32 values as their bits). */
  params: (n: number, start: number) => ArrayLike<number>;
}

type Program = Step[];

/** Where a tensor's columns are read from: buffer, row stride and offset (a fused product's part). */
interface Src {
  buf: GPUBuffer;
  stride: number;
  off: number;
}

function f32Bits(v: number): number {
  return new Uint32Array(new Float32Array([v]).buffer)[0];
}

/** Splits a workgroup count over x and y (rows of 65535). */
function grid(groups: number): [number, number] {
  return groups <= 65535 ? [Math.max(1, groups), 1] : [65535, Math.ceil(groups / 65535)];
}

export interface GpuForwardOptions {
  /** Most positions in one chunk (activation buffers are sized for it). */
  maxTokens: number;
  /** Positions the KV cache holds (the sequence length). */
  capacity: number;
  /** Steps recorded right after each weight's product, reading its input (calibration statistics: gpu-stats.ts). */
  tap?: ProductTap;
  /**
   * How the products see their inputs (activations.ts): 'f32' as they are (default); 'ggml'
   * rounded first to each weight type's vec_dot_type as llama.cpp's CPU backend does
   * (forward/act_round.wgsl, bit for bit as roundActivations).
   */
  activations?: ResidentActivations;
}

/** The activation modes the resident pass runs (activations.ts's ActivationMode). */
export const RESIDENT_ACTIVATIONS = ['f32', 'ggml'] as const;
export type ResidentActivations = (typeof RESIDENT_ACTIVATIONS)[number];

/** Gemma's FFN: GeGLU, whose f16 GELU table makes the layers round as the CPU's (program()). */
function hasGeglu(c: ModelConfig): boolean {
  return c.family === 'gemma2' || c.family === 'gemma3';
}

/** forward/act_round.wgsl's kind for a vec_dot_type; 0: no rounding (f32). */
function roundKind(vecDot: VecDotType): number {
  const kinds: Record<VecDotType, number> = { f32: 0, f16: 1, bf16: 2, q8_0: 3, q8_K: 4 };
  return kinds[vecDot];
}

/**
 * A tap on the weight products: for weight `weight` (its name in the files) whose product
 * reads `input` (n rows of `cols` f32), the steps to record after it (their own uniforms:
 * params() may return nothing). Called once per program.
 */
export type ProductTap = (weight: string, input: GPUBuffer, cols: number) => Promise<Step[]>;

/**
 * A model resident on the GPU. `weights` gives every tensor's f32 values (norms, biases,
 * rope factors, and the F32 model's matrices); `quantized` each converted tensor's packed
 * blocks (null for the F32 model). Throws ResidentUnsupportedError for what it cannot run.
 */
export class GpuForward {
  private readonly buffers: GPUBuffer[] = [];
  private readonly weights = new Map<string, ResidentWeight>();
  private readonly f32 = new Map<string, GPUBuffer>();
  private readonly programs = new Map<string, Program>();
  private readonly ropes: RopeTable[] = [];
  private readonly layerRope: number[] = [];
  private embed!: { type: QuantType; buffer: GPUBuffer; rowBytes: number };
  private act!: Record<string, GPUBuffer>;
  private kCache: GPUBuffer[] = [];
  private vCache: GPUBuffer[] = [];
  private paramsBuf!: GPUBuffer;
  private readback!: GPUBuffer;
  private baseDummy!: GPUBuffer;
  private gelu!: GPUBuffer;
  /** Positions in the KV cache. */
  length = 0;
  private disposed = false;

  private constructor(
    readonly gpu: GpuContext,
    readonly config: ModelConfig,
    readonly options: GpuForwardOptions,
  ) {}

  static async create(gpu: GpuContext, config: ModelConfig, weights: WeightProvider, quantized: QuantizedWeights | null, options: GpuForwardOptions): Promise<GpuForward> {
    const f = new GpuForward(gpu, config, options);
    try {
      await withErrorScopes(gpu, 'forward.upload', async () => f.upload(weights, quantized));
    } catch (e) {
      f.dispose();
      throw e;
    }
    return f;
  }

  private buffer(label: string, bytes: number, usage: number): GPUBuffer {
    const b = this.gpu.device.createBuffer({ label: `forward.${label}`, size: Math.max(16, Math.ceil(bytes / 4) * 4), usage });
    this.buffers.push(b);
    return b;
  }

  private uploadBytes(label: string, bytes: Uint8Array, size = bytes.length): GPUBuffer {
    // COPY_DST: setWeight rewrites an f32 tensor in place (the budget scan's one-tensor variants).
    const b = this.gpu.device.createBuffer({ label: `forward.${label}`, size: Math.max(16, Math.ceil(size / 4) * 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, mappedAtCreation: true });
    new Uint8Array(b.getMappedRange()).set(bytes);
    b.unmap();
    this.buffers.push(b);
    return b;
  }

  private packedOf(name: string, rows: number, cols: number, weights: WeightProvider, quantized: QuantizedWeights | null): { type: QuantType; bytes: Uint8Array } {
    const packed = quantized?.packed.get(name);
    if (packed) {
      if (packed.rows !== rows || packed.cols !== cols) throw new Error(`tensor '${name}' is packed as ${packed.rows} x ${packed.cols}, expected ${rows} x ${cols}`);
      return { type: packed.type, bytes: packed.bytes };
    }
    const w = weights(name);
    if (w.length !== rows * cols) throw new Error(`tensor '${name}' has ${w.length} values, expected ${rows} x ${cols}`);
    return { type: quantType('f32')!, bytes: new Uint8Array(w.buffer, w.byteOffset, w.byteLength) };
  }

  private uploadMatrix(name: string, rows: number, cols: number, weights: WeightProvider, quantized: QuantizedWeights | null): void {
    if (this.weights.has(name)) return;
    const { type, bytes } = this.packedOf(name, rows, cols, weights, quantized);
    if (!gpuMatmulSupportsType(type)) throw new ResidentUnsupportedError(`${name}: ${type.id} has no GPU matmul`);
    if (cols % type.blockSize !== 0) throw new ResidentUnsupportedError(`${name}: rows of ${cols} are not whole ${type.id} blocks`);
    const rowBytes = (cols / type.blockSize) * type.typeSize;
    const maxWg = this.gpu.limits.maxComputeWorkgroupsPerDimension;
    // Rows per workgroup of every configuration a program may pick (programMm's n: 1 to decode,
    // max(2, maxTokens) for a chunk): a chunk's dispatch must stay within the limit for each.
    const programNs = [1, Math.max(2, this.options.maxTokens)];
    const minRowsPerWg = Math.min(...programNs.map((n) => matmulConfig(this.gpu, type, cols, n).rowsPerWg));
    let per = Math.min(rows, Math.floor((matmulBindingBytes(this.gpu) - 8) / rowBytes), maxWg * minRowsPerWg);
    // Later chunks write Y at a binding offset of r0 floats: keep r0 a multiple of 64 (256 bytes).
    if (per < rows) per = Math.floor(per / 64) * 64;
    if (per < 1) throw new ResidentUnsupportedError(`${name}: a row of ${type.id} does not fit one binding`);
    const chunks: WeightChunk[] = [];
    for (let r0 = 0; r0 < rows; r0 += per) {
      const rc = Math.min(per, rows - r0);
      chunks.push({ r0, rows: rc, buffer: this.uploadBytes(`w.${name}.${chunks.length}`, bytes.subarray(r0 * rowBytes, (r0 + rc) * rowBytes), matmulWeightBufferBytes(rowBytes, rc)) });
    }
    this.weights.set(name, { type, rows, cols, rowBytes, chunks });
  }

  private uploadVector(name: string, weights: WeightProvider): void {
    if (this.f32.has(name)) return;
    const w = weights(name);
    this.f32.set(name, this.uploadBytes(`v.${name}`, new Uint8Array(w.buffer, w.byteOffset, w.byteLength)));
  }

  private upload(weights: WeightProvider, quantized: QuantizedWeights | null): void {
    const c = this.config;
    const { maxTokens: T, capacity } = this.options;
    const d = c.nEmbd;
    const qDim = c.nHead * c.headDim;
    const kvDim = c.nHeadKv * c.headDim;
    // The embedding: one binding for the gather.
    const emb = this.packedOf(c.names.tokenEmbd, c.nVocab, d, weights, quantized);
    if (!gpuMatmulSupportsType(emb.type) || d % emb.type.blockSize !== 0) throw new ResidentUnsupportedError(`${c.names.tokenEmbd}: ${emb.type.id} cannot be gathered on the GPU`);
    const embRowBytes = (d / emb.type.blockSize) * emb.type.typeSize;
    const embBytes = matmulWeightBufferBytes(embRowBytes, c.nVocab);
    if (embBytes > this.gpu.limits.maxStorageBufferBindingSize) throw new ResidentUnsupportedError(`${c.names.tokenEmbd} (${embBytes} bytes) exceeds one storage binding`);
    this.embed = { type: emb.type, rowBytes: embRowBytes, buffer: this.uploadBytes('embd', emb.bytes, embBytes) };

    for (const L of c.names.layers) {
      for (const v of [L.attnNorm, L.ffnNorm, L.postAttnNorm, L.postFfnNorm, L.qNorm, L.kNorm, L.qBias, L.kBias, L.vBias]) if (v) this.uploadVector(v, weights);
      if (L.qkv) this.uploadMatrix(L.qkv, qDim + 2 * kvDim, d, weights, quantized);
      else {
        if (!L.q || !L.k || !L.v) throw new ResidentUnsupportedError('a layer without q/k/v');
        this.uploadMatrix(L.q, qDim, d, weights, quantized);
        this.uploadMatrix(L.k, kvDim, d, weights, quantized);
        this.uploadMatrix(L.v, kvDim, d, weights, quantized);
      }
      this.uploadMatrix(L.o, d, qDim, weights, quantized);
      if (L.gate) {
        this.uploadMatrix(L.gate, c.nFf, d, weights, quantized);
        this.uploadMatrix(L.up, c.nFf, d, weights, quantized);
      } else this.uploadMatrix(L.up, 2 * c.nFf, d, weights, quantized);
      this.uploadMatrix(L.down, d, c.nFf, weights, quantized);
    }
    this.uploadVector(c.names.outputNorm, weights);
    this.uploadMatrix(c.names.output, c.nVocab, d, weights, quantized);

    // RoPE tables, one per distinct (base, scale): as the families build them.
    const n = c.names;
    const factorsName = n.ropeFreqs ?? (n.ropeFactorsLong && capacity > c.nCtxOrig ? n.ropeFactorsLong : n.ropeFactorsShort);
    const factors = factorsName ? weights(factorsName) : null;
    const keys = new Map<string, number>();
    for (const la of c.layerAttention) {
      const key = `${la.ropeFreqBase}/${la.ropeFreqScale}`;
      let i = keys.get(key);
      if (i === undefined) {
        keys.set(key, (i = this.ropes.length));
        this.ropes.push(new RopeTable({ nRot: c.nRot, style: c.ropeStyle, freqBase: la.ropeFreqBase, freqScale: la.ropeFreqScale, factors, attnFactor: c.ropeAttnFactor }));
      }
      this.layerRope.push(i);
    }

    const S = GPUBufferUsage.STORAGE;
    const io = S | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
    const f = (label: string, floats: number) => this.buffer(label, floats * 4, io);
    const fusedUp = c.names.layers.some((L) => !L.gate);
    const fusedQkv = c.names.layers.some((L) => L.qkv);
    this.act = {
      x: f('x', T * d),
      h: f('h', T * d),
      q: f('q', T * qDim),
      k: f('k', T * kvDim),
      v: f('v', T * kvDim),
      qkv: f('qkv', fusedQkv ? T * (qDim + 2 * kvDim) : 4),
      qn: f('qn', T * qDim),
      kn: f('kn', T * kvDim),
      qr: f('qr', T * qDim),
      attn: f('attn', T * qDim),
      tmp: f('tmp', T * d),
      tmp2: f('tmp2', T * d),
      gate: f('gate', T * (fusedUp ? 2 : 1) * c.nFf),
      up: f('up', T * c.nFf),
      ffn: f('ffn', T * c.nFf),
      logits: f('logits', T * c.nVocab),
      // gemma's attention_df.wgsl keeps each score as (hi, lo).
      scores: f('scores', T * c.nHead * capacity * (hasGeglu(c) ? 2 : 1)),
      // A product's input rounded to its vec_dot_type (activations 'ggml' only).
      rounded: f('rounded', this.options.activations === 'ggml' ? T * Math.max(d, qDim, c.nFf) : 4),
      tokens: f('tokens', T),
      targets: f('targets', T),
      rope: f('rope', this.ropes.length * T * c.nRot),
      out: f('out', T * 4),
    };
    for (const [k, b] of Object.entries(this.act)) {
      if (b.size > this.gpu.limits.maxStorageBufferBindingSize) throw new ResidentUnsupportedError(`the ${k} buffer (${b.size} bytes) exceeds one storage binding: use a smaller chunk`);
    }
    for (let il = 0; il < c.nLayer; il++) {
      this.kCache.push(f(`k${il}`, capacity * kvDim));
      this.vCache.push(f(`v${il}`, capacity * kvDim));
    }
    this.baseDummy = f('base-dummy', 4);
    const table = hasGeglu(c) ? geluF16Table() : new Float32Array(4);
    this.gelu = this.uploadBytes('gelu', new Uint8Array(table.buffer, table.byteOffset, table.byteLength));
    this.readback = this.buffer('readback', T * 16 + T * c.nVocab * 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
  }

  // ---- pipelines -----------------------------------------------------------------------

  private reduceWg(hardware: number): number {
    return this.gpu.isFallbackAdapter ? SOFTWARE_ATTENTION_WG : hardware;
  }

  private simple(name: string, files: string[], wg = WG): Promise<GPUComputePipeline> {
    return getPipeline(this.gpu.device, { name: `forward.${name}`, code: () => composeShader(files), constants: { WG_SIZE: wg } });
  }

  /** forward/matmul_dot2.wgsl for `type`: each output the exact sum rounded once to f32. */
  private dot2Pipeline(type: QuantType): Promise<GPUComputePipeline> {
    return getPipeline(this.gpu.device, {
      name: `forward.matmul_dot2.${type.wgsl}`,
      code: () => composeShader([...codecLibs(type.wgsl), `codecs/${type.wgsl}.wgsl`, 'forward/matmul_dot2.wgsl']),
      // Software adapters: one lane per row and 8 tokens (barriers are costly there, SOFTWARE_ATTENTION_WG).
      constants: { WG_SIZE: this.reduceWg(WG) },
    });
  }

  private bind(pipeline: GPUComputePipeline, label: string, resources: GPUBindingResource[]): GPUBindGroup {
    return this.gpu.device.createBindGroup({ label: `forward.${label}`, layout: pipeline.getBindGroupLayout(0), entries: resources.map((resource, binding) => ({ binding, resource })) });
  }

  /** The steps of a chunk of one position (`decode`) or several; made once per mode. */
  private async program(decode: boolean, base: BaseLogits | undefined): Promise<Program> {
    const key = `${decode}|${base ? base.id : ''}`;
    const cached = this.programs.get(key);
    if (cached) return cached;
    const c = this.config;
    const a = this.act;
    const d = c.nEmbd;
    const qDim = c.nHead * c.headDim;
    const kvDim = c.nHeadKv * c.headDim;
    // The kernel configuration for the chunk size: one program serves every chunk of 2..maxTokens.
    const nMm = decode ? 1 : Math.max(2, this.options.maxTokens);
    // GeGLU rounds the gate to f16 (ggml's GELU table): an f32 ulp of difference anywhere
    // upstream that lands at an f16 rounding boundary becomes an f16 step. So gemma's
    // layers (norms, RoPE, attention, products) round once from double-f32 or near-exact
    // sums, as the CPU reference's f64 does (forward/df.wgsl, matmul_dot2.wgsl).
    const geglu = hasGeglu(c);
    const df = ['lib/rounding.wgsl', 'forward/df.wgsl'];
    const [norm, rope, attn, act, add, scores, round] = await Promise.all([
      geglu ? this.simple('rmsnorm_df', [...df, 'forward/rmsnorm_df.wgsl'], this.reduceWg(WG)) : this.simple('rmsnorm', ['forward/rmsnorm.wgsl']),
      getPipeline(this.gpu.device, { name: `forward.rope${geglu ? '_df' : ''}`, code: () => composeShader([...df, 'forward/rope.wgsl']), constants: { WG_SIZE: WG, ROPE_DF: geglu ? 1 : 0 } }),
      geglu
        ? this.simple('attention_df', [...df, 'forward/attention_io.wgsl', 'forward/attention_df.wgsl'], this.reduceWg(WG))
        : this.simple('attention', ['forward/tanh.wgsl', 'forward/attention_io.wgsl', 'forward/attention.wgsl'], this.reduceWg(WG)),
      this.simple('ffn_act', ['lib/f16.wgsl', 'forward/ffn_act.wgsl']),
      this.simple('add', ['forward/tanh.wgsl', 'forward/add.wgsl']),
      this.simple('scores', ['forward/scores.wgsl'], SCORE_WG),
      this.simple('act_round', ['lib/rounding.wgsl', 'lib/f16.wgsl', 'lib/bf16.wgsl', 'forward/act_round.wgsl']),
    ]);
    const embType = this.embed.type;
    const embed = await getPipeline(this.gpu.device, {
      name: `forward.embed.${embType.wgsl}`,
      code: () => composeShader([...codecLibs(embType.wgsl), `codecs/${embType.wgsl}.wgsl`, 'forward/embed.wgsl']),
      constants: { WG_SIZE: WG },
    });
    const steps: Program = [];
    // Parameter slots are bound in order of the steps; the slot index is the step's.
    const slot = (): GPUBindingResource => ({ buffer: this.paramsSlotBuffer(), offset: steps.length * SLOT, size: SLOT });
    const whole = (b: GPUBuffer): GPUBindingResource => ({ buffer: b });
    const push = (s: Step) => steps.push(s);

    const embRowBytes = this.embed.rowBytes;
    const embBlocks = d / embType.blockSize;
    push({
      pipeline: embed,
      bindGroup: this.bind(embed, 'embed', [whole(this.embed.buffer), whole(a.tokens), whole(a.x), slot()]),
      dispatch: (n) => grid(Math.ceil((n * embBlocks) / WG)),
      params: (n) => [n, embBlocks, embRowBytes, d, f32Bits(c.embedScale), 0, 0, 0],
    });
    const normStep = (label: string, x: GPUBuffer, w: string, out: GPUBuffer, rowsPer: number, dim: number) =>
      push({
        pipeline: norm,
        bindGroup: this.bind(norm, `norm.${label}`, [whole(x), whole(this.f32.get(w)!), whole(out), slot()]),
        dispatch: (n) => grid(n * rowsPer),
        params: (n) => [n * rowsPer, dim, f32Bits(c.rmsEps), 0],
      });
    const addStep = (label: string, x: GPUBuffer, y: GPUBuffer, period: number | null, cap = 0) =>
      push({
        pipeline: add,
        bindGroup: this.bind(add, `add.${label}`, [whole(x), whole(y), slot()]),
        dispatch: (n) => grid(Math.ceil((n * (period ?? d)) / WG)),
        params: (n) => {
          const count = n * (period ?? d);
          return [count, period === null ? count : period, f32Bits(cap), 0];
        },
      });
    /** The product's input rounded to the weight's vec_dot_type (into `rounded`), or the input itself for f32. */
    const roundStep = (name: string, x: GPUBuffer, type: QuantType, cols: number): GPUBuffer => {
      if (!type.vecDot) throw new Error(`tensor '${name}': no llama.cpp activation rounding known for type ${type.id}`);
      const kind = roundKind(type.vecDot);
      if (kind === 0) return x;
      const per = kind === 3 ? 32 : kind === 4 ? 256 : 1;
      if (cols % per !== 0) throw new ResidentUnsupportedError(`${name}: rows of ${cols} are not whole ${type.vecDot} blocks`);
      push({
        pipeline: round,
        bindGroup: this.bind(round, `round.${name}`, [whole(x), whole(a.rounded), slot()]),
        dispatch: (n) => grid(Math.ceil((n * cols) / per / WG)),
        params: (n) => [(n * cols) / per, kind, 0, 0],
      });
      return a.rounded;
    };
    const mmConfigs = new Map<string, MatmulConfig>();
    const layerRounding = geglu ? 'exact' : 'f32';
    const mmStep = async (name: string, input: GPUBuffer, y: GPUBuffer, rounding: 'f32' | 'exact' = layerRounding) => {
      const w = this.weights.get(name)!;
      const x = this.options.activations === 'ggml' ? roundStep(name, input, w.type, w.cols) : input;
      const key = `${w.type.id}|${w.cols}`;
      let config = mmConfigs.get(key);
      if (!config) mmConfigs.set(key, (config = matmulConfig(this.gpu, w.type, w.cols, nMm)));
      const exact = rounding === 'exact';
      const pipeline = exact ? await this.dot2Pipeline(w.type) : await matmulPipeline(this.gpu.device, w.type, config);
      for (const ch of w.chunks) {
        const cfg = config;
        const bindGroup = this.bind(pipeline, `mm.${name}.${ch.r0}`, [
          whole(ch.buffer),
          whole(x),
          { buffer: y, offset: ch.r0 * 4, size: y.size - ch.r0 * 4 },
          { buffer: this.paramsSlotBuffer(), offset: steps.length * SLOT, size: MATMUL_PARAMS_BYTES },
        ]);
        push({
          pipeline,
          bindGroup,
          dispatch: (n) => (exact ? grid(ch.rows * Math.ceil(n / DOT2_TOKENS)) : matmulDispatch(cfg, ch.rows, n)),
          params: (n) => {
            const p = matmulParams(w.type, ch.rows, w.cols, n);
            p[5] = w.rows; // y_stride: the whole output row (chunks write at r0)
            return p;
          },
        });
      }
      for (const s of (await this.options.tap?.(name, input, w.cols)) ?? []) push(s);
    };
    const ropeStep = (label: string, src: Src, dst: GPUBuffer, heads: number, il: number, dstOffAtStart: boolean, pairs: number) => {
      const table = this.layerRope[il];
      const T = this.options.maxTokens;
      push({
        pipeline: rope,
        bindGroup: this.bind(rope, `rope.${label}`, [whole(src.buf), whole(a.rope), whole(dst), slot()]),
        dispatch: (n) => grid(Math.ceil((n * heads * c.headDim) / WG)),
        params: (n, start) => [n, heads, c.headDim, pairs, c.ropeStyle === 'neox' ? 1 : 0, src.stride, src.off, heads * c.headDim, dstOffAtStart ? start * heads * c.headDim : 0, table * T * c.nRot, 0, 0],
      });
    };

    for (let il = 0; il < c.nLayer; il++) {
      const L = c.names.layers[il];
      normStep(`attn.${il}`, a.x, L.attnNorm, a.h, 1, d);
      let q: Src, k: Src, v: Src;
      if (L.qkv) {
        await mmStep(L.qkv, a.h, a.qkv);
        const stride = qDim + 2 * kvDim;
        q = { buf: a.qkv, stride, off: 0 };
        k = { buf: a.qkv, stride, off: qDim };
        v = { buf: a.qkv, stride, off: qDim + kvDim };
      } else {
        await mmStep(L.q!, a.h, a.q);
        await mmStep(L.k!, a.h, a.k);
        await mmStep(L.v!, a.h, a.v);
        if (L.qBias) addStep(`qb.${il}`, a.q, this.f32.get(L.qBias)!, qDim);
        if (L.kBias) addStep(`kb.${il}`, a.k, this.f32.get(L.kBias)!, kvDim);
        if (L.vBias) addStep(`vb.${il}`, a.v, this.f32.get(L.vBias)!, kvDim);
        q = { buf: a.q, stride: qDim, off: 0 };
        k = { buf: a.k, stride: kvDim, off: 0 };
        v = { buf: a.v, stride: kvDim, off: 0 };
        if (L.qNorm && L.kNorm) {
          normStep(`qn.${il}`, a.q, L.qNorm, a.qn, c.nHead, c.headDim);
          normStep(`kn.${il}`, a.k, L.kNorm, a.kn, c.nHeadKv, c.headDim);
          q = { buf: a.qn, stride: qDim, off: 0 };
          k = { buf: a.kn, stride: kvDim, off: 0 };
        }
      }
      ropeStep(`q.${il}`, q, a.qr, c.nHead, il, false, c.nRot / 2);
      ropeStep(`k.${il}`, k, this.kCache[il], c.nHeadKv, il, true, c.nRot / 2);
      ropeStep(`v.${il}`, v, this.vCache[il], c.nHeadKv, il, true, 0); // a strided copy
      const la = c.layerAttention[il];
      const capacity = this.options.capacity;
      push({
        pipeline: attn,
        bindGroup: this.bind(attn, `attn.${il}`, [whole(a.qr), whole(this.kCache[il]), whole(this.vCache[il]), whole(a.scores), whole(a.attn), slot()]),
        dispatch: (n) => [c.nHead, n],
        params: (n, start) => [n, start, c.nHead, c.nHead / c.nHeadKv, c.headDim, kvDim, qDim, la.window, f32Bits(c.attnScale), f32Bits(c.attnSoftcap), capacity, 0],
      });
      await mmStep(L.o, a.attn, a.tmp);
      if (L.postAttnNorm) {
        normStep(`post-attn.${il}`, a.tmp, L.postAttnNorm, a.tmp2, 1, d);
        addStep(`res-attn.${il}`, a.x, a.tmp2, null);
      } else addStep(`res-attn.${il}`, a.x, a.tmp, null);

      normStep(`ffn.${il}`, a.x, L.ffnNorm, a.h, 1, d);
      let g: Src, up: Src;
      if (L.gate) {
        await mmStep(L.gate, a.h, a.gate);
        await mmStep(L.up, a.h, a.up);
        g = { buf: a.gate, stride: c.nFf, off: 0 };
        up = { buf: a.up, stride: c.nFf, off: 0 };
      } else {
        await mmStep(L.up, a.h, a.gate);
        g = { buf: a.gate, stride: 2 * c.nFf, off: 0 };
        up = { buf: a.gate, stride: 2 * c.nFf, off: c.nFf };
      }
      const kind = geglu ? 1 : 0;
      push({
        pipeline: act,
        bindGroup: this.bind(act, `act.${il}`, [whole(g.buf), whole(up.buf), whole(this.gelu), whole(a.ffn), slot()]),
        dispatch: (n) => grid(Math.ceil((n * c.nFf) / WG)),
        params: (n) => [n, c.nFf, kind, g.stride, g.off, up.stride, up.off, 0],
      });
      await mmStep(L.down, a.ffn, a.tmp);
      if (L.postFfnNorm) {
        normStep(`post-ffn.${il}`, a.tmp, L.postFfnNorm, a.tmp2, 1, d);
        addStep(`res-ffn.${il}`, a.x, a.tmp2, null);
      } else addStep(`res-ffn.${il}`, a.x, a.tmp, null);
    }
    normStep('output', a.x, c.names.outputNorm, a.h, 1, d);
    await mmStep(c.names.output, a.h, a.logits, 'f32'); // past the last GeGLU
    if (c.finalSoftcap > 0) addStep('softcap', a.logits, a.tmp, c.nVocab, c.finalSoftcap); // y unused
    const baseBuf = base?.buffer ?? this.baseDummy;
    push({
      pipeline: scores,
      bindGroup: this.bind(scores, 'scores', [whole(a.logits), whole(baseBuf), whole(a.targets), whole(a.out), slot()]),
      dispatch: (n) => [n, 1],
      params: (n, start) => [n, c.nVocab, start, base ? 1 : 0],
    });
    this.programs.set(key, steps);
    return steps;
  }

  private paramsCapacity = 0;
  /** The parameter buffer, made once with room for every mode's steps. */
  private paramsSlotBuffer(): GPUBuffer {
    if (!this.paramsBuf) {
      const c = this.config;
      // Upper bound on steps: per layer ~40 (matmul row chunks counted generously), plus the ends.
      const mmChunks = [...this.weights.values()].reduce((s, w) => s + w.chunks.length, 0);
      // A tap's steps take slots too (unused: they bind their own uniforms); a few per product.
      const tapSlots = this.options.tap ? 4 * this.weights.size : 0;
      const roundSlots = this.options.activations === 'ggml' ? this.weights.size : 0;
      this.paramsCapacity = c.nLayer * 24 + mmChunks + tapSlots + roundSlots + 16;
      this.paramsBuf = this.buffer('params', this.paramsCapacity * SLOT, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    }
    return this.paramsBuf;
  }

  /**
   * Replaces the values of matrix `name`, uploaded as f32 (the model was created without its
   * packed blocks), in place: the budget scan measures one tensor's quantization at a time on
   * one resident F32 model. The token embedding's gather copy follows where it is that tensor.
   */
  setWeight(name: string, values: Float32Array): void {
    if (this.disposed) throw new Error('GpuForward: used after dispose()');
    const w = this.weights.get(name);
    const embed = name === this.config.names.tokenEmbd;
    if (!w && !embed) throw new Error(`setWeight: '${name}' is not a matrix of this model`);
    const [type, rows, cols] = w ? [w.type, w.rows, w.cols] : [this.embed.type, this.config.nVocab, this.config.nEmbd];
    if (type.id !== 'f32') throw new Error(`setWeight: '${name}' is held as ${type.id}, not f32`);
    if (values.length !== rows * cols) throw new RangeError(`setWeight: '${name}' takes ${rows} x ${cols} values, not ${values.length}`);
    const { queue } = this.gpu.device;
    for (const ch of w?.chunks ?? []) queue.writeBuffer(ch.buffer, 0, values.buffer, values.byteOffset + ch.r0 * cols * 4, ch.rows * cols * 4);
    if (embed) queue.writeBuffer(this.embed.buffer, 0, values.buffer, values.byteOffset, values.byteLength);
  }

  /** Empties the KV cache (a new sequence). */
  reset(): void {
    this.length = 0;
  }

  /**
   * Runs `tokens` at positions length.. (appending to the KV cache): one command buffer,
   * one readback. Returns the chunk's scores.
   */
  async forward(tokens: readonly number[], options: ForwardChunkOptions = {}): Promise<ChunkScores> {
    if (this.disposed) throw new Error('GpuForward: used after dispose()');
    const c = this.config;
    const n = tokens.length;
    const start = this.length;
    const { maxTokens, capacity } = this.options;
    if (n === 0) throw new Error('forward: no tokens');
    if (n > maxTokens) throw new RangeError(`forward: ${n} tokens exceed the chunk of ${maxTokens}`);
    if (start + n > capacity) throw new RangeError(`forward: ${start + n} positions exceed the cache's ${capacity}`);
    for (const t of tokens) if (!Number.isInteger(t) || t < 0 || t >= c.nVocab) throw new RangeError(`token ${t} is outside the vocabulary of ${c.nVocab}`);
    for (const b of [options.keep, options.base]) {
      if (b && (b.vocab !== c.nVocab || b.positions < start + n)) throw new RangeError(`forward: the stored logits hold ${b.positions} x ${b.vocab}, not positions to ${start + n} of ${c.nVocab}`);
    }
    const { device } = this.gpu;
    const a = this.act;
    const V = c.nVocab;
    const readLogits = options.readLogits === true;
    const outBytes = n * 16;
    const logitsAt = maxTokens * 16;
    return withErrorScopes(this.gpu, 'forward', async () => {
      const program = await this.program(n === 1, options.base);
      if (program.length > this.paramsCapacity) throw new Error(`forward: ${program.length} steps exceed the ${this.paramsCapacity} parameter slots`);
      // Inputs: token ids, targets, the positions' cos/sin, every step's parameters.
      device.queue.writeBuffer(a.tokens, 0, Uint32Array.from(tokens));
      const targets = new Uint32Array(n);
      options.targets?.forEach((t, i) => (targets[i] = t));
      device.queue.writeBuffer(a.targets, 0, targets);
      const ropeData = new Float32Array(this.ropes.length * maxTokens * c.nRot);
      this.ropes.forEach((r, ti) => {
        for (let t = 0; t < n; t++) ropeData.set(r.at(start + t), (ti * maxTokens + t) * c.nRot);
      });
      device.queue.writeBuffer(a.rope, 0, ropeData);
      const params = new Uint32Array((program.length * SLOT) / 4);
      program.forEach((s, i) => params.set(Array.from(s.params(n, start), (v) => v >>> 0), (i * SLOT) / 4));
      device.queue.writeBuffer(this.paramsBuf, 0, params);

      const enc = device.createCommandEncoder({ label: 'forward.chunk' });
      const pass = enc.beginComputePass({ label: 'forward.pass' });
      for (const s of program) {
        pass.setPipeline(s.pipeline);
        pass.setBindGroup(0, s.bindGroup);
        const [x, y] = s.dispatch(n);
        pass.dispatchWorkgroups(x, y);
      }
      pass.end();
      if (options.keep) enc.copyBufferToBuffer(a.logits, 0, options.keep.buffer, start * V * 4, n * V * 4);
      enc.copyBufferToBuffer(a.out, 0, this.readback, 0, outBytes);
      if (readLogits) enc.copyBufferToBuffer(a.logits, 0, this.readback, logitsAt, n * V * 4);
      submit(device, [enc.finish()]);
      countForwardPass(device);
      const size = readLogits ? logitsAt + n * V * 4 : outBytes;
      await mapRead(device, this.readback, 0, size);
      const mapped = this.readback.getMappedRange(0, size);
      const words = new Uint32Array(mapped, 0, n * 4);
      const floats = new Float32Array(mapped, 0, n * 4);
      const out: ChunkScores = {
        argmax: new Int32Array(n),
        nll: new Float64Array(n),
        kl: options.base ? new Float64Array(n) : null,
        logits: readLogits ? new Float32Array(mapped.slice(logitsAt, logitsAt + n * V * 4)) : null,
      };
      for (let i = 0; i < n; i++) {
        out.argmax[i] = words[4 * i];
        out.nll[i] = options.targets && i < options.targets.length ? floats[4 * i + 2] : NaN;
        if (out.kl) out.kl[i] = floats[4 * i + 3];
      }
      this.readback.unmap();
      this.length = start + n;
      return out;
    });
  }

  dispose(): void {
    this.disposed = true;
    for (const b of this.buffers) b.destroy();
    this.buffers.length = 0;
    this.programs.clear();
  }
}
