// QAT's and QLoRA's runs on WebGPU (trainer.ts): the shared step loop (qat.ts loopSteps)
// with each step on the GPU, held-out scores from logits the GPU computed, and the trained
// tensors read back once at the end.
import type { GpuContext } from '../../gpu/device.ts';
import type { PackedTensor } from '../../model/weights.ts';
import type { QuantType } from '../../quant/types.ts';
import type { TrainableLlama } from '../model.ts';
import { heldOutScore, loopSteps, TrainingDiverged, type HeldOutScore, type QatRun, type StepFn, type StepLoopHooks, type StepLoopOptions, type StepRecord } from '../qat.ts';
import { GpuTrainer, type GpuAdapterInit, type GpuTrainerSpec } from './trainer.ts';

interface RunInputs {
  net: TrainableLlama;
  /** The weights as loaded (rope_freqs among them). */
  weights: ReadonlyMap<string, Float32Array>;
  sequences: readonly number[][];
  o: StepLoopOptions;
  teacherFor: (i: number) => Float64Array;
  evalTokens: readonly number[];
  f32Eval: Float64Array;
  hooks: StepLoopHooks;
}

/** A step on the GPU: the teacher uploaded as the CPU keeps it (f32), a loss or norm that is not a number stops the run. */
function gpuStep(trainer: GpuTrainer, o: StepLoopOptions, teacherFor: (i: number) => Float64Array): StepFn {
  return async (i, tokens, lr, step) => {
    const r = await trainer.step(tokens, o.loss === 'kl' ? Float32Array.from(teacherFor(i)) : null, lr);
    if (r.cpuBlock) throw new Error(`training on WebGPU: at step ${step} a block's scale reached an f32 subnormal, which only the CPU codec encodes; rerun with --backend cpu`);
    if (!Number.isFinite(r.loss)) throw new TrainingDiverged(step, 'loss');
    if (!Number.isFinite(r.gradNorm)) throw new TrainingDiverged(step, 'gradient');
    return r;
  };
}

/** The spec's common part: every parameter's values and shapes, rope_freqs, the options. */
function baseSpec(x: RunInputs): Pick<GpuTrainerSpec, 'config' | 'values' | 'shapes' | 'weightDecay' | 'clip'> {
  const c = x.net.config;
  const values = new Map<string, Float32Array>([...x.net.params].map(([name, p]) => [name, p.value]));
  const freqs = c.names.ropeFreqs ? x.weights.get(c.names.ropeFreqs) : undefined;
  if (freqs && c.names.ropeFreqs) values.set(c.names.ropeFreqs, freqs);
  const shapes = new Map([...x.net.params].map(([name, p]) => [name, p.shape]));
  return { config: c, values, shapes, weightDecay: x.o.weightDecay, clip: x.o.clip };
}

async function score(trainer: GpuTrainer, x: RunInputs): Promise<HeldOutScore> {
  const logits = Float64Array.from(await trainer.logits(x.evalTokens));
  return heldOutScore(logits, x.evalTokens, x.net.config.nVocab, x.f32Eval);
}

/** QAT on the GPU: `types` encoded and decoded by their WGSL codecs each step. */
export async function qatOnGpu(gpu: GpuContext, x: RunInputs & { types: ReadonlyMap<string, QuantType> }): Promise<QatRun> {
  const trainer = await GpuTrainer.create(gpu, { ...baseSpec(x), fakeQuant: x.types, trainBase: true });
  try {
    const before = await score(trainer, x);
    const records = await loopSteps(x.sequences, x.o, x.hooks, gpuStep(trainer, x.o, x.teacherFor));
    // The held-out pass encodes the last step's master weights: those blocks are the result.
    const after = await score(trainer, x);
    const blocks = new Map<string, Uint8Array>();
    for (const name of x.types.keys()) blocks.set(name, await trainer.readBlocks(name));
    const master = new Map<string, Float32Array>();
    for (const name of x.net.params.keys()) master.set(name, await trainer.read(name));
    return { before, after, records, blocks, master };
  } finally {
    trainer.destroy();
  }
}

export interface QloraGpuRun {
  before: HeldOutScore;
  after: HeldOutScore;
  records: StepRecord[];
  /** The trained A and B of each adapter, by target name. */
  trained: Map<string, { a: Float32Array; b: Float32Array }>;
}

/** QLoRA on the GPU: the base's blocks resident, the adapters (B = 0 at first, so the first scores are the base's) trained. */
export async function qloraOnGpu(gpu: GpuContext, x: RunInputs & { packed: ReadonlyMap<string, PackedTensor>; adapters: readonly GpuAdapterInit[] }): Promise<QloraGpuRun> {
  const spec = baseSpec(x);
  const values = new Map(spec.values);
  for (const name of x.packed.keys()) values.delete(name);
  const trainer = await GpuTrainer.create(gpu, { ...spec, values, packed: x.packed, adapters: x.adapters, trainBase: false });
  try {
    const before = await score(trainer, x);
    const records = await loopSteps(x.sequences, x.o, x.hooks, gpuStep(trainer, x.o, x.teacherFor));
    const after = await score(trainer, x);
    const trained = new Map<string, { a: Float32Array; b: Float32Array }>();
    for (const a of x.adapters) trained.set(a.target, { a: await trainer.read(`${a.target}.lora_a`), b: await trainer.read(`${a.target}.lora_b`) });
    return { before, after, records, trained };
  } finally {
    trainer.destroy();
  }
}
