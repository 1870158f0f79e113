// QLoRA on the CPU: a frozen base held as quantized blocks (NF4, Q4_K, any type of the table
// with a codec; lora/apply.ts quantizedBase), LoRA adapters trained in f32 on top.
//
// The base: every linear weight of the decoder's layers a LoRA may target (q/k/v/o,
// gate/up/down) is encoded once by the type's codec; the forward pass reads the decoded
// values of those blocks (decoded per pass, never updated: the optimizer is given only the
// adapters' A and B). Embeddings, norms and the output head stay f32, as bitsandbytes'
// QLoRA keeps them in higher precision.
//
// The adapters: PEFT's init (A ~ U(-1/sqrt(in), 1/sqrt(in)) seeded, B = 0, so the first
// forward pass is the base's), scale alpha / rank, optional dropout on A's input (seeded).
// The steps are QAT's (qat.ts trainSteps: seeded order, KL to the F32 model or CE, AdamW,
// clipping, cosine schedule, TrainingDiverged). Held-out scores: the quantized base alone
// (before) and the quantized base + trained adapter (after), KL against the F32 model.
import type { ModelIndex } from '../formats/model.ts';
import { BUILTIN_CALIBRATION_DATASET, CALIBRATION_STORY_TEXT } from '../calibrate/calibration-text.ts';
import { openCalibrationModel } from '../calibrate/activations.ts';
import { EVAL_TEXT } from '../model/eval-text.ts';
import type { ModelConfig } from '../model/families/config.ts';
import { TrainableLlama, type EffectiveWeights } from './model.ts';
import { seededRandom } from './optim.ts';
import { f32Reference, heldOutScore, perplexityOf, trainingSequences, trainSteps, TrainingDiverged, type HeldOutScore, type StepRecord, type TrainingRunOptions } from './qat.ts';
import { createLoraAdapter, loraBase, type LoraAdapter, type LoraWeight } from './lora/adapter.ts';
import { quantizedBase } from './lora/apply.ts';
import { qloraOnGpu } from './gpu/run.ts';

/** QLoRA's run: the learning rate defaults to 1e-3; the seed also seeds A's init (seed + 1) and the dropout masks. */
export interface QloraOptions extends TrainingRunOptions {
  rank: number;
  /** Default: the rank (scale 1). Must be > 0 (llama.cpp reads alpha 0 as "no scale"). */
  alpha?: number;
  /** PEFT module names (default q_proj, v_proj, PEFT's default for llama). */
  targetModules?: readonly string[];
  /** The frozen base's type (nf4, q4_K, ...: any type with a codec whose blocks fit the rows). */
  baseType: string;
  /** LoRA dropout on A's input while training (default 0). */
  dropout?: number;
}

export interface QloraResult {
  config: ModelConfig;
  /** The trained adapter, on the base's GGUF names (encodeLoraGguf / encodePeft write it). */
  adapter: LoraAdapter;
  baseType: string;
  /** The base tensors held as blocks of baseType. */
  quantized: string[];
  losses: number[];
  records: StepRecord[];
  /** Held-out scores of the quantized base alone and of the quantized base + trained adapter. */
  before: HeldOutScore;
  after: HeldOutScore;
  f32Ppl: number;
  options: Required<Pick<QloraOptions, 'steps' | 'lr' | 'warmup' | 'loss' | 'seqLen' | 'seed' | 'clip' | 'weightDecay' | 'dataset' | 'dropout'>>;
  trainTokens: number;
  evalTokens: number;
  /** Where the steps and held-out scores ran. */
  backend: 'cpu' | 'webgpu';
}

/** QLoRA of a GGUF model of a trainable family (checkTrainable) (see the file's comment). */
export async function trainQlora(model: ModelIndex, options: QloraOptions): Promise<QloraResult> {
  if (!Number.isInteger(options.steps) || options.steps < 1) throw new Error(`steps must be a positive whole number, not ${options.steps}`);
  const lr = options.lr ?? 1e-3;
  if (!(lr > 0) || !Number.isFinite(lr)) throw new Error(`the learning rate must be a positive number, not ${lr}`);
  if (options.alpha !== undefined && !(options.alpha > 0 && Number.isFinite(options.alpha))) throw new Error(`LoRA alpha must be a positive number, not ${options.alpha}`);
  const cm = await openCalibrationModel(model);
  const c = cm.config;
  const seed = options.seed ?? 0;
  const base = loraBase(model, c);
  // Checks rank, targets, alpha and dropout before anything slow.
  const init = createLoraAdapter(base, { rank: options.rank, alpha: options.alpha, targetModules: options.targetModules, dropout: options.dropout, seed: seed + 1 });
  if (options.gpu && init.dropout > 0) throw new Error('LoRA dropout runs on the CPU only: leave out --dropout or use --backend cpu');
  const quantized = [...base.shapes.keys()];
  const qb = quantizedBase(cm.weights, quantized, options.baseType, base.shapes);
  const o = {
    steps: options.steps,
    lr,
    warmup: options.warmup ?? Math.max(1, Math.round(options.steps / 10)),
    loss: options.loss ?? 'kl',
    seqLen: Math.min(options.seqLen ?? 64, c.contextLength),
    seed,
    clip: options.clip ?? 1,
    weightDecay: options.weightDecay ?? 0,
    dataset: options.dataset ?? BUILTIN_CALIBRATION_DATASET,
    dropout: init.dropout,
  };
  const net = new TrainableLlama(c, cm.weights);
  const V = c.nVocab;
  const sequences = trainingSequences(cm.tokenize(options.text ?? CALIBRATION_STORY_TEXT), o.seqLen, cm.bosId);
  const evalTokens = cm.tokenize(options.evalText ?? EVAL_TEXT).slice(0, c.contextLength);
  if (evalTokens.length < 2) throw new Error('the held-out text has fewer than two tokens');

  const f32 = f32Reference(net, cm.weights, sequences);
  const f32Eval = f32.logProbs(evalTokens);
  const f32Ppl = perplexityOf(f32Eval, evalTokens, V);
  const weights = new Map<string, LoraWeight>();
  let before: HeldOutScore;
  let after: HeldOutScore;
  let records: StepRecord[];
  if (options.gpu) {
    const adapters = [...init.weights.values()].map((w) => ({ target: w.name, rank: w.rank, scale: init.alpha / w.rank, a: w.a.slice(), b: w.b.slice() }));
    const hooks = { signal: options.signal, onStep: options.onStep };
    const ran = await qloraOnGpu(options.gpu, { net, weights: cm.weights, sequences, o, teacherFor: f32.teacher, evalTokens, f32Eval, hooks, packed: qb.packed, adapters });
    ({ before, after, records } = ran);
    for (const w of init.weights.values()) weights.set(w.name, { ...w, ...ran.trained.get(w.name)! });
  } else {
    // The frozen base: the quantized tensors' blocks decoded, the rest as loaded.
    const frozen: EffectiveWeights = (p) => (qb.packed.has(p.name) ? qb.weights(p.name) : p.value);
    net.effective = frozen;
    const score = () => heldOutScore(net.forward(evalTokens).logits, evalTokens, V, f32Eval);
    before = score();

    const adapters = [...init.weights.values()].map((w) => net.addAdapter(w.name, w.rank, init.alpha, w.a.slice(), w.b.slice()));
    const params = adapters.flatMap((a) => [a.a, a.b]);
    // The base gets no gradients at all (the optimizer would not use them).
    net.frozenBase = true;
    if (o.dropout > 0) net.adapterDropout = { rate: o.dropout, random: seededRandom(seed + 2) };
    records = await trainSteps(net, params, sequences, o, f32.teacher, { signal: options.signal, onStep: options.onStep });
    net.adapterDropout = null;
    after = score();
    for (const w of init.weights.values()) {
      const trained = net.adapters.get(w.name)!;
      weights.set(w.name, { ...w, a: trained.a.value.slice(), b: trained.b.value.slice() });
    }
  }
  if (!Number.isFinite(after.kl)) throw new TrainingDiverged(o.steps, 'held-out KL after the last step');

  return {
    config: c,
    adapter: { ...init, weights },
    baseType: options.baseType,
    quantized,
    losses: records.map((r) => r.loss),
    records,
    before,
    after,
    f32Ppl,
    options: o,
    trainTokens: sequences.length * o.seqLen,
    evalTokens: evalTokens.length,
    backend: options.gpu ? 'webgpu' : 'cpu',
  };
}
