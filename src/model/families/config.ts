// What a forward pass needs to know of a model, for every family: the shapes, the
// attention and RoPE parameters (per layer where a family alternates them), and the
// tensor names in the files. Each family module (llama.ts, qwen2.ts, ...) fills one from
// its GGUF metadata (`<arch>.*` keys, as llama.cpp's src/models/<arch>.cpp reads them)
// and the tensors; helpers here read keys with one clear error per missing or
// contradictory field and check tensor shapes.
import type { ModelTensor } from '../../formats/model.ts';

/** The forward passes quantlab has: one module each under src/model/families/. */
export type Family = 'llama' | 'qwen2' | 'qwen3' | 'gemma2' | 'gemma3' | 'phi3';

/** ggml's GGML_ROPE_TYPE_NORMAL (adjacent pairs) or GGML_ROPE_TYPE_NEOX (halves). */
export type RopeStyle = 'norm' | 'neox';

/**
 * One layer's tensors (names as in the files). attnNorm, o, ffnNorm, up and down are in
 * every family; the rest where the family has them (see each family module).
 */
export interface LayerNames {
  attnNorm: string;
  q?: string;
  k?: string;
  v?: string;
  /** Biases added after q/k/v's products (qwen2). */
  qBias?: string;
  kBias?: string;
  vBias?: string;
  /** q, k and v in one matrix, rows in that order (phi3's attn_qkv). */
  qkv?: string;
  /** Per-head RMSNorm weights of q and k, applied before RoPE (qwen3, gemma3). */
  qNorm?: string;
  kNorm?: string;
  o: string;
  /** RMSNorm of the attention output before the residual add (gemma2/3). */
  postAttnNorm?: string;
  ffnNorm: string;
  gate?: string;
  /** The up projection; phi3's ffn_up holds gate rows then up rows (2·nFf rows). */
  up: string;
  down: string;
  /** RMSNorm of the FFN output before the residual add (gemma2/3). */
  postFfnNorm?: string;
}

export interface TensorNames {
  tokenEmbd: string;
  outputNorm: string;
  /** The output matrix; equals tokenEmbd when the model ties them. */
  output: string;
  /** Llama-3's per-pair frequency factors (rope_freqs.weight), if present. */
  ropeFreqs?: string;
  /** LongRoPE's per-pair factors (phi3): long beyond the original context, short within. */
  ropeFactorsLong?: string;
  ropeFactorsShort?: string;
  layers: LayerNames[];
}

/** A layer's attention geometry where families alternate it (gemma2/3's local layers). */
export interface LayerAttention {
  /** Keys this many positions back or further are masked (llama.cpp's LLAMA_SWA_TYPE_STANDARD); 0: none. */
  window: number;
  ropeFreqBase: number;
  /** 1 / linear scaling factor. */
  ropeFreqScale: number;
}

export interface ModelConfig {
  family: Family;
  format: 'gguf' | 'safetensors';
  nLayer: number;
  nEmbd: number;
  nFf: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  nVocab: number;
  /** Dimensions rotated per head (rope.dimension_count; = headDim in these families). */
  nRot: number;
  ropeStyle: RopeStyle;
  /** The global layers' RoPE (every layer's unless layerAttention says otherwise). */
  ropeFreqBase: number;
  /** 1 / linear scaling factor. */
  ropeFreqScale: number;
  /** ggml rope's attn_factor: cos and sin are multiplied by it (LongRoPE's scaling.attn_factor); 1 otherwise. */
  ropeAttnFactor: number;
  /** Context the model was trained at before long-context scaling (rope.scaling.original_context_length). */
  nCtxOrig: number;
  rmsEps: number;
  contextLength: number;
  tiedOutput: boolean;
  /** Scale of q·k before the softmax (1/sqrt(headDim) unless the family says). */
  attnScale: number;
  /** cap·tanh(s/cap) on attention scores before the softmax (gemma2); 0: none. */
  attnSoftcap: number;
  /** cap·tanh(l/cap) on the logits (gemma2); 0: none. */
  finalSoftcap: number;
  /** The embedding rows are multiplied by it (gemma: sqrt(nEmbd) in f32); 1: none. */
  embedScale: number;
  /** Per layer: sliding window and RoPE base/scale. */
  layerAttention: LayerAttention[];
  /** Tensor names as they are in the files. */
  names: TensorNames;
  /** Each weight's llama.cpp (GGUF) name -> its name in the files: for preset plans. */
  ggufNames: ReadonlyMap<string, string>;
}

// ---- metadata ----------------------------------------------------------------------------

export function num(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

/** The `<arch>.*` keys of a GGUF, read with one error per missing or malformed field. */
export class ArchKeys {
  constructor(
    readonly md: Readonly<Record<string, unknown>>,
    readonly arch: string,
  ) {}

  key(k: string): string {
    return `${this.arch}.${k}`;
  }

  /** A numeric key, or undefined when absent; an error when present but not a number. */
  opt(k: string): number | undefined {
    const v = this.md[this.key(k)];
    if (v === undefined) return undefined;
    const n = num(v);
    if (n === undefined || !Number.isFinite(n)) throw new Error(`GGUF metadata ${this.key(k)} is ${JSON.stringify(String(v))}, not a number`);
    return n;
  }

  need(k: string): number {
    const n = this.opt(k);
    if (n === undefined) throw new Error(`GGUF metadata ${this.key(k)} is missing`);
    return n;
  }

  /** A positive integer key. */
  count(k: string, fallback?: number): number {
    const n = this.opt(k) ?? fallback;
    if (n === undefined) throw new Error(`GGUF metadata ${this.key(k)} is missing`);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`GGUF metadata ${this.key(k)} is ${n}, not a positive integer`);
    return n;
  }

  str(k: string): string | undefined {
    const v = this.md[this.key(k)];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new Error(`GGUF metadata ${this.key(k)} is not a string`);
    return v;
  }

  /** A per-layer key (a number for every layer, or an array of nLayer numbers) that must be uniform here. */
  uniform(k: string, nLayer: number, fallback?: number): number {
    const v = this.md[this.key(k)];
    if (v !== undefined && typeof v === 'object' && v !== null && 'length' in v) {
      const a = Array.from(v as ArrayLike<number | bigint>, Number);
      if (a.length !== nLayer) throw new Error(`GGUF metadata ${this.key(k)} has ${a.length} values for ${nLayer} layers`);
      if (a.some((x) => x !== a[0])) throw new Error(`GGUF metadata ${this.key(k)} differs between layers, which this family does not have`);
      return a[0];
    }
    return this.count(k, fallback);
  }
}

/** The heads' shape: head_count(_kv), key_length = value_length (defaults n_embd / n_head). */
export function headShape(keys: ArchKeys, nEmbd: number, nLayer: number): { nHead: number; nHeadKv: number; headDim: number } {
  const nHead = keys.uniform('attention.head_count', nLayer);
  const nHeadKv = keys.uniform('attention.head_count_kv', nLayer, nHead);
  const fallback = nEmbd % nHead === 0 ? nEmbd / nHead : undefined;
  const headDim = keys.count('attention.key_length', fallback);
  const vDim = keys.count('attention.value_length', headDim);
  if (vDim !== headDim) throw new Error(`GGUF metadata ${keys.key('attention.value_length')} (${vDim}) differs from ${keys.key('attention.key_length')} (${headDim}): not supported`);
  if (nHead % nHeadKv !== 0) throw new Error(`GGUF metadata: ${nHead} heads do not share ${nHeadKv} KV heads evenly`);
  return { nHead, nHeadKv, headDim };
}

/**
 * The GGUF's RoPE frequency scale, as llama.cpp's load_hparams reads it: 1/factor from
 * rope.scaling.factor (or the older rope.scale_linear) whatever rope.scaling.type says,
 * 1 without one; a type outside `allowed` (yarn: its ramp is not implemented) is refused.
 */
export function linearRopeScale(keys: ArchKeys, allowed: readonly string[] = ['none', 'linear']): number {
  const type = keys.str('rope.scaling.type');
  if (type !== undefined && !allowed.includes(type)) {
    throw new Error(`GGUF metadata ${keys.key('rope.scaling.type')} is '${type}': not supported for ${keys.arch} (only ${allowed.join(', ')})`);
  }
  const factor = keys.opt('rope.scaling.factor') ?? keys.opt('rope.scale_linear');
  if (factor !== undefined && factor < 0) throw new Error(`GGUF metadata ${keys.key('rope.scaling.factor')} is ${factor}`);
  return factor === undefined || factor === 0 ? 1 : 1 / factor;
}

/** Every layer alike: no window, the global RoPE. */
export function uniformLayers(nLayer: number, ropeFreqBase: number, ropeFreqScale: number): LayerAttention[] {
  return Array.from({ length: nLayer }, () => ({ window: 0, ropeFreqBase, ropeFreqScale }));
}

/** Identity GGUF-name map over every tensor the forward reads (a GGUF's names are llama.cpp's). */
export function identityNames(names: TensorNames): Map<string, string> {
  return new Map(weightNames(names).map((n) => [n, n]));
}

/** Every tensor name the forward pass reads (each once). */
export function weightNames(names: TensorNames): string[] {
  const out = [names.tokenEmbd, names.outputNorm, names.output];
  for (const n of [names.ropeFreqs, names.ropeFactorsLong, names.ropeFactorsShort]) if (n) out.push(n);
  for (const l of names.layers) for (const v of Object.values(l)) if (v) out.push(v);
  return [...new Set(out)];
}

// ---- tensors -----------------------------------------------------------------------------

export type TensorsByName = ReadonlyMap<string, ModelTensor>;

/** Checks a tensor's shape (PyTorch order: outermost first). */
export function expectShape(byName: TensorsByName, name: string | undefined, shape: readonly number[]): void {
  if (name === undefined) return;
  const t = byName.get(name);
  if (!t) throw new Error(`tensor '${name}' is missing`);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`tensor '${name}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
}

/** The vocabulary size: token_embd.weight's rows (it must exist). */
export function vocabFromEmbedding(byName: TensorsByName, nEmbd: number): number {
  const embd = byName.get('token_embd.weight');
  if (!embd) throw new Error('tensor \'token_embd.weight\' is missing');
  if (embd.shape.length !== 2 || embd.shape[1] !== nEmbd) {
    throw new Error(`tensor 'token_embd.weight' has shape [${embd.shape.join(', ')}], expected [n_vocab, ${nEmbd}] (embedding_length)`);
  }
  return embd.shape[0];
}

/** Refuses tensors of a layer that the family's forward would silently ignore. */
export function refuseExtraLayerTensors(byName: TensorsByName, names: TensorNames, arch: string): void {
  const known = new Set(weightNames(names));
  for (const name of byName.keys()) {
    if (name.startsWith('blk.') && !known.has(name)) {
      throw new Error(`tensor '${name}' is not part of a ${arch} layer as quantlab runs it (experts, extra biases or norms are not supported)`);
    }
  }
}

/** Checks the common parts of every family's tensors: embeddings, output, norms, o and down. */
export function checkCommonShapes(c: ModelConfig, byName: TensorsByName): void {
  const n = c.names;
  const qDim = c.nHead * c.headDim;
  expectShape(byName, n.tokenEmbd, [c.nVocab, c.nEmbd]);
  expectShape(byName, n.outputNorm, [c.nEmbd]);
  expectShape(byName, n.output, [c.nVocab, c.nEmbd]);
  if (c.nRot > c.headDim || c.nRot % 2 !== 0) throw new Error(`rope dimension ${c.nRot} does not fit heads of ${c.headDim}`);
  for (const l of n.layers) {
    expectShape(byName, l.attnNorm, [c.nEmbd]);
    expectShape(byName, l.o, [c.nEmbd, qDim]);
    expectShape(byName, l.ffnNorm, [c.nEmbd]);
    expectShape(byName, l.down, [c.nEmbd, c.nFf]);
    expectShape(byName, l.postAttnNorm, [c.nEmbd]);
    expectShape(byName, l.postFfnNorm, [c.nEmbd]);
    expectShape(byName, l.qNorm, [c.headDim]);
    expectShape(byName, l.kNorm, [c.headDim]);
  }
}
