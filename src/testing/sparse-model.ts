// Models larger than memory, for tests: sparse files (the filesystem stores only what was
// written) with the header of a real model, Llama 3.1 8B (config.json of
// meta-llama/Llama-3.1-8B: 32 layers, 4096 wide, FFN 14336, 32 heads, 8 KV heads, vocabulary
// 128256), in GGUF (Q8_0 with an F16 output matrix, as `llama-quantize --output-tensor-type
// f16` writes: 9.0 GB) and in safetensors (BF16: 16.1 GB). Each tensor's first bytes hold
// values (a "stamp", to check that copies land where they belong); chosen tensors are
// written whole with real-looking values; the rest is holes, which read back as zeros.
// Test support only.
import { open } from 'node:fs/promises';
import { f32ToBf16Bits, f32ToF16Bits } from '../formats/float16.ts';
import { GGML_TYPE, GGML_TYPES, GGUF_VALUE_TYPE as T } from '../formats/gguf/constants.ts';
import { ggufArray, ggufEntry } from '../formats/gguf/metadata.ts';
import { type GgufLayout, planGguf } from '../formats/gguf/write.ts';
import { rng } from './random.ts';

export const LLAMA31_8B = {
  layers: 32, embd: 4096, ff: 14336, heads: 32, headsKv: 8, vocab: 128256, contextLength: 131072,
} as const;

/** Bytes of each tensor's stamp. */
export const STAMP_BYTES = 4096;

type Random = () => number;

/** Roughly normal values (sum of uniforms), scaled like trained weights. */
function gaussian(r: Random, scale: number): number {
  return (r() + r() + r() + r() - 2) * scale;
}

/** `bytes` bytes of valid data of a ggml type (Q8_0 blocks with real scales, or floats). */
export function weightBytes(type: number, bytes: number, r: Random): Uint8Array {
  const out = new Uint8Array(bytes);
  const view = new DataView(out.buffer);
  if (type === GGML_TYPE.Q8_0) {
    for (let at = 0; at + 34 <= bytes; at += 34) {
      view.setUint16(at, f32ToF16Bits(0.0005 + r() * 0.002), true);
      for (let i = 0; i < 32; i++) view.setInt8(at + 2 + i, Math.round(gaussian(r, 60)));
    }
  } else if (type === GGML_TYPE.F16 || type === GGML_TYPE.BF16) {
    const bits = type === GGML_TYPE.F16 ? f32ToF16Bits : f32ToBf16Bits;
    for (let at = 0; at + 2 <= bytes; at += 2) view.setUint16(at, bits(gaussian(r, 0.02)), true);
  } else if (type === GGML_TYPE.F32) {
    for (let at = 0; at + 4 <= bytes; at += 4) view.setFloat32(at, 1 + gaussian(r, 0.1), true);
  } else throw new Error(`no test data for ggml type ${type}`);
  return out;
}

interface PlannedTensor {
  /** GGUF name, and the Hugging Face one. */
  readonly gguf: string;
  readonly hf: string;
  /** Row-major shape. */
  readonly shape: readonly number[];
  /** GGUF type in the GGUF file (safetensors: BF16 always). */
  readonly ggufType: number;
}

/** Shape options: fewer layers (a smaller file), the output matrix's GGUF type. */
export interface LlamaShapeOptions {
  readonly layers?: number;
  readonly outputType?: number;
  /** No output matrix: the token embeddings serve (tie_word_embeddings, as Llama 3.2). */
  readonly tied?: boolean;
}

function llamaTensors(options: LlamaShapeOptions = {}): PlannedTensor[] {
  const { embd, ff, heads, headsKv, vocab } = LLAMA31_8B;
  const layers = options.layers ?? LLAMA31_8B.layers;
  const kv = (embd / heads) * headsKv;
  const out: PlannedTensor[] = [
    { gguf: 'token_embd.weight', hf: 'model.embed_tokens.weight', shape: [vocab, embd], ggufType: GGML_TYPE.Q8_0 },
  ];
  for (let b = 0; b < layers; b++) {
    const m = (gguf: string, hf: string, shape: number[], ggufType: number = GGML_TYPE.Q8_0) =>
      out.push({ gguf: `blk.${b}.${gguf}`, hf: `model.layers.${b}.${hf}`, shape, ggufType });
    m('attn_norm.weight', 'input_layernorm.weight', [embd], GGML_TYPE.F32);
    m('ffn_down.weight', 'mlp.down_proj.weight', [embd, ff]);
    m('ffn_gate.weight', 'mlp.gate_proj.weight', [ff, embd]);
    m('ffn_up.weight', 'mlp.up_proj.weight', [ff, embd]);
    m('ffn_norm.weight', 'post_attention_layernorm.weight', [embd], GGML_TYPE.F32);
    m('attn_k.weight', 'self_attn.k_proj.weight', [kv, embd]);
    m('attn_output.weight', 'self_attn.o_proj.weight', [embd, embd]);
    m('attn_q.weight', 'self_attn.q_proj.weight', [embd, embd]);
    m('attn_v.weight', 'self_attn.v_proj.weight', [kv, embd]);
  }
  out.push({ gguf: 'output_norm.weight', hf: 'model.norm.weight', shape: [embd], ggufType: GGML_TYPE.F32 });
  if (!options.tied) out.push({ gguf: 'output.weight', hf: 'lm_head.weight', shape: [vocab, embd], ggufType: options.outputType ?? GGML_TYPE.F16 });
  return out;
}

/** The GGUF header llama.cpp's converter and quantizer write for this model (the keys that matter). */
export function llamaGgufLayout(options: LlamaShapeOptions = {}): GgufLayout {
  const { embd, ff, heads, headsKv, vocab, contextLength } = LLAMA31_8B;
  const layers = options.layers ?? LLAMA31_8B.layers;
  const tokens = Array.from({ length: vocab }, (_, i) => (i < 256 ? `<0x${i.toString(16).toUpperCase().padStart(2, '0')}>` : `tok${i}`));
  return planGguf({
    metadata: [
      ggufEntry('general.architecture', T.STRING, 'llama'),
      ggufEntry('general.type', T.STRING, 'model'),
      ggufEntry('general.name', T.STRING, 'Llama 3.1 8B (sparse test file)'),
      ggufEntry('llama.block_count', T.UINT32, layers),
      ggufEntry('llama.context_length', T.UINT32, contextLength),
      ggufEntry('llama.embedding_length', T.UINT32, embd),
      ggufEntry('llama.feed_forward_length', T.UINT32, ff),
      ggufEntry('llama.attention.head_count', T.UINT32, heads),
      ggufEntry('llama.attention.head_count_kv', T.UINT32, headsKv),
      ggufEntry('llama.rope.freq_base', T.FLOAT32, 500000),
      ggufEntry('llama.attention.layer_norm_rms_epsilon', T.FLOAT32, 1e-5),
      ggufEntry('llama.vocab_size', T.UINT32, vocab),
      ggufEntry('llama.rope.dimension_count', T.UINT32, embd / heads),
      ggufEntry('general.file_type', T.UINT32, 7),
      ggufEntry('tokenizer.ggml.model', T.STRING, 'gpt2'),
      ggufEntry('tokenizer.ggml.tokens', T.ARRAY, ggufArray(T.STRING, tokens)),
      ggufEntry('tokenizer.ggml.token_type', T.ARRAY, ggufArray(T.INT32, new Int32Array(vocab).fill(1))),
      ggufEntry('tokenizer.ggml.bos_token_id', T.UINT32, 128000),
      ggufEntry('general.quantization_version', T.UINT32, 2),
    ],
    tensors: llamaTensors(options).map((t) => ({ name: t.gguf, type: t.ggufType, ne: [...t.shape].reverse() })),
  });
}

/** Writes `path`: the header, each tensor's stamp, `whole` tensors in full; holes elsewhere. */
export async function writeSparseLlamaGguf(path: string, whole: readonly string[], seed = 1, options: LlamaShapeOptions = {}): Promise<GgufLayout> {
  const layout = llamaGgufLayout(options);
  const r = rng(seed);
  const file = await open(path, 'w');
  try {
    await file.write(layout.header, 0, layout.header.length, 0);
    for (const t of layout.tensors) {
      const length = whole.includes(t.name) ? t.nbytes : Math.min(STAMP_BYTES - (STAMP_BYTES % GGML_TYPES.get(t.type)!.typeSize), t.nbytes);
      const data = weightBytes(t.type, length, r);
      await file.write(data, 0, data.length, layout.dataOffset + t.offset);
    }
    await file.truncate(layout.totalBytes);
  } finally {
    await file.close();
  }
  return layout;
}

/** config.json of Llama 3.1 8B (the keys the converter reads). */
export function llamaConfigJson(options: LlamaShapeOptions = {}): string {
  const { embd, ff, heads, headsKv, vocab, contextLength } = LLAMA31_8B;
  const layers = options.layers ?? LLAMA31_8B.layers;
  return JSON.stringify({
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: embd, intermediate_size: ff,
    num_attention_heads: heads, num_hidden_layers: layers, num_key_value_heads: headsKv, vocab_size: vocab,
    max_position_embeddings: contextLength, rms_norm_eps: 1e-5, rope_theta: 500000, tie_word_embeddings: options.tied ?? false,
    torch_dtype: 'bfloat16', bos_token_id: 128000, eos_token_id: 128001,
  });
}

export interface SparseSafetensors {
  readonly dataOffset: number;
  readonly size: number;
  /** HF name -> absolute offset and byte size. */
  readonly tensors: ReadonlyMap<string, { offset: number; nbytes: number; shape: readonly number[] }>;
}

/** The model as one BF16 safetensors file (tensors in name order, as safetensors' Python writer sorts them). */
export async function writeSparseLlamaSafetensors(path: string, whole: readonly string[], seed = 2, options: LlamaShapeOptions = {}): Promise<SparseSafetensors> {
  const planned = llamaTensors(options).sort((a, b) => (a.hf < b.hf ? -1 : a.hf > b.hf ? 1 : 0));
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let at = 0;
  const spans: [PlannedTensor, number, number][] = [];
  for (const t of planned) {
    const nbytes = t.shape.reduce((n, d) => n * d, 1) * 2;
    header[t.hf] = { dtype: 'BF16', shape: t.shape, data_offsets: [at, at + nbytes] };
    spans.push([t, at, nbytes]);
    at += nbytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8); // the Python writer pads the header to 8
  const text = new TextEncoder().encode(json);
  const dataOffset = 8 + text.length;
  const r = rng(seed);
  const file = await open(path, 'w');
  const tensors = new Map<string, { offset: number; nbytes: number; shape: readonly number[] }>();
  try {
    const prefix = new Uint8Array(8);
    new DataView(prefix.buffer).setBigUint64(0, BigInt(text.length), true);
    await file.write(prefix, 0, 8, 0);
    await file.write(text, 0, text.length, 8);
    for (const [t, begin, nbytes] of spans) {
      const data = weightBytes(GGML_TYPE.BF16, whole.includes(t.hf) ? nbytes : Math.min(STAMP_BYTES, nbytes), r);
      await file.write(data, 0, data.length, dataOffset + begin);
      tensors.set(t.hf, { offset: dataOffset + begin, nbytes, shape: t.shape });
    }
    await file.truncate(dataOffset + at);
  } finally {
    await file.close();
  }
  return { dataOffset, size: dataOffset + at, tensors };
}
