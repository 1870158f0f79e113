import { beforeAll, describe, expect, it } from 'vitest';
import { memorySource } from '../../formats/bytes.ts';
import { FormatError } from '../../formats/errors.ts';
import { GGML_TYPE } from '../../formats/gguf/constants.ts';
import { loadModel } from '../../formats/model.ts';
import { checkAdapterFits, createLoraAdapter, loraScale, loraTargetName as loraTargetNameOf, withRandomB, type LoraAdapter } from './adapter.ts';
import { loraLinear, mergedWeight, quantizedBase } from './apply.ts';
import { encodeLoraGguf, readLoraGguf } from './gguf.ts';
import { encodePeft, peftBase, readPeft, unpermuteQkRows } from './peft.ts';
import { permuteQkRows } from '../../convert/llama.ts';
import { logitsOf, maxDifference, meanKl, openStories, type OpenedModel } from './testing.ts';
import { EVAL_TEXT } from '../../model/eval-text.ts';
import { cpuLinear } from '../../model/families/index.ts';
import { SpmTokenizer, spmVocabFromGguf } from '../../model/tokenizer.ts';

let m: OpenedModel;
let adapter: LoraAdapter;
let tokens: number[];

beforeAll(async () => {
  m = await openStories();
  adapter = withRandomB(createLoraAdapter(m.base, { rank: 4, alpha: 8, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], seed: 3 }), 5, 0.05);
  tokens = new SpmTokenizer(spmVocabFromGguf(m.model.metadata)).encode(EVAL_TEXT).slice(0, 48);
});

function sameAdapter(a: LoraAdapter, b: LoraAdapter): void {
  expect({ ...b, weights: undefined }).toEqual({ ...a, weights: undefined });
  expect([...b.weights.keys()]).toEqual([...a.weights.keys()]);
  for (const [name, w] of a.weights) {
    const v = b.weights.get(name)!;
    expect([v.layer, v.module, v.rank, v.rows, v.cols]).toEqual([w.layer, w.module, w.rank, w.rows, w.cols]);
    expect(Buffer.from(v.a.buffer, v.a.byteOffset, v.a.byteLength).equals(Buffer.from(w.a.buffer, w.a.byteOffset, w.a.byteLength)), `${name} A`).toBe(true);
    expect(Buffer.from(v.b.buffer, v.b.byteOffset, v.b.byteLength).equals(Buffer.from(w.b.buffer, w.b.byteOffset, w.b.byteLength)), `${name} B`).toBe(true);
  }
}

describe('LoRA adapter model', () => {
  it('initialises as PEFT: A in U(-1/sqrt(in), 1/sqrt(in)) from the seed, B zero, one pair per layer and target', () => {
    const a = createLoraAdapter(m.base, { rank: 2, targetModules: ['v_proj', 'q_proj'], seed: 9 });
    expect(a.targetModules).toEqual(['q_proj', 'v_proj']);
    expect(a.alpha).toBe(2);
    expect([...a.weights.keys()].slice(0, 2)).toEqual(['blk.0.attn_q.weight', 'blk.0.attn_v.weight']);
    expect(a.weights.size).toBe(2 * m.config.nLayer);
    const v = a.weights.get('blk.0.attn_v.weight')!;
    expect([v.rows, v.cols, v.rank]).toEqual([m.config.nHeadKv * m.config.headDim, m.config.nEmbd, 2]);
    expect(v.b.every((x) => x === 0)).toBe(true);
    const bound = 1 / Math.sqrt(v.cols);
    expect(v.a.every((x) => Math.abs(x) <= bound)).toBe(true);
    expect(new Set(v.a).size).toBe(v.a.length);
    const again = createLoraAdapter(m.base, { rank: 2, targetModules: ['q_proj', 'v_proj'], seed: 9 });
    expect(Array.from(again.weights.get('blk.0.attn_v.weight')!.a)).toEqual(Array.from(v.a));
    expect(Array.from(createLoraAdapter(m.base, { rank: 2, targetModules: ['v_proj'], seed: 10 }).weights.get('blk.0.attn_v.weight')!.a)).not.toEqual(Array.from(v.a));
  });

  it("scales as llama.cpp's get_scale: alpha / rank x the user's scale; alpha 0 leaves the user's scale", () => {
    expect(loraScale(16, 8)).toBe(2);
    expect(loraScale(16, 8, 0.5)).toBe(1);
    expect(loraScale(0, 8, 0.75)).toBe(0.75);
  });

  it('refuses rank 0, an unknown or absent module and shapes that do not fit, each in one line', () => {
    expect(() => createLoraAdapter(m.base, { rank: 0 })).toThrow(/^LoRA: rank 0 must be a whole number >= 1$/);
    expect(() => createLoraAdapter(m.base, { rank: 2, targetModules: ['qkv_proj'] })).toThrow(/target module 'qkv_proj' is not one of q_proj/);
    expect(() => createLoraAdapter(m.base, { rank: 65 })).toThrow(/rank 65 is above blk.0.attn_q.weight's 64 x 64/);
    const noQ = { ...m.base, shapes: new Map([...m.base.shapes].filter(([n]) => !n.includes('attn_q'))) };
    expect(() => createLoraAdapter(noQ, { rank: 2 })).toThrow(/q_proj \(blk.0.attn_q.weight\) is not in the model/);
    expect(() => checkAdapterFits(adapter, noQ)).toThrow(/'blk.0.attn_q.weight' \(q_proj\) is not in the model/);
    const narrow = { ...m.base, shapes: new Map([...m.base.shapes].map(([n, s]) => [n, n === 'blk.2.ffn_down.weight' ? [s[0], s[1] - 4] as const : s])) };
    expect(() => checkAdapterFits(adapter, narrow)).toThrow(/^LoRA tensor 'blk.2.ffn_down.weight' is 64 x 172 \(B 64 x 4, A 4 x 172\), the model's is 64 x 168$/);
    expect(() => checkAdapterFits({ ...adapter, architecture: 'qwen2' }, m.base)).toThrow(/for architecture 'qwen2', the model is 'llama'/);
    checkAdapterFits(adapter, m.base);
  });
});

describe('GGUF LoRA adapter', () => {
  it("writes convert_lora_to_gguf.py's keys and tensors (ggml ne [in, r] and [r, out], F32) and reads back bit for bit", async () => {
    const bytes = await encodeLoraGguf(adapter, 'test-adapter');
    const index = await loadModel([memorySource(bytes, 'a.gguf')]);
    expect(index.ggufMetadata!.map((e) => e.key)).toEqual(['general.architecture', 'general.type', 'adapter.type', 'general.name', 'adapter.lora.alpha', 'general.quantization_version']);
    expect(index.metadata['general.type']).toBe('adapter');
    expect(index.metadata['adapter.type']).toBe('lora');
    expect(index.metadata['adapter.lora.alpha']).toBe(8);
    const q = index.tensors.filter((t) => t.name.startsWith('blk.0.attn_k.'));
    expect(q.map((t) => [t.name, t.ggmlType, t.shape])).toEqual([
      ['blk.0.attn_k.weight.lora_a', GGML_TYPE.F32, [4, 64]],
      ['blk.0.attn_k.weight.lora_b', GGML_TYPE.F32, [32, 4]],
    ]);
    expect(index.tensors).toHaveLength(2 * 7 * m.config.nLayer);
    sameAdapter(adapter, await readLoraGguf(memorySource(bytes, 'a.gguf')));
  });

  it('refuses a model file, a missing lora_b and a transposed lora_a with the file named', async () => {
    const stories = new Uint8Array(await (await import('node:fs/promises')).readFile(new URL('../../../../shared/fixtures/models/stories260K.gguf', import.meta.url)));
    await expect(readLoraGguf(memorySource(stories, 'stories260K.gguf'))).rejects.toThrow(/^stories260K.gguf: at byte 0: general.type is undefined, expected "adapter"/);
    // lora_a stored untransposed (ne [rank, in]): llama.cpp's "lora_a tensor is not transposed".
    const { planGguf, writeGguf } = await import('../../formats/gguf/write.ts');
    const { collectBytes } = await import('../../formats/bytes.ts');
    const { ggufEntry } = await import('../../formats/gguf/metadata.ts');
    const layout = planGguf({
      metadata: [ggufEntry('general.architecture', 8, 'llama'), ggufEntry('general.type', 8, 'adapter'), ggufEntry('adapter.type', 8, 'lora'), ggufEntry('adapter.lora.alpha', 6, 8)],
      tensors: [
        { name: 'blk.0.attn_q.weight.lora_a', type: GGML_TYPE.F32, ne: [4, 64] },
        { name: 'blk.0.attn_q.weight.lora_b', type: GGML_TYPE.F32, ne: [4, 64] },
        { name: 'blk.0.attn_v.weight.lora_a', type: GGML_TYPE.F32, ne: [64, 4] },
      ],
    });
    const bad = await collectBytes(writeGguf(layout, (t) => new Uint8Array(t.nbytes)));
    await expect(readLoraGguf(memorySource(bad, 't.gguf'))).rejects.toThrow(FormatError);
    await expect(readLoraGguf(memorySource(bad, 't.gguf'))).rejects.toThrow(/^t.gguf: at byte \d+: 'blk.0.attn_q.weight': lora_a ne \[4, 64\] and lora_b ne \[4, 64\] disagree on the rank/);
    const noB = await collectBytes(writeGguf(planGguf({ metadata: layout.metadata, tensors: layout.tensors.slice(2) }), (t) => new Uint8Array(t.nbytes)));
    await expect(readLoraGguf(memorySource(noB, 'n.gguf'))).rejects.toThrow(/^n.gguf: at byte 0: LoRA tensor pair for 'blk.0.attn_v.weight' is missing its lora_b$/);
  });
});

describe('PEFT files', () => {
  it('un-permutes q/k rows for HF order and back (permuteQkRows inverted)', () => {
    const v = Float32Array.from({ length: 32 * 3 }, (_, i) => i);
    expect(Array.from(permuteQkRows(unpermuteQkRows(v, 32, 4), 32, 4))).toEqual(Array.from(v));
    expect(Array.from(unpermuteQkRows(v, 32, 4))).not.toEqual(Array.from(v));
  });

  it('writes adapter_model.safetensors (PEFT names, lora_B in HF row order) and adapter_config.json, and re-loads identically', async () => {
    const base = peftBase(m.config, 'llama');
    const { weights, config } = encodePeft(adapter, base, 'stories260K');
    const json = JSON.parse(config) as Record<string, unknown>;
    expect(json).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 8, lora_dropout: 0, bias: 'none', task_type: 'CAUSAL_LM', base_model_name_or_path: 'stories260K' });
    expect(json.target_modules).toEqual(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']);
    const header = await (await import('../../formats/safetensors.ts')).readSafetensors(memorySource(weights, 'adapter_model.safetensors'));
    const qB = header.tensors.find((t) => t.name === 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight')!;
    expect([qB.dtype, qB.shape]).toEqual(['F32', [64, 4]]);
    expect(header.tensors.find((t) => t.name === 'base_model.model.model.layers.4.mlp.down_proj.lora_A.weight')!.shape).toEqual([4, 172]);
    const stored = new Float32Array(weights.slice(qB.offset, qB.offset + qB.nbytes).buffer);
    expect(Array.from(stored)).toEqual(Array.from(unpermuteQkRows(adapter.weights.get('blk.0.attn_q.weight')!.b, 64, 8)));
    const again = await readPeft(memorySource(new TextEncoder().encode(config), 'adapter_config.json'), memorySource(weights, 'adapter_model.safetensors'), base);
    sameAdapter(adapter, again);
  });

  it('refuses rsLoRA, DoRA, rank 0 and a module the weights lack, naming the field', async () => {
    const base = peftBase(m.config, 'llama');
    const { weights, config } = encodePeft(adapter, base);
    const withConfig = (patch: Record<string, unknown>) =>
      readPeft(memorySource(new TextEncoder().encode(JSON.stringify({ ...JSON.parse(config), ...patch })), 'adapter_config.json'), memorySource(weights, 'adapter_model.safetensors'), base);
    await expect(withConfig({ use_rslora: true })).rejects.toThrow(/^adapter_config.json: at byte 0: use_rslora: rsLoRA/);
    await expect(withConfig({ use_dora: true })).rejects.toThrow(/use_dora: DoRA is not supported/);
    await expect(withConfig({ r: 0 })).rejects.toThrow(/r: 0 must be a whole number >= 1/);
    await expect(withConfig({ r: 8 })).rejects.toThrow(/rank 4, adapter_config.json says r = 8/);
    const qOnly = encodePeft({ ...adapter, targetModules: ['q_proj'], weights: new Map([...adapter.weights].filter(([n]) => n.includes('attn_q'))) }, base);
    await expect(
      readPeft(memorySource(new TextEncoder().encode(JSON.stringify({ ...JSON.parse(qOnly.config), target_modules: ['q_proj', 'v_proj'] })), 'adapter_config.json'), memorySource(qOnly.weights, 'adapter_model.safetensors'), base),
    ).rejects.toThrow(/target_modules: lists 'v_proj', which adapter_model.safetensors has no tensors for/);
  });
});

describe('LoRA in the forward pass', () => {
  it('base + scale·B·A through the Linear hook equals the merged f32 weights; B = 0 changes nothing', async () => {
    const hooked = await logitsOf(m, tokens, (p) => loraLinear(cpuLinear(p), adapter));
    const merged = new Map([...m.weights].map(([n, w]) => [n, mergedWeight(w, adapter, n)]));
    const viaMerge = await logitsOf({ config: m.config, weights: merged }, tokens);
    const plain = await logitsOf(m, tokens);
    const d = maxDifference(hooked, viaMerge);
    console.log(`LoRA hook vs merged f32 weights: max |diff| ${d.abs.toExponential(2)} (rel ${d.rel.toExponential(2)}); adapter moves logits by ${maxDifference(hooked, plain).abs.toFixed(3)}`);
    expect(d.rel).toBeLessThan(1e-5);
    expect(maxDifference(hooked, plain).abs).toBeGreaterThan(0.05);
    const zero = createLoraAdapter(m.base, { rank: 4, targetModules: ['q_proj', 'down_proj'], seed: 1 });
    expect(Array.from(await logitsOf(m, tokens, (p) => loraLinear(cpuLinear(p), zero)))).toEqual(Array.from(plain));
    const half = await logitsOf(m, tokens, (p) => loraLinear(cpuLinear(p), adapter, 0.5));
    const halfAlpha = await logitsOf(m, tokens, (p) => loraLinear(cpuLinear(p), { ...adapter, alpha: 4 }));
    expect(Array.from(half)).toEqual(Array.from(halfAlpha));
  });

  it("on the safetensors checkpoint (HF names, q/k rows unpermuted) the same adapter gives the GGUF's logits", async () => {
    const { fixture } = await import('../../formats/testing.ts');
    const { modelConfig } = await import('../../model/families/index.ts');
    const { readModelWeights } = await import('../../model/weights.ts');
    const { loraBase } = await import('./adapter.ts');
    const { adapterForModel } = await import('./apply.ts');
    const hf = await loadModel([await fixture('stories260K.f32.safetensors'), await fixture('stories260K.config.json')]);
    const config = modelConfig(hf);
    const base = loraBase(hf, config);
    expect(base.shapes).toEqual(m.base.shapes);
    const onHf = adapterForModel(adapter, base);
    expect(onHf.weights.has('model.layers.0.self_attn.q_proj.weight')).toBe(true);
    const ours = await logitsOf({ config, weights: await readModelWeights(hf, config) }, tokens, (p) => loraLinear(cpuLinear(p), onHf));
    const gguf = await logitsOf(m, tokens, (p) => loraLinear(cpuLinear(p), adapter));
    const d = maxDifference(ours, gguf);
    expect(d.rel).toBeLessThan(1e-5);
    // Without the q/k un-permutation the logits part (the test is not blind to row order).
    const unpermuted = { ...onHf, weights: new Map([...onHf.weights].map(([n, w]) => [n, { ...w, b: adapter.weights.get(loraTargetNameOf(w.layer, w.module))!.b }])) };
    const wrong = await logitsOf({ config, weights: await readModelWeights(hf, config) }, tokens, (p) => loraLinear(cpuLinear(p), unpermuted));
    expect(maxDifference(wrong, gguf).rel).toBeGreaterThan(100 * d.rel);
  });

  it('QLoRA on a Q4_K base (synthetic llama, rows of 256/512): blocks per row, logits equal the dequantized base + adapter', async () => {
    const { buildSyntheticLlama } = await import('../../testing/synthetic-llama.ts');
    const { modelConfig } = await import('../../model/families/index.ts');
    const { readModelWeights } = await import('../../model/weights.ts');
    const { loraBase } = await import('./adapter.ts');
    const model = await loadModel([memorySource(buildSyntheticLlama({ nLayer: 1, nEmbd: 256, nFf: 512, nHead: 4, nHeadKv: 2, nVocab: 300, seed: 4 }), 'syn.gguf')]);
    const config = modelConfig(model);
    const weights = await readModelWeights(model, config);
    const base = loraBase(model, config);
    const ad = withRandomB(createLoraAdapter(base, { rank: 8, alpha: 16, targetModules: ['q_proj', 'v_proj', 'down_proj'], seed: 2 }), 7, 0.1);
    const q = quantizedBase(weights, [...base.shapes.keys()], 'q4_K', base.shapes);
    expect(q.packed.get('blk.0.ffn_down.weight')!.bytes.length).toBe(256 * (512 / 256) * 144);
    const toks = [1, 5, 9, 200, 17, 33, 4, 250];
    const qlora = await logitsOf({ config, weights: new Map(q.values) }, toks, () => loraLinear(q.linear, ad));
    const reference = await logitsOf({ config, weights: new Map([...weights].map(([n, w]) => [n, q.packed.has(n) ? mergedWeight(q.weights(n), ad, n) : w])) }, toks);
    expect(maxDifference(qlora, reference).rel).toBeLessThan(1e-5);
  });

  it('QLoRA: the base held as NF4 blocks (no f32 copy), decoded per product; its logits equal the dequantized base + adapter', async () => {
    const targets = [...m.base.shapes.keys()];
    const q = quantizedBase(m.weights, targets, 'nf4', m.base.shapes);
    expect(targets.every((n) => !q.values.has(n) && q.packed.get(n)!.type.id === 'nf4')).toBe(true);
    const qlora = await logitsOf({ config: m.config, weights: new Map(q.values) }, tokens, () => loraLinear(q.linear, adapter));
    const decoded = new Map([...m.weights].map(([n, w]) => [n, q.packed.has(n) ? mergedWeight(q.weights(n), adapter, n) : w]));
    const reference = await logitsOf({ config: m.config, weights: decoded }, tokens);
    expect(maxDifference(qlora, reference).rel).toBeLessThan(1e-5);
    const f32 = await logitsOf(m, tokens, (p) => loraLinear(cpuLinear(p), adapter));
    const kl = meanKl(f32, qlora, m.config.nVocab);
    console.log(`QLoRA NF4 base + f32 adapter vs F32 base + adapter: KL ${kl.toExponential(3)}`);
    expect(kl).toBeGreaterThan(0);
    expect(kl).toBeLessThan(0.5);
    expect(() => quantizedBase(m.weights, targets, 'q4_K', m.base.shapes)).toThrow(/q4_K: 'blk.0.attn_q.weight' has rows of 64, not a multiple of its blocks of 256/);
    expect(() => quantizedBase(m.weights, targets, 'int7', m.base.shapes)).toThrow(/QLoRA base type 'int7' has no codec/);
  });
});
