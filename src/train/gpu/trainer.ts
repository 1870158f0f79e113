// Training steps on WebGPU: the parameters, their gradients and Adam's moments stay in GPU
// buffers across steps; a step is one command buffer (QAT's encode/decode of the typed
// weights, forward, loss, backward, gradient norm and clip, AdamW: net.ts, program.ts) and
// one readback of 16 bytes (loss, gradient norm, and whether a QAT block needed the CPU
// encoder). Held-out scoring runs the same forward pass and reads the logits back. Each
// step and each scoring pass counts as one forward pass (gpu/counters.ts).
//
// QAT: each typed parameter is encoded from its master values by its type's WGSL codec
// (kernels/quantize.wgsl, bit-exact with the CPU codecs) and decoded into the buffer the
// forward reads. QLoRA: the frozen base's blocks stay on the GPU and each product decodes
// its weight into one scratch buffer shared by all of them (no f32 copy of the base).
import { countForwardPass, mapRead, submit } from '../../gpu/counters.ts';
import { assertNotLost, GpuDeviceLostError, type GpuContext } from '../../gpu/device.ts';
import { groupBlocks } from '../../gpu/block-codecs.ts';
import { kernelPipeline, kernelWgSize, withErrorScopes } from '../../gpu/dispatch.ts';
import { codecPipeline } from '../../gpu/pipelines.ts';
import { hasCodecEncoder, hasCodecShader } from '../../gpu/shaders.ts';
import type { ModelConfig } from '../../model/families/config.ts';
import type { PackedTensor } from '../../model/weights.ts';
import type { QuantType } from '../../quant/types.ts';
import { recordForward, ropeTableValues, type ParamAccess } from './net.ts';
import { Program, TRAIN_WG, trainPipelines, uniformWords, type TrainPipelines } from './program.ts';

export interface GpuAdapterInit {
  target: string;
  rank: number;
  scale: number;
  a: Float32Array;
  b: Float32Array;
}

export interface GpuTrainerSpec {
  config: ModelConfig;
  /** Every parameter's starting values, by name (train/model.ts paramShapes), and rope_freqs when the model has it. */
  values: ReadonlyMap<string, Float32Array>;
  shapes: ReadonlyMap<string, readonly number[]>;
  /** QAT: the parameters read through their type's encode + decode. */
  fakeQuant?: ReadonlyMap<string, QuantType>;
  /** QLoRA: the frozen base's linear weights as blocks (their values are not in `values`). */
  packed?: ReadonlyMap<string, PackedTensor>;
  adapters?: readonly GpuAdapterInit[];
  /** Whether the model's own parameters train (QAT) or only the adapters (QLoRA). */
  trainBase: boolean;
  weightDecay: number;
  clip: number;
}

/** The model families whose steps run on WebGPU (the others train on the CPU). */
export const GPU_TRAINED_FAMILIES: readonly string[] = ['llama'];

/** Whether the trainer can hold `type` as GPU blocks: a plain block sequence with a WGSL codec (and, to encode, its encoder). */
export function gpuTrainsType(type: QuantType, encode: boolean): boolean {
  return type.layout === 'blocks' && type.gpuLayout === undefined && hasCodecShader(type.wgsl) && (!encode || hasCodecEncoder(type.wgsl));
}

interface Trained {
  value: GPUBuffer;
  grad: GPUBuffer;
  m: GPUBuffer;
  v: GPUBuffer;
  length: number;
  matrix: boolean;
}

interface Blocks {
  type: QuantType;
  buf: GPUBuffer;
  nBlocks: number;
}

export interface StepStats {
  loss: number;
  gradNorm: number;
  /** A QAT block the WGSL encoder handed to the CPU (scales reaching f32 subnormals): the step's blocks are not the CPU codec's. */
  cpuBlock: boolean;
}

const BETA1 = 0.9;
const BETA2 = 0.999;
const EPS = 1e-8;

export class GpuTrainer {
  private readonly values = new Map<string, GPUBuffer>();
  /** What the forward reads for a fake-quantized parameter (its decoded blocks). */
  private readonly decoded = new Map<string, GPUBuffer>();
  private readonly blocks = new Map<string, Blocks>();
  private readonly trained = new Map<string, Trained>();
  private readonly adapterBufs = new Map<string, { rank: number; scale: number; a: Trained; b: Trained }>();
  private readonly programs = new Map<string, Promise<RunProgram>>();
  private readonly stepUniform: GPUBuffer;
  private readonly stats: GPUBuffer;
  private readonly readback: GPUBuffer;
  private readonly buffers: GPUBuffer[] = [];
  private scratch: GPUBuffer | null = null;
  private t = 0;

  private constructor(
    readonly gpu: GpuContext,
    private readonly pipes: TrainPipelines,
    readonly spec: GpuTrainerSpec,
  ) {
    const { device } = gpu;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const upload = (data: Float32Array | Uint8Array, label: string) => {
      const b = this.buffer(data.byteLength, label, usage);
      device.queue.writeBuffer(b, 0, data as Uint8Array<ArrayBuffer>);
      return b;
    };
    const trainedOf = (value: Float32Array, label: string, matrix: boolean): Trained => ({
      value: upload(value, label),
      grad: this.buffer(value.byteLength, `${label}.grad`, usage),
      m: this.buffer(value.byteLength, `${label}.m`, usage),
      v: this.buffer(value.byteLength, `${label}.v`, usage),
      length: value.length,
      matrix,
    });
    for (const [name, shape] of spec.shapes) {
      const packed = spec.packed?.get(name);
      if (packed) {
        this.blocks.set(name, { type: packed.type, buf: upload(padToGroups(packed.bytes, packed.type), `${name}.blocks`), nBlocks: packed.bytes.length / packed.type.typeSize });
        continue;
      }
      const value = spec.values.get(name);
      if (!value) throw new Error(`GPU trainer: no values for '${name}'`);
      if (spec.trainBase) {
        const t = trainedOf(value, name, shape.length >= 2);
        this.trained.set(name, t);
        this.values.set(name, t.value);
      } else this.values.set(name, upload(value, name));
      const type = spec.fakeQuant?.get(name);
      if (type) {
        const nBlocks = value.length / type.blockSize;
        this.blocks.set(name, { type, buf: this.buffer(Math.ceil(nBlocks / groupBlocks(type.typeSize)) * groupBlocks(type.typeSize) * type.typeSize, `${name}.blocks`, usage), nBlocks });
        this.decoded.set(name, this.buffer(value.byteLength, `${name}.decoded`, usage));
      }
    }
    for (const a of spec.adapters ?? []) {
      const at = trainedOf(a.a, `${a.target}.lora_a`, true);
      const bt = trainedOf(a.b, `${a.target}.lora_b`, true);
      this.trained.set(`${a.target}.lora_a`, at);
      this.trained.set(`${a.target}.lora_b`, bt);
      this.adapterBufs.set(a.target, { rank: a.rank, scale: a.scale, a: at, b: bt });
    }
    this.stepUniform = this.buffer(32, 'step', GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    this.stats = this.buffer(16, 'stats', usage);
    this.readback = this.buffer(16, 'stats.readback', GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
  }

  static async create(gpu: GpuContext, spec: GpuTrainerSpec): Promise<GpuTrainer> {
    // The WGSL graph (net.ts) is Llama's: it has no q/k/v biases (qwen2) or q/k norms (qwen3).
    if (!GPU_TRAINED_FAMILIES.includes(spec.config.family)) throw new Error(`training on WebGPU runs the llama family only; this model is ${spec.config.family}: use --backend cpu`);
    assertNotLost(gpu);
    for (const [name, type] of [...(spec.fakeQuant ?? []), ...[...(spec.packed ?? [])].map(([n, p]) => [n, p.type] as const)]) {
      if (!gpuTrainsType(type, spec.fakeQuant?.has(name) ?? false)) {
        throw new Error(`training on WebGPU: ${name}'s type ${type.id} has no WGSL block codec${spec.fakeQuant?.has(name) ? ' encoder' : ''} yet; use --backend cpu`);
      }
    }
    return new GpuTrainer(gpu, await trainPipelines(gpu), spec);
  }

  private buffer(bytes: number, label: string, usage: number): GPUBuffer {
    const b = this.gpu.device.createBuffer({ label: `train.${label}`, size: Math.max(16, Math.ceil(bytes / 16) * 16), usage });
    this.buffers.push(b);
    return b;
  }

  /** One training step on `tokens`: KL to `teacher` (log-probabilities, n x vocab) or, with null, cross-entropy on the next tokens. */
  async step(tokens: readonly number[], teacher: Float32Array | null, lr: number): Promise<StepStats> {
    const run = await this.program(tokens.length, true);
    this.t++;
    const step = new Float32Array([lr, this.spec.weightDecay, BETA1, BETA2, EPS, 1 - Math.pow(BETA1, this.t), 1 - Math.pow(BETA2, this.t), 0]);
    this.gpu.device.queue.writeBuffer(this.stepUniform, 0, step);
    run.write(tokens, teacher);
    // Loss, norm and clip factor, then the to-CPU flag: one 16-byte readback.
    const bytes = await this.readBack([{ from: this.stats, bytes: 12 }, { from: run.flag, bytes: 4 }], run.prog);
    const f = new Float32Array(bytes.buffer);
    return { loss: f[0], gradNorm: f[1], cpuBlock: new Uint32Array(bytes.buffer)[3] !== 0 };
  }

  /** The logits (n x vocab) of one forward pass, read back. */
  async logits(tokens: readonly number[]): Promise<Float32Array> {
    const run = await this.program(tokens.length, false);
    run.write(tokens, null);
    const bytes = tokens.length * this.spec.config.nVocab * 4;
    return new Float32Array((await this.readBack([{ from: run.logits, bytes }], run.prog)).buffer);
  }

  /** The master values of a parameter or adapter tensor (name.lora_a / .lora_b), read back. */
  async read(name: string): Promise<Float32Array> {
    const t = this.trained.get(name);
    const buf = t?.value ?? this.values.get(name);
    if (!buf) throw new Error(`GPU trainer: no tensor '${name}'`);
    const length = t?.length ?? this.spec.values.get(name)!.length;
    return new Float32Array((await this.readBack([{ from: buf, bytes: length * 4 }])).buffer);
  }

  /** The blocks of a fake-quantized parameter as the last run encoded them. */
  async readBlocks(name: string): Promise<Uint8Array> {
    const b = this.blocks.get(name);
    if (!b) throw new Error(`GPU trainer: '${name}' has no blocks`);
    return this.readBack([{ from: b.buf, bytes: b.nBlocks * b.type.typeSize }]);
  }

  destroy(): void {
    for (const p of this.programs.values()) void p.then((r) => r.prog.destroy(), () => undefined);
    for (const b of this.buffers) b.destroy();
    this.scratch?.destroy();
  }

  /** Runs `prog` (if given) and copies the buffers' first bytes back, one after another, in one command buffer and one readback. */
  private readBack(copies: readonly { from: GPUBuffer; bytes: number }[], prog?: Program): Promise<Uint8Array> {
    return guardLoss(this.gpu, () =>
      withErrorScopes(this.gpu, 'training on WebGPU', async () => {
        const { device } = this.gpu;
        const sizes = copies.map((c) => Math.ceil(c.bytes / 4) * 4);
        const size = sizes.reduce((a, b) => a + b, 0);
        const small = size <= 16 ? this.readback : null;
        const rb = small ?? device.createBuffer({ label: 'train.readback', size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
        const enc = device.createCommandEncoder({ label: 'train.run' });
        prog?.encode(enc);
        let at = 0;
        copies.forEach((c, i) => {
          enc.copyBufferToBuffer(c.from, 0, rb, at, sizes[i]);
          at += sizes[i];
        });
        submit(device, [enc.finish()]);
        // Every program is one forward pass: a step's (before its backward) or a held-out score's.
        if (prog) countForwardPass(device);
        try {
          await mapRead(device, rb, 0, size);
          const out = new Uint8Array(rb.getMappedRange(0, size).slice(0));
          rb.unmap();
          return copies.length === 1 ? out.subarray(0, copies[0].bytes).slice() : out;
        } finally {
          if (!small) rb.destroy();
        }
      }),
    );
  }

  private program(n: number, train: boolean): Promise<RunProgram> {
    const key = `${n}.${train}`;
    let p = this.programs.get(key);
    if (!p) this.programs.set(key, (p = this.build(n, train)));
    return p;
  }

  /** Records the step (train) or a forward pass of n tokens. */
  private async build(n: number, train: boolean): Promise<RunProgram> {
    const c = this.spec.config;
    const prog = new Program(this.gpu, this.pipes, train ? `train.step${n}` : `train.forward${n}`);
    const V = c.nVocab;
    const tokens = prog.buffer(n, 'tokens');
    const targets = prog.buffer(n, 'targets');
    const teacher = prog.buffer(train ? n * V : 1, 'teacher');
    const ropeCs = prog.buffer(n * c.nRot, 'rope');
    this.gpu.device.queue.writeBuffer(ropeCs, 0, ropeTableValues(c, this.spec.values.get(c.names.ropeFreqs ?? '') ?? null, n) as Float32Array<ArrayBuffer>);
    const flag = prog.buffer(4, 'to-cpu', true);
    await this.recordFakeQuant(prog, flag);
    const f = recordForward(prog, c, await this.access(), tokens, n, ropeCs);
    const loss = { mode: 0, count: n };
    if (train) {
      const rowLoss = prog.buffer(n, 'row-loss');
      const dLogits = f.logits.g();
      // The loss kernel writes every gradient value itself; the mode and count are set per run.
      const lossUniform = prog.uniform(new Uint32Array([n, V, 0, n]).buffer, 'loss');
      prog.raw(this.pipes.loss, [f.logits.buf, teacher, targets, dLogits, rowLoss, lossUniform], Math.ceil(n / TRAIN_WG));
      f.backward();
      const grads = [...this.trained.values()];
      const partials = prog.buffer(grads.length, 'partials');
      grads.forEach((t, slot) => prog.kernel('sumsq', [t.grad, partials], uniformWords([t.length, slot]), 1));
      for (const t of grads) prog.clearEachRun(t.grad);
      const finalizeUniform = prog.uniform(uniformWords([n, grads.length, n], [this.spec.clip]), 'finalize');
      prog.raw(this.pipes.finalize, [rowLoss, partials, this.stats, finalizeUniform], 1);
      for (const t of grads) prog.raw(this.pipes.adamw, [t.value, t.grad, t.m, t.v, this.stats, prog.uniform(uniformWords([t.length, t.matrix ? 1 : 0]), 'adamw'), this.stepUniform], Math.ceil(t.length / TRAIN_WG));
      const write = (toks: readonly number[], t: Float32Array | null) => {
        this.writeTokens(tokens, targets, toks);
        const ce = t === null;
        loss.mode = ce ? 1 : 0;
        loss.count = ce ? n - 1 : n;
        this.gpu.device.queue.writeBuffer(lossUniform, 0, new Uint32Array([n, V, loss.mode, loss.count]));
        this.gpu.device.queue.writeBuffer(finalizeUniform, 0, uniformWords([n, grads.length, loss.count], [this.spec.clip]));
        if (t) this.gpu.device.queue.writeBuffer(teacher, 0, t as Float32Array<ArrayBuffer>);
      };
      return { prog, logits: f.logits.buf, write, flag };
    }
    return { prog, logits: f.logits.buf, write: (toks) => this.writeTokens(tokens, targets, toks), flag };
  }

  private writeTokens(tokens: GPUBuffer, targets: GPUBuffer, toks: readonly number[]): void {
    const V = this.spec.config.nVocab;
    for (const t of toks) if (!Number.isInteger(t) || t < 0 || t >= V) throw new RangeError(`token ${t} is outside the vocabulary of ${V}`);
    this.gpu.device.queue.writeBuffer(tokens, 0, Uint32Array.from(toks));
    this.gpu.device.queue.writeBuffer(targets, 0, Uint32Array.from([...toks.slice(1), 0]));
  }

  /** QAT: every typed parameter encoded from its master values and decoded into what the forward reads. */
  private async recordFakeQuant(prog: Program, flag: GPUBuffer): Promise<void> {
    const wg = kernelWgSize(this.gpu.limits);
    const anySet = await kernelPipeline(this.gpu.device, 'any_set', ['kernels/any_set.wgsl'], wg);
    for (const [name, type] of this.spec.fakeQuant ?? []) {
      const b = this.blocks.get(name)!;
      const groups = Math.ceil(b.nBlocks / groupBlocks(type.typeSize));
      const masks = prog.buffer(groups, `${name}.to-cpu`);
      const q = await codecPipeline(this.gpu.device, 'quantize', type.wgsl, wg);
      const params = prog.uniform(new Uint32Array([b.nBlocks, 0, 0, 0]).buffer, `${name}.codec`);
      prog.raw(q, [this.values.get(name)!, b.buf, params, masks, prog.buffer(4, 'importance')], Math.ceil(groups / wg));
      prog.raw(anySet, [masks, flag, prog.uniform(new Uint32Array([groups, 0, 0, 0]).buffer, 'any-set')], Math.min(Math.ceil(groups / wg), 64));
      prog.raw(await codecPipeline(this.gpu.device, 'dequantize', type.wgsl, wg), [b.buf, this.decoded.get(name)!, params], Math.ceil(groups / wg));
    }
  }

  /** How the recorder reads the parameters: decoded blocks, the shared scratch for QLoRA's base, gradients of trained ones. */
  private async access(): Promise<ParamAccess> {
    const wg = kernelWgSize(this.gpu.limits);
    const decoders = new Map<string, GPUComputePipeline>();
    for (const b of this.blocks.values()) if (!decoders.has(b.type.wgsl)) decoders.set(b.type.wgsl, await codecPipeline(this.gpu.device, 'dequantize', b.type.wgsl, wg));
    const frozen = [...this.blocks].filter(([name]) => !this.decoded.has(name));
    const largest = Math.max(0, ...frozen.map(([, b]) => b.nBlocks * b.type.blockSize));
    if (largest > 0) this.scratch ??= this.buffer(largest * 4, 'base.scratch', GPUBufferUsage.STORAGE);
    return {
      shape: (name) => this.spec.shapes.get(name) ?? [],
      read: (prog, name) => {
        const dec = this.decoded.get(name);
        if (dec) return dec;
        const b = this.blocks.get(name);
        if (!b) return this.values.get(name)!;
        const groups = Math.ceil(b.nBlocks / groupBlocks(b.type.typeSize));
        prog.raw(decoders.get(b.type.wgsl)!, [b.buf, this.scratch!, prog.uniform(new Uint32Array([b.nBlocks, 0, 0, 0]).buffer, `${name}.decode`)], Math.ceil(groups / wg));
        return this.scratch!;
      },
      grad: (name) => this.trained.get(name)?.grad ?? null,
      adapter: (name) => {
        const a = this.adapterBufs.get(name);
        return a && { rank: a.rank, scale: a.scale, a: a.a.value, b: a.b.value, da: a.a.grad, db: a.b.grad };
      },
    };
  }
}

interface RunProgram {
  prog: Program;
  logits: GPUBuffer;
  write(tokens: readonly number[], teacher: Float32Array | null): void;
  flag: GPUBuffer;
}

/** Blocks padded with zeros to whole groups (the codec kernels read whole u32 words). */
function padToGroups(bytes: Uint8Array, type: QuantType): Uint8Array {
  const g = groupBlocks(type.typeSize);
  const nBlocks = bytes.length / type.typeSize;
  const out = new Uint8Array(Math.ceil(nBlocks / g) * g * type.typeSize);
  out.set(bytes);
  return out;
}

/** A failure while the device is lost is the loss (GpuDeviceLostError: the caller falls back), not a map error. */
async function guardLoss<T>(gpu: GpuContext, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (gpu.isLost() && !(err instanceof GpuDeviceLostError)) assertNotLost(gpu);
    throw err;
  }
}
