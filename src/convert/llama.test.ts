// The converter against the real thing: stories260K's safetensors copies (F32, 2 shards,
// BF16) + config.json + tok512.model must give stories260K.gguf's tensors byte for byte
// and its tokenizer arrays; the written file must load and generate in llama.cpp.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ByteSource, memorySource } from '../formats/bytes.ts';
import { FormatError } from '../formats/errors.ts';
import { bf16BitsToF32, f32ToBf16Bits } from '../formats/float16.ts';
import { GGML_TYPE, GGUF_VALUE_TYPE } from '../formats/gguf/constants.ts';
import { type GgufArray, findEntry } from '../formats/gguf/metadata.ts';
import { type ModelIndex, loadModel, readTensorBytes, readTensorF32 } from '../formats/model.ts';
import { collect, fixture } from '../formats/testing.ts';
import { runLlamaCpp } from '../testing/llama-cpp-peer.ts';
import { convertHfLlama, llamaTensorName, permuteQkRows } from './llama.ts';
import { type GgufSourceModel, writeSourceGguf } from './source-model.ts';

const CONFIG = 'stories260K.config.json';
const TOKENIZER = 'tok512.model';

let reference: ModelIndex;
/** stories260K.gguf's tensor data by name. */
const referenceBytes = new Map<string, Uint8Array>();
let configJson: Record<string, unknown>;

beforeAll(async () => {
  reference = await loadModel([await fixture('stories260K.gguf')]);
  for (const t of reference.tensors) referenceBytes.set(t.name, await readTensorBytes(reference, t));
  const config = await fixture(CONFIG);
  configJson = JSON.parse(new TextDecoder().decode(await config.read(0, config.size)));
});

const load = async (names: readonly string[], extra: readonly ByteSource[] = []) =>
  loadModel([...(await Promise.all(names.map((n) => fixture(n)))), ...extra]);

/** A config.json in memory: the fixture's with some keys changed. */
const configWith = (changes: Record<string, unknown>) =>
  memorySource(new TextEncoder().encode(JSON.stringify({ ...configJson, ...changes })), 'config.json');

const F32_FILES = ['stories260K.f32.safetensors', CONFIG, TOKENIZER];
const SHARDED_FILES = [
  'stories260K-sharded/model-00001-of-00002.safetensors',
  'stories260K-sharded/model-00002-of-00002.safetensors',
  'stories260K-sharded/model.safetensors.index.json',
  CONFIG,
  TOKENIZER,
];
const BF16_FILES = ['stories260K.bf16.safetensors', CONFIG, TOKENIZER];

function arrayOf(model: GgufSourceModel | ModelIndex, key: string): GgufArray {
  const entries = 'ggufMetadata' in model ? model.ggufMetadata! : (model as GgufSourceModel).metadata;
  const entry = findEntry(entries, key);
  if (!entry) throw new Error(`no ${key}`);
  return entry.value as GgufArray;
}

function valueOf(model: GgufSourceModel, key: string): unknown {
  return findEntry(model.metadata, key)?.value;
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
const bytesOf = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const BOS = 1;

/** Every tensor: same names, shapes, f32 type, and bytes as stories260K.gguf. */
async function expectReferenceTensors(source: GgufSourceModel): Promise<void> {
  expect(source.tensors.map((t) => t.name).sort()).toEqual(reference.tensors.map((t) => t.name).sort());
  for (const t of source.tensors) {
    const ref = reference.tensors.find((r) => r.name === t.name)!;
    expect(t.shape, t.name).toEqual(ref.shape);
    expect(t.ggmlType, t.name).toBe(GGML_TYPE.F32);
    expect(Buffer.from(await t.readBytes()).equals(referenceBytes.get(t.name)!), t.name).toBe(true);
  }
}

function expectReferenceVocabulary(source: GgufSourceModel): void {
  expect(arrayOf(source, 'tokenizer.ggml.tokens').items).toEqual(arrayOf(reference, 'tokenizer.ggml.tokens').items);
  const scores = arrayOf(source, 'tokenizer.ggml.scores');
  expect(scores.itemType).toBe(GGUF_VALUE_TYPE.FLOAT32);
  expect(bits(scores.items as Float32Array)).toEqual(bits(arrayOf(reference, 'tokenizer.ggml.scores').items as Float32Array));
  const types = arrayOf(source, 'tokenizer.ggml.token_type');
  expect(types.itemType).toBe(GGUF_VALUE_TYPE.INT32);
  expect(types.items).toEqual(arrayOf(reference, 'tokenizer.ggml.token_type').items);
  for (const key of ['tokenizer.ggml.model', 'tokenizer.ggml.bos_token_id', 'tokenizer.ggml.eos_token_id', 'tokenizer.ggml.unknown_token_id']) {
    expect(valueOf(source, key), key).toBe(reference.metadata[key]);
  }
}

describe('convertHfLlama on stories260K', () => {
  it('F32 safetensors + config + tok512.model: tensors byte-identical to stories260K.gguf, same vocabulary', async () => {
    const source = await convertHfLlama(await load(F32_FILES));
    expect(source).toMatchObject({ architecture: 'llama', runnable: true, warnings: [] });
    await expectReferenceTensors(source);
    expectReferenceVocabulary(source);
  });

  it('the 2-shard copy gives the same', async () => {
    const source = await convertHfLlama(await load(SHARDED_FILES));
    await expectReferenceTensors(source);
    expectReferenceVocabulary(source);
  });

  it('writes the hyperparameters stories260K.gguf has, with convert_hf_to_gguf.py key order and types', async () => {
    const source = await convertHfLlama(await load(F32_FILES));
    expect(source.metadata.map((e) => e.key)).toEqual([
      'general.architecture', 'general.type', 'general.name',
      'llama.block_count', 'llama.context_length', 'llama.embedding_length', 'llama.feed_forward_length',
      'llama.attention.head_count', 'llama.attention.head_count_kv', 'llama.rope.freq_base',
      'llama.attention.layer_norm_rms_epsilon', 'general.file_type', 'llama.vocab_size', 'llama.rope.dimension_count',
      'general.quantization_version',
      'tokenizer.ggml.model', 'tokenizer.ggml.pre', 'tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type',
      'tokenizer.ggml.bos_token_id', 'tokenizer.ggml.eos_token_id', 'tokenizer.ggml.unknown_token_id',
      'tokenizer.ggml.add_bos_token', 'tokenizer.ggml.add_eos_token',
    ]);
    for (const entry of reference.ggufMetadata!) {
      if (!entry.key.startsWith('llama.')) continue;
      expect(findEntry(source.metadata, entry.key), entry.key).toEqual(entry);
    }
    expect(valueOf(source, 'general.file_type')).toBe(0);
    expect(valueOf(source, 'general.name')).toBe('stories260K.f32');
    expect(valueOf(source, 'llama.vocab_size')).toBe(512);
  });

  it("orders tensors as convert_hf_to_gguf.py does (by name within each shard)", async () => {
    const names = (await convertHfLlama(await load(F32_FILES))).tensors.map((t) => t.sourceName);
    expect(names.slice(0, 3)).toEqual(['lm_head.weight', 'model.embed_tokens.weight', 'model.layers.0.input_layernorm.weight']);
    expect(names.at(-1)).toBe('model.norm.weight');
  });

  it('BF16 copy: 2-D weights stay bf16 (the script\'s auto outtype), norms f32, values = stories260K rounded to bf16', async () => {
    const source = await convertHfLlama(await load(BF16_FILES));
    expect(valueOf(source, 'general.file_type')).toBe(32);
    expectReferenceVocabulary(source);
    for (const t of source.tensors) {
      const ref = reference.tensors.find((r) => r.name === t.name)!;
      expect(t.ggmlType, t.name).toBe(t.shape.length === 1 ? GGML_TYPE.F32 : GGML_TYPE.BF16);
      const roundedBits = Uint16Array.from(await readTensorF32(reference, ref), f32ToBf16Bits);
      const rounded = Float32Array.from(roundedBits, bf16BitsToF32);
      expect(bytesOf(await t.readF32()).equals(bytesOf(rounded)), t.name).toBe(true);
      const expectedBytes = t.ggmlType === GGML_TYPE.BF16 ? roundedBits : rounded;
      expect(bytesOf(await t.readBytes()).equals(bytesOf(expectedBytes)), t.name).toBe(true);
    }
  });

  it('outtype f32 and f16 on the BF16 copy: every tensor f32 / 2-D weights f16', async () => {
    const model = await load(BF16_FILES);
    const f32 = await convertHfLlama(model, { outtype: 'f32' });
    expect(f32.tensors.every((t) => t.ggmlType === GGML_TYPE.F32)).toBe(true);
    expect(valueOf(f32, 'general.file_type')).toBe(0);
    const f16 = await convertHfLlama(model, { outtype: 'f16' });
    expect(f16.tensors.filter((t) => t.ggmlType === GGML_TYPE.F16)).toHaveLength(5 * 7 + 2); // per layer q k v o gate up down, + token_embd, output
    expect(valueOf(f16, 'general.file_type')).toBe(1);
  });

  it('the written GGUF re-reads with the reference bytes and vocabulary', async () => {
    const source = await convertHfLlama(await load(F32_FILES), { name: 'stories260K' });
    const bytes = await collect(writeSourceGguf(source));
    const written = await loadModel([memorySource(bytes, 'converted.gguf')]);
    expect(written.metadata['general.name']).toBe('stories260K');
    for (const t of written.tensors) expect(Buffer.from(await readTensorBytes(written, t)).equals(referenceBytes.get(t.name)!), t.name).toBe(true);
    expect(arrayOf(written, 'tokenizer.ggml.tokens').items).toEqual(arrayOf(reference, 'tokenizer.ggml.tokens').items);
  });
});

describe('convertHfLlama: config variants and refusals', () => {
  it('tied embeddings: no output tensor (llama.cpp reuses token_embd)', async () => {
    const source = await convertHfLlama(await load(['stories260K.f32.safetensors', TOKENIZER], [configWith({ tie_word_embeddings: true })]));
    expect(source.tensors.map((t) => t.name)).not.toContain('output.weight');
    expect(source.tensors).toHaveLength(47);
  });

  it('Mistral configs convert the same way', async () => {
    const source = await convertHfLlama(
      await load(['stories260K.f32.safetensors', TOKENIZER], [configWith({ architectures: ['MistralForCausalLM'], model_type: 'mistral', sliding_window: 4096 })]),
    );
    expect(source.architecture).toBe('llama');
    await expectReferenceTensors(source);
  });

  it('head_dim and special ids from config.json are written; pad -1 in the tokenizer is left out', async () => {
    const source = await convertHfLlama(
      await load(['stories260K.f32.safetensors', TOKENIZER], [configWith({ head_dim: 8, bos_token_id: 2, eos_token_id: [1, 2], pad_token_id: 0 })]),
    );
    expect(valueOf(source, 'llama.attention.key_length')).toBe(8);
    expect(valueOf(source, 'llama.rope.dimension_count')).toBe(8);
    expect(valueOf(source, 'tokenizer.ggml.bos_token_id')).toBe(2);
    expect(valueOf(source, 'tokenizer.ggml.eos_token_id')).toBe(2); // a list in config: the tokenizer's id
    expect(valueOf(source, 'tokenizer.ggml.padding_token_id')).toBe(0);
  });

  it('a vocabulary that does not match token_embd: a warning, not runnable', async () => {
    const source = await convertHfLlama(await load(['stories260K.f32.safetensors', TOKENIZER], [configWith({ vocab_size: 600 })]));
    expect(source.runnable).toBe(false);
    expect(source.warnings.join()).toMatch(/600 tokens but token_embd 512 rows/);
    expect(arrayOf(source, 'tokenizer.ggml.tokens').items.at(-1)).toBe('[PAD599]');
  });

  it('without tokenizer.model: weights and hyperparameters, no vocabulary, a warning, not runnable', async () => {
    const source = await convertHfLlama(await load(['stories260K.f32.safetensors', CONFIG]));
    expect(source.runnable).toBe(false);
    expect(source.warnings.join()).toMatch(/no tokenizer\.model/);
    expect(source.metadata.some((e) => e.key.startsWith('tokenizer.'))).toBe(false);
    await expectReferenceTensors(source);
  });

  it.each([
    ['a config without hidden_size', { hidden_size: undefined }, /needs "hidden_size" or "n_embd" or "dim"/],
    ['heads that do not divide q rows', { num_attention_heads: 3 }, /hidden_size 64 is not a multiple of num_attention_heads 3/],
    ['kv heads that do not split k rows in rotary pairs', { num_key_value_heads: 32 }, /has 32 rows, which 32 heads of rotary pairs do not divide/],
    ['a quantized checkpoint', { quantization_config: { quant_method: 'gptq' } }, /already quantized \(quant_method "gptq"\)/],
    ['a negative token id', { bos_token_id: -3 }, /a token id cannot be negative/],
    ['a giant vocab_size', { vocab_size: 2 ** 31 }, /vocab_size 2147483648 is above the limit/],
    ['layers beyond num_hidden_layers', { num_hidden_layers: 4 }, /cannot map tensor 'model\.layers\.4\./],
  ])('refuses %s with a FormatError', async (_, changes, reason) => {
    const model = await load(['stories260K.f32.safetensors', TOKENIZER], [configWith(changes)]);
    const error = await convertHfLlama(model).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(FormatError);
    expect((error as FormatError).reason).toMatch(reason);
  });
});

describe('convertHfLlama: a hostile tokenizer.model', () => {
  it.each([
    ['truncated', (b: Uint8Array) => b.subarray(0, 1001)],
    ['with a piece length running past the end', (b: Uint8Array) => Uint8Array.from([0x0a, 0xff, 0xff, 0x03, ...b.subarray(0, 64)])],
    ['random bytes', () => Uint8Array.from({ length: 256 }, (_, i) => (i * 97 + 13) & 0xff)],
  ])('%s: a FormatError naming tokenizer.model', async (_, damage) => {
    const good = await fixture(TOKENIZER);
    const bad = memorySource(damage(await good.read(0, good.size)), 'tokenizer.model');
    const error = await convertHfLlama(await load(['stories260K.f32.safetensors', CONFIG], [bad])).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(FormatError);
    expect((error as FormatError).file).toBe('tokenizer.model');
  });

  it('two tokenizer models: a FormatError', async () => {
    const good = await fixture(TOKENIZER);
    const second = memorySource(await good.read(0, good.size), 'tokenizer.model');
    await expect(convertHfLlama(await load(F32_FILES, [second]))).rejects.toThrow(/a second tokenizer model/);
  });
});

describe('convertHfLlama: other architectures are written weights-only', () => {
  it('mnist-mlp-dfdx (no config): original names, f32, a warning, not runnable', async () => {
    const model = await load(['mnist-mlp-dfdx.safetensors']);
    const source = await convertHfLlama(model);
    expect(source.runnable).toBe(false);
    expect(source.architecture).toBe('unknown');
    expect(source.warnings[0]).toMatch(/not a Llama-family model.*weights only and will not run in llama\.cpp/);
    expect(source.tensors.map((t) => t.name).sort()).toEqual(model.tensors.map((t) => t.name).sort());
    const bytes = await collect(writeSourceGguf(source));
    const written = await loadModel([memorySource(bytes, 'mnist.gguf')]);
    expect(written.metadata['general.architecture']).toBe('unknown');
    for (const t of written.tensors) {
      const original = model.tensors.find((o) => o.name === t.name)!;
      expect(Buffer.from(await readTensorBytes(written, t)).equals(Buffer.from(await readTensorBytes(model, original)))).toBe(true);
    }
  });

  it("takes general.architecture from config's model_type", async () => {
    const config = memorySource(new TextEncoder().encode(JSON.stringify({ architectures: ['BertModel'], model_type: 'bert' })), 'config.json');
    const source = await convertHfLlama(await load(['mnist-mlp-dfdx.safetensors'], [config]));
    expect(source.architecture).toBe('bert');
    expect(source.warnings[0]).toMatch(/^BertModel is not a Llama-family model/);
  });
});

describe('llamaTensorName', () => {
  it.each([
    ['model.embed_tokens.weight', 'token_embd.weight'],
    ['model.norm.weight', 'output_norm.weight'],
    ['lm_head.weight', 'output.weight'],
    ['model.layers.3.self_attn.o_proj.weight', 'blk.3.attn_output.weight'],
    ['model.layers.3.self_attn.q_proj.bias', 'blk.3.attn_q.bias'],
    ['model.layers.0.post_attention_layernorm.weight', 'blk.0.ffn_norm.weight'],
    ['model.layers.0.mlp.down_proj.weight', 'blk.0.ffn_down.weight'],
    ['model.layers.5.mlp.up_proj.weight', null], // block 5 of 5
    ['model.layers.0.self_attn.qkv_proj.weight', null],
    ['model.layers.0.mlp.gate_proj.scales', null],
  ])('%s -> %s', (hf, gguf) => {
    expect(llamaTensorName(hf, 5)).toBe(gguf);
  });
});

describe('permuteQkRows', () => {
  it('interleaves the two rotary halves of each head (rows [a0 a1 b0 b1] -> [a0 b0 a1 b1])', () => {
    // 2 heads of 4 rows, 1 column: head h holds h*10 + (0, 1 | 2, 3).
    const hf = Float32Array.from([0, 1, 2, 3, 10, 11, 12, 13]);
    expect(Array.from(permuteQkRows(hf, 8, 2))).toEqual([0, 2, 1, 3, 10, 12, 11, 13]);
  });

  it('moves whole rows', () => {
    const hf = Float32Array.from({ length: 8 * 3 }, (_, i) => i);
    const out = permuteQkRows(hf, 8, 1);
    expect(Array.from(out.subarray(3, 6))).toEqual([12, 13, 14]); // gguf row 1 = hf row 4
  });
});

describe('the converted GGUF in llama.cpp (node-llama-cpp, one model per child process)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'quantlab-convert-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("tokenizes as stories260K.gguf and continues 'Once upon a time' greedily with the known story", async () => {
    const path = join(dir, 'stories260K.converted.gguf');
    await writeFile(path, await collect(writeSourceGguf(await convertHfLlama(await load(F32_FILES)))));
    const texts = ['Once upon a time', ' Hello world!\n\nLily said, "Wow."', 'ünïcödé 日本 🙂'];
    const theirs = await runLlamaCpp({ model: join(import.meta.dirname, '../../../shared/fixtures/models/stories260K.gguf'), tokenize: texts });
    const prompt = [BOS, ...theirs.tokenize[0]];
    const ours = await runLlamaCpp({ model: path, tokenize: texts, greedy: [{ prompt, maxTokens: 32 }] });
    expect(ours.tokenize).toEqual(theirs.tokenize);
    expect(ours.greedy[0].text).toMatch(/^, there was a little girl named Lily\. She loved to play outside in the park\. One day,/);
  }, 60_000);
});
