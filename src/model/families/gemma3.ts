// The Gemma 3 family, text model (GGUF 'gemma3'): llama.cpp's src/models/gemma3.cpp
// (iswa) and its hparams. Gemma 2's layer (embeddings · sqrt(n_embd), post-attention and
// post-FFN norms, GeGLU) with a per-head RMSNorm of q and k before RoPE, no soft-capping,
// and local/global layers: five sliding-window layers (attention.sliding_window, required)
// then one global (swa pattern 6, or attention.sliding_window_pattern where given). Local layers rotate with base 10000 and no scaling
// (rope_freq_base_train_swa; rope.freq_base_swa where the file has it); global layers
// with rope.freq_base and the linear rope.scaling.factor (8 on Gemma 3 4B and up).
import type { ModelTensor } from '../../formats/model.ts';
import { RopeTable } from './blocks.ts';
import type { ModelConfig } from './config.ts';
import type { FamilyLayers, FamilyModule, LayerContext } from './decoder.ts';
import { gemmaConfig, gemmaLayers, swaLayer, swaPattern } from './gemma2.ts';
import { normHeads } from './steps.ts';

function gemma3Config(md: Readonly<Record<string, unknown>>, byName: ReadonlyMap<string, ModelTensor>): ModelConfig {
  return gemmaConfig(md, byName, 'gemma3', 62, (keys, nLayer, base, scale) => {
    const window = keys.count('attention.sliding_window');
    const localBase = keys.opt('rope.freq_base_swa') ?? 10000;
    const pattern = swaPattern(keys, 6);
    return Array.from({ length: nLayer }, (_, il) =>
      swaLayer(il, pattern) ? { window, ropeFreqBase: localBase, ropeFreqScale: 1 } : { window: 0, ropeFreqBase: base, ropeFreqScale: scale },
    );
  }).config;
}

function gemma3Layers(ctx: LayerContext): FamilyLayers {
  const c = ctx.config;
  const tables = new Map<string, RopeTable>();
  const ropes = c.layerAttention.map(({ ropeFreqBase, ropeFreqScale }) => {
    const key = `${ropeFreqBase}/${ropeFreqScale}`;
    let t = tables.get(key);
    if (!t) tables.set(key, (t = new RopeTable({ nRot: c.nRot, style: 'neox', freqBase: ropeFreqBase, freqScale: ropeFreqScale, factors: null, attnFactor: 1 })));
    return t;
  });
  return gemmaLayers(
    ctx,
    (il) => ropes[il],
    (il, q, k, n) => {
      const L = c.names.layers[il];
      return { q: normHeads(ctx, L.qNorm, q, n, c.nHead, il), k: normHeads(ctx, L.kNorm, k, n, c.nHeadKv, il) };
    },
  );
}

export const gemma3Family: FamilyModule = {
  family: 'gemma3',
  arch: 'gemma3',
  config: gemma3Config,
  layers: gemma3Layers,
};
