// A random model of Qwen2.5-0.5B's shape as a GGUF (qwen2: 24 layers, n_embd 896, 14 heads /
// 2 KV heads of 64, n_ff 4864, vocabulary 151,936, tied embeddings, q/k/v biases), F32 tensors
// (~2 GB) streamed to disk tensor by tensor from a seed, so writing it holds one tensor at a
// time. The vocabulary is stories260K's 512 SentencePiece tokens padded with never-matched
// filler tokens to 151,936 (llama.cpp and quantlab both load it). Bench support only.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { GGML_TYPE, GGUF_VALUE_TYPE as T } from '../src/formats/gguf/constants.ts';
import { ggufArray, ggufEntry, type GgufArray, type GgufMetadataEntry } from '../src/formats/gguf/metadata.ts';
import { planGguf, writeGguf } from '../src/formats/gguf/write.ts';
import { loadModel } from '../src/formats/model.ts';
import { fileSource } from '../src/formats/node-source.ts';
import { FIXTURE_MODELS } from '../src/formats/testing.ts';

export interface Shape {
  nLayer: number;
  nEmbd: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  nFf: number;
  nVocab: number;
}

/** Qwen2.5-0.5B's config.json (hidden_size 896, num_hidden_layers 24, ...). */
export const QWEN25_05B: Shape = { nLayer: 24, nEmbd: 896, nHead: 14, nHeadKv: 2, headDim: 64, nFf: 4864, nVocab: 151936 };

interface Tensor {
  name: string;
  ne: number[];
  /** Values: uniform in ±scale·sqrt(3) (standard deviation `scale`) around `mean`. */
  mean: number;
  scale: number;
}

export function shapeTensors(s: Shape): Tensor[] {
  const q = s.nHead * s.headDim;
  const kv = s.nHeadKv * s.headDim;
  const m = (name: string, rows: number, cols: number): Tensor => ({ name, ne: [cols, rows], mean: 0, scale: 1 / Math.sqrt(cols) });
  const v = (name: string, n: number, mean: number, scale: number): Tensor => ({ name, ne: [n], mean, scale });
  // Standard deviation 0.02 (Hugging Face's initializer_range): tied to the output, larger
  // embeddings would give logits in the hundreds and a meaningless perplexity.
  const out: Tensor[] = [{ name: 'token_embd.weight', ne: [s.nEmbd, s.nVocab], mean: 0, scale: 0.02 }];
  for (let i = 0; i < s.nLayer; i++) {
    const p = `blk.${i}.`;
    out.push(v(`${p}attn_norm.weight`, s.nEmbd, 1, 0.1), m(`${p}attn_q.weight`, q, s.nEmbd), m(`${p}attn_k.weight`, kv, s.nEmbd), m(`${p}attn_v.weight`, kv, s.nEmbd));
    out.push(v(`${p}attn_q.bias`, q, 0, 0.5), v(`${p}attn_k.bias`, kv, 0, 0.5), v(`${p}attn_v.bias`, kv, 0, 0.5), m(`${p}attn_output.weight`, s.nEmbd, q));
    out.push(v(`${p}ffn_norm.weight`, s.nEmbd, 1, 0.1), m(`${p}ffn_gate.weight`, s.nFf, s.nEmbd), m(`${p}ffn_up.weight`, s.nFf, s.nEmbd), m(`${p}ffn_down.weight`, s.nEmbd, s.nFf));
  }
  out.push(v('output_norm.weight', s.nEmbd, 1, 0.1));
  return out;
}

/** Seeded xorshift32 values of one tensor (uniform: generating 500M Gaussians would take minutes). */
function values(t: Tensor, seed: number): Float32Array {
  const n = t.ne.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  const k = (2 * Math.sqrt(3) * t.scale) / 4294967296;
  const base = t.mean - Math.sqrt(3) * t.scale;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = base + (x >>> 0) * k;
  }
  return out;
}

async function vocabulary(nVocab: number): Promise<GgufMetadataEntry[]> {
  const m = await loadModel([await fileSource(join(FIXTURE_MODELS, 'stories260K.gguf'))]);
  return (m.ggufMetadata ?? [])
    .filter((e) => e.key.startsWith('tokenizer.'))
    .map((e) => {
      const a = e.value as GgufArray;
      if (e.key === 'tokenizer.ggml.tokens') return ggufEntry(e.key, T.ARRAY, ggufArray(T.STRING, [...(a.items as string[]), ...Array.from({ length: nVocab - a.items.length }, (_, i) => `<filler_${i}>`)]));
      if (e.key === 'tokenizer.ggml.scores') return ggufEntry(e.key, T.ARRAY, ggufArray(T.FLOAT32, Float32Array.from([...(a.items as Iterable<number>), ...new Array<number>(nVocab - a.items.length).fill(-1e6)])));
      if (e.key === 'tokenizer.ggml.token_type') return ggufEntry(e.key, T.ARRAY, ggufArray(T.INT32, Int32Array.from([...(a.items as Iterable<number>), ...new Array<number>(nVocab - a.items.length).fill(1)])));
      return e;
    });
}

/** Writes the model to `path`; returns its size in bytes. */
export async function writeShapeGguf(path: string, s: Shape, seed: number): Promise<number> {
  const ts = shapeTensors(s);
  const u32 = (k: string, v: number) => ggufEntry(`qwen2.${k}`, T.UINT32, v);
  const f32 = (k: string, v: number) => ggufEntry(`qwen2.${k}`, T.FLOAT32, v);
  const metadata = [
    ggufEntry('general.architecture', T.STRING, 'qwen2'),
    ggufEntry('general.name', T.STRING, 'quantlab random Qwen2.5-0.5B shape'),
    u32('context_length', 32768), u32('embedding_length', s.nEmbd), u32('block_count', s.nLayer), u32('feed_forward_length', s.nFf),
    u32('attention.head_count', s.nHead), u32('attention.head_count_kv', s.nHeadKv),
    f32('attention.layer_norm_rms_epsilon', 1e-6), f32('rope.freq_base', 1000000),
    ...(await vocabulary(s.nVocab)),
  ];
  const layout = planGguf({ metadata, tensors: ts.map((t) => ({ name: t.name, type: GGML_TYPE.F32, ne: t.ne })) });
  const out = createWriteStream(path);
  let size = 0;
  for await (const chunk of writeGguf(layout, (_t, i) => {
    const v = values(ts[i], seed * 1000 + i);
    return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  })) {
    size += chunk.length;
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return size;
}
