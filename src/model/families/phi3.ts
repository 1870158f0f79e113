// The Phi-3 family (GGUF 'phi3': Phi-3, Phi-3.5 mini/medium): llama.cpp's
// src/models/phi3.cpp. Llama's pre-norm layer with
//   - q, k, v in one matrix (attn_qkv: rows q, then k, then v), or separately;
//   - ffn_up holding the gate rows then the up rows (2·n_ff), SwiGLU of its two halves;
//   - NEOX RoPE, with LongRoPE's per-pair divisors: rope_factors_long when the context
//     exceeds rope.scaling.original_context_length (llama.cpp's get_rope_factors by
//     n_ctx), rope_factors_short otherwise; rope.scaling.attn_factor multiplies cos/sin.
// llama.cpp turns Phi-3's sliding window off (load_arch_hparams: "Phi SWA is currently
// disabled"), so it is ignored here too.
import type { ModelTensor } from '../../formats/model.ts';
import { addInPlace, RopeTable, sliceColumns, swiglu } from './blocks.ts';
import { ArchKeys, expectShape, refuseExtraLayerTensors, type LayerNames, type ModelConfig, type TensorNames } from './config.ts';
import type { FamilyLayers, FamilyModule, LayerContext } from './decoder.ts';
import { checkLlamaShapes, llamaLikeGgufConfig } from './llama.ts';
import { attendAndProject, fusedQkv, inputNorm, separateQkv } from './steps.ts';

function phi3Names(byName: ReadonlyMap<string, ModelTensor>, nLayer: number, tied: boolean): TensorNames {
  const layers = Array.from({ length: nLayer }, (_, i): LayerNames => {
    const p = `blk.${i}.`;
    const qkv = byName.has(`${p}attn_qkv.weight`) ? { qkv: `${p}attn_qkv.weight` } : { q: `${p}attn_q.weight`, k: `${p}attn_k.weight`, v: `${p}attn_v.weight` };
    return { attnNorm: `${p}attn_norm.weight`, ...qkv, o: `${p}attn_output.weight`, ffnNorm: `${p}ffn_norm.weight`, up: `${p}ffn_up.weight`, down: `${p}ffn_down.weight` };
  });
  const factors = (which: string) => (byName.has(`rope_factors_${which}.weight`) ? `rope_factors_${which}.weight` : undefined);
  return {
    tokenEmbd: 'token_embd.weight',
    outputNorm: 'output_norm.weight',
    output: tied ? 'token_embd.weight' : 'output.weight',
    ropeFactorsLong: factors('long'),
    ropeFactorsShort: factors('short'),
    layers,
  };
}

function phi3Config(md: Readonly<Record<string, unknown>>, byName: ReadonlyMap<string, ModelTensor>): ModelConfig {
  // LongRoPE's factors are tensors; a 'longrope' scaling type adds nothing else here.
  const c = llamaLikeGgufConfig(md, byName, 'phi3', 'phi3', (nLayer, tied) => phi3Names(byName, nLayer, tied), ['none', 'linear', 'longrope']);
  const keys = new ArchKeys(md, 'phi3');
  c.ropeStyle = 'neox';
  c.ropeAttnFactor = keys.opt('rope.scaling.attn_factor') ?? 1;
  c.attnScale = 1 / Math.sqrt(c.headDim);
  const n = c.names;
  if (!n.ropeFactorsLong !== !n.ropeFactorsShort) throw new Error('phi3: rope_factors_long.weight and rope_factors_short.weight come together; one is missing');
  expectShape(byName, n.ropeFactorsLong, [c.nRot / 2]);
  expectShape(byName, n.ropeFactorsShort, [c.nRot / 2]);
  checkLlamaShapes(c, byName); // and the fused tensors:
  const qkvRows = (c.nHead + 2 * c.nHeadKv) * c.headDim;
  for (const l of n.layers) {
    expectShape(byName, l.qkv, [qkvRows, c.nEmbd]);
    expectShape(byName, l.up, [2 * c.nFf, c.nEmbd]);
  }
  refuseExtraLayerTensors(byName, n, 'phi3');
  return c;
}

function phi3Layers(ctx: LayerContext): FamilyLayers {
  const c = ctx.config;
  const n = c.names;
  const table = (factors: string | undefined) =>
    new RopeTable({ nRot: c.nRot, style: 'neox', freqBase: c.ropeFreqBase, freqScale: c.ropeFreqScale, factors: factors ? ctx.weights(factors) : null, attnFactor: c.ropeAttnFactor });
  const short = table(n.ropeFactorsShort);
  const long = n.ropeFactorsLong ? table(n.ropeFactorsLong) : short;
  const kvDim = c.nHeadKv * c.headDim;
  return {
    async attention(il, x, rows, start, kCache, vCache) {
      const L = n.layers[il];
      const h = inputNorm(ctx, L.attnNorm, x, rows);
      const qkv = await (L.qkv ? fusedQkv : separateQkv)(ctx, il, h, rows);
      // The context size is the cache's: llama.cpp picks the factors by n_ctx.
      const rope = kCache.length / kvDim > c.nCtxOrig ? long : short;
      rope.apply(qkv.q, rows, c.nHead, c.headDim, start);
      rope.apply(qkv.k, rows, c.nHeadKv, c.headDim, start);
      addInPlace(x, await attendAndProject(ctx, il, qkv, rows, start, kCache, vCache));
    },
    async feedForward(il, x, rows) {
      const L = n.layers[il];
      const h = inputNorm(ctx, L.ffnNorm, x, rows);
      const gateUp = await ctx.linear(L.up, h, rows, 2 * c.nFf, c.nEmbd);
      const act = swiglu(sliceColumns(gateUp, rows, 2 * c.nFf, 0, c.nFf), sliceColumns(gateUp, rows, 2 * c.nFf, c.nFf, c.nFf));
      addInPlace(x, await ctx.linear(L.down, act, rows, c.nEmbd, c.nFf));
    },
  };
}

export const phi3Family: FamilyModule = {
  family: 'phi3',
  arch: 'phi3',
  config: phi3Config,
  layers: phi3Layers,
};
