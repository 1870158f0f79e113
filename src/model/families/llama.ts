// The Llama family (GGUF general.architecture 'llama': Llama 2, Llama 3.x, Mistral, and
// HF LlamaForCausalLM checkpoints): llama.cpp's src/models/llama.cpp graph.
//   RMSNorm -> q,k,v -> RoPE (NORM pairs on a GGUF, whose q/k rows the converter
//   permuted; NEOX on HF weights as stored) -> GQA softmax(q·k/sqrt(head_dim)) -> o
//   -> residual -> RMSNorm -> SwiGLU FFN -> residual; final RMSNorm; output matrix, or
//   token_embd when output.weight is absent (tied, as Llama 3.2).
// Llama 3's rope_scaling 'llama3' reaches llama.cpp as the rope_freqs tensor: per-pair
// divisors of the RoPE frequencies (get_rope_factors), used the same way here.
// Mistral: llama.cpp's llama graph has no sliding window (it reads none for this arch),
// so neither do we; the two agree up to the window (4096 for Mistral 7B v0.1). Nor does
// it take llama.attention.scale (tested: the scale stays 1/sqrt(head_dim)).
import type { ModelTensor } from '../../formats/model.ts';
import { addInPlace, RopeTable, swiglu } from './blocks.ts';
import {
  ArchKeys,
  checkCommonShapes,
  expectShape,
  headShape,
  identityNames,
  linearRopeScale,
  num,
  refuseExtraLayerTensors,
  uniformLayers,
  vocabFromEmbedding,
  type LayerNames,
  type ModelConfig,
  type TensorNames,
} from './config.ts';
import type { FamilyLayers, FamilyModule, LayerContext } from './decoder.ts';
import { attendAndProject, gatedFfn, inputNorm, separateQkv } from './steps.ts';

/** Llama's layer: every role of LayerNames that it uses is present. */
export type LlamaLayerNames = Required<Pick<LayerNames, 'attnNorm' | 'q' | 'k' | 'v' | 'o' | 'ffnNorm' | 'gate' | 'up' | 'down'>>;

/** llama.cpp's names (LLM_TENSOR_* of src/llama-arch.cpp) for `nLayer` layers. */
export function ggufTensorNames(nLayer: number, tied: boolean, ropeFreqs: boolean): TensorNames & { layers: LlamaLayerNames[] } {
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
export function hfTensorNames(nLayer: number, tied: boolean): TensorNames & { layers: LlamaLayerNames[] } {
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

function pairNames(from: TensorNames, to: TensorNames, tied: boolean): Map<string, string> {
  const m = new Map<string, string>([
    [from.tokenEmbd, to.tokenEmbd],
    [from.outputNorm, to.outputNorm],
  ]);
  if (!tied) m.set(from.output, to.output);
  if (from.ropeFreqs && to.ropeFreqs) m.set(from.ropeFreqs, to.ropeFreqs);
  from.layers.forEach((l, i) => {
    for (const k of Object.keys(l) as (keyof LayerNames)[]) {
      const a = l[k];
      const b = to.layers[i][k];
      if (a && b) m.set(a, b);
    }
  });
  return m;
}

export function checkLlamaShapes(c: ModelConfig, byName: ReadonlyMap<string, ModelTensor>): void {
  checkCommonShapes(c, byName);
  const qDim = c.nHead * c.headDim;
  const kvDim = c.nHeadKv * c.headDim;
  if (c.names.ropeFreqs) expectShape(byName, c.names.ropeFreqs, [c.nRot / 2]);
  for (const l of c.names.layers) {
    expectShape(byName, l.q, [qDim, c.nEmbd]);
    expectShape(byName, l.k, [kvDim, c.nEmbd]);
    expectShape(byName, l.v, [kvDim, c.nEmbd]);
    if (l.gate) {
      // A separate gate: up is [n_ff, n_embd] too (phi3's fused ffn_up is checked by phi3).
      expectShape(byName, l.gate, [c.nFf, c.nEmbd]);
      expectShape(byName, l.up, [c.nFf, c.nEmbd]);
    }
    expectShape(byName, l.qBias, [qDim]);
    expectShape(byName, l.kBias, [kvDim]);
    expectShape(byName, l.vBias, [kvDim]);
  }
}

/** The shared part of a Llama-layout GGUF's config (llama and the families built like it). */
export function llamaLikeGgufConfig(
  md: Readonly<Record<string, unknown>>,
  byName: ReadonlyMap<string, ModelTensor>,
  arch: string,
  family: ModelConfig['family'],
  names: (nLayer: number, tied: boolean) => TensorNames,
  ropeScalingTypes?: readonly string[],
): ModelConfig {
  const keys = new ArchKeys(md, arch);
  const nLayer = keys.count('block_count');
  const nEmbd = keys.count('embedding_length');
  const { nHead, nHeadKv, headDim } = headShape(keys, nEmbd, nLayer);
  if ((keys.opt('expert_count') ?? 0) > 0) throw new Error(`mixture-of-experts ${arch} models (${keys.key('expert_count')} > 0) are not supported`);
  const nVocab = vocabFromEmbedding(byName, nEmbd);
  const tied = !byName.has('output.weight');
  const ropeFreqBase = keys.opt('rope.freq_base') ?? 10000;
  const ropeFreqScale = linearRopeScale(keys, ropeScalingTypes);
  const nRot = keys.count('rope.dimension_count', headDim);
  const tensorNames = names(nLayer, tied);
  const contextLength = keys.count('context_length', 2048);
  return {
    family,
    format: 'gguf',
    nLayer,
    nEmbd,
    nFf: keys.uniform('feed_forward_length', nLayer),
    nHead,
    nHeadKv,
    headDim,
    nVocab,
    nRot,
    ropeStyle: 'norm',
    ropeFreqBase,
    ropeFreqScale,
    ropeAttnFactor: 1,
    nCtxOrig: keys.count('rope.scaling.original_context_length', contextLength),
    rmsEps: keys.need('attention.layer_norm_rms_epsilon'),
    contextLength,
    tiedOutput: tied,
    attnScale: 1 / Math.sqrt(headDim),
    attnSoftcap: 0,
    finalSoftcap: 0,
    embedScale: 1,
    layerAttention: uniformLayers(nLayer, ropeFreqBase, ropeFreqScale),
    names: tensorNames,
    ggufNames: identityNames(tensorNames),
  };
}

function llamaGgufConfig(md: Readonly<Record<string, unknown>>, byName: ReadonlyMap<string, ModelTensor>): ModelConfig {
  const c = llamaLikeGgufConfig(md, byName, 'llama', 'llama', (nLayer, tied) => ggufTensorNames(nLayer, tied, byName.has('rope_freqs.weight')));
  if (c.nRot !== c.headDim) throw new Error(`GGUF metadata llama.rope.dimension_count (${c.nRot}) differs from the head size ${c.headDim}: llama.cpp's llama graph needs them equal`);
  checkLlamaShapes(c, byName);
  refuseExtraLayerTensors(byName, c.names, 'llama');
  return c;
}

/** A Llama config from HF config.json (safetensors, HF tensor names and q/k row order). */
export function llamaHfConfig(md: Readonly<Record<string, unknown>>, byName: ReadonlyMap<string, ModelTensor>): ModelConfig {
  const c = md.config as Record<string, unknown> | undefined;
  if (!c) throw new Error('config.json is needed to run a safetensors model (give it with the .safetensors files)');
  const type = c.model_type;
  if (type !== 'llama') throw new Error(`config.json model_type is ${JSON.stringify(type)}: only 'llama' safetensors checkpoints can run here (convert others to GGUF first)`);
  const need = (v: number | undefined, what: string): number => {
    if (v === undefined || !Number.isFinite(v)) throw new Error(`${what} is missing`);
    return v;
  };
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
  let ropeFreqScale = 1;
  if (scaling) {
    const st = scaling.rope_type ?? scaling.type;
    if (st !== undefined && st !== 'linear' && st !== 'none') throw new Error(`config.json rope_scaling: rope scaling '${String(st)}' is not supported (only linear)`);
    const f = num(scaling.factor);
    ropeFreqScale = f === undefined || f === 0 ? 1 : 1 / f;
  }
  const ropeFreqBase = num(c.rope_theta) ?? 10000;
  const contextLength = num(c.max_position_embeddings) ?? 2048;
  const config: ModelConfig = {
    family: 'llama',
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
    ropeFreqBase,
    ropeFreqScale,
    ropeAttnFactor: 1,
    nCtxOrig: contextLength,
    rmsEps: num(c.rms_norm_eps) ?? 1e-6,
    contextLength,
    tiedOutput: tied,
    attnScale: 1 / Math.sqrt(headDim),
    attnSoftcap: 0,
    finalSoftcap: 0,
    embedScale: 1,
    layerAttention: uniformLayers(nLayer, ropeFreqBase, ropeFreqScale),
    names,
    ggufNames: pairNames(gguf, names, tied),
  };
  if (config.nHead % config.nHeadKv !== 0) throw new Error(`${config.nHead} heads do not share ${config.nHeadKv} KV heads evenly`);
  checkLlamaShapes(config, byName);
  return config;
}

/** The RoPE of every layer: the model's base/scale, rope_freqs divisors if any. */
export function globalRope(ctx: LayerContext, factors: Float32Array | null = null): RopeTable {
  const c = ctx.config;
  return new RopeTable({ nRot: c.nRot, style: c.ropeStyle, freqBase: c.ropeFreqBase, freqScale: c.ropeFreqScale, factors, attnFactor: c.ropeAttnFactor });
}

/**
 * Llama's layer (also qwen2's: its q/k/v biases are in the names, NEOX in the config):
 * pre-norm attention with RoPE on q and k, then a pre-norm SwiGLU FFN.
 */
export function llamaLayers(ctx: LayerContext): FamilyLayers {
  const c = ctx.config;
  const rope = globalRope(ctx, c.names.ropeFreqs ? ctx.weights(c.names.ropeFreqs) : null);
  return {
    async attention(il, x, n, start, kCache, vCache) {
      const h = inputNorm(ctx, c.names.layers[il].attnNorm, x, n);
      const qkv = await separateQkv(ctx, il, h, n);
      rope.apply(qkv.q, n, c.nHead, c.headDim, start);
      rope.apply(qkv.k, n, c.nHeadKv, c.headDim, start);
      addInPlace(x, await attendAndProject(ctx, il, qkv, n, start, kCache, vCache));
    },
    async feedForward(il, x, n) {
      const L = c.names.layers[il];
      const h = inputNorm(ctx, L.ffnNorm, x, n);
      addInPlace(x, await gatedFfn(ctx, L, h, n, swiglu));
    },
  };
}

export const llamaFamily: FamilyModule = {
  family: 'llama',
  arch: 'llama',
  config: llamaGgufConfig,
  layers: llamaLayers,
};
