// safetensors -> GGUF for every family, against llama.cpp's converter rules and llama.cpp
// itself: per family (a seeded checkpoint written at test time, the family's real
// config.json fields and real tokenizer files), the keys and tensors that
// convert_hf_to_gguf.py writes (the lists below, from its model classes and gguf-py's
// tensor_mapping), the values it changes (q/k permutation, Gemma's norm + 1, rope_freqs,
// LongRoPE factors), llama.cpp's logits on the F32 conversion against our forward pass,
// and `quantlab quantize --preset Q4_K_M` of the safetensors against llama-quantize run
// on our F32 conversion, byte for byte.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectQuantizeRefused, runInProcess } from '../cli/testing.ts';
import { collectBytes } from '../formats/bytes.ts';
import { FormatError } from '../formats/errors.ts';
import { GGML_TYPE } from '../formats/gguf/constants.ts';
import { type GgufArray } from '../formats/gguf/metadata.ts';
import { type ModelIndex, loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { createModel, modelConfig } from '../model/families/index.ts';
import { hfTokenizerToGguf } from '../model/tokenizer-hf.ts';
import { mapProvider, readModelWeights } from '../model/weights.ts';
import { MAX_REL, maxRelativeError } from '../testing/family-cases.ts';
import { HF_CASES, type HfCheckpointCase, hfConfigJson, writeHfCheckpoint } from '../testing/hf-checkpoint.ts';
import { runLlamaCpp } from '../testing/llama-cpp-peer.ts';
import { llamaQuantize } from '../testing/llama-peer.ts';
import { mulberry32Uint } from '../testing/random.ts';
import { convertHf, hfTensorLayout } from './hf.ts';
import { permuteQkRows } from './llama.ts';
import { type GgufSourceModel, writeSourceGguf } from './source-model.ts';

const dir = mkdtempSync(join(tmpdir(), 'quantlab-hf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ARCH: Record<HfCheckpointCase['family'], string> = { llama3: 'llama', mistral: 'llama', qwen2: 'qwen2', qwen3: 'qwen3', gemma3: 'gemma3', gemma2: 'gemma2', phi3: 'phi3' };

/**
 * The keys before tokenizer.*, in order, as each model class's set_gguf_parameters writes
 * them for these configs (conversion/llama.py, qwen.py, gemma.py, phi.py over base.py).
 */
function expectedKeys(c: HfCheckpointCase): string[] {
  const a = ARCH[c.family];
  const general = ['general.architecture', 'general.type', 'general.name'];
  const k = (...names: string[]) => names.map((n) => `${a}.${n}`);
  switch (c.family) {
    case 'llama3':
    case 'mistral':
      return [...general, ...k('block_count', 'context_length', 'embedding_length', 'feed_forward_length', 'attention.head_count', 'attention.head_count_kv',
        'rope.freq_base', 'attention.layer_norm_rms_epsilon', 'attention.key_length', 'attention.value_length'), 'general.file_type',
      ...k('vocab_size', 'rope.dimension_count'), 'general.quantization_version'];
    case 'qwen2':
      return [...general, ...k('block_count', 'context_length', 'embedding_length', 'feed_forward_length', 'attention.head_count', 'attention.head_count_kv',
        'rope.freq_base', 'attention.layer_norm_rms_epsilon'), 'general.file_type', 'general.quantization_version'];
    case 'qwen3':
      return [...general, ...k('block_count', 'context_length', 'embedding_length', 'feed_forward_length', 'attention.head_count', 'attention.head_count_kv',
        'rope.freq_base', 'attention.layer_norm_rms_epsilon', 'attention.key_length', 'attention.value_length'), 'general.file_type', 'general.quantization_version'];
    case 'gemma3':
      return [...general, ...k('block_count', 'context_length', 'embedding_length', 'feed_forward_length', 'attention.head_count', 'attention.head_count_kv',
        'rope.scaling.type', 'rope.scaling.factor', 'rope.freq_base', 'attention.layer_norm_rms_epsilon', 'attention.key_length', 'attention.value_length'),
      'general.file_type', ...k('attention.sliding_window'), 'general.quantization_version'];
    case 'gemma2':
      return [...general, ...k('context_length', 'embedding_length', 'block_count', 'feed_forward_length', 'attention.head_count', 'attention.head_count_kv',
        'attention.layer_norm_rms_epsilon', 'attention.key_length', 'attention.value_length'), 'general.file_type',
      ...k('attn_logit_softcapping', 'final_logit_softcapping', 'attention.sliding_window'), 'general.quantization_version'];
    case 'phi3':
      return [...general, ...k('context_length', 'rope.scaling.original_context_length', 'embedding_length', 'feed_forward_length', 'block_count',
        'attention.head_count', 'attention.head_count_kv', 'attention.layer_norm_rms_epsilon', 'rope.dimension_count', 'rope.freq_base'), 'general.file_type',
      ...k('attention.sliding_window', 'rope.scaling.attn_factor'), 'general.quantization_version'];
  }
}

/** llama.cpp's tensors for the family (llama-arch.cpp names), shapes outermost first. */
function expectedTensors(c: HfCheckpointCase): Map<string, number[]> {
  const d = c.nEmbd;
  const q = c.nHead * c.headDim;
  const kv = c.nHeadKv * c.headDim;
  const t = new Map<string, number[]>([['token_embd.weight', [c.vocabSize, d]], ['output_norm.weight', [d]]]);
  if (!c.tied) t.set('output.weight', [c.vocabSize, d]);
  if (c.family === 'llama3') t.set('rope_freqs.weight', [c.headDim / 2]);
  if (c.family === 'phi3') t.set('rope_factors_long.weight', [c.headDim / 2]).set('rope_factors_short.weight', [c.headDim / 2]);
  for (let i = 0; i < c.nLayer; i++) {
    const b = (name: string, shape: number[]) => t.set(`blk.${i}.${name}`, shape);
    b('attn_norm.weight', [d]);
    b('attn_output.weight', [d, q]);
    b('ffn_down.weight', [d, c.nFf]);
    b('ffn_norm.weight', [d]);
    if (c.family === 'phi3') {
      b('attn_qkv.weight', [q + 2 * kv, d]);
      b('ffn_up.weight', [2 * c.nFf, d]);
      continue;
    }
    b('attn_q.weight', [q, d]);
    b('attn_k.weight', [kv, d]);
    b('attn_v.weight', [kv, d]);
    b('ffn_gate.weight', [c.nFf, d]);
    b('ffn_up.weight', [c.nFf, d]);
    if (c.family === 'qwen2') b('attn_q.bias', [q]).set(`blk.${i}.attn_k.bias`, [kv]).set(`blk.${i}.attn_v.bias`, [kv]);
    if (c.family === 'qwen3' || c.family === 'gemma3') b('attn_q_norm.weight', [c.headDim]).set(`blk.${i}.attn_k_norm.weight`, [c.headDim]);
    if (c.family === 'gemma3' || c.family === 'gemma2') b('post_attention_norm.weight', [d]).set(`blk.${i}.post_ffw_norm.weight`, [d]);
  }
  return t;
}

const PRE: Record<HfCheckpointCase['tokenizer'], [string, string]> = { llama3: ['gpt2', 'llama-bpe'], qwen3: ['gpt2', 'qwen2'], spm: ['llama', 'default'] };

const valueOf = (m: GgufSourceModel, key: string) => m.metadata.find((e) => e.key === key)?.value;
const load = async (files: readonly string[]) => loadModel(await Promise.all(files.map((f) => fileSource(f))));
const convert = (model: ModelIndex, outtype: 'f32' | 'bf16' | 'auto' = 'f32') => convertHf(model, { outtype, hfTokenizer: hfTokenizerToGguf });

/** BOS then seeded ids well inside the vocabulary's ordinary tokens. */
function caseTokens(c: HfCheckpointCase, n: number): number[] {
  const next = mulberry32Uint(c.seed);
  const bos = c.tokenizer === 'llama3' ? 128000 : c.tokenizer === 'qwen3' ? 151643 : 1;
  const top = c.tokenizer === 'spm' ? 500 : 5000;
  return [bos, ...Array.from({ length: n - 1 }, () => 3 + (next() % (top - 3)))];
}

describe.each(HF_CASES)('$label', (c) => {
  let files: string[];
  let hf: Map<string, Float32Array>;
  let converted: GgufSourceModel;
  let f32Path: string;

  beforeAll(async () => {
    const written = writeHfCheckpoint(join(dir, `${c.family}-${c.seed}`), c);
    files = written.files;
    hf = new Map(written.tensors.map((t) => [t.name, t.data]));
    converted = await convert(await load(files));
    f32Path = join(written.dir, 'converted-f32.gguf');
    writeFileSync(f32Path, await collectBytes(writeSourceGguf(converted)));
  }, 120_000);

  it('writes the keys, tensors and types convert_hf_to_gguf.py writes for the family', async () => {
    expect(converted.architecture).toBe(ARCH[c.family]);
    expect(converted.runnable).toBe(true);
    expect(converted.warnings).toEqual([]);
    const keys = converted.metadata.map((e) => e.key);
    expect(keys.filter((k) => !k.startsWith('tokenizer.'))).toEqual(expectedKeys(c));
    const [model, pre] = PRE[c.tokenizer];
    expect(valueOf(converted, 'tokenizer.ggml.model')).toBe(model);
    expect(valueOf(converted, 'tokenizer.ggml.pre')).toBe(pre);
    expect((valueOf(converted, 'tokenizer.ggml.tokens') as GgufArray).items.length).toBe(c.vocabSize);
    if (c.tokenizer !== 'spm') expect(keys).toContain('tokenizer.ggml.merges');
    if (c.family === 'gemma2' || c.family === 'gemma3') expect(valueOf(converted, 'tokenizer.ggml.add_space_prefix')).toBe(false);
    const a = ARCH[c.family];
    expect(valueOf(converted, `${a}.block_count`)).toBe(c.nLayer);
    expect(valueOf(converted, `${a}.embedding_length`)).toBe(c.nEmbd);
    expect(valueOf(converted, `${a}.attention.head_count_kv`)).toBe(c.nHeadKv);

    // Tensors: llama.cpp's names and shapes; generated ones first; types at --outtype bf16.
    const expected = expectedTensors(c);
    expect(new Map(converted.tensors.map((t) => [t.name, [...t.shape]]))).toEqual(expected);
    const generated = converted.tensors.filter((t) => t.sourceName === t.name).map((t) => t.name);
    expect(converted.tensors.slice(0, generated.length).map((t) => t.name)).toEqual(generated);
    const bf16 = await convert(await load(files), 'bf16');
    for (const t of bf16.tensors) {
      const keepsF32 = t.shape.length === 1 || t.name.endsWith('_norm.weight');
      expect(t.ggmlType, t.name).toBe(keepsF32 ? GGML_TYPE.F32 : GGML_TYPE.BF16);
    }
    expect(valueOf(bf16, 'general.file_type')).toBe(32);
    expect(valueOf(converted, 'general.file_type')).toBe(0);
  });

  it('changes the values as the converter does (q/k permutation, norm + 1, generated tensors)', async () => {
    const byName = new Map(converted.tensors.map((t) => [t.name, t]));
    const read = (name: string) => byName.get(name)!.readF32();
    const config = hfConfigJson(c);
    const embd = await read('token_embd.weight');
    expectSameBits(embd, roundedLike(c, hf.get('model.embed_tokens.weight')!), 'token_embd.weight');
    if (c.family === 'llama3' || c.family === 'mistral') {
      const qRows = c.nHead * c.headDim;
      expectSameBits(await read('blk.0.attn_q.weight'), permuteQkRows(hf.get('model.layers.0.self_attn.q_proj.weight')!, qRows, c.nHead), 'attn_q');
      expectSameBits(await read('blk.1.attn_k.weight'), permuteQkRows(hf.get('model.layers.1.self_attn.k_proj.weight')!, c.nHeadKv * c.headDim, c.nHeadKv), 'attn_k');
      expectSameBits(await read('blk.0.attn_v.weight'), hf.get('model.layers.0.self_attn.v_proj.weight')!, 'attn_v');
    } else if (c.family !== 'phi3') {
      expectSameBits(await read('blk.0.attn_q.weight'), roundedLike(c, hf.get('model.layers.0.self_attn.q_proj.weight')!), 'attn_q');
    }
    if (c.family === 'gemma2' || c.family === 'gemma3') {
      // Gemma's norms: 1 + w, rounded in the checkpoint's dtype (BF16 for the gemma3 case).
      for (const [gguf, source] of [['blk.1.post_ffw_norm.weight', 'model.layers.1.post_feedforward_layernorm.weight'], ['output_norm.weight', 'model.norm.weight'], ['blk.0.ffn_norm.weight', 'model.layers.0.pre_feedforward_layernorm.weight']]) {
        const w = roundedLike(c, hf.get(source)!);
        expect(await read(gguf), gguf).toEqual(roundedLike(c, w.map((x) => x + 1)));
      }
    } else {
      expect(await read('output_norm.weight')).toEqual(hf.get('model.norm.weight'));
    }
    if (c.family === 'llama3') {
      // Llama 3's scaling (factor 32, low 1, high 4, original context 8192) at f64, to 1e-6.
      const freqs = await read('rope_freqs.weight');
      const base = 500000;
      freqs.forEach((got, i) => {
        const wavelen = (2 * Math.PI) / (1 / base ** ((2 * i) / c.headDim));
        const smooth = (8192 / wavelen - 1) / (4 - 1);
        const want = wavelen < 8192 / 4 ? 1 : wavelen > 8192 ? 32 : 1 / ((1 - smooth) / 32 + smooth);
        expect(Math.abs(got - want) / want, `rope_freqs[${i}]`).toBeLessThan(1e-6);
      });
      expect(freqs[0]).toBe(1);
      expect(freqs[freqs.length - 1]).toBe(32);
    }
    if (c.family === 'phi3') {
      const scaling = config.rope_scaling as { long_factor: number[]; short_factor: number[] };
      expect(await read('rope_factors_long.weight')).toEqual(Float32Array.from(scaling.long_factor));
      expect(await read('rope_factors_short.weight')).toEqual(Float32Array.from(scaling.short_factor));
      // sqrt(1 + ln(131072 / 4096) / ln(4096)), stored as f32.
      expect(Math.fround(valueOf(converted, 'phi3.rope.scaling.attn_factor') as number)).toBe(Math.fround(Math.sqrt(1 + Math.log(32) / Math.log(4096))));
      expectSameBits(await read('blk.2.attn_qkv.weight'), hf.get('model.layers.2.self_attn.qkv_proj.weight')!, 'attn_qkv');
      expectSameBits(await read('blk.0.ffn_up.weight'), hf.get('model.layers.0.mlp.gate_up_proj.weight')!, 'ffn_up');
    }
    // A slab of rows reads as the same rows of the whole tensor.
    const ffnDown = byName.get('blk.0.ffn_down.weight')!;
    const whole = await ffnDown.readF32();
    expectSameBits(await ffnDown.readRowsF32!(3, 5), whole.subarray(3 * c.nFf, 8 * c.nFf), 'ffn_down rows 3..7');
  });

  it('llama.cpp loads the F32 conversion; its logits equal our forward pass at every position', async () => {
    const tokens = caseTokens(c, 12);
    const model = await load([f32Path]);
    const config = modelConfig(model);
    const m = createModel(config, mapProvider(await readModelWeights(model, config)));
    const ours = await m.forward(tokens, m.newCache(256), { logits: 'all' });
    const peer = await runLlamaCpp({ model: f32Path, logits: [tokens], contextSize: 256 });
    const { rel, position } = maxRelativeError(ours, peer.logits[0], c.vocabSize);
    console.log(`${c.family}: max rel ${rel.toExponential(2)} at position ${position}`);
    expect(rel).toBeLessThan(MAX_REL);
    if (c.family === 'mistral') {
      // Our forward on the safetensors themselves (HF q/k order, NEOX) against llama.cpp on the
      // permuted conversion: the permutation is checked by a second, independent reading.
      // The same weights under model_type 'llama', which our safetensors path reads (HF order).
      const asLlama = writeHfCheckpoint(join(dir, 'mistral-as-llama'), { ...c, config: { architectures: ['LlamaForCausalLM'], model_type: 'llama' } });
      const st = await load(asLlama.files);
      const stConfig = modelConfig(st);
      const direct = createModel(stConfig, mapProvider(await readModelWeights(st, stConfig)));
      const fromSafetensors = await direct.forward(tokens, direct.newCache(256), { logits: 'all' });
      expect(maxRelativeError(fromSafetensors, peer.logits[0], c.vocabSize).rel).toBeLessThan(MAX_REL);
    }
  }, 180_000);

  it('quantize --preset Q4_K_M of the safetensors equals llama-quantize on our F32 conversion, byte for byte', async () => {
    const ours = join(dir, `${c.family}-${c.seed}-ours.gguf`);
    const theirs = join(dir, `${c.family}-${c.seed}-theirs.gguf`);
    const run = await runInProcess(['quantize', ...files, '-o', ours, '--preset', 'Q4_K_M']);
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.code).toBe(0);
    llamaQuantize(f32Path, theirs, 'Q4_K_M');
    const [a, b] = [readFileSync(ours), readFileSync(theirs)];
    expect(a.length).toBe(b.length);
    expect(a.equals(b)).toBe(true);
  }, 180_000);
});

/** Bit-identical f32 arrays (vitest's toEqual walks millions of elements too slowly). */
function expectSameBits(got: Float32Array, want: Float32Array, what: string): void {
  expect(got.length, what).toBe(want.length);
  const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  expect(bytes(got).equals(bytes(want)), what).toBe(true);
}

/** Values as the checkpoint holds them (BF16 cases round to bfloat16). */
function roundedLike(c: HfCheckpointCase, values: Float32Array): Float32Array {
  if (c.dtype !== 'BF16') return Float32Array.from(values);
  const out = Float32Array.from(values);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i];
    bits[i] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) << 16; // round to nearest even (finite values)
  }
  return out;
}

describe('bad input: one clear error each, before anything is written', () => {
  const qwen3 = HF_CASES.find((c) => c.family === 'qwen3')!;
  const gemma2 = HF_CASES.find((c) => c.family === 'gemma2')!;
  let base: string[];
  let gemmaFiles: string[];
  beforeAll(() => {
    base = writeHfCheckpoint(join(dir, 'bad-qwen3'), qwen3).files;
    gemmaFiles = writeHfCheckpoint(join(dir, 'bad-gemma2'), gemma2).files;
  }, 120_000);

  let edits = 0;
  /** The checkpoint's files with one replaced (same base name, another folder). */
  const withFile = (files: string[], name: string, text: string) => {
    const sub = join(dir, `edit-${++edits}`);
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, name), text);
    return files.map((f) => (f.endsWith(`/${name}`) ? join(sub, name) : f));
  };
  const configOf = (files: string[]) => JSON.parse(readFileSync(files.find((f) => f.endsWith('/config.json'))!, 'utf8')) as Record<string, unknown>;
  const expectError = async (files: string[], file: RegExp, message: RegExp) => {
    const error = await convert(await load(files)).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(FormatError);
    expect((error as FormatError).message).toMatch(file);
    expect((error as FormatError).message).toMatch(message);
  };

  it('hidden_size that disagrees with the tensors', async () => {
    const files = withFile(base, 'config.json', JSON.stringify({ ...configOf(base), hidden_size: 96 }));
    await expectError(files, /config\.json/, /'model\.embed_tokens\.weight' has shape \[151936, 64\], but config\.json's hidden_size 96.*make it \[\?, 96\]/);
    // The CLI refuses in one line and leaves no file (nor .part) behind.
    await expectQuantizeRefused(files[0], join(dir, 'refused.gguf'), [...files.slice(1), '--preset', 'Q4_K_M'], /config\.json.*hidden_size 96/);
  });

  it('a missing required field (Gemma 2 has no defaults for its soft-caps)', async () => {
    const { attn_logit_softcapping: _, ...config } = configOf(gemmaFiles);
    await expectError(withFile(gemmaFiles, 'config.json', JSON.stringify(config)), /config\.json/, /needs "attn_logit_softcapping"/);
  });

  it('a rope_scaling the family does not convert', async () => {
    const files = withFile(base, 'config.json', JSON.stringify({ ...configOf(base), rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32768 } }));
    await expectError(files, /config\.json/, /rope_scaling type 'yarn' is not supported for qwen3 \(supported: linear\)/);
  });

  it('a malformed tokenizer.json, and merges that name unknown tokens', async () => {
    await expectError(withFile(base, 'tokenizer.json', '{"model": {"type": "BPE", '), /tokenizer\.json/, /JSON|parse|valid/i);
    const json = JSON.parse(readFileSync(base.find((f) => f.endsWith('/tokenizer.json'))!, 'utf8')) as { model: { merges: unknown[] } };
    json.model.merges[5] = ['nosuchtoken', 'ĠX'];
    await expectError(withFile(base, 'tokenizer.json', JSON.stringify(json)), /tokenizer\.json/, /merges\[5\] names "nosuchtoken", which is not in model\.vocab/);
  }, 120_000);

  it('hfTensorLayout (the plan view) gives the conversion\'s names and shapes without reading the tokenizer', async () => {
    const model = await load(gemmaFiles);
    const layout = hfTensorLayout(model)!;
    const converted = await convert(model);
    expect(layout.arch).toBe('gemma2');
    expect(layout.tensors.map((t) => [t.name, [...t.shape]])).toEqual(converted.tensors.map((t) => [t.name, [...t.shape]]));
    expect(layout.tensors.map((t) => t.sourceName)).toEqual(converted.tensors.map((t) => t.sourceName));
  });

  it('a vocabulary larger than the embedding, and a vocab_size that contradicts it', async () => {
    // tok512.model with vocab_size 600: 600 tokens for 512 embedding rows.
    const larger = withFile(gemmaFiles, 'config.json', JSON.stringify({ ...configOf(gemmaFiles), vocab_size: 600 }));
    await expectError(larger, /tokenizer\.model/, /the vocabulary has 600 tokens but 'model\.embed_tokens\.weight' only 512 rows \(config\.json vocab_size 600\)/);
    const smaller = withFile(gemmaFiles, 'config.json', JSON.stringify({ ...configOf(gemmaFiles), vocab_size: 500 }));
    await expectError(smaller, /config\.json/, /vocab_size makes the vocabulary 500 tokens, but 'model\.embed_tokens\.weight' has 512 rows/);
  });
});
