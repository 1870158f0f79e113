// A tiny random Llama GGUF carrying a given vocabulary (tokenizer.ggml.* entries, e.g. what
// model/tokenizer-hf.ts hfTokenizerToGguf converts from a real tokenizer.json), so that the
// npm llama.cpp can load it and tokenize with it. llama.cpp needs a loadable model: the
// embedding has one row per token (tied output), one small layer, seeded f16 weights.
// Written with the project's GGUF writer. Test support only.
import { writeFile } from 'node:fs/promises';
import { collectBytes } from '../formats/bytes.ts';
import { f32ToF16Bits } from '../formats/float16.ts';
import { GGML_TYPE, GGUF_VALUE_TYPE } from '../formats/gguf/constants.ts';
import { ggufEntry, type GgufMetadataEntry } from '../formats/gguf/metadata.ts';
import { planGguf, writeGguf, type GgufTensorDescriptor } from '../formats/gguf/write.ts';
import { gaussians } from './random.ts';

export interface TokenizerModelOptions {
  /** general.name (llama.cpp sets some token attributes by it, e.g. Phi-3's). */
  name?: string;
  nEmbd?: number;
  seed?: number;
}

/** The GGUF's bytes: llama architecture metadata, then the vocabulary entries as given. */
export async function buildTokenizerModel(vocabulary: readonly GgufMetadataEntry[], options: TokenizerModelOptions = {}): Promise<Uint8Array> {
  const tokens = vocabulary.find((e) => e.key === 'tokenizer.ggml.tokens');
  const nVocab = tokens && typeof tokens.value === 'object' ? tokens.value.items.length : 0;
  if (nVocab === 0) throw new Error('buildTokenizerModel: the vocabulary has no tokenizer.ggml.tokens');
  const nEmbd = options.nEmbd ?? 32;
  const nFf = 2 * nEmbd;
  const nHead = 2;
  const { STRING, UINT32, FLOAT32 } = GGUF_VALUE_TYPE;
  const metadata: GgufMetadataEntry[] = [
    ggufEntry('general.architecture', STRING, 'llama'),
    ggufEntry('general.name', STRING, options.name ?? 'quantlab tokenizer test'),
    ggufEntry('llama.context_length', UINT32, 256),
    ggufEntry('llama.embedding_length', UINT32, nEmbd),
    ggufEntry('llama.block_count', UINT32, 1),
    ggufEntry('llama.feed_forward_length', UINT32, nFf),
    ggufEntry('llama.rope.dimension_count', UINT32, nEmbd / nHead),
    ggufEntry('llama.attention.head_count', UINT32, nHead),
    ggufEntry('llama.attention.head_count_kv', UINT32, nHead),
    ggufEntry('llama.attention.layer_norm_rms_epsilon', FLOAT32, 1e-5),
    ...vocabulary,
  ];
  const { F16, F32 } = GGML_TYPE;
  const tensors: GgufTensorDescriptor[] = [
    { name: 'token_embd.weight', type: F16, ne: [nEmbd, nVocab] },
    { name: 'blk.0.attn_norm.weight', type: F32, ne: [nEmbd] },
    ...['attn_q', 'attn_k', 'attn_v', 'attn_output'].map((t) => ({ name: `blk.0.${t}.weight`, type: F16, ne: [nEmbd, nEmbd] })),
    { name: 'blk.0.ffn_norm.weight', type: F32, ne: [nEmbd] },
    { name: 'blk.0.ffn_gate.weight', type: F16, ne: [nEmbd, nFf] },
    { name: 'blk.0.ffn_down.weight', type: F16, ne: [nFf, nEmbd] },
    { name: 'blk.0.ffn_up.weight', type: F16, ne: [nEmbd, nFf] },
    { name: 'output_norm.weight', type: F32, ne: [nEmbd] },
  ];
  const layout = planGguf({ metadata, tensors });
  const seed = options.seed ?? 1;
  return collectBytes(
    writeGguf(layout, (t, i) => {
      const n = t.ne.reduce((a, b) => a * b, 1);
      const values = gaussians(n, seed + i, 0.02);
      if (t.type === F32) return new Uint8Array(values.map((v) => 1 + v).buffer);
      return new Uint8Array(Uint16Array.from(values, f32ToF16Bits).buffer);
    }),
  );
}

export async function writeTokenizerModel(path: string, vocabulary: readonly GgufMetadataEntry[], options: TokenizerModelOptions = {}): Promise<void> {
  await writeFile(path, await buildTokenizerModel(vocabulary, options));
}
