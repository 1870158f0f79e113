// A Llama forward pass: the plain CPU reference (house rule 3) that model-output metrics
// (eval.ts) run on, over a ModelIndex from GGUF (llama.cpp names) or from HF safetensors
// + config.json (HF names). It follows llama.cpp's graph (src/models/llama.cpp of the
// pinned commit, docs/contracts.md): RMSNorm -> q,k,v -> RoPE -> grouped-query attention over
// a KV cache (softmax(q·k/sqrt(head_dim))) -> output projection + residual -> RMSNorm ->
// SwiGLU FFN (down(silu(gate(x)) * up(x))) + residual; final RMSNorm; output matrix, or the
// token embedding when the model ties them.
//
// RoPE. llama.cpp's LLAMA rope type is ggml's NORM mode: it rotates adjacent pairs
// (x[2i], x[2i+1]) by pos·base^(-2i/n_rot) (ggml-cpu ops.cpp, rope_cache_init /
// rotate_pairs). convert_hf_to_gguf.py permutes the rows of q and k so that this equals
// HF's rotate_half on the HF weights, which pairs (x[i], x[i + n_rot/2]) (NeoX style).
// So a GGUF runs with 'norm' pairs and a safetensors checkpoint (q/k rows in HF order)
// with 'neox' pairs, each on its weights as stored: no permutation on load, and the
// tensor a hook sees is the tensor in the file.
//
// Numerics. Weights are f32 (a quantized variant = dequantized values, see weights.ts).
// Every dot product (matrix rows, q·k, p·v) and the RMS sum accumulate in f64 (JS numbers;
// a product of two f32 is exact in f64) and are rounded to f32 when stored, so results
// sit closer to the exact values than ggml's f32 SIMD sums do: expect ~1e-6 relative
// differences against llama.cpp, never systematic ones. RoPE angles follow ggml in f32
// (theta_scale = powf(base, -2/n_rot), theta *= theta_scale per pair).
//
// The GPU seam: every matrix product goes through one `Linear` hook, (tensor name, x) ->
// y, so a WebGPU path can run its quantized kernels on packed blocks without touching
// the rest (see `Linear` below). Embedding rows and norm weights are read from the
// WeightProvider directly (llama.cpp's get_rows dequantizes rows exactly; norms stay f32).
import type { ModelIndex, ModelTensor } from '../formats/model.ts';

/** ggml's GGML_ROPE_TYPE_NORMAL (adjacent pairs) or GGML_ROPE_TYPE_NEOX (halves). */
export type RopeStyle = 'norm' | 'neox';

export interface LlamaLayerNames {
  attnNorm: string;
  q: string;
  k: string;
  v: string;
  o: string;
  ffnNorm: string;
  gate: string;
  up: string;
  down: string;
}

export interface LlamaTensorNames {
  tokenEmbd: string;
  outputNorm: string;
  /** The output matrix; equals tokenEmbd when the model ties them. */
  output: string;
  /** Llama-3's per-pair frequency factors (GGUF rope_freqs.weight), if present. */
  ropeFreqs?: string;
  layers: LlamaLayerNames[];
}

export interface LlamaConfig {
  format: 'gguf' | 'safetensors';
  nLayer: number;
  nEmbd: number;
  nFf: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  nVocab: number;
  /** Dimensions rotated per head (llama.rope.dimension_count; = headDim for Llama). */
  nRot: number;
  ropeStyle: RopeStyle;
  ropeFreqBase: number;
  /** 1 / linear scaling factor. */
  ropeFreqScale: number;
  rmsEps: number;
  contextLength: number;
  tiedOutput: boolean;
  /** Tensor names as they are in the files. */
  names: LlamaTensorNames;
  /** Each weight's llama.cpp (GGUF) name -> its name in the files: for preset plans. */
  ggufNames: ReadonlyMap<string, string>;
}

// ---- config ---------------------------------------------------------------------------

function num(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

function need(v: number | undefined, what: string): number {
  if (v === undefined || !Number.isFinite(v)) throw new Error(`${what} is missing`);
  return v;
}

/** llama.cpp's names (LLM_TENSOR_* of src/llama-arch.cpp) for `nLayer` layers. */
export function ggufTensorNames(nLayer: number, tied: boolean, ropeFreqs: boolean): LlamaTensorNames {
  const layers = Array.from({ length: nLayer }, (_, i): LlamaLayerNames => ({
    attnNorm: `blk.${i}.attn_norm.weight`,
    q: `blk.${i}.attn_q.weight`,
    k: `blk.${i}.attn_k.weight`,
    v: `blk.${i}.attn_v.weight`,
    o: `blk.${i}.attn_output.weight`,
    ffnNorm: `blk.${i}.ffn_norm.weight`,
    gate: `blk.${i}.ffn_gate.weight`,
    up: `blk.${i}.ffn_up.weight`,
    down: `blk.${i}.ffn_down.weight`,
  }));
  return {
    tokenEmbd: 'token_embd.weight',
    outputNorm: 'output_norm.weight',
    output: tied ? 'token_embd.weight' : 'output.weight',
    ...(ropeFreqs ? { ropeFreqs: 'rope_freqs.weight' } : {}),
    layers,
  };
}

/** Hugging Face LlamaForCausalLM's names (modeling_llama.py). */
export function hfTensorNames(nLayer: number, tied: boolean): LlamaTensorNames {
  const layers = Array.from({ length: nLayer }, (_, i): LlamaLayerNames => {
    const p = `model.layers.${i}.`;
    return {
      attnNorm: `${p}input_layernorm.weight`,
      q: `${p}self_attn.q_proj.weight`,
      k: `${p}self_attn.k_proj.weight`,
      v: `${p}self_attn.v_proj.weight`,
      o: `${p}self_attn.o_proj.weight`,
      ffnNorm: `${p}post_attention_layernorm.weight`,
      gate: `${p}mlp.gate_proj.weight`,
      up: `${p}mlp.up_proj.weight`,
      down: `${p}mlp.down_proj.weight`,
    };
  });
  return {
    tokenEmbd: 'model.embed_tokens.weight',
    outputNorm: 'model.norm.weight',
    output: tied ? 'model.embed_tokens.weight' : 'lm_head.weight',
    layers,
  };
}

function pairNames(from: LlamaTensorNames, to: LlamaTensorNames, tied: boolean): Map<string, string> {
  const m = new Map<string, string>([
    [from.tokenEmbd, to.tokenEmbd],
    [from.outputNorm, to.outputNorm],
  ]);
  if (!tied) m.set(from.output, to.output);
  if (from.ropeFreqs && to.ropeFreqs) m.set(from.ropeFreqs, to.ropeFreqs);
  from.layers.forEach((l, i) => {
    for (const k of Object.keys(l) as (keyof LlamaLayerNames)[]) m.set(l[k], to.layers[i][k]);
  });
  return m;
}

function ropeScale(type: unknown, factor: number | undefined, where: string): number {
  if (type !== undefined && type !== 'linear' && type !== 'none') {
    throw new Error(`${where}: rope scaling '${String(type)}' is not supported (only linear)`);
  }
  return factor === undefined || factor === 0 ? 1 : 1 / factor;
}

/** The architecture of a Llama-family model from its GGUF metadata or HF config.json. */
export function llamaConfig(model: ModelIndex): LlamaConfig {
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  const config = model.format === 'gguf' ? ggufConfig(model.metadata, byName) : hfConfig(model.metadata, byName);
  checkShapes(config, byName);
  return config;
}

function ggufConfig(md: Readonly<Record<string, unknown>>, byName: ReadonlyMap<string, ModelTensor>): LlamaConfig {
  const arch = md['general.architecture'];
  if (arch !== 'llama') throw new Error(`general.architecture is ${JSON.stringify(arch)}: only 'llama' models can run here`);
  const key = (k: string) => num(md[`llama.${k}`]);
  const nEmbd = need(key('embedding_length'), 'llama.embedding_length');
  const nHead = need(key('attention.head_count'), 'llama.attention.head_count');
  const nLayer = need(key('block_count'), 'llama.block_count');
  const headDim = key('attention.key_length') ?? nEmbd / nHead;
  if ((key('attention.value_length') ?? headDim) !== headDim) throw new Error('llama: key and value head sizes differ');
  const tied = !byName.has('output.weight');
  const embd = byName.get('token_embd.weight');
  if (!embd) throw new Error('token_embd.weight is missing');
  const nVocab = embd.shape[0];
  if ((key('expert_count') ?? 0) > 0) throw new Error('mixture-of-experts Llama models are not supported');
  const names = ggufTensorNames(nLayer, tied, byName.has('rope_freqs.weight'));
  return {
    format: 'gguf',
    nLayer,
    nEmbd,
    nFf: need(key('feed_forward_length'), 'llama.feed_forward_length'),
    nHead,
    nHeadKv: key('attention.head_count_kv') ?? nHead,
    headDim,
    nVocab,
    nRot: key('rope.dimension_count') ?? headDim,
    ropeStyle: 'norm',
    ropeFreqBase: key('rope.freq_base') ?? 10000,
    ropeFreqScale: ropeScale(md['llama.rope.scaling.type'], key('rope.scaling.factor') ?? key('rope.scale_linear'), 'llama.rope.scaling.type'),
    rmsEps: need(key('attention.layer_norm_rms_epsilon'), 'llama.attention.layer_norm_rms_epsilon'),
    contextLength: key('context_length') ?? 2048,
    tiedOutput: tied,
    names,
    ggufNames: pairNames(names, names, tied),
  };
}

function hfConfig(md: Readonly<Record<string, unknown>>, byName: ReadonlyMap<string, ModelTensor>): LlamaConfig {
  const c = md.config as Record<string, unknown> | undefined;
  if (!c) throw new Error('config.json is needed to run a safetensors model (give it with the .safetensors files)');
  const type = c.model_type;
  if (type !== 'llama') throw new Error(`config.json model_type is ${JSON.stringify(type)}: only 'llama' models can run here`);
  const nEmbd = need(num(c.hidden_size), 'config.json hidden_size');
  const nHead = need(num(c.num_attention_heads), 'config.json num_attention_heads');
  const nLayer = need(num(c.num_hidden_layers), 'config.json num_hidden_layers');
  const headDim = num(c.head_dim) ?? nEmbd / nHead;
  const tied = !byName.has('lm_head.weight');
  const embd = byName.get('model.embed_tokens.weight');
  if (!embd) throw new Error('model.embed_tokens.weight is missing');
  const scaling = c.rope_scaling as { type?: unknown; rope_type?: unknown; factor?: unknown } | null | undefined;
  const names = hfTensorNames(nLayer, tied);
  const gguf = ggufTensorNames(nLayer, tied, false);
  if (c.partial_rotary_factor !== undefined && c.partial_rotary_factor !== 1) throw new Error('partial_rotary_factor is not supported');
  return {
    format: 'safetensors',
    nLayer,
    nEmbd,
    nFf: need(num(c.intermediate_size), 'config.json intermediate_size'),
    nHead,
    nHeadKv: num(c.num_key_value_heads) ?? nHead,
    headDim,
    nVocab: embd.shape[0],
    nRot: headDim,
    ropeStyle: 'neox',
    ropeFreqBase: num(c.rope_theta) ?? 10000,
    ropeFreqScale: scaling ? ropeScale(scaling.rope_type ?? scaling.type, num(scaling.factor), 'config.json rope_scaling') : 1,
    rmsEps: num(c.rms_norm_eps) ?? 1e-6,
    contextLength: num(c.max_position_embeddings) ?? 2048,
    tiedOutput: tied,
    names,
    ggufNames: pairNames(gguf, names, tied),
  };
}

function checkShapes(c: LlamaConfig, byName: ReadonlyMap<string, ModelTensor>): void {
  const qDim = c.nHead * c.headDim;
  const kvDim = c.nHeadKv * c.headDim;
  if (c.nHead % c.nHeadKv !== 0) throw new Error(`${c.nHead} heads do not share ${c.nHeadKv} KV heads evenly`);
  if (c.nRot > c.headDim || c.nRot % 2 !== 0) throw new Error(`rope dimension ${c.nRot} does not fit heads of ${c.headDim}`);
  const expect = (name: string | undefined, shape: number[]) => {
    if (name === undefined) return;
    const t = byName.get(name);
    if (!t) throw new Error(`tensor '${name}' is missing`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`tensor '${name}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    }
  };
  const n = c.names;
  expect(n.tokenEmbd, [c.nVocab, c.nEmbd]);
  expect(n.outputNorm, [c.nEmbd]);
  expect(n.output, [c.nVocab, c.nEmbd]);
  if (n.ropeFreqs) expect(n.ropeFreqs, [c.nRot / 2]);
  for (const l of n.layers) {
    expect(l.attnNorm, [c.nEmbd]);
    expect(l.q, [qDim, c.nEmbd]);
    expect(l.k, [kvDim, c.nEmbd]);
    expect(l.v, [kvDim, c.nEmbd]);
    expect(l.o, [c.nEmbd, qDim]);
    expect(l.ffnNorm, [c.nEmbd]);
    expect(l.gate, [c.nFf, c.nEmbd]);
    expect(l.up, [c.nFf, c.nEmbd]);
    expect(l.down, [c.nEmbd, c.nFf]);
  }
}

/** Every tensor name the forward pass reads (each once). */
export function llamaWeightNames(c: LlamaConfig): string[] {
  const n = c.names;
  const names = [n.tokenEmbd, n.outputNorm, n.output, ...(n.ropeFreqs ? [n.ropeFreqs] : [])];
  for (const l of n.layers) names.push(l.attnNorm, l.q, l.k, l.v, l.o, l.ffnNorm, l.gate, l.up, l.down);
  return [...new Set(names)];
}

// ---- weights and the matrix-product hook ------------------------------------------------

/** A tensor's values as f32, row-major in PyTorch order (rows of the innermost dimension). */
export type WeightProvider = (name: string) => Float32Array;

/**
 * y = W·x for `n` input vectors, W = the tensor `name` of shape [rows, cols] (PyTorch
 * order: `rows` outputs, rows of `cols` = GGUF ne0). x holds n vectors of `cols` one after
 * another; the result holds n vectors of `rows`. May return a Promise (a GPU readback).
 *
 * Plugging in the GPU: keep the packed blocks of each quantized tensor (weights.ts
 * `QuantizedWeights.packed`) and return
 *   (name, x, n, rows, cols) => { const p = packed.get(name); if (!p) return cpu(name, x, n, rows, cols);
 *     return n === 1 ? matvecOnGpu(gpu, p.type, p.bytes, rows, cols, x) : <n calls, or a matmul kernel> }
 * The forward pass calls it with n = tokens in the chunk (1 while generating).
 */
export type Linear = (name: string, x: Float32Array, n: number, rows: number, cols: number) => Float32Array | Promise<Float32Array>;

/** The CPU reference product over f32 weights, accumulating in f64. */
export function cpuLinear(weights: WeightProvider): Linear {
  return (name, x, n, rows, cols) => {
    const w = weights(name);
    if (w.length !== rows * cols) throw new Error(`tensor '${name}' has ${w.length} values, expected ${rows} x ${cols}`);
    return matmulF32(w, rows, cols, x, n);
  };
}

/**
 * y[t][r] = Σ_c w[r][c]·x[t][c], f64 accumulation, f32 result.
 * A plain loop streams all of W once per token (memory-bound past the caches); here two rows
 * meet four tokens at a time, so each weight read serves four tokens and each input read two
 * rows (x0.37-0.38 of the plain loop's time at 1024-2816 columns: `npx tsx bench/cpu-products.ts`).
 * Every sum still runs over c in order, from 0, so y is the plain loop's bit for bit.
 */
export function matmulF32(w: Float32Array, rows: number, cols: number, x: Float32Array, n: number): Float32Array {
  const y = new Float32Array(n * rows);
  let t = 0;
  for (; t + 4 <= n; t += 4) {
    let r = 0;
    for (; r + 2 <= rows; r += 2) rows2Tokens4(w, r, cols, x, t, y, rows);
    if (r < rows) rows1Tokens4(w, r, cols, x, t, y, rows);
  }
  for (; t < n; t++) {
    const xo = t * cols;
    for (let r = 0; r < rows; r++) {
      const wo = r * cols;
      let s = 0;
      for (let c = 0; c < cols; c++) s += w[wo + c] * x[xo + c];
      y[t * rows + r] = s;
    }
  }
  return y;
}

/** Rows r, r + 1 against tokens t..t + 3 (matmulF32's tile). Plain scalars: destructured, V8 made them 2.5x slower. */
function rows2Tokens4(w: Float32Array, r: number, cols: number, x: Float32Array, t: number, y: Float32Array, rows: number): void {
  const wa = r * cols;
  const wb = wa + cols;
  const x0 = t * cols;
  const x1 = x0 + cols;
  const x2 = x1 + cols;
  const x3 = x2 + cols;
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
  for (let c = 0; c < cols; c++) {
    const a = w[wa + c];
    const b = w[wb + c];
    const v0 = x[x0 + c];
    const v1 = x[x1 + c];
    const v2 = x[x2 + c];
    const v3 = x[x3 + c];
    a0 += a * v0;
    a1 += a * v1;
    a2 += a * v2;
    a3 += a * v3;
    b0 += b * v0;
    b1 += b * v1;
    b2 += b * v2;
    b3 += b * v3;
  }
  const o = t * rows + r;
  y[o] = a0;
  y[o + rows] = a1;
  y[o + 2 * rows] = a2;
  y[o + 3 * rows] = a3;
  y[o + 1] = b0;
  y[o + 1 + rows] = b1;
  y[o + 1 + 2 * rows] = b2;
  y[o + 1 + 3 * rows] = b3;
}

/** Row r against tokens t..t + 3 (an odd row count's last row). */
function rows1Tokens4(w: Float32Array, r: number, cols: number, x: Float32Array, t: number, y: Float32Array, rows: number): void {
  const wa = r * cols;
  const x0 = t * cols;
  const x1 = x0 + cols;
  const x2 = x1 + cols;
  const x3 = x2 + cols;
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (let c = 0; c < cols; c++) {
    const a = w[wa + c];
    a0 += a * x[x0 + c];
    a1 += a * x[x1 + c];
    a2 += a * x[x2 + c];
    a3 += a * x[x3 + c];
  }
  const o = t * rows + r;
  y[o] = a0;
  y[o + rows] = a1;
  y[o + 2 * rows] = a2;
  y[o + 3 * rows] = a3;
}

// ---- the forward pass -------------------------------------------------------------------

/** Keys and values of every layer for the positions evaluated so far. */
export class KvCache {
  readonly k: Float32Array[];
  readonly v: Float32Array[];
  /** Positions held (the next token's position). */
  length = 0;

  constructor(
    readonly config: LlamaConfig,
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

export class LlamaModel {
  private readonly linear: Linear;
  private readonly ropeCache = new Map<number, Float32Array>();
  private readonly ropeFreqs: Float32Array | null;

  constructor(
    readonly config: LlamaConfig,
    readonly weights: WeightProvider,
    linear?: Linear,
  ) {
    this.linear = linear ?? cpuLinear(weights);
    this.ropeFreqs = config.names.ropeFreqs ? weights(config.names.ropeFreqs) : null;
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
    return this.linear(c.names.output, normed, rowsOut, c.nVocab, d);
  }

  /** The tokens' embedding rows (get_rows): the residual stream the layers update in place. */
  embed(tokens: readonly number[]): Float32Array {
    const c = this.config;
    const d = c.nEmbd;
    const embd = this.weights(c.names.tokenEmbd);
    const x = new Float32Array(tokens.length * d);
    tokens.forEach((t, i) => {
      if (!Number.isInteger(t) || t < 0 || t >= c.nVocab) throw new RangeError(`token ${t} is outside the vocabulary of ${c.nVocab}`);
      x.set(embd.subarray(t * d, (t + 1) * d), i * d);
    });
    return x;
  }

  /**
   * Layer il's attention for the n rows of x at positions start.. (x += attention output):
   * their keys and values go to kCache/vCache (this layer's, positions × kv dim), which
   * must hold the earlier positions' already.
   */
  async attention(il: number, x: Float32Array, n: number, start: number, kCache: Float32Array, vCache: Float32Array): Promise<void> {
    const c = this.config;
    const L = c.names.layers[il];
    const d = c.nEmbd;
    const qDim = c.nHead * c.headDim;
    const kvDim = c.nHeadKv * c.headDim;
    const h = rmsNorm(x, n, d, this.weights(L.attnNorm), c.rmsEps);
    const q = await this.linear(L.q, h, n, qDim, d);
    const k = await this.linear(L.k, h, n, kvDim, d);
    const v = await this.linear(L.v, h, n, kvDim, d);
    for (let i = 0; i < n; i++) {
      const rope = this.rope(start + i);
      for (let hd = 0; hd < c.nHead; hd++) this.applyRope(q, i * qDim + hd * c.headDim, rope);
      for (let hd = 0; hd < c.nHeadKv; hd++) this.applyRope(k, i * kvDim + hd * c.headDim, rope);
    }
    kCache.set(k, start * kvDim);
    vCache.set(v, start * kvDim);
    const attn = attention(q, kCache, vCache, n, start, c);
    const o = await this.linear(L.o, attn, n, d, qDim);
    for (let j = 0; j < x.length; j++) x[j] += o[j];
  }

  /** Layer il's feed-forward for the n rows of x (x += SwiGLU output). */
  async feedForward(il: number, x: Float32Array, n: number): Promise<void> {
    const c = this.config;
    const L = c.names.layers[il];
    const d = c.nEmbd;
    const h = rmsNorm(x, n, d, this.weights(L.ffnNorm), c.rmsEps);
    const gate = await this.linear(L.gate, h, n, c.nFf, d);
    const up = await this.linear(L.up, h, n, c.nFf, d);
    for (let j = 0; j < gate.length; j++) {
      const g = gate[j];
      gate[j] = (g / (1 + Math.exp(-g))) * up[j]; // silu(gate) * up
    }
    const down = await this.linear(L.down, gate, n, d, c.nFf);
    for (let j = 0; j < x.length; j++) x[j] += down[j];
  }

  /** cos/sin per rotated pair at `pos`, as ggml's rope cache (f32 angles). */
  private rope(pos: number): Float32Array {
    let cached = this.ropeCache.get(pos);
    if (cached) return cached;
    const c = this.config;
    const pairs = c.nRot / 2;
    cached = new Float32Array(pairs * 2);
    const thetaScale = Math.fround(Math.pow(c.ropeFreqBase, -2 / c.nRot));
    let theta = Math.fround(pos);
    for (let i = 0; i < pairs; i++) {
      const ff = this.ropeFreqs ? this.ropeFreqs[i] : 1;
      const angle = Math.fround(c.ropeFreqScale * Math.fround(theta / ff));
      cached[2 * i] = Math.cos(angle);
      cached[2 * i + 1] = Math.sin(angle);
      theta = Math.fround(theta * thetaScale);
    }
    if (this.ropeCache.size < 1 << 16) this.ropeCache.set(pos, cached);
    return cached;
  }

  private applyRope(a: Float32Array, offset: number, rope: Float32Array): void {
    const pairs = this.config.nRot / 2;
    const neox = this.config.ropeStyle === 'neox';
    for (let i = 0; i < pairs; i++) {
      const i0 = offset + (neox ? i : 2 * i);
      const i1 = neox ? i0 + pairs : i0 + 1;
      const cos = rope[2 * i];
      const sin = rope[2 * i + 1];
      const x0 = a[i0];
      const x1 = a[i1];
      a[i0] = x0 * cos - x1 * sin;
      a[i1] = x0 * sin + x1 * cos;
    }
  }
}

/** RMSNorm of n rows: x / sqrt(mean(x²) + eps) · weight (ggml_rms_norm, then mul). */
export function rmsNorm(x: Float32Array, n: number, d: number, weight: Float32Array, eps: number): Float32Array {
  const out = new Float32Array(n * d);
  for (let t = 0; t < n; t++) {
    const o = t * d;
    let sum = 0;
    for (let j = 0; j < d; j++) sum += x[o + j] * x[o + j];
    const scale = 1 / Math.sqrt(sum / d + eps);
    for (let j = 0; j < d; j++) out[o + j] = Math.fround(x[o + j] * scale) * weight[j];
  }
  return out;
}

/** Causal grouped-query attention of the chunk's queries over the cache (positions 0..start+i). */
function attention(q: Float32Array, kCache: Float32Array, vCache: Float32Array, n: number, start: number, c: LlamaConfig): Float32Array {
  const hd = c.headDim;
  const qDim = c.nHead * hd;
  const kvDim = c.nHeadKv * hd;
  const group = c.nHead / c.nHeadKv;
  const scale = 1 / Math.sqrt(hd);
  const out = new Float32Array(n * qDim);
  const scores = new Float64Array(start + n);
  const acc = new Float64Array(hd);
  for (let i = 0; i < n; i++) {
    const positions = start + i + 1;
    for (let h = 0; h < c.nHead; h++) {
      const qo = i * qDim + h * hd;
      const kvo = Math.floor(h / group) * hd;
      let max = -Infinity;
      for (let p = 0; p < positions; p++) {
        const ko = p * kvDim + kvo;
        let s = 0;
        for (let j = 0; j < hd; j++) s += q[qo + j] * kCache[ko + j];
        s *= scale;
        scores[p] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let p = 0; p < positions; p++) {
        const e = Math.exp(scores[p] - max);
        scores[p] = e;
        sum += e;
      }
      acc.fill(0);
      for (let p = 0; p < positions; p++) {
        const w = scores[p] / sum;
        const vo = p * kvDim + kvo;
        for (let j = 0; j < hd; j++) acc[j] += w * vCache[vo + j];
      }
      for (let j = 0; j < hd; j++) out[qo + j] = acc[j];
    }
  }
  return out;
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
export async function generateGreedy(model: LlamaModel, prompt: readonly number[], count: number, options: GreedyOptions = {}): Promise<number[]> {
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
