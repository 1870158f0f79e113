// Small random GGUF models of every family quantlab runs (llama incl. Llama 3 and its
// rope_freqs, qwen2, qwen3, gemma2, gemma3, phi3), written at test time from a seed:
// llama.cpp's metadata keys and tensor names for each architecture (llama-arch.cpp,
// src/models/<arch>.cpp), F32 tensors, and the 512-token SentencePiece vocabulary of
// the stories260K fixture (its tokenizer.* keys), which llama.cpp loads for any of them.
// Shapes are tiny (n_embd 64-128, 2-6 layers, GQA) so that llama.cpp and our forward
// pass both run in a second. Test support only: nothing under src/ outside tests imports this.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { collectBytes } from '../formats/bytes.ts';
import { GGML_TYPE, GGUF_VALUE_TYPE as T } from '../formats/gguf/constants.ts';
import { ggufArray, ggufEntry, type GgufArray, type GgufMetadataEntry } from '../formats/gguf/metadata.ts';
import { planGguf, writeGguf } from '../formats/gguf/write.ts';
import { loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import type { Family } from '../model/families/config.ts';
import { gaussians, rng } from './random.ts';

export interface FamilyGgufOptions {
  family: Family;
  nLayer: number;
  nEmbd: number;
  nFf: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  /** No output.weight: the output is token_embd (Llama 3.2, small Qwen, Gemma). */
  tied?: boolean;
  /** llama: a rope_freqs.weight of Llama-3-style divisors (1 .. 8). */
  ropeFreqs?: boolean;
  /** phi3: attn_qkv in one tensor (as llama.cpp's converter writes it) rather than q/k/v. */
  fusedQkv?: boolean;
  /** phi3: rope_factors_long/short tensors and rope.scaling.original_context_length. */
  longRope?: { originalContext: number; attnFactor?: number };
  ropeFreqBase?: number;
  /** gemma3: global layers' linear scaling factor (rope.scaling.type linear). */
  ropeLinearFactor?: number;
  /** gemma2/3: attention.sliding_window. */
  slidingWindow?: number;
  /** gemma2/3: attention.sliding_window_pattern (llama.cpp's default: 2 for gemma2, 6 for gemma3). */
  swaPattern?: number;
  /** llama: attention.scale, the kq scale in place of 1/sqrt(head_dim). */
  attentionScale?: number;
  /** gemma3: rope.freq_base_swa, the local layers' base (llama.cpp's default 10000). */
  ropeFreqBaseSwa?: number;
  /** gemma2: attn_logit_softcapping and final_logit_softcapping. */
  softcaps?: { attn: number; final: number };
  /** Standard deviation of the token embeddings (default 1). */
  embeddingStd?: number;
  seed: number;
}

/** GGUF tensor: ggml ne (innermost first) and its values. */
interface Tensor {
  name: string;
  ne: number[];
  data: Float32Array;
}

/**
 * The stories260K tokenizer.* entries (a SentencePiece vocabulary of 512 tokens). For phi3
 * its last two words become '<|end|>' and '<|endoftext|>': llama.cpp's vocabulary loader
 * looks those up for that architecture and fails without them.
 */
async function vocabularyEntries(family: Family): Promise<GgufMetadataEntry[]> {
  const m = await loadModel([await fileSource(join(FIXTURE_MODELS, 'stories260K.gguf'))]);
  const entries = (m.ggufMetadata ?? []).filter((e) => e.key.startsWith('tokenizer.'));
  if (family !== 'phi3') return entries;
  return entries.map((e) => {
    if (e.key !== 'tokenizer.ggml.tokens') return e;
    const items = [...((e.value as GgufArray).items as readonly string[])];
    items[items.length - 2] = '<|end|>';
    items[items.length - 1] = '<|endoftext|>';
    return ggufEntry(e.key, T.ARRAY, ggufArray(T.STRING, items));
  });
}

/** The vocabulary size of that tokenizer. */
export const FAMILY_GGUF_VOCAB = 512;

function metadata(o: FamilyGgufOptions, vocab: GgufMetadataEntry[]): GgufMetadataEntry[] {
  const a = o.family;
  const u32 = (k: string, v: number) => ggufEntry(`${a}.${k}`, T.UINT32, v);
  const f32 = (k: string, v: number) => ggufEntry(`${a}.${k}`, T.FLOAT32, v);
  const md: GgufMetadataEntry[] = [
    ggufEntry('general.architecture', T.STRING, a),
    ggufEntry('general.name', T.STRING, `quantlab random ${a}`),
    u32('context_length', 2048),
    u32('embedding_length', o.nEmbd),
    u32('block_count', o.nLayer),
    u32('feed_forward_length', o.nFf),
    u32('attention.head_count', o.nHead),
    u32('attention.head_count_kv', o.nHeadKv),
    u32('attention.key_length', o.headDim),
    u32('attention.value_length', o.headDim),
    f32('attention.layer_norm_rms_epsilon', 1e-6),
    f32('rope.freq_base', o.ropeFreqBase ?? 10000),
  ];
  if (a === 'llama' || a === 'phi3') md.push(u32('rope.dimension_count', o.headDim));
  if (o.slidingWindow !== undefined) md.push(u32('attention.sliding_window', o.slidingWindow));
  if (o.attentionScale !== undefined) md.push(f32('attention.scale', o.attentionScale));
  if (o.swaPattern !== undefined) md.push(u32('attention.sliding_window_pattern', o.swaPattern));
  if (o.ropeFreqBaseSwa !== undefined) md.push(f32('rope.freq_base_swa', o.ropeFreqBaseSwa));
  if (o.softcaps) md.push(f32('attn_logit_softcapping', o.softcaps.attn), f32('final_logit_softcapping', o.softcaps.final));
  if (o.ropeLinearFactor !== undefined) md.push(ggufEntry(`${a}.rope.scaling.type`, T.STRING, 'linear'), f32('rope.scaling.factor', o.ropeLinearFactor));
  if (o.longRope) {
    md.push(u32('rope.scaling.original_context_length', o.longRope.originalContext));
    if (o.longRope.attnFactor !== undefined) md.push(f32('rope.scaling.attn_factor', o.longRope.attnFactor));
  }
  return [...md, ...vocab];
}

/** The tensors, named and shaped as llama.cpp loads them for the family. */
function tensors(o: FamilyGgufOptions): Tensor[] {
  let seed = o.seed * 1000;
  const d = o.nEmbd;
  const qDim = o.nHead * o.headDim;
  const kvDim = o.nHeadKv * o.headDim;
  const matrix = (name: string, rows: number, cols: number): Tensor => ({ name, ne: [cols, rows], data: gaussians(rows * cols, ++seed, 1 / Math.sqrt(cols)) });
  const vector = (name: string, n: number, mean: number, std: number): Tensor => {
    const data = gaussians(n, ++seed, std);
    for (let i = 0; i < n; i++) data[i] += mean;
    return { name, ne: [n], data };
  };
  const divisors = (name: string, n: number, top: number): Tensor => {
    const u = rng(++seed);
    return { name, ne: [n], data: Float32Array.from({ length: n }, () => 1 + (top - 1) * u()) };
  };
  const out: Tensor[] = [{ name: 'token_embd.weight', ne: [d, FAMILY_GGUF_VOCAB], data: gaussians(FAMILY_GGUF_VOCAB * d, ++seed, o.embeddingStd ?? 1) }];
  if (o.ropeFreqs) out.push(divisors('rope_freqs.weight', o.headDim / 2, 8));
  if (o.longRope) out.push(divisors('rope_factors_long.weight', o.headDim / 2, 4), divisors('rope_factors_short.weight', o.headDim / 2, 1.5));
  const gemma = o.family === 'gemma2' || o.family === 'gemma3';
  for (let i = 0; i < o.nLayer; i++) {
    const p = `blk.${i}.`;
    out.push(vector(`${p}attn_norm.weight`, d, 1, 0.1));
    if (o.fusedQkv) out.push(matrix(`${p}attn_qkv.weight`, qDim + 2 * kvDim, d));
    else out.push(matrix(`${p}attn_q.weight`, qDim, d), matrix(`${p}attn_k.weight`, kvDim, d), matrix(`${p}attn_v.weight`, kvDim, d));
    if (o.family === 'qwen2') out.push(vector(`${p}attn_q.bias`, qDim, 0, 0.5), vector(`${p}attn_k.bias`, kvDim, 0, 0.5), vector(`${p}attn_v.bias`, kvDim, 0, 0.5));
    if (o.family === 'qwen3' || o.family === 'gemma3') out.push(vector(`${p}attn_q_norm.weight`, o.headDim, 1, 0.2), vector(`${p}attn_k_norm.weight`, o.headDim, 1, 0.2));
    out.push(matrix(`${p}attn_output.weight`, d, qDim));
    if (gemma) out.push(vector(`${p}post_attention_norm.weight`, d, 1, 0.1));
    out.push(vector(`${p}ffn_norm.weight`, d, 1, 0.1));
    if (o.family === 'phi3') out.push(matrix(`${p}ffn_up.weight`, 2 * o.nFf, d));
    else out.push(matrix(`${p}ffn_gate.weight`, o.nFf, d), matrix(`${p}ffn_up.weight`, o.nFf, d));
    out.push(matrix(`${p}ffn_down.weight`, d, o.nFf));
    if (gemma) out.push(vector(`${p}post_ffw_norm.weight`, d, 1, 0.1));
  }
  out.push(vector('output_norm.weight', d, 1, 0.1));
  if (!o.tied) out.push(matrix('output.weight', FAMILY_GGUF_VOCAB, d));
  return out;
}

/** The GGUF file's bytes. */
export async function buildFamilyGguf(o: FamilyGgufOptions): Promise<Uint8Array> {
  const ts = tensors(o);
  const layout = planGguf({ metadata: metadata(o, await vocabularyEntries(o.family)), tensors: ts.map((t) => ({ name: t.name, type: GGML_TYPE.F32, ne: t.ne })) });
  const bytes = (t: Tensor) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return collectBytes(writeGguf(layout, (_t, i) => bytes(ts[i])));
}

export async function writeFamilyGguf(path: string, o: FamilyGgufOptions): Promise<void> {
  await writeFile(path, await buildFamilyGguf(o));
}
