// A trainable Llama-layout decoder: the inference pass of model/families/llama.ts
// (embedding -> layers of RMSNorm, q/k/v, RoPE, causal GQA attention, o + residual,
// RMSNorm, SwiGLU FFN + residual -> final RMSNorm -> output matrix or the tied embedding),
// with qwen2's q/k/v biases (families/qwen2.ts: added after their products) and qwen3's
// per-head q/k RMSNorm before RoPE (families/qwen3.ts), both trained; rewritten over f64 activations
// with a tape: each operation of the forward pass records a closure that, run in reverse
// order, adds its inputs' gradients from its output's (ops.ts). One sequence from
// position 0 per call, no KV cache (training sees whole chunks).
//
// Parameters: every tensor the forward reads is a Param (f32 master values, f64 gradient)
// except frozen ones (rope_freqs). The forward reads each weight through `effective`: the
// master values by default, QAT's fake-quantized values (qat.ts); the gradient with respect
// to what was read lands on the master weight unchanged, which is the straight-through
// estimator. LoRA adapters (addAdapter: A and B on a target linear, y += alpha/rank·B·A·x)
// are one more operation on the tape with Params of their own; an optimizer given only
// those trains the adapter over a frozen base (QLoRA: the base read through `effective` as
// its quantized blocks' values).
import { RopeTable } from '../model/families/blocks.ts';
import { weightNames, type ModelConfig } from '../model/families/config.ts';
import {
  attentionBackward,
  attentionForward,
  biasBackward,
  biasForwardInPlace,
  embedBackward,
  embedForward,
  linearBackward,
  linearForward,
  rmsNormBackward,
  rmsNormForward,
  ropeInPlace,
  swigluBackward,
  swigluForward,
  type AttentionGeometry,
  type Weights,
} from './ops.ts';

/** A trained tensor: its master values and the gradient of the loss with respect to them. */
export interface Param {
  readonly name: string;
  /** PyTorch order: [rows, cols] for a matrix, [n] for a vector. */
  readonly shape: readonly number[];
  readonly value: Float32Array;
  readonly grad: Float64Array;
}

export function newParam(name: string, shape: readonly number[], value: Float32Array): Param {
  const size = shape.reduce((a, b) => a * b, 1);
  if (value.length !== size) throw new Error(`parameter '${name}' has ${value.length} values, shape [${shape.join(', ')}] needs ${size}`);
  return { name, shape, value, grad: new Float64Array(size) };
}

/**
 * A low-rank adapter on one linear (LoRA): y = W·x + scale·B·(A·x), A [rank, in], B [out, rank],
 * scale = alpha / rank. Its A and B are Params like the model's, so an optimizer given them
 * (and not the base's) trains the adapter over a frozen base.
 */
export interface LinearAdapter {
  readonly a: Param;
  readonly b: Param;
  readonly scale: number;
}

/** The values a forward pass reads for a parameter (QAT: decode(encode(master))). */
export type EffectiveWeights = (param: Param) => Weights;

/** An activation on the tape: its value and (once something downstream has one) its gradient. */
class Node {
  grad: Float64Array | null = null;
  constructor(readonly value: Float64Array) {}
  /** The gradient, allocated at zero when first asked for. */
  g(): Float64Array {
    return (this.grad ??= new Float64Array(this.value.length));
  }
}

/** The backward closures of one forward pass, run in reverse. */
class Tape {
  private readonly ops: (() => void)[] = [];
  record(op: () => void): void {
    this.ops.push(op);
  }
  run(): void {
    for (let i = this.ops.length - 1; i >= 0; i--) this.ops[i]();
  }
}

export interface ForwardResult {
  /** n × vocab logits. */
  logits: Float64Array;
  /** Adds d loss / d params into each Param's grad, given d loss / d logits (callable once). */
  backward(dLogits: Float64Array): void;
}

/** The families this trainer runs: Llama's graph, qwen2's biases, qwen3's q/k norms. */
export const TRAINABLE_FAMILIES: readonly ModelConfig['family'][] = ['llama', 'qwen2', 'qwen3'];

/** Refuses a config whose graph the trainer does not compute (other families, their extras). */
export function checkTrainable(c: ModelConfig): void {
  if (!TRAINABLE_FAMILIES.includes(c.family)) throw new Error(`training runs the ${TRAINABLE_FAMILIES.join(', ')} families; this model is ${c.family}`);
  if (c.attnSoftcap !== 0 || c.finalSoftcap !== 0 || c.embedScale !== 1) throw new Error('training: soft-capping and embedding scales are not supported');
  if (c.layerAttention.some((l) => l.window !== 0)) throw new Error('training: sliding-window attention is not supported');
  for (const l of c.names.layers) {
    if (!l.q || !l.k || !l.v || !l.gate || l.qkv || l.postAttnNorm || l.postFfnNorm || !l.qNorm !== !l.kNorm) {
      throw new Error(`training: layer tensors of ${l.o.replace(/\.[^.]*\.weight$/, '')} are not a Llama-layout layer's (separate q/k/v and gate, q/k/v biases and q/k norms optional, no post-norms)`);
    }
  }
}

export class TrainableLlama {
  readonly params: Map<string, Param>;
  /** Adapters by the name of the linear weight they sit on (addAdapter). */
  readonly adapters = new Map<string, LinearAdapter>();
  /**
   * LoRA dropout while training (PEFT's lora_dropout): each forward pass zeroes each input
   * of an adapter's A with probability `rate` (from `random`, seeded by the caller) and
   * scales the rest by 1/(1-rate); the base product sees x unchanged. null: no dropout.
   */
  adapterDropout: { rate: number; random: () => number } | null = null;
  /** When set, the backward computes no gradient for the model's own parameters (QLoRA's frozen base): only adapters' and activations'. */
  frozenBase = false;
  private readonly ropeTable: RopeTable;
  private readonly geometry: AttentionGeometry;

  /**
   * `weights`: every tensor the forward reads, by name in the files (readModelWeights);
   * each becomes a Param holding a copy, except rope_freqs, which stays fixed.
   */
  constructor(
    readonly config: ModelConfig,
    weights: ReadonlyMap<string, Float32Array>,
    public effective: EffectiveWeights = (p) => p.value,
  ) {
    checkTrainable(config);
    const c = config;
    const shapes = paramShapes(c);
    this.params = new Map();
    for (const [name, shape] of shapes) {
      const w = weights.get(name);
      if (!w) throw new Error(`no weights for tensor '${name}'`);
      this.params.set(name, newParam(name, shape, w.slice()));
    }
    const factors = c.names.ropeFreqs ? (weights.get(c.names.ropeFreqs) ?? null) : null;
    this.ropeTable = new RopeTable({ nRot: c.nRot, style: c.ropeStyle, freqBase: c.ropeFreqBase, freqScale: c.ropeFreqScale, factors, attnFactor: c.ropeAttnFactor });
    this.geometry = { nHead: c.nHead, nHeadKv: c.nHeadKv, headDim: c.headDim, scale: c.attnScale };
  }

  param(name: string): Param {
    const p = this.params.get(name);
    if (!p) throw new Error(`no parameter '${name}'`);
    return p;
  }

  zeroGrad(): void {
    for (const p of this.params.values()) p.grad.fill(0);
    for (const { a, b } of this.adapters.values()) {
      a.grad.fill(0);
      b.grad.fill(0);
    }
  }

  /**
   * Puts an adapter of `rank` on the linear weight `target` (A and B given, e.g. PEFT's
   * init: A random, B zero), with scale alpha / rank; returns it.
   */
  addAdapter(target: string, rank: number, alpha: number, a: Float32Array, b: Float32Array): LinearAdapter {
    const w = this.param(target);
    if (w.shape.length !== 2 || target === this.config.names.tokenEmbd) throw new Error(`'${target}' is not a linear weight an adapter can sit on`);
    if (!Number.isInteger(rank) || rank < 1) throw new Error(`an adapter's rank must be a positive whole number, not ${rank}`);
    const [rows, cols] = w.shape;
    const adapter = { a: newParam(`${target}.lora_a`, [rank, cols], a), b: newParam(`${target}.lora_b`, [rows, rank], b), scale: alpha / rank };
    this.adapters.set(target, adapter);
    return adapter;
  }

  /** The logits after each of `tokens` (from position 0), with the tape for the backward. */
  forward(tokens: readonly number[]): ForwardResult {
    const c = this.config;
    const n = tokens.length;
    if (n === 0) throw new Error('forward: no tokens');
    if (n > c.contextLength) throw new Error(`forward: ${n} tokens exceed the context of ${c.contextLength}`);
    const tape = new Tape();
    const d = c.nEmbd;
    const embd = this.param(c.names.tokenEmbd);
    const embdW = this.effective(embd);
    let x = new Node(embedForward(embdW, d, tokens, c.nVocab));
    const x0 = x;
    tape.record(() => x0.grad && !this.frozenBase && embedBackward(d, tokens, x0.grad, embd.grad));
    for (let il = 0; il < c.nLayer; il++) {
      const L = c.names.layers[il];
      x = this.add(tape, x, this.attention(tape, this.norm(tape, L.attnNorm, x, n), n, il));
      x = this.add(tape, x, this.ffn(tape, this.norm(tape, L.ffnNorm, x, n), n, il));
    }
    const h = this.norm(tape, c.names.outputNorm, x, n);
    const logits = this.linear(tape, c.names.output, h, n);
    let used = false;
    return {
      logits: logits.value,
      backward: (dLogits) => {
        if (used) throw new Error('backward: this forward pass was already used');
        used = true;
        if (dLogits.length !== logits.value.length) throw new Error(`backward: ${dLogits.length} logit gradients for ${logits.value.length} logits`);
        logits.grad = dLogits.slice();
        tape.run();
      },
    };
  }

  /** y = W·x for each of the n rows of x, W the parameter `name` (its effective values). */
  private linear(tape: Tape, name: string, x: Node, n: number): Node {
    const p = this.param(name);
    const [rows, cols] = p.shape;
    const w = this.effective(p);
    const y = new Node(linearForward(w, rows, cols, x.value, n));
    tape.record(() => y.grad && linearBackward(w, rows, cols, x.value, n, y.grad, x.g(), this.frozenBase ? null : p.grad));
    const adapter = this.adapters.get(name);
    return adapter ? this.adapted(tape, adapter, x, y, n) : y;
  }

  /** y + scale·B·(A·x), with A's and B's gradients (and x's through them). */
  private adapted(tape: Tape, { a, b, scale }: LinearAdapter, x: Node, y: Node, n: number): Node {
    const [rank, cols] = a.shape;
    const rows = b.shape[0];
    const mask = this.dropoutMask(x.value.length);
    const xa = mask ? x.value.map((v, j) => v * mask[j]) : x.value;
    const u = linearForward(a.value, rank, cols, xa, n);
    const out = new Node(linearForward(b.value, rows, rank, u, n));
    for (let j = 0; j < out.value.length; j++) out.value[j] = y.value[j] + scale * out.value[j];
    tape.record(() => {
      if (!out.grad) return;
      const gy = y.g();
      const scaled = new Float64Array(out.grad.length);
      for (let j = 0; j < scaled.length; j++) {
        gy[j] += out.grad[j];
        scaled[j] = scale * out.grad[j];
      }
      const du = new Float64Array(n * rank);
      linearBackward(b.value, rows, rank, u, n, scaled, du, b.grad);
      if (!mask) return linearBackward(a.value, rank, cols, x.value, n, du, x.g(), a.grad);
      const dxa = new Float64Array(xa.length);
      linearBackward(a.value, rank, cols, xa, n, du, dxa, a.grad);
      const gx = x.g();
      for (let j = 0; j < dxa.length; j++) gx[j] += dxa[j] * mask[j];
    });
    return out;
  }

  /** The dropout multipliers (0 or 1/(1-rate)) of one adapter's input, or null without dropout. */
  private dropoutMask(length: number): Float64Array | null {
    const d = this.adapterDropout;
    if (!d || d.rate === 0) return null;
    const keep = 1 / (1 - d.rate);
    return Float64Array.from({ length }, () => (d.random() < d.rate ? 0 : keep));
  }

  private norm(tape: Tape, name: string, x: Node, n: number): Node {
    const p = this.param(name);
    const w = this.effective(p);
    const d = this.config.nEmbd;
    const { y, inv } = rmsNormForward(x.value, n, d, w, this.config.rmsEps);
    const out = new Node(y);
    tape.record(() => out.grad && rmsNormBackward(x.value, n, d, w, inv, out.grad, x.g(), this.frozenBase ? null : p.grad));
    return out;
  }

  /** y + bias on each row (qwen2's q/k/v); y itself where the layer has no bias. */
  private biased(tape: Tape, name: string | undefined, y: Node): Node {
    if (!name) return y;
    const p = this.param(name);
    const out = new Node(biasForwardInPlace(y.value.slice(), this.effective(p)));
    tape.record(() => {
      if (!out.grad) return;
      const gy = y.g();
      for (let j = 0; j < gy.length; j++) gy[j] += out.grad[j];
      if (!this.frozenBase) biasBackward(out.grad, p.grad);
    });
    return out;
  }

  /** RMSNorm of each head of n rows (qwen3's q/k norms, weights of head_dim); x itself where the layer has none. */
  private headNorm(tape: Tape, name: string | undefined, x: Node, n: number, heads: number): Node {
    if (!name) return x;
    const p = this.param(name);
    const w = this.effective(p);
    const hd = this.config.headDim;
    const { y, inv } = rmsNormForward(x.value, n * heads, hd, w, this.config.rmsEps);
    const out = new Node(y);
    tape.record(() => out.grad && rmsNormBackward(x.value, n * heads, hd, w, inv, out.grad, x.g(), this.frozenBase ? null : p.grad));
    return out;
  }

  private add(tape: Tape, a: Node, b: Node): Node {
    const v = a.value.slice();
    for (let j = 0; j < v.length; j++) v[j] += b.value[j];
    const out = new Node(v);
    tape.record(() => {
      if (!out.grad) return;
      const ga = a.g();
      const gb = b.g();
      for (let j = 0; j < v.length; j++) {
        ga[j] += out.grad[j];
        gb[j] += out.grad[j];
      }
    });
    return out;
  }

  private rotate(tape: Tape, x: Node, n: number, heads: number): Node {
    const hd = this.config.headDim;
    const v = x.value.slice();
    ropeInPlace(v, n, heads, hd, this.ropeTable);
    const out = new Node(v);
    tape.record(() => {
      if (!out.grad) return;
      const g = out.grad.slice();
      ropeInPlace(g, n, heads, hd, this.ropeTable, true);
      const gx = x.g();
      for (let j = 0; j < g.length; j++) gx[j] += g[j];
    });
    return out;
  }

  private attention(tape: Tape, h: Node, n: number, il: number): Node {
    const c = this.config;
    const L = c.names.layers[il];
    const q = this.rotate(tape, this.headNorm(tape, L.qNorm, this.biased(tape, L.qBias, this.linear(tape, L.q!, h, n)), n, c.nHead), n, c.nHead);
    const k = this.rotate(tape, this.headNorm(tape, L.kNorm, this.biased(tape, L.kBias, this.linear(tape, L.k!, h, n)), n, c.nHeadKv), n, c.nHeadKv);
    const v = this.biased(tape, L.vBias, this.linear(tape, L.v!, h, n));
    const { out, probs } = attentionForward(q.value, k.value, v.value, n, this.geometry);
    const a = new Node(out);
    tape.record(() => a.grad && attentionBackward(q.value, k.value, v.value, probs, n, this.geometry, a.grad, q.g(), k.g(), v.g()));
    return this.linear(tape, L.o, a, n);
  }

  private ffn(tape: Tape, h: Node, n: number, il: number): Node {
    const L = this.config.names.layers[il];
    const gate = this.linear(tape, L.gate!, h, n);
    const up = this.linear(tape, L.up, h, n);
    const act = new Node(swigluForward(gate.value, up.value));
    tape.record(() => act.grad && swigluBackward(gate.value, up.value, act.grad, gate.g(), up.g()));
    return this.linear(tape, L.down, act, n);
  }
}

/** Every parameter's name and shape (rope_freqs is not one). */
export function paramShapes(c: ModelConfig): Map<string, number[]> {
  const qDim = c.nHead * c.headDim;
  const kvDim = c.nHeadKv * c.headDim;
  const shapes = new Map<string, number[]>([
    [c.names.tokenEmbd, [c.nVocab, c.nEmbd]],
    [c.names.outputNorm, [c.nEmbd]],
    [c.names.output, [c.nVocab, c.nEmbd]],
  ]);
  for (const L of c.names.layers) {
    shapes.set(L.attnNorm, [c.nEmbd]);
    shapes.set(L.q!, [qDim, c.nEmbd]);
    shapes.set(L.k!, [kvDim, c.nEmbd]);
    shapes.set(L.v!, [kvDim, c.nEmbd]);
    shapes.set(L.o, [c.nEmbd, qDim]);
    shapes.set(L.ffnNorm, [c.nEmbd]);
    shapes.set(L.gate!, [c.nFf, c.nEmbd]);
    shapes.set(L.up, [c.nFf, c.nEmbd]);
    shapes.set(L.down, [c.nEmbd, c.nFf]);
    if (L.qBias) shapes.set(L.qBias, [qDim]);
    if (L.kBias) shapes.set(L.kBias, [kvDim]);
    if (L.vBias) shapes.set(L.vBias, [kvDim]);
    if (L.qNorm) shapes.set(L.qNorm, [c.headDim]);
    if (L.kNorm) shapes.set(L.kNorm, [c.headDim]);
  }
  const all = new Set(weightNames(c.names));
  for (const name of shapes.keys()) if (!all.has(name)) throw new Error(`training: '${name}' is not a tensor of the model`);
  return shapes;
}
