// A small synthetic Llama GGUF for tests: llama.cpp's own metadata keys and tensor names
// (as convert_hf_to_gguf.py writes them), random weights from a seeded generator, an
// optional byte-level SentencePiece-style vocabulary. Big enough that K-quants and
// llama.cpp's per-tensor rules really apply (rows of 256/768...), small enough to
// quantize in milliseconds.
// It carries its own minimal GGUF v3 writer so that tests do not depend on the
// project's writer (src/formats/gguf/write.ts) while that is being written.
// Test support only: nothing under src/ outside tests imports this.
import { writeFileSync } from 'node:fs';
import { f32ToF16Bits } from '../formats/float16.ts';
import { GGML_TYPE, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VALUE_TYPE } from '../formats/gguf/constants.ts';
import { mulberry32Uint } from './random.ts';

export interface SyntheticLlamaOptions {
  nLayer: number;
  nEmbd: number;
  nFf: number;
  nHead: number;
  nHeadKv: number;
  nVocab: number;
  /** No output.weight: llama.cpp then uses token_embd for the output (and quantizes it as such). */
  tiedEmbeddings?: boolean;
  /** Type of the 2-D and 3-D weights; norms stay f32 (default 'f32'). */
  weightType?: 'f32' | 'f16';
  /** Mixtral-style experts (blk.N.ffn_{gate,up,down}_exps, ffn_gate_inp) when > 0. */
  nExpert?: number;
  nExpertUsed?: number;
  /** Add Llama-3's 1-D rope_freqs.weight. */
  ropeFreqs?: boolean;
  /**
   * Outer dimension (ne1) of every matrix in place of the model's. The row lengths, which
   * are all that llama.cpp's type selection looks at, stay; the file is then only good
   * for quantizer tests (llama.cpp's quantizer does not check shapes; inference would).
   */
  compactRows?: number;
  seed?: number;
  /**
   * Activation outliers as the SmoothQuant paper shows them: these channels of every
   * attn_norm and ffn_norm weight multiplied by `factor`, so that the inputs of q/k/v and
   * gate/up carry a few channels `factor` x the rest.
   */
  normOutliers?: { channels: readonly number[]; factor: number };
}

export interface SyntheticTensor {
  name: string;
  /** ggml order: ne[0] is the row length. */
  ne: number[];
  type: 'f32' | 'f16';
}

/** The tensors of the model, in the order convert_hf_to_gguf.py writes them. */
export function syntheticLlamaTensors(o: SyntheticLlamaOptions): SyntheticTensor[] {
  const headDim = o.nEmbd / o.nHead;
  const w = o.weightType ?? 'f32';
  const rows = (n: number) => o.compactRows ?? n;
  const out: SyntheticTensor[] = [{ name: 'token_embd.weight', ne: [o.nEmbd, rows(o.nVocab)], type: w }];
  if (o.ropeFreqs) out.push({ name: 'rope_freqs.weight', ne: [headDim / 2], type: 'f32' });
  for (let i = 0; i < o.nLayer; i++) {
    const p = `blk.${i}.`;
    out.push(
      { name: `${p}attn_norm.weight`, ne: [o.nEmbd], type: 'f32' },
      { name: `${p}attn_q.weight`, ne: [o.nEmbd, rows(o.nEmbd)], type: w },
      { name: `${p}attn_k.weight`, ne: [o.nEmbd, rows(headDim * o.nHeadKv)], type: w },
      { name: `${p}attn_v.weight`, ne: [o.nEmbd, rows(headDim * o.nHeadKv)], type: w },
      { name: `${p}attn_output.weight`, ne: [o.nEmbd, rows(o.nEmbd)], type: w },
      { name: `${p}ffn_norm.weight`, ne: [o.nEmbd], type: 'f32' },
    );
    if (o.nExpert) {
      out.push(
        { name: `${p}ffn_gate_inp.weight`, ne: [o.nEmbd, o.nExpert], type: 'f32' },
        { name: `${p}ffn_gate_exps.weight`, ne: [o.nEmbd, rows(o.nFf), o.nExpert], type: w },
        { name: `${p}ffn_down_exps.weight`, ne: [o.nFf, rows(o.nEmbd), o.nExpert], type: w },
        { name: `${p}ffn_up_exps.weight`, ne: [o.nEmbd, rows(o.nFf), o.nExpert], type: w },
      );
    } else {
      out.push(
        { name: `${p}ffn_gate.weight`, ne: [o.nEmbd, rows(o.nFf)], type: w },
        { name: `${p}ffn_down.weight`, ne: [o.nFf, rows(o.nEmbd)], type: w },
        { name: `${p}ffn_up.weight`, ne: [o.nEmbd, rows(o.nFf)], type: w },
      );
    }
  }
  out.push({ name: 'output_norm.weight', ne: [o.nEmbd], type: 'f32' });
  if (!o.tiedEmbeddings) out.push({ name: 'output.weight', ne: [o.nEmbd, rows(o.nVocab)], type: w });
  return out;
}

type KvValue =
  | { type: 'u32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'str'; value: string }
  | { type: 'str[]'; value: string[] }
  | { type: 'f32[]'; value: number[] }
  | { type: 'i32[]'; value: number[] };

/** A byte-level vocabulary: <unk> <s> </s>, the 256 byte tokens, then a few words. */
function vocabulary(nVocab: number): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3]; // llama_token_type: UNKNOWN, CONTROL, CONTROL
  for (let b = 0; b < 256 && tokens.length < nVocab; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6); // BYTE
  }
  for (let i = 0; tokens.length < nVocab; i++) {
    tokens.push(`\u2581w${i}`);
    types.push(1); // NORMAL
  }
  return { tokens, scores: tokens.map((_, i) => -i), types };
}

function metadata(o: SyntheticLlamaOptions): [string, KvValue][] {
  const u32 = (value: number): KvValue => ({ type: 'u32', value });
  const kv: [string, KvValue][] = [
    ['general.architecture', { type: 'str', value: 'llama' }],
    ['general.name', { type: 'str', value: 'quantlab synthetic llama' }],
    ['llama.context_length', u32(256)],
    ['llama.embedding_length', u32(o.nEmbd)],
    ['llama.block_count', u32(o.nLayer)],
    ['llama.feed_forward_length', u32(o.nFf)],
    ['llama.rope.dimension_count', u32(o.nEmbd / o.nHead)],
    ['llama.attention.head_count', u32(o.nHead)],
    ['llama.attention.head_count_kv', u32(o.nHeadKv)],
    ['llama.attention.layer_norm_rms_epsilon', { type: 'f32', value: 1e-5 }],
  ];
  if (o.nExpert) {
    kv.push(['llama.expert_count', u32(o.nExpert)], ['llama.expert_used_count', u32(o.nExpertUsed ?? 2)]);
  }
  const vocab = vocabulary(o.nVocab);
  kv.push(
    ['tokenizer.ggml.model', { type: 'str', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'str[]', value: vocab.tokens }],
    ['tokenizer.ggml.scores', { type: 'f32[]', value: vocab.scores }],
    ['tokenizer.ggml.token_type', { type: 'i32[]', value: vocab.types }],
    ['tokenizer.ggml.unknown_token_id', u32(0)],
    ['tokenizer.ggml.bos_token_id', u32(1)],
    ['tokenizer.ggml.eos_token_id', u32(2)],
  );
  return kv;
}

class Bytes {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  u64(v: number): void {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  f32(v: number): void {
    this.reserve(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  str(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  pad(align: number): void {
    const n = (align - (this.length % align)) % align;
    this.reserve(n);
    this.length += n; // the buffer is zero-filled
  }
  bytes(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

function writeKv(b: Bytes, key: string, v: KvValue): void {
  const T = GGUF_VALUE_TYPE;
  b.str(key);
  switch (v.type) {
    case 'u32': b.u32(T.UINT32); b.u32(v.value); break;
    case 'f32': b.u32(T.FLOAT32); b.f32(v.value); break;
    case 'str': b.u32(T.STRING); b.str(v.value); break;
    case 'str[]': b.u32(T.ARRAY); b.u32(T.STRING); b.u64(v.value.length); v.value.forEach((s) => b.str(s)); break;
    case 'f32[]': b.u32(T.ARRAY); b.u32(T.FLOAT32); b.u64(v.value.length); v.value.forEach((x) => b.f32(x)); break;
    case 'i32[]': b.u32(T.ARRAY); b.u32(T.INT32); b.u64(v.value.length); v.value.forEach((x) => b.i32(x)); break;
  }
}

/** Seeded normal(0, std) values: mulberry32 + Box-Muller. */
function gaussian(seed: number, std: number): () => number {
  const next = mulberry32Uint(seed);
  const uniform = () => (next() + 0.5) / 2 ** 32;
  return () => std * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** The GGUF file's bytes. */
export function buildSyntheticLlama(o: SyntheticLlamaOptions): Uint8Array {
  const tensors = syntheticLlamaTensors(o);
  const kv = metadata(o);
  const b = new Bytes();
  b.u32(GGUF_MAGIC);
  b.u32(3);
  b.u64(tensors.length);
  b.u64(kv.length);
  for (const [key, value] of kv) writeKv(b, key, value);
  const sizes = tensors.map((t) => t.ne.reduce((a, n) => a * n, 1) * (t.type === 'f32' ? 4 : 2));
  let offset = 0;
  tensors.forEach((t, i) => {
    b.str(t.name);
    b.u32(t.ne.length);
    t.ne.forEach((n) => b.u64(n));
    b.u32(t.type === 'f32' ? GGML_TYPE.F32 : GGML_TYPE.F16);
    b.u64(offset);
    offset += sizes[i] + ((GGUF_DEFAULT_ALIGNMENT - (sizes[i] % GGUF_DEFAULT_ALIGNMENT)) % GGUF_DEFAULT_ALIGNMENT);
  });
  b.pad(GGUF_DEFAULT_ALIGNMENT);
  const header = b.bytes();
  const file = new Uint8Array(header.length + offset);
  file.set(header);
  const random = gaussian(o.seed ?? 1, 0.02);
  let at = header.length; // a multiple of the alignment, so typed views line up
  tensors.forEach((t, i) => {
    const n = sizes[i] / (t.type === 'f32' ? 4 : 2);
    const norm = t.ne.length === 1;
    if (t.type === 'f32') {
      const v = new Float32Array(file.buffer, at, n);
      for (let j = 0; j < n; j++) v[j] = norm ? 1 + random() : random();
      if (o.normOutliers && /^blk\.\d+\.(attn|ffn)_norm\.weight$/.test(t.name)) for (const c of o.normOutliers.channels) v[c] *= o.normOutliers.factor;
    } else {
      const v = new Uint16Array(file.buffer, at, n);
      for (let j = 0; j < n; j++) v[j] = f32ToF16Bits(norm ? 1 + random() : random());
    }
    at += sizes[i] + ((GGUF_DEFAULT_ALIGNMENT - (sizes[i] % GGUF_DEFAULT_ALIGNMENT)) % GGUF_DEFAULT_ALIGNMENT);
  });
  return file;
}

export function writeSyntheticLlama(path: string, o: SyntheticLlamaOptions): void {
  writeFileSync(path, buildSyntheticLlama(o));
}
