// Quantization-aware training (QAT) on the CPU. The export plan of the file type (the same
// planExport the `quantize` command writes with) gives every tensor its type; each step,
// every parameter whose type is not f32 is encoded by that type's own codec (the type
// table's quantType(id).codec) from the f32 master weights and decoded back, and the
// forward pass reads the decoded values. The backward's gradient with respect to those
// values is applied to the master weights unchanged: the straight-through estimator (STE).
//
// Scales: every family of types (legacy blocks with one scale, K-quants' super-block scales
// and mins, IQ grids, NF4, INT groups) is handled the same way: the codec recomputes the
// scales (and mins, grid choices) from the master weights at every step, exactly as it does
// at export; no scale is a parameter and none is frozen. The STE treats the whole
// encode-decode as the identity, so a weight whose rounding flips between two levels moves
// the block's scale with it at the next step.
//
// The loss: KL(F32 model ‖ QAT model) on the training text (distillation; the default: the
// aim is to stay close to F32), or cross-entropy on the text's next tokens. Held-out scores
// (mean KL against F32, perplexity) on the eval text come before training (post-training
// quantization, round to nearest by the same codec) and after the last step.
//
// The model after training is the master weights of the last step, encoded once more: those
// blocks are the ones the "after" scores use and the ones the export writes (export.ts).
import type { ModelIndex } from '../formats/model.ts';
import type { GpuContext } from '../gpu/device.ts';
import { BUILTIN_CALIBRATION_DATASET, CALIBRATION_STORY_TEXT } from '../calibrate/calibration-text.ts';
import { openCalibrationModel } from '../calibrate/activations.ts';
import { planExport, type ExportPlan } from '../export/plan.ts';
import { exportSourceFromModel, type ExportSource } from '../export/source.ts';
import { EVAL_TEXT } from '../model/eval-text.ts';
import type { ModelConfig } from '../model/families/config.ts';
import type { PlanMode } from '../quant/presets.ts';
import { quantType, type QuantType } from '../quant/types.ts';
import { TrainableLlama, type Param, type EffectiveWeights } from './model.ts';
import { crossEntropy, klToTeacher, logSoftmaxRows } from './ops.ts';
import { AdamW, clipGradNorm, cosineLr, seededPermutation } from './optim.ts';
import { qatOnGpu } from './gpu/run.ts';

/** Encodes and decodes the quantized parameters from their master weights (one refresh per step). */
export class FakeQuantizer {
  /** The blocks of the last refresh, by tensor name. */
  readonly blocks = new Map<string, Uint8Array>();
  /** Their decoded values: what the forward pass reads. */
  readonly values = new Map<string, Float32Array>();

  constructor(readonly types: ReadonlyMap<string, QuantType>) {}

  /** Encodes every typed parameter's master values with its codec, and decodes the blocks. */
  refresh(params: ReadonlyMap<string, Param>): void {
    for (const [name, type] of this.types) {
      const p = params.get(name);
      if (!p) throw new Error(`QAT: no parameter '${name}'`);
      const cols = p.shape[p.shape.length - 1];
      const rows = p.value.length / cols;
      const bytes = type.codec.encode(p.value, cols);
      this.blocks.set(name, bytes);
      this.values.set(name, type.codec.decode(bytes, rows, cols));
    }
  }

  /** The forward pass's weights: decoded blocks for typed parameters, master values for the rest (STE). */
  readonly effective: EffectiveWeights = (p) => this.values.get(p.name) ?? p.value;
}

/** The loss being trained: at that step it was not a number (a learning rate too high). */
export class TrainingDiverged extends Error {
  constructor(
    readonly step: number,
    what: string,
  ) {
    super(`training diverged at step ${step}: the ${what} is not a number (try a smaller learning rate); nothing was written`);
    this.name = 'TrainingDiverged';
  }
}

export type QatLoss = 'kl' | 'ce';

/** What every training run takes (QAT here, QLoRA in qlora.ts). */
export interface TrainingRunOptions {
  steps: number;
  /** Peak learning rate (default: the method's). */
  lr?: number;
  /** Warmup steps (default a tenth of the steps, at least 1). */
  warmup?: number;
  loss?: QatLoss;
  /** Tokens per step (one sequence; default 64, at most the context). */
  seqLen?: number;
  /** Training text (default: the built-in calibration stories). */
  text?: string;
  /** Its name for the header (default: the built-in text's). */
  dataset?: string;
  /** Held-out text (default: the built-in eval text). */
  evalText?: string;
  seed?: number;
  /** Global gradient-norm clip (default 1). */
  clip?: number;
  weightDecay?: number;
  signal?: AbortSignal;
  onStep?: (s: StepRecord) => void;
  /** Run the steps and the held-out scoring on this WebGPU device (train/gpu/); without it, on the CPU. */
  gpu?: GpuContext;
}

/** QAT's run: the learning rate defaults to 1e-4. */
export interface QatOptions extends TrainingRunOptions {
  /** The file type (--preset P) or pure type (--type T) whose plan types the tensors. */
  mode: PlanMode;
}

export interface StepRecord {
  step: number;
  steps: number;
  loss: number;
  lr: number;
  /** The gradient norm before clipping. */
  gradNorm: number;
}

export interface HeldOutScore {
  /** Mean KL(F32 ‖ model) per position, nats. */
  kl: number;
  /** Perplexity of the next tokens. */
  ppl: number;
}

export interface QatResult {
  config: ModelConfig;
  /** The export plan the types come from (planExport of the model's source). */
  plan: ExportPlan;
  source: ExportSource;
  /** The type of each parameter trained through its codec. */
  types: Map<string, string>;
  /** Blocks of the last step's master weights, for every typed parameter. */
  blocks: Map<string, Uint8Array>;
  /** Master values of every parameter after the last step. */
  master: Map<string, Float32Array>;
  losses: number[];
  records: StepRecord[];
  /** Held-out scores of round-to-nearest (PTQ) and after QAT; the F32 model's perplexity. */
  before: HeldOutScore;
  after: HeldOutScore;
  f32Ppl: number;
  options: Required<Pick<QatOptions, 'steps' | 'lr' | 'warmup' | 'loss' | 'seqLen' | 'seed' | 'clip' | 'weightDecay' | 'dataset'>>;
  trainTokens: number;
  evalTokens: number;
  /** Where the steps and held-out scores ran. */
  backend: 'cpu' | 'webgpu';
}

export function check(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('cancelled');
}

/** The codec type of every parameter the plan does not keep in f32. */
export function qatTypes(plan: ExportPlan, params: ReadonlyMap<string, Param>): Map<string, QuantType> {
  const types = new Map<string, QuantType>();
  for (const t of plan.tensors) {
    if (!params.has(t.name) || t.type === 'f32') continue;
    const type = quantType(t.type);
    if (!type) throw new Error(`QAT: ${t.name}'s type ${t.type} has no codec in quantlab`);
    types.set(t.name, type);
  }
  return types;
}

/** Training sequences of seqLen tokens cut from the text, BOS first in each. */
export function trainingSequences(tokens: readonly number[], seqLen: number, bosId: number | null): number[][] {
  const n = Math.floor(tokens.length / seqLen);
  if (n < 1) throw new Error(`the training text has ${tokens.length} tokens, fewer than one sequence of ${seqLen}: give a longer text`);
  return Array.from({ length: n }, (_, i) => {
    const s = tokens.slice(i * seqLen, (i + 1) * seqLen);
    if (bosId !== null) s[0] = bosId;
    return s;
  });
}

/** Mean KL against the F32 log-probabilities and perplexity of the next tokens. */
export function heldOutScore(logits: Float64Array, tokens: readonly number[], v: number, f32LogProbs: Float64Array): HeldOutScore {
  const n = tokens.length;
  const kl = klToTeacher(logits, n, v, f32LogProbs).loss;
  const ce = crossEntropy(logits.subarray(0, (n - 1) * v), n - 1, v, tokens.slice(1)).loss;
  return { kl, ppl: Math.exp(ce) };
}

/** QAT of a GGUF model of a trainable family (checkTrainable) for the plan of options.mode (see the file's comment). */
export async function trainQat(model: ModelIndex, options: QatOptions): Promise<QatResult> {
  if (model.format !== 'gguf') throw new Error('QAT exports GGUF blocks: convert a safetensors model to GGUF first (quantlab quantize --type f32)');
  if (!Number.isInteger(options.steps) || options.steps < 1) throw new Error(`steps must be a positive whole number, not ${options.steps}`);
  const lr = options.lr ?? 1e-4;
  if (!(lr > 0) || !Number.isFinite(lr)) throw new Error(`the learning rate must be a positive number, not ${lr}`);
  const source = exportSourceFromModel(model);
  const plan = planExport(source, { mode: options.mode });
  const cm = await openCalibrationModel(model);
  const c = cm.config;
  const seqLen = Math.min(options.seqLen ?? 64, c.contextLength);
  const o = {
    steps: options.steps,
    lr,
    warmup: options.warmup ?? Math.max(1, Math.round(options.steps / 10)),
    loss: options.loss ?? 'kl',
    seqLen,
    seed: options.seed ?? 0,
    clip: options.clip ?? 1,
    weightDecay: options.weightDecay ?? 0,
    dataset: options.dataset ?? BUILTIN_CALIBRATION_DATASET,
  };
  const net = new TrainableLlama(c, cm.weights);
  const fq = new FakeQuantizer(qatTypes(plan, net.params));
  const V = c.nVocab;

  const sequences = trainingSequences(cm.tokenize(options.text ?? CALIBRATION_STORY_TEXT), seqLen, cm.bosId);
  const evalTokens = cm.tokenize(options.evalText ?? EVAL_TEXT).slice(0, c.contextLength);
  if (evalTokens.length < 2) throw new Error('the held-out text has fewer than two tokens');

  // The F32 model (the weights as loaded, which the trainer copied): the teacher and the held-out reference.
  const f32 = f32Reference(net, cm.weights, sequences);
  const f32Eval = f32.logProbs(evalTokens);
  const f32Ppl = perplexityOf(f32Eval, evalTokens, V);
  net.effective = fq.effective;

  const hooks = { signal: options.signal, onStep: options.onStep };
  let ran: QatRun;
  if (options.gpu) {
    ran = await qatOnGpu(options.gpu, { net, types: fq.types, weights: cm.weights, sequences, o, teacherFor: f32.teacher, evalTokens, f32Eval, hooks });
  } else {
    const score = () => heldOutScore(net.forward(evalTokens).logits, evalTokens, V, f32Eval);
    fq.refresh(net.params);
    const before = score();
    const params = [...net.params.values()];
    const records = await trainSteps(net, params, sequences, o, f32.teacher, { ...hooks, beforeStep: () => fq.refresh(net.params) });
    fq.refresh(net.params);
    ran = { before, records, after: score(), blocks: new Map(fq.blocks), master: new Map(params.map((p) => [p.name, p.value])) };
  }
  const { before, after, records } = ran;
  if (!Number.isFinite(after.kl)) throw new TrainingDiverged(o.steps, 'held-out KL after the last step');
  return {
    config: c,
    plan,
    source,
    types: new Map([...fq.types].map(([name, t]) => [name, t.id])),
    blocks: ran.blocks,
    master: ran.master,
    losses: records.map((r) => r.loss),
    records,
    before,
    after,
    f32Ppl,
    options: o,
    trainTokens: sequences.length * seqLen,
    evalTokens: evalTokens.length,
    backend: options.gpu ? 'webgpu' : 'cpu',
  };
}

/** What a QAT run's backend gives back: scores before and after, the steps, the last blocks and master values. */
export interface QatRun {
  before: HeldOutScore;
  after: HeldOutScore;
  records: StepRecord[];
  blocks: Map<string, Uint8Array>;
  master: Map<string, Float32Array>;
}

/** What the step loop needs to know (QAT's and QLoRA's options once defaults are filled). */
export interface StepLoopOptions {
  steps: number;
  lr: number;
  warmup: number;
  loss: QatLoss;
  seed: number;
  clip: number;
  weightDecay: number;
}

export interface StepLoopHooks {
  /** Before each step's forward pass (QAT: encode the master weights again). */
  beforeStep?: () => void;
  signal?: AbortSignal;
  onStep?: (s: StepRecord) => void;
}

/** One step's work: loss and gradient, clip, update at `lr`; its loss and the gradient norm before clipping (throws TrainingDiverged). */
export type StepFn = (sequence: number, tokens: readonly number[], lr: number, step: number) => Promise<{ loss: number; gradNorm: number }> | { loss: number; gradNorm: number };

/**
 * The loop every backend shares: one sequence a step in a seeded order (a new permutation
 * each epoch), the cosine schedule's rate, the records, cancellation between steps.
 */
export async function loopSteps(sequences: readonly number[][], o: StepLoopOptions, hooks: StepLoopHooks, step: StepFn): Promise<StepRecord[]> {
  const records: StepRecord[] = [];
  let order: number[] = [];
  for (let k = 1; k <= o.steps; k++) {
    check(hooks.signal);
    const epoch = Math.floor((k - 1) / sequences.length);
    if ((k - 1) % sequences.length === 0) order = seededPermutation(sequences.length, o.seed + epoch);
    const i = order[(k - 1) % sequences.length];
    hooks.beforeStep?.();
    const rate = cosineLr(o, k);
    const { loss, gradNorm } = await step(i, sequences[i], rate, k);
    const record = { step: k, steps: o.steps, loss, lr: rate, gradNorm };
    records.push(record);
    hooks.onStep?.(record);
    // Yield between steps so that a cancel (Ctrl-C) is seen.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return records;
}

/**
 * The training steps shared by QAT and QLoRA on the CPU (loopSteps): the loss (KL to the
 * teacher or CE on the text), backward, global clipping, AdamW over `params` only (the rest
 * of the model stays as it is). A loss or gradient that is not a number stops it (TrainingDiverged).
 */
export async function trainSteps(net: TrainableLlama, params: readonly Param[], sequences: readonly number[][], o: StepLoopOptions, teacherFor: (i: number) => Float64Array, hooks: StepLoopHooks = {}): Promise<StepRecord[]> {
  const V = net.config.nVocab;
  const opt = new AdamW(params, { weightDecay: o.weightDecay });
  return loopSteps(sequences, o, hooks, (i, s, rate, step) => {
    net.zeroGrad();
    const f = net.forward(s);
    const n = s.length;
    const { loss, dLogits } =
      o.loss === 'kl'
        ? klToTeacher(f.logits, n, V, teacherFor(i))
        : padRows(crossEntropy(f.logits.subarray(0, (n - 1) * V), n - 1, V, s.slice(1)), n * V);
    if (!Number.isFinite(loss)) throw new TrainingDiverged(step, 'loss');
    f.backward(dLogits);
    const gradNorm = clipGradNorm(params, o.clip);
    if (!Number.isFinite(gradNorm)) throw new TrainingDiverged(step, 'gradient');
    opt.step(rate);
    return { loss, gradNorm };
  });
}

/**
 * The F32 model inside a trainer: the weights as loaded, without adapters. Its
 * log-probabilities of a text (the held-out reference) and, per training sequence, the
 * teacher's (computed when the sequence is first used, kept as f32 to halve the memory).
 */
export function f32Reference(net: TrainableLlama, weights: ReadonlyMap<string, Float32Array>, sequences?: readonly number[][]) {
  const V = net.config.nVocab;
  const f32: EffectiveWeights = (p) => weights.get(p.name) ?? p.value;
  const logProbs = (tokens: readonly number[]): Float64Array => {
    const effective = net.effective;
    const adapters = [...net.adapters];
    net.effective = f32;
    net.adapters.clear();
    try {
      return logSoftmaxRows(net.forward(tokens).logits, tokens.length, V);
    } finally {
      net.effective = effective;
      for (const [name, a] of adapters) net.adapters.set(name, a);
    }
  };
  const cache = new Map<number, Float32Array>();
  const teacher = (i: number): Float64Array => {
    if (!sequences) throw new Error('f32Reference: no training sequences given');
    let t = cache.get(i);
    if (!t) cache.set(i, (t = Float32Array.from(logProbs(sequences[i]))));
    return Float64Array.from(t);
  };
  return { logProbs, teacher };
}

/** The perplexity of a text's next tokens under log-probabilities (n x vocab). */
export function perplexityOf(logProbs: Float64Array, tokens: readonly number[], V: number): number {
  return Math.exp(crossEntropy(logProbs.subarray(0, (tokens.length - 1) * V), tokens.length - 1, V, tokens.slice(1)).loss);
}

/** A loss over the first rows, its gradient padded with zero rows to `length`. */
function padRows(r: { loss: number; dLogits: Float64Array }, length: number) {
  const d = new Float64Array(length);
  d.set(r.dLogits);
  return { loss: r.loss, dLogits: d };
}
