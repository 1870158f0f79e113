// The Qwen2 family (GGUF 'qwen2': Qwen2, Qwen2.5): llama.cpp's src/models/qwen2.cpp.
// Llama's layer with biases on q, k and v (added after their products) and NEOX RoPE
// (rotate_half pairs: the converter does not permute q/k rows for qwen2). Tied
// embeddings when output.weight is absent (the small Qwen2.5 models).
import type { ModelTensor } from '../../formats/model.ts';
import { refuseExtraLayerTensors, type ModelConfig, type TensorNames } from './config.ts';
import type { FamilyModule } from './decoder.ts';
import { ggufTensorNames, llamaLayers, llamaLikeGgufConfig, checkLlamaShapes } from './llama.ts';

/** Llama's names plus blk.N.attn_{q,k,v}.bias where the file has them. */
function qwen2Names(byName: ReadonlyMap<string, ModelTensor>, nLayer: number, tied: boolean): TensorNames {
  const names = ggufTensorNames(nLayer, tied, false);
  const bias = (i: number, w: string) => (byName.has(`blk.${i}.${w}.bias`) ? `blk.${i}.${w}.bias` : undefined);
  return {
    ...names,
    layers: names.layers.map((l, i) => ({ ...l, qBias: bias(i, 'attn_q'), kBias: bias(i, 'attn_k'), vBias: bias(i, 'attn_v') })),
  };
}

function qwen2Config(md: Readonly<Record<string, unknown>>, byName: ReadonlyMap<string, ModelTensor>): ModelConfig {
  const c = llamaLikeGgufConfig(md, byName, 'qwen2', 'qwen2', (nLayer, tied) => qwen2Names(byName, nLayer, tied));
  c.ropeStyle = 'neox';
  checkLlamaShapes(c, byName);
  refuseExtraLayerTensors(byName, c.names, 'qwen2');
  return c;
}

export const qwen2Family: FamilyModule = {
  family: 'qwen2',
  arch: 'qwen2',
  config: qwen2Config,
  layers: llamaLayers,
};
