// The decoder every family shares: embeddings -> layers (each family's attention and FFN
// halves, from its module) -> final RMSNorm -> output matrix (-> soft-capping), over a
// KV cache. The family is picked once, in the constructor (family-registry.ts); nothing
// else here depends on it.
//
// The GPU seam: every weight product goes through one `Linear` (linear.ts), so WebGPU
// runs them all; embedding rows, norm weights and biases are read from the
// WeightProvider and applied on the CPU.
import type { ModelTensor } from '../../formats/model.ts';
import type { Family, ModelConfig } from './config.ts';
import { rmsNorm, softcapInPlace } from './blocks.ts';
import { familyModule } from './family-registry.ts';
import { cpuLinear, weightRow, type Linear, type WeightProvider } from './linear.ts';

/** Keys and values of every layer for the positions evaluated so far. */
export class KvCache {
  readonly k: Float32Array[];
  readonly v: Float32Array[];
  /** Positions held (the next token's position). */
  length = 0;

  constructor(
    readonly config: ModelConfig,
    readonly capacity: number,
  ) {
    const size = capacity * config.nHeadKv * config.headDim;
    this.k = Array.from({ length: config.nLayer }, () => new Float32Array(size));
    this.v = Array.from({ length: config.nLayer }, () => new Float32Array(size));
  }

  clear(): void {
    this.length = 0;
  }
}

export interface ForwardOptions {
  /** Logits of every token of the chunk ('all', n × vocab) or of its last only (default). */
  logits?: 'all' | 'last';
}

/** What a family's layers run on. */
export interface LayerContext {
  readonly config: ModelConfig;
  readonly weights: WeightProvider;
  readonly linear: Linear;
}

/** One family's two halves of a layer, each updating the residual stream x in place. */
export interface FamilyLayers {
  /**
   * Layer il's attention for the n rows of x at positions start.. (x += attention output):
   * their keys and values go to kCache/vCache (this layer's, positions × kv dim, whose
   * length / kv dim is the context size), which must hold the earlier positions' already.
   */
  attention(il: number, x: Float32Array, n: number, start: number, kCache: Float32Array, vCache: Float32Array): Promise<void>;
  /** Layer il's feed-forward for the n rows of x (x += FFN output). */
  feedForward(il: number, x: Float32Array, n: number): Promise<void>;
}

/** A family: its config from GGUF metadata and its layers. */
export interface FamilyModule {
  readonly family: Family;
  /** The general.architecture it runs. */
  readonly arch: string;
  /** The config from GGUF metadata and the tensors (one clear error per missing or contradictory field). */
  config(md: Readonly<Record<string, unknown>>, byName: ReadonlyMap<string, ModelTensor>): ModelConfig;
  layers(ctx: LayerContext): FamilyLayers;
}

export class DecoderModel {
  private readonly linear: Linear;
  private readonly layers: FamilyLayers;

  constructor(
    readonly config: ModelConfig,
    readonly weights: WeightProvider,
    linear?: Linear,
  ) {
    this.linear = linear ?? cpuLinear(weights);
    this.layers = familyModule(config.family).layers({ config, weights, linear: this.linear });
  }

  newCache(capacity = this.config.contextLength): KvCache {
    return new KvCache(this.config, capacity);
  }

  /**
   * Evaluates `tokens` at positions cache.length, cache.length + 1, ... (appending their
   * keys and values) and returns the logits after each (options.logits = 'all': n × vocab)
   * or after the last (vocab).
   */
  async forward(tokens: readonly number[], cache: KvCache, options: ForwardOptions = {}): Promise<Float32Array> {
    const c = this.config;
    const n = tokens.length;
    if (n === 0) throw new Error('forward: no tokens');
    if (cache.config !== c) throw new Error('forward: the cache belongs to another model');
    const start = cache.length;
    if (start + n > cache.capacity) throw new Error(`forward: ${start + n} positions exceed the cache's ${cache.capacity}`);
    const x = this.embed(tokens);
    for (let il = 0; il < c.nLayer; il++) {
      await this.attention(il, x, n, start, cache.k[il], cache.v[il]);
      await this.feedForward(il, x, n);
    }
    cache.length = start + n;

    const rowsOut = options.logits === 'all' ? n : 1;
    const d = c.nEmbd;
    const last = rowsOut === n ? x : x.subarray((n - 1) * d);
    const normed = rmsNorm(last, rowsOut, d, this.weights(c.names.outputNorm), c.rmsEps);
    const logits = await this.linear(c.names.output, normed, rowsOut, c.nVocab, d);
    if (c.finalSoftcap > 0) softcapInPlace(logits, c.finalSoftcap);
    return logits;
  }

  /** The tokens' embedding rows (get_rows, times embedScale): the residual stream the layers update in place. */
  embed(tokens: readonly number[]): Float32Array {
    const c = this.config;
    const d = c.nEmbd;
    const x = new Float32Array(tokens.length * d);
    tokens.forEach((t, i) => {
      if (!Number.isInteger(t) || t < 0 || t >= c.nVocab) throw new RangeError(`token ${t} is outside the vocabulary of ${c.nVocab}`);
      x.set(weightRow(this.weights, c.names.tokenEmbd, t, d), i * d);
    });
    if (c.embedScale !== 1) for (let j = 0; j < x.length; j++) x[j] *= c.embedScale;
    return x;
  }

  /** Layer il's attention half (see FamilyLayers.attention). */
  attention(il: number, x: Float32Array, n: number, start: number, kCache: Float32Array, vCache: Float32Array): Promise<void> {
    return this.layers.attention(il, x, n, start, kCache, vCache);
  }

  /** Layer il's feed-forward half (see FamilyLayers.feedForward). */
  feedForward(il: number, x: Float32Array, n: number): Promise<void> {
    return this.layers.feedForward(il, x, n);
  }
}

/** Index of the largest value (the first of equal ones, as llama.cpp's greedy sampler). */
export function argmax(a: ArrayLike<number>, offset = 0, length = a.length - offset): number {
  let best = 0;
  let max = -Infinity;
  for (let i = 0; i < length; i++) {
    const v = a[offset + i];
    if (v > max) {
      max = v;
      best = i;
    }
  }
  return best;
}

export interface GreedyOptions {
  /** Stop after the end-of-sequence token (included in the result). */
  eosId?: number | null;
  /** Checked before every step; throw to cancel. */
  check?: () => void;
}

/** Greedy continuation: `count` argmax tokens after `prompt` (a fresh cache). */
export async function generateGreedy(model: DecoderModel, prompt: readonly number[], count: number, options: GreedyOptions = {}): Promise<number[]> {
  const cache = model.newCache(prompt.length + count);
  const out: number[] = [];
  options.check?.();
  let logits = await model.forward(prompt, cache);
  for (let i = 0; i < count; i++) {
    const next = argmax(logits);
    out.push(next);
    if (options.eosId !== undefined && options.eosId !== null && next === options.eosId) break;
    if (i === count - 1) break;
    options.check?.();
    logits = await model.forward([next], cache);
  }
  return out;
}
