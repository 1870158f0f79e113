// The Qwen3 family (GGUF 'qwen3', dense): llama.cpp's src/models/qwen3.cpp. Llama's layer
// with a per-head RMSNorm of q and of k (attn_q_norm / attn_k_norm, weights of head_dim)
// before NEOX RoPE, and no biases.
import type { ModelTensor } from '../../formats/model.ts';
import { addInPlace, swiglu } from './blocks.ts';
import { refuseExtraLayerTensors, type ModelConfig } from './config.ts';
import type { FamilyLayers, FamilyModule, LayerContext } from './decoder.ts';
import { checkLlamaShapes, ggufTensorNames, globalRope, llamaLikeGgufConfig } from './llama.ts';
import { attendAndProject, gatedFfn, inputNorm, normHeads, separateQkv } from './steps.ts';

function qwen3Config(md: Readonly<Record<string, unknown>>, byName: ReadonlyMap<string, ModelTensor>): ModelConfig {
  const c = llamaLikeGgufConfig(md, byName, 'qwen3', 'qwen3', (nLayer, tied) => {
    const names = ggufTensorNames(nLayer, tied, false);
    return { ...names, layers: names.layers.map((l, i) => ({ ...l, qNorm: `blk.${i}.attn_q_norm.weight`, kNorm: `blk.${i}.attn_k_norm.weight` })) };
  });
  c.ropeStyle = 'neox';
  checkLlamaShapes(c, byName);
  refuseExtraLayerTensors(byName, c.names, 'qwen3');
  return c;
}

function qwen3Layers(ctx: LayerContext): FamilyLayers {
  const c = ctx.config;
  const rope = globalRope(ctx);
  return {
    async attention(il, x, n, start, kCache, vCache) {
      const L = c.names.layers[il];
      const h = inputNorm(ctx, L.attnNorm, x, n);
      const qkv = await separateQkv(ctx, il, h, n);
      qkv.q = normHeads(ctx, L.qNorm, qkv.q, n, c.nHead, il);
      qkv.k = normHeads(ctx, L.kNorm, qkv.k, n, c.nHeadKv, il);
      rope.apply(qkv.q, n, c.nHead, c.headDim, start);
      rope.apply(qkv.k, n, c.nHeadKv, c.headDim, start);
      addInPlace(x, await attendAndProject(ctx, il, qkv, n, start, kCache, vCache));
    },
    async feedForward(il, x, n) {
      const L = c.names.layers[il];
      addInPlace(x, await gatedFfn(ctx, L, inputNorm(ctx, L.ffnNorm, x, n), n, swiglu));
    },
  };
}

export const qwen3Family: FamilyModule = {
  family: 'qwen3',
  arch: 'qwen3',
  config: qwen3Config,
  layers: qwen3Layers,
};
