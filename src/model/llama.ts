// The forward passes' public face, under the names the rest of quantlab has used since
// there was only Llama: llamaConfig / LlamaModel / LlamaConfig now cover every family of
// src/model/families/ (llama incl. Llama 3 and Mistral, qwen2, qwen3, gemma2, gemma3,
// phi3), each one small module composed from shared blocks; the family is picked once,
// from the GGUF's general.architecture (families/index.ts: modelConfig, createModel).
// A safetensors checkpoint runs as Llama from its config.json (HF names and q/k order).
//
// The Llama graph itself (families/llama.ts) follows llama.cpp's src/models/llama.cpp
// (pinned commit, docs/contracts.md): RMSNorm -> q,k,v -> RoPE -> grouped-query
// attention over a KV cache (softmax(q·k/sqrt(head_dim))) -> output projection +
// residual -> RMSNorm -> SwiGLU FFN (down(silu(gate(x)) * up(x))) + residual; final
// RMSNorm; output matrix, or the token embedding when the model ties them.
//
// RoPE. llama.cpp's LLAMA rope type is ggml's NORM mode: it rotates adjacent pairs
// (x[2i], x[2i+1]) by pos·base^(-2i/n_rot) (ggml-cpu ops.cpp, rope_cache_init /
// rotate_pairs). convert_hf_to_gguf.py permutes the rows of q and k so that this equals
// HF's rotate_half on the HF weights, which pairs (x[i], x[i + n_rot/2]) (NeoX style).
// So a Llama GGUF runs with 'norm' pairs and a safetensors checkpoint (q/k rows in HF
// order) with 'neox' pairs, each on its weights as stored: no permutation on load, and
// the tensor a hook sees is the tensor in the file. qwen2/qwen3/gemma/phi3 are NEOX in
// llama.cpp (llama_model_rope_type), and their converter does not permute.
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
// the rest (families/linear.ts). Embedding rows, norm weights and biases are read from
// the WeightProvider directly (llama.cpp's get_rows dequantizes rows exactly; norms stay
// f32; a bias is added on the CPU after its product).
import type { ModelIndex } from '../formats/model.ts';
import type { ModelConfig } from './families/config.ts';
import { DecoderModel } from './families/decoder.ts';
import { modelConfig, modelWeightNames } from './families/index.ts';

export type { Family, LayerNames, LayerAttention, ModelConfig, RopeStyle, TensorNames } from './families/config.ts';
export { ggufTensorNames, hfTensorNames, type LlamaLayerNames } from './families/llama.ts';
export { rmsNorm } from './families/blocks.ts';
export { argmax, generateGreedy, KvCache, type ForwardOptions, type GreedyOptions } from './families/decoder.ts';
export { cpuLinear, matmulF32, type Linear, type WeightProvider } from './families/linear.ts';
export { createModel, modelConfig, modelWeightNames, SUPPORTED_ARCHITECTURES } from './families/index.ts';

/** Any family's config (the name predates the families). */
export type LlamaConfig = ModelConfig;
export type LlamaTensorNames = import('./families/config.ts').TensorNames;

/** The architecture of a model from its GGUF metadata (any family) or HF config.json (Llama). */
export function llamaConfig(model: ModelIndex): ModelConfig {
  return modelConfig(model);
}

/** Every tensor name the forward pass reads (each once). */
export function llamaWeightNames(c: ModelConfig): string[] {
  return modelWeightNames(c);
}

/** The forward pass of any family (the name predates the families): createModel's class. */
export const LlamaModel = DecoderModel;
export type LlamaModel = DecoderModel;
