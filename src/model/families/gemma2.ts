// The Gemma 2 family (GGUF 'gemma2'): llama.cpp's src/models/gemma2-iswa.cpp and its
// hparams (llama-model.cpp, LLM_ARCH_GEMMA2).
//   embeddings · sqrt(n_embd) -> per layer: RMSNorm -> q,k,v -> NEOX RoPE ->
//   attention with scores soft-capped (cap·tanh(s/cap), attn_logit_softcapping, default
//   50) and, on even layers (swa pattern 2, or attention.sliding_window_pattern), a
//   sliding window (attention.sliding_window, default 4096) -> o -> RMSNorm (post_attention_norm) -> residual -> RMSNorm ->
//   GeGLU FFN (GELU-tanh through ggml's f16 table) -> RMSNorm (post_ffw_norm) ->
//   residual; final RMSNorm; tied output; logits soft-capped (final_logit_softcapping,
//   default 30).
// The attention scale is 1/sqrt(head_dim), except 1/sqrt(n_embd/n_head) for the 27B
// (46 layers) as llama.cpp's f_attention_scale (query_pre_attn_scalar). GGUF norm
// weights already hold Gemma's (1 + w): the converter added the 1.
import type { ModelTensor } from '../../formats/model.ts';
import { addInPlace, geglu, rmsNorm, RopeTable } from './blocks.ts';
import {
  ArchKeys,
  checkCommonShapes,
  expectShape,
  headShape,
  identityNames,
  linearRopeScale,
  refuseExtraLayerTensors,
  vocabFromEmbedding,
  type LayerAttention,
  type ModelConfig,
  type TensorNames,
} from './config.ts';
import type { FamilyLayers, FamilyModule, LayerContext } from './decoder.ts';
import { attendAndProject, gatedFfn, inputNorm, separateQkv } from './steps.ts';

/** llama.cpp's hparams.set_swa_pattern(p): layer il is sliding unless il % p == p - 1. */
export function swaLayer(il: number, pattern: number): boolean {
  return il % pattern < pattern - 1;
}

/** attention.sliding_window_pattern where the file has it (llama.cpp reads it), else the family's. */
export function swaPattern(keys: ArchKeys, fallback: number): number {
  const v = keys.md[keys.key('attention.sliding_window_pattern')];
  if (v !== undefined && typeof v === 'object') throw new Error(`GGUF metadata ${keys.key('attention.sliding_window_pattern')} is a per-layer array: not supported (only a period)`);
  return keys.count('attention.sliding_window_pattern', fallback);
}

/** Gemma's tensor names (llama-arch.cpp): llama's plus post norms, and q/k norms for gemma3. */
export function gemmaNames(nLayer: number, tied: boolean, qkNorm: boolean): TensorNames {
  return {
    tokenEmbd: 'token_embd.weight',
    outputNorm: 'output_norm.weight',
    output: tied ? 'token_embd.weight' : 'output.weight',
    layers: Array.from({ length: nLayer }, (_, i) => ({
      attnNorm: `blk.${i}.attn_norm.weight`,
      q: `blk.${i}.attn_q.weight`,
      k: `blk.${i}.attn_k.weight`,
      v: `blk.${i}.attn_v.weight`,
      ...(qkNorm ? { qNorm: `blk.${i}.attn_q_norm.weight`, kNorm: `blk.${i}.attn_k_norm.weight` } : {}),
      o: `blk.${i}.attn_output.weight`,
      postAttnNorm: `blk.${i}.post_attention_norm.weight`,
      ffnNorm: `blk.${i}.ffn_norm.weight`,
      gate: `blk.${i}.ffn_gate.weight`,
      up: `blk.${i}.ffn_up.weight`,
      down: `blk.${i}.ffn_down.weight`,
      postFfnNorm: `blk.${i}.post_ffw_norm.weight`,
    })),
  };
}

export interface GemmaShape {
  keys: ArchKeys;
  config: ModelConfig;
}

/**
 * What gemma2 and gemma3 read alike; `layers` gives each layer's window and RoPE, and
 * `bigLayers` is the layer count of the 27B, whose attention scale is 1/sqrt(n_embd/n_head).
 */
export function gemmaConfig(
  md: Readonly<Record<string, unknown>>,
  byName: ReadonlyMap<string, ModelTensor>,
  family: 'gemma2' | 'gemma3',
  bigLayers: number,
  layers: (keys: ArchKeys, nLayer: number, ropeFreqBase: number, ropeFreqScale: number) => LayerAttention[],
): GemmaShape {
  const keys = new ArchKeys(md, family);
  const nLayer = keys.count('block_count');
  const nEmbd = keys.count('embedding_length');
  const { nHead, nHeadKv, headDim } = headShape(keys, nEmbd, nLayer);
  const nVocab = vocabFromEmbedding(byName, nEmbd);
  const tied = !byName.has('output.weight');
  const ropeFreqBase = keys.opt('rope.freq_base') ?? 10000;
  const ropeFreqScale = linearRopeScale(keys);
  const nRot = keys.count('rope.dimension_count', headDim);
  const names = gemmaNames(nLayer, tied, family === 'gemma3');
  const contextLength = keys.count('context_length', 8192);
  // llama.cpp: 1.0f / sqrtf(float(n_embd / n_head)) for the 27B, the division in integers.
  const scaleDim = nLayer === bigLayers ? Math.floor(nEmbd / nHead) : headDim;
  const config: ModelConfig = {
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
    ropeStyle: 'neox',
    ropeFreqBase,
    ropeFreqScale,
    ropeAttnFactor: 1,
    nCtxOrig: contextLength,
    rmsEps: keys.need('attention.layer_norm_rms_epsilon'),
    contextLength,
    tiedOutput: tied,
    attnScale: Math.fround(1 / Math.fround(Math.sqrt(scaleDim))),
    attnSoftcap: 0,
    finalSoftcap: 0,
    embedScale: Math.fround(Math.sqrt(nEmbd)),
    layerAttention: layers(keys, nLayer, ropeFreqBase, ropeFreqScale),
    names,
    ggufNames: identityNames(names),
  };
  if (config.nRot !== headDim) throw new Error(`GGUF metadata ${keys.key('rope.dimension_count')} (${nRot}) differs from the head size ${headDim}: partial RoPE is not supported for ${family}`);
  checkCommonShapes(config, byName);
  const qDim = nHead * headDim;
  const kvDim = nHeadKv * headDim;
  for (const l of names.layers) {
    expectShape(byName, l.q, [qDim, nEmbd]);
    expectShape(byName, l.k, [kvDim, nEmbd]);
    expectShape(byName, l.v, [kvDim, nEmbd]);
    expectShape(byName, l.gate, [config.nFf, nEmbd]);
    expectShape(byName, l.up, [config.nFf, nEmbd]);
  }
  refuseExtraLayerTensors(byName, names, family);
  return { keys, config };
}

function gemma2Config(md: Readonly<Record<string, unknown>>, byName: ReadonlyMap<string, ModelTensor>): ModelConfig {
  const { keys, config } = gemmaConfig(md, byName, 'gemma2', 46, (k, nLayer, base, scale) => {
    const window = k.count('attention.sliding_window', 4096);
    const pattern = swaPattern(k, 2);
    return Array.from({ length: nLayer }, (_, il) => ({ window: swaLayer(il, pattern) ? window : 0, ropeFreqBase: base, ropeFreqScale: scale }));
  });
  const cap = (key: string, fallback: number) => {
    const v = keys.opt(key) ?? fallback;
    if (!(v > 0)) throw new Error(`GGUF metadata ${keys.key(key)} is ${v}, not a positive cap`);
    return v;
  };
  config.attnSoftcap = cap('attn_logit_softcapping', 50);
  config.finalSoftcap = cap('final_logit_softcapping', 30);
  return config;
}

/** Gemma's layer: gemma3 adds q/k norms (`normQk`) and per-layer RoPE tables. */
export function gemmaLayers(ctx: LayerContext, ropeOf: (il: number) => RopeTable, normQk: (il: number, q: Float32Array, k: Float32Array, n: number) => { q: Float32Array; k: Float32Array }): FamilyLayers {
  const c = ctx.config;
  const postNorm = (name: string | undefined, y: Float32Array, n: number, il: number) => {
    if (!name) throw new Error(`layer ${il} has no post norm`);
    return rmsNorm(y, n, c.nEmbd, ctx.weights(name), c.rmsEps);
  };
  return {
    async attention(il, x, n, start, kCache, vCache) {
      const L = c.names.layers[il];
      const h = inputNorm(ctx, L.attnNorm, x, n);
      const qkv = await separateQkv(ctx, il, h, n);
      const normed = normQk(il, qkv.q, qkv.k, n);
      qkv.q = normed.q;
      qkv.k = normed.k;
      const rope = ropeOf(il);
      rope.apply(qkv.q, n, c.nHead, c.headDim, start);
      rope.apply(qkv.k, n, c.nHeadKv, c.headDim, start);
      const o = await attendAndProject(ctx, il, qkv, n, start, kCache, vCache);
      addInPlace(x, postNorm(L.postAttnNorm, o, n, il));
    },
    async feedForward(il, x, n) {
      const L = c.names.layers[il];
      const y = await gatedFfn(ctx, L, inputNorm(ctx, L.ffnNorm, x, n), n, geglu);
      addInPlace(x, postNorm(L.postFfnNorm, y, n, il));
    },
  };
}

function gemma2Layers(ctx: LayerContext): FamilyLayers {
  const c = ctx.config;
  const rope = new RopeTable({ nRot: c.nRot, style: 'neox', freqBase: c.ropeFreqBase, freqScale: c.ropeFreqScale, factors: null, attnFactor: 1 });
  return gemmaLayers(ctx, () => rope, (_il, q, k) => ({ q, k }));
}

export const gemma2Family: FamilyModule = {
  family: 'gemma2',
  arch: 'gemma2',
  config: gemma2Config,
  layers: gemma2Layers,
};
