import { describe, expect, it } from 'vitest';
import { type ByteSource, blobSource, memorySource } from './bytes.ts';
import { FormatError, FormatErrorList } from './errors.ts';
import { f32ToBf16Bits, f32ToF16Bits } from './float16.ts';
import { GGML_TYPE } from './gguf/constants.ts';
import { planGguf, writeGguf } from './gguf/write.ts';
import { type ModelIndex, type ModelTensor, loadModel, readTensorBytes, readTensorF32, recogniseFile } from './model.ts';
import { collect, fixture, rawSafetensors } from './testing.ts';

const tensor = (model: ModelIndex, name: string): ModelTensor => {
  const t = model.tensors.find((x) => x.name === name);
  if (!t) throw new Error(`no tensor ${name}`);
  return t;
};

const stories = () => fixture('stories260K.gguf').then((s) => loadModel([s]));
const storiesF32 = () => fixture('stories260K.f32.safetensors').then((s) => loadModel([s]));

/** llama.cpp's names for the HF Llama tensors of one layer (convert_hf_to_gguf.py's map). */
const LAYER_NAMES: [string, string][] = [
  ['attn_q', 'self_attn.q_proj'], ['attn_k', 'self_attn.k_proj'], ['attn_v', 'self_attn.v_proj'],
  ['attn_output', 'self_attn.o_proj'], ['attn_norm', 'input_layernorm'], ['ffn_gate', 'mlp.gate_proj'],
  ['ffn_down', 'mlp.down_proj'], ['ffn_up', 'mlp.up_proj'], ['ffn_norm', 'post_attention_layernorm'],
];
const GGUF_TO_HF: [string, string][] = [
  ['token_embd.weight', 'model.embed_tokens.weight'],
  ['output_norm.weight', 'model.norm.weight'],
  ['output.weight', 'lm_head.weight'],
  ...[0, 1, 2, 3, 4].flatMap((l) => LAYER_NAMES.map(([g, h]): [string, string] => [`blk.${l}.${g}.weight`, `model.layers.${l}.${h}.weight`])),
];

/**
 * Undoes llama.cpp's q/k permutation (convert_hf_to_gguf.py LlamaModel.permute:
 * w.reshape(n_head, 2, rows/n_head/2, cols).swapaxes(1, 2).reshape(rows, cols)).
 * That maps HF row h*2*half + s*half + i to GGUF row h*2*half + 2*i + s (half = rows /
 * n_head / 2, s in {0, 1}), so HF row r comes back from GGUF row h*2*half + 2*i + s.
 */
export function unpermuteRows(gguf: Float32Array, rows: number, cols: number, nHead: number): Float32Array {
  const half = rows / nHead / 2;
  const out = new Float32Array(rows * cols);
  for (let h = 0; h < nHead; h++) {
    for (let s = 0; s < 2; s++) {
      for (let i = 0; i < half; i++) {
        const hfRow = h * 2 * half + s * half + i;
        const ggufRow = h * 2 * half + 2 * i + s;
        out.set(gguf.subarray(ggufRow * cols, (ggufRow + 1) * cols), hfRow * cols);
      }
    }
  }
  return out;
}

describe('loadModel on the fixtures', () => {
  it('stories260K.gguf: 48 f32 tensors, shapes in PyTorch order, absolute offsets', async () => {
    const model = await stories();
    expect(model).toMatchObject({ format: 'gguf', version: 3, alignment: 32 });
    expect(model.tensors).toHaveLength(48);
    expect(model.tensors.every((t) => t.dtype === 'f32' && t.ggmlType === GGML_TYPE.F32)).toBe(true);
    expect(tensor(model, 'token_embd.weight')).toMatchObject({ shape: [512, 64], offset: 14176, nbytes: 131072, file: 'stories260K.gguf' });
    expect(tensor(model, 'blk.0.ffn_gate.weight').shape).toEqual([172, 64]);
    expect(tensor(model, 'blk.0.ffn_down.weight').shape).toEqual([64, 172]);
    expect(tensor(model, 'blk.0.attn_k.weight').shape).toEqual([32, 64]);
    expect(model.metadata['llama.embedding_length']).toBe(64);
    expect(model.metadata['llama.attention.head_count_kv']).toBe(4);
    expect((model.metadata['tokenizer.ggml.tokens'] as string[]).length).toBe(512);
  });

  it('llama-2-tiny-random.gguf: f16 and f32 tensors with sane values', async () => {
    const model = await loadModel([await fixture('llama-2-tiny-random.gguf')]);
    const embd = tensor(model, 'token_embd.weight');
    expect(embd).toMatchObject({ dtype: 'f16', shape: [32000, 8] });
    const values = await readTensorF32(model, embd);
    expect(values).toHaveLength(256000);
    expect(values.every(Number.isFinite)).toBe(true);
    // f16 decode is exact: re-encoding gives the stored bits back.
    const bits = new Uint16Array((await readTensorBytes(model, embd)).slice().buffer);
    expect(Array.from(values.subarray(0, 1000), f32ToF16Bits)).toEqual(Array.from(bits.subarray(0, 1000)));
    expect(tensor(model, 'output_norm.weight')).toMatchObject({ dtype: 'f32', shape: [8] });
  });

  it('the MNIST MLP from dfdx', async () => {
    const model = await loadModel([await fixture('mnist-mlp-dfdx.safetensors')]);
    expect(model).toMatchObject({ format: 'safetensors', version: null, metadata: {} });
    expect(model.tensors.map((t) => t.shape)).toEqual([[512], [512, 784], [128], [128, 512], [32], [32, 128], [10], [10, 32]]);
    const w = await readTensorF32(model, tensor(model, '0.0.weight'));
    const absMax = w.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(absMax).toBeGreaterThan(0.01); // trained weights, not zeros
    expect(absMax).toBeLessThan(10);
  });

  it('the GGUF and safetensors copies of stories260K hold the same numbers, after undoing the q/k permutation', async () => {
    const [gguf, hf] = await Promise.all([stories(), storiesF32()]);
    expect(hf.tensors).toHaveLength(48);
    for (const [ggufName, hfName] of GGUF_TO_HF) {
      const g = tensor(gguf, ggufName);
      const h = tensor(hf, hfName);
      expect(h.shape, hfName).toEqual(g.shape);
      let values = await readTensorF32(gguf, g);
      const nHead = ggufName.endsWith('attn_q.weight') ? 8 : ggufName.endsWith('attn_k.weight') ? 4 : 0;
      if (nHead) values = unpermuteRows(values, g.shape[0], g.shape[1], nHead);
      expect(await readTensorF32(hf, h), hfName).toEqual(values);
    }
  });

  it('the permutation matters: q rows differ unless undone', async () => {
    const [gguf, hf] = await Promise.all([stories(), storiesF32()]);
    const g = await readTensorF32(gguf, tensor(gguf, 'blk.0.attn_q.weight'));
    const h = await readTensorF32(hf, tensor(hf, 'model.layers.0.self_attn.q_proj.weight'));
    expect(h).not.toEqual(g);
  });

  it('the BF16 copy is the F32 copy rounded to nearest even', async () => {
    const [f32, bf16] = await Promise.all([storiesF32(), fixture('stories260K.bf16.safetensors').then((s) => loadModel([s]))]);
    for (const t of bf16.tensors) {
      expect(t.dtype).toBe('BF16');
      const bits = new Uint16Array((await readTensorBytes(bf16, t)).slice().buffer);
      const reference = await readTensorF32(f32, tensor(f32, t.name));
      expect(Array.from(reference, f32ToBf16Bits), t.name).toEqual(Array.from(bits));
    }
  });

  it('the 2-shard model with its index, config.json and tokenizer.model equals the single file', async () => {
    const sources = await Promise.all([
      'stories260K-sharded/model-00002-of-00002.safetensors',
      'stories260K-sharded/model.safetensors.index.json',
      'stories260K-sharded/model-00001-of-00002.safetensors',
      'stories260K.config.json',
      'tok512.model',
    ].map(fixture));
    const sharded = await loadModel(sources);
    const single = await storiesF32();
    expect(sharded.files.map((f) => [f.source.name, f.role])).toEqual([
      ['model-00002-of-00002.safetensors', 'safetensors'],
      ['model.safetensors.index.json', 'index'],
      ['model-00001-of-00002.safetensors', 'safetensors'],
      ['stories260K.config.json', 'config'],
      ['tok512.model', 'tokenizer'],
    ]);
    expect(sharded.metadata).toMatchObject({
      __metadata__: { format: 'pt' },
      config: { model_type: 'llama', hidden_size: 64, num_attention_heads: 8, num_key_value_heads: 4 },
      index: { total_size: 1171200 },
    });
    expect(new Set(sharded.tensors.map((t) => t.file))).toEqual(new Set(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']));
    expect(sharded.tensors[0].file).toBe('model-00001-of-00002.safetensors'); // shards in name order
    expect(sharded.tensors.map((t) => t.name).sort()).toEqual(single.tensors.map((t) => t.name).sort());
    for (const t of sharded.tensors) {
      expect(await readTensorF32(sharded, t), t.name).toEqual(await readTensorF32(single, tensor(single, t.name)));
    }
  });
});

describe('loadModel checks the files together', () => {
  const shardSources = () => Promise.all(['stories260K-sharded/model-00001-of-00002.safetensors', 'stories260K-sharded/model-00002-of-00002.safetensors'].map(fixture));
  const indexFixture = () => fixture('stories260K-sharded/model.safetensors.index.json');

  it('an index naming a shard that was not given', async () => {
    const [first] = await shardSources();
    await expect(loadModel([first, await indexFixture()])).rejects.toThrow(/model.safetensors.index.json: at byte \d+: tensor '.*' is in shard 'model-00002-of-00002.safetensors', which was not given/);
  });

  it('an index entry missing from the shard it names', async () => {
    const index = await indexFixture();
    const text = new TextDecoder().decode(await index.read(0, index.size)).replace('"model.norm.weight"', '"model.extra.weight": "model-00001-of-00002.safetensors", "model.norm.weight"');
    const edited = memorySource(new TextEncoder().encode(text), index.name);
    await expect(loadModel([...(await shardSources()), edited])).rejects.toThrow(/tensor 'model.extra.weight' is not in shard 'model-00001-of-00002.safetensors'/);
  });

  it('shards without an index are merged, refusing a duplicate tensor', async () => {
    const model = await loadModel(await shardSources());
    expect(model.tensors).toHaveLength(48);
    const single = await fixture('stories260K.f32.safetensors');
    const error = await loadModel([...(await shardSources()), single]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FormatError);
    expect((error as FormatError).reason).toMatch(/is also in/);
  });

  it('a GGUF with safetensors, two GGUFs, no model file at all', async () => {
    const gguf = await fixture('stories260K.gguf');
    await expect(loadModel([gguf, await fixture('stories260K.f32.safetensors')])).rejects.toThrow(/cannot be part of the same model/);
    const copy = memorySource(await gguf.read(0, gguf.size), 'copy.gguf');
    await expect(loadModel([gguf, copy])).rejects.toThrow(/only one GGUF file per model/);
    await expect(loadModel([await fixture('tok512.model')])).rejects.toThrow(/tok512.model: at byte 0: no GGUF or safetensors file/);
  });

  it('reports every bad file at once', async () => {
    const bad1 = memorySource(rawSafetensors('[1]'), 'a.safetensors');
    const bad2 = memorySource(rawSafetensors({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 8] } }, 8), 'b.safetensors');
    const error = await loadModel([bad1, bad2]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FormatErrorList);
    const list = error as FormatErrorList;
    expect(list.errors.map((e) => e.file)).toEqual(['a.safetensors', 'b.safetensors']);
    expect(list.message).toMatch(/^a.safetensors: at byte 8: .*\(and 1 more bad file\)$/);
  });

  it('a bad config.json', async () => {
    const config = memorySource(new TextEncoder().encode('{"hidden_size": '), 'config.json');
    await expect(loadModel([await fixture('mnist-mlp-dfdx.safetensors'), config])).rejects.toThrow(/config.json: at byte 0: config file is not valid JSON/);
  });

  it('recognises files by content when names say nothing', async () => {
    const gguf = await fixture('stories260K.gguf');
    const st = await fixture('mnist-mlp-dfdx.safetensors');
    const rename = async (s: ByteSource, name: string) => memorySource(await s.read(0, s.size), name);
    expect(await recogniseFile(await rename(gguf, 'model.bin'))).toBe('gguf');
    expect(await recogniseFile(await rename(st, 'model.bin'))).toBe('safetensors');
    expect(await recogniseFile(memorySource(new Uint8Array(3), 'README.md'))).toBe('other');
  });

  it('reads through a browser Blob the same as through a file', async () => {
    const file = await fixture('stories260K.gguf');
    const blob = new Blob([(await file.read(0, file.size)).slice()]);
    const viaBlob = await loadModel([blobSource(blob, 'stories260K.gguf')]);
    const viaFile = await stories();
    expect(viaBlob.tensors).toEqual(viaFile.tensors);
    const t = tensor(viaBlob, 'output.weight');
    expect(await readTensorF32(viaBlob, t)).toEqual(await readTensorF32(viaFile, tensor(viaFile, 'output.weight')));
  });
});

describe('readTensorF32', () => {
  /** A one-tensor safetensors model holding `bytes` as `dtype`. */
  function oneTensor(dtype: string, shape: number[], bytes: Uint8Array): Promise<ModelIndex> {
    const file = rawSafetensors({ t: { dtype, shape, data_offsets: [0, bytes.length] } }, bytes.length);
    file.set(bytes, file.length - bytes.length);
    return loadModel([memorySource(file, 't.safetensors')]);
  }
  const read = async (dtype: string, shape: number[], bytes: ArrayLike<number> | ArrayBufferView) => {
    const raw = ArrayBuffer.isView(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : Uint8Array.from(bytes as ArrayLike<number>);
    const model = await oneTensor(dtype, shape, raw);
    return Array.from(await readTensorF32(model, model.tensors[0]));
  };

  it('decodes every float and int dtype', async () => {
    expect(await read('F64', [2], new Float64Array([1.5, -1e10]))).toEqual([1.5, -1e10]);
    expect(await read('F32', [2], new Float32Array([0.25, -3]))).toEqual([0.25, -3]);
    expect(await read('F16', [3], new Uint16Array([0x3c00, 0xc000, 0x0001]))).toEqual([1, -2, 2 ** -24]);
    expect(await read('BF16', [2], new Uint16Array([0x3f80, 0xc0a0]))).toEqual([1, -5]);
    expect(await read('I64', [2], new BigInt64Array([-5n, 1n << 40n]))).toEqual([-5, 2 ** 40]);
    expect(await read('U64', [1], new BigUint64Array([7n]))).toEqual([7]);
    expect(await read('I32', [2], new Int32Array([-7, 123456]))).toEqual([-7, 123456]);
    expect(await read('U32', [1], new Uint32Array([4e9]))).toEqual([Math.fround(4e9)]);
    expect(await read('I16', [2], new Int16Array([-300, 300]))).toEqual([-300, 300]);
    expect(await read('U16', [1], new Uint16Array([65535]))).toEqual([65535]);
    expect(await read('I8', [2], new Int8Array([-128, 127]))).toEqual([-128, 127]);
    expect(await read('U8', [2], [0, 255])).toEqual([0, 255]);
    expect(await read('BOOL', [3], [0, 1, 2])).toEqual([0, 1, 1]);
  });

  it('decodes FP8 E4M3 and E5M2 (OCP), E8M0 scales and FP4 E2M1', async () => {
    // E4M3: 0x38 = 1.0, 0x7e = 448 (max), 0x01 = 2^-9 (min subnormal), 0xff = NaN.
    expect(await read('F8_E4M3', [5], [0x38, 0x7e, 0x01, 0xb8, 0xff])).toEqual([1, 448, 2 ** -9, -1, NaN]);
    // E5M2: 0x3c = 1.0, 0x7b = 57344 (max), 0x7c = inf, 0x01 = 2^-16.
    expect(await read('F8_E5M2', [4], [0x3c, 0x7b, 0x7c, 0x01])).toEqual([1, 57344, Infinity, 2 ** -16]);
    expect(await read('F8_E8M0', [3], [127, 130, 255])).toEqual([1, 8, NaN]);
    // FP4: low nibble first; 0x2 = 1.0, 0x7 = 6, 0xf = -6, 0x9 = -0.5.
    expect(await read('F4', [4], [0x72, 0x9f])).toEqual([1, 6, -6, -0.5]);
  });

  it('reads a block-aligned range of elements', async () => {
    const model = await stories();
    const embd = tensor(model, 'token_embd.weight');
    const all = await readTensorF32(model, embd);
    const row5 = await readTensorF32(model, embd, { elementOffset: 5 * 64, elementCount: 64 });
    expect(row5).toEqual(all.subarray(320, 384));
    await expect(readTensorF32(model, embd, { elementOffset: 512 * 64, elementCount: 1 })).rejects.toThrow(RangeError);
  });

  it('leaves block-quantized GGUF types to a dequantizer the caller passes in', async () => {
    const layout = planGguf({ metadata: [], tensors: [{ name: 'q', type: GGML_TYPE.Q8_0, ne: [64, 2] }] });
    const bytes = await collect(writeGguf(layout, (t) => new Uint8Array(t.nbytes).fill(1)));
    const model = await loadModel([memorySource(bytes, 'q.gguf')]);
    const q = model.tensors[0];
    expect(q).toMatchObject({ dtype: 'q8_0', shape: [2, 64], nbytes: 4 * 34 });
    await expect(readTensorF32(model, q)).rejects.toThrow(/is q8_0: pass a dequantizer/);
    const calls: [number, number, number][] = [];
    const values = await readTensorF32(model, q, {
      elementOffset: 64,
      elementCount: 64,
      dequantize: (type, raw, n) => {
        calls.push([type, raw.length, n]);
        return new Float32Array(n).fill(type);
      },
    });
    expect(calls).toEqual([[GGML_TYPE.Q8_0, 2 * 34, 64]]);
    expect(values).toHaveLength(64);
    await expect(readTensorF32(model, q, { elementOffset: 16, elementCount: 32 })).rejects.toThrow(/32-element block boundaries/);
  });
});
