// Presets against the real llama.cpp (the library inside node-llama-cpp, called through
// koffi): for real and synthetic Llama GGUFs, every preset, --pure types, --tensor-type
// overrides and the output/token-embedding options, llama-quantize's output file must
// hold exactly the tensors, order and types planQuantization predicts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metadataToObject } from '../formats/gguf/metadata.ts';
import { readGguf } from '../formats/gguf/read.ts';
import { fileSource } from '../formats/node-source.ts';
import { LLAMA_FTYPE, ggmlQuantizeChunk, llamaQuantize, type QuantizeOptions } from '../testing/llama-peer.ts';
import { type SyntheticLlamaOptions, writeSyntheticLlama } from '../testing/synthetic-llama.ts';
import {
  PRESETS,
  type PlanMode,
  type PlanOptions,
  type PlanTensorInput,
  type TensorPlan,
  type TensorTypeOverride,
  fileTypeForPureType,
  findPreset,
  modelInfoFromMetadata,
  outputTensorOrder,
  parseTensorTypeOverride,
  planQuantization,
  resolveMode,
} from './presets.ts';
import { quantType } from './types.ts';

const MODELS = join(import.meta.dirname, '../../../shared/fixtures/models');

interface Model {
  path: string;
  metadata: Record<string, unknown>;
  tensors: PlanTensorInput[];
}

async function readModel(path: string): Promise<Model> {
  const header = await readGguf(await fileSource(path));
  return {
    path,
    metadata: metadataToObject(header.metadata),
    tensors: header.tensors.map((t) => ({ name: t.name, shape: [...t.ne].reverse(), dtype: t.typeName })),
  };
}

// Synthetic models. Rules look only at row lengths, names and hparams, so all but A keep
// just 2 rows per matrix (compactRows): many layers and odd shapes for a few kB each.
const SYNTHETIC: Record<string, SyntheticLlamaOptions> = {
  // A real (loadable) Llama: rows of 256 and 768, GQA 4, separate output. The slow one
  // (~0.3 s a preset): every preset runs on it; other checks use its compact twin Ac.
  A: { nLayer: 2, nEmbd: 256, nFf: 768, nHead: 8, nHeadKv: 2, nVocab: 288 },
  Ac: { nLayer: 2, nEmbd: 256, nFf: 768, nHead: 8, nHeadKv: 2, nVocab: 288, compactRows: 2 },
  // 16 layers (n_layer/8 and n_layer/16 rules), no GQA, tied embeddings, f16 weights, rope_freqs.
  B: { nLayer: 16, nEmbd: 256, nFf: 768, nHead: 4, nHeadKv: 4, nVocab: 288, tiedEmbeddings: true, weightType: 'f16', ropeFreqs: true, compactRows: 2 },
  // ffn rows of 800: K-quants fall back to block-32 types that fit; GQA 8.
  C: { nLayer: 8, nEmbd: 512, nFf: 800, nHead: 8, nHeadKv: 1, nVocab: 288, compactRows: 2 },
  // Mixtral-style: 8 experts (3-D expert tensors, the n_expert == 8 rules).
  D: { nLayer: 4, nEmbd: 256, nFf: 768, nHead: 8, nHeadKv: 2, nVocab: 288, nExpert: 8, nExpertUsed: 2, compactRows: 2 },
  // 80 layers with GQA: llama.cpp's LLM_TYPE_70B (only the K mixtures it changes run on it).
  E: { nLayer: 80, nEmbd: 512, nFf: 768, nHead: 64, nHeadKv: 8, nVocab: 288, compactRows: 2 },
};

// Every type --type accepts: each is the default type of a llama.cpp file type.
const PURE_TYPES = [
  'f32', 'f16', 'bf16', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'q2_K', 'q3_K', 'q4_K', 'q5_K', 'q6_K', 'iq4_nl', 'iq4_xs', 'tq1_0', 'tq2_0', 'mxfp4',
  'iq3_s', 'iq3_xxs', 'iq2_s', 'iq2_xs', 'iq2_xxs', 'iq1_m', 'iq1_s', 'q2_0', 'q1_0',
];

const OVERRIDES: TensorTypeOverride[] = [
  { pattern: 'blk\\.0\\.attn_v', type: 'q8_0' }, // the attn_v counter does not count overridden tensors
  { pattern: /blk\.1\.ffn_(up|gate)/, type: 'iq4_nl' },
  { pattern: 'attn_q', type: 'q4_K' }, // manual even where it changes nothing
  { pattern: 'output', type: 'q5_K' }, // output.weight and every attn_output.weight
  { pattern: 'token_embd', type: 'f16' },
];

let dir: string;
const models: Record<string, Model> = {};
let outputs = 0;

beforeAll(async () => {
  warmUpIquantTables();
  dir = mkdtempSync(join(tmpdir(), 'quantlab-presets-'));
  models.stories = await readModel(join(MODELS, 'stories260K.gguf'));
  models.tinyRandom = await readModel(join(MODELS, 'llama-2-tiny-random.gguf'));
  // Quantized input (llama-quantize --allow-requantize): q5_0, q8_0 and f16 tensors.
  const requantized = join(dir, 'stories-q4_k_m.gguf');
  llamaQuantize(models.stories.path, requantized, 'Q4_K_M');
  models.requantize = await readModel(requantized);
  for (const [name, options] of Object.entries(SYNTHETIC)) {
    const path = join(dir, `${name}.gguf`);
    writeSyntheticLlama(path, options);
    models[name] = await readModel(path);
  }
}, 600_000);

/**
 * ggml builds the i-quant grids' neighbour maps on the first quantization of each type, once
 * a process (measured here on the loaded 2-core machine: iq1_s 60 s, iq2_s 14 s, iq2_xxs 5 s):
 * paid here, under beforeAll's timeout, instead of inside the first test that meets them.
 */
function warmUpIquantTables(): void {
  for (const id of ['iq1_s', 'iq1_m', 'iq2_xxs', 'iq2_xs', 'iq2_s', 'iq3_xxs', 'iq3_s']) {
    ggmlQuantizeChunk(quantType(id)!.ggml!.id, new Float32Array(256).fill(0.5), 256, new Float32Array(256).fill(1));
  }
}

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Importance 1 for every column of every matrix (ne0 x ne2 values, as llama.cpp wants). */
function unitImatrix(model: Model): Map<string, Float32Array> {
  const m = new Map<string, Float32Array>();
  for (const t of model.tensors) {
    if (t.shape.length < 2) continue;
    const ne = t.shape.map(Number).reverse();
    m.set(t.name, new Float32Array(ne[0] * (ne[2] ?? 1)).fill(1));
  }
  return m;
}

/**
 * Quantize `model` with llama.cpp and check its output against the plan. Where the plan
 * says an importance matrix is required, llama.cpp must refuse without one; it is then
 * given a unit imatrix (and the plan told so).
 */
async function checkAgainstLlama(
  model: Model,
  mode: PlanMode,
  overrides: TensorTypeOverride[] = [],
  options: PlanOptions = {},
): Promise<void> {
  const info = modelInfoFromMetadata(model.metadata);
  const resolved = resolveMode(mode);
  const peer: QuantizeOptions = {
    pure: resolved.pure,
    overrides: overrides.map((o) => ({ pattern: typeof o.pattern === 'string' ? o.pattern : o.pattern.source, type: o.type })),
    outputTensorType: options.outputTensorType,
    tokenEmbeddingType: options.tokenEmbeddingType,
    leaveOutputTensor: options.leaveOutputTensor,
  };
  if (options.hasImatrix) peer.imatrix = unitImatrix(model);
  const out = join(dir, `out-${outputs++}.gguf`);
  let plan: TensorPlan[];
  try {
    plan = planQuantization(model.tensors, info, mode, overrides, options);
  } catch (e) {
    // Where we refuse (q1_0's 128-blocks on rows of 64 have no fallback), llama.cpp must too, with the same words.
    const message = (e as Error).message;
    expect(message).toMatch(/^no tensor type fallback is defined for type /);
    expect(() => llamaQuantize(model.path, out, resolved.ftype, { ...peer, imatrix: unitImatrix(model) })).toThrow(message);
    return;
  }
  if (!options.hasImatrix && plan.some((p) => p.requiresImatrix)) {
    expect(() => llamaQuantize(model.path, out, resolved.ftype, peer)).toThrow(/requires an imatrix/);
    plan = planQuantization(model.tensors, info, mode, overrides, { ...options, hasImatrix: true });
    peer.imatrix = unitImatrix(model);
  }
  llamaQuantize(model.path, out, resolved.ftype, peer);
  const written = await readModel(out);
  const label = `${model.path} ${JSON.stringify(mode)}`;
  expect(written.tensors.map((t) => `${t.name} ${t.dtype}`), label).toEqual(plan.map((p) => `${p.name} ${p.type}`));
  expect(written.metadata['general.file_type'], label).toBe(resolved.fileType);
  // Shapes and untouched types carry over.
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  for (const [i, p] of plan.entries()) {
    const src = byName.get(p.name)!;
    expect(written.tensors[i].shape, p.name).toEqual(src.shape);
    if (!p.quantized) expect(p.type, p.name).toBe(src.dtype);
    expect(p.converted, p.name).toBe(p.type !== src.dtype);
  }
  rmSync(out);
}

// Per model: the presets and --type types checked (llama.cpp takes 20-300 ms a call).
const ALL_PRESETS = PRESETS.map((p) => p.name as string);
const SUB4_DEFAULTS = ['iq3_s', 'iq3_xxs', 'iq2_s', 'iq2_xs', 'iq2_xxs', 'iq1_m', 'iq1_s'];
const CHECKS: Record<string, { presets: string[]; types: string[] }> = {
  stories: { presets: ALL_PRESETS, types: PURE_TYPES },
  // f16 data, rows of 8 and 32, a 32000-token vocabulary (slow to load): a sample.
  requantize: { presets: ALL_PRESETS, types: ['f32', 'q5_0', 'q8_0'] },
  tinyRandom: { presets: ['F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_K_M', 'IQ4_XS', 'Q2_K'], types: ['f16', 'q8_0', 'q4_K', 'tq2_0'] },
  // The sub-4-bit mixtures cost llama.cpp seconds each on A's full matrices: two of them there, all on Ac.
  A: { presets: [...PRESETS.filter((p) => !SUB4_DEFAULTS.includes(p.defaultType)).map((p) => p.name), 'IQ2_M', 'IQ3_M'], types: ['q4_K'] },
  Ac: { presets: ALL_PRESETS, types: PURE_TYPES },
  B: { presets: ALL_PRESETS, types: PURE_TYPES },
  C: { presets: ALL_PRESETS, types: PURE_TYPES },
  D: { presets: ALL_PRESETS, types: PURE_TYPES },
  E: { presets: ['Q2_K', 'Q3_K_S', 'Q3_K_M', 'Q4_K_S', 'Q4_K_M', 'IQ3_M', 'IQ3_XS', 'IQ2_XS'], types: [] },
};

describe('presets table', () => {
  it('lists the file types of docs/contracts.md with llama.cpp numbers and types we can encode', () => {
    expect(PRESETS.map((p) => p.name).sort()).toEqual(
      ('F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q2_K_S Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_NL IQ4_XS ' +
        'IQ3_M IQ3_S IQ3_XS IQ3_XXS IQ2_M IQ2_S IQ2_XS IQ2_XXS IQ1_M IQ1_S TQ2_0 TQ1_0 Q2_0 Q1_0 MXFP4_MOE').split(' ').sort(),
    );
    for (const p of PRESETS) {
      expect(p.fileType, p.name).toBe(LLAMA_FTYPE[p.name]);
      expect(quantType(p.defaultType)?.ggml?.name, p.name).toBe(p.defaultType);
      expect(p.description.length).toBeGreaterThan(10);
    }
    expect(findPreset('q4_k_m')?.name).toBe('Q4_K_M');
    expect(findPreset('Q4_K')?.name).toBe('Q4_K_M');
    expect(findPreset('Q3_K')?.fileType).toBe(12);
    expect(findPreset('Q7_K')).toBeUndefined();
  });

  it('maps --type T to the file type llama-quantize --pure would use', () => {
    expect(fileTypeForPureType('Q4_K')).toMatchObject({ name: 'Q4_K_M', fileType: 15 });
    expect(fileTypeForPureType('q2_K')).toMatchObject({ name: 'Q2_K', fileType: 10 });
    expect(fileTypeForPureType('f32')).toMatchObject({ name: 'F32', fileType: 0 });
    expect(fileTypeForPureType('tq1_0')).toMatchObject({ fileType: 36 });
    // Several file types share a default type: the one named after it, else the only one.
    expect(fileTypeForPureType('iq3_s')).toMatchObject({ name: 'IQ3_S', fileType: 26 });
    expect(fileTypeForPureType('iq2_xs')).toMatchObject({ name: 'IQ2_XS', fileType: 20 });
    expect(fileTypeForPureType('iq2_s')).toMatchObject({ name: 'IQ2_M', fileType: 29 });
    expect(fileTypeForPureType('mxfp4')).toMatchObject({ name: 'MXFP4_MOE', fileType: 38 });
    expect(fileTypeForPureType('nf4')).toBeUndefined();
    // llama.h has NVFP4 = 39, but the pinned llama_model_quantize refuses it.
    expect(fileTypeForPureType('nvfp4')).toBeUndefined();
    expect(() => llamaQuantize(join(MODELS, 'stories260K.gguf'), join(dir, 'nvfp4.gguf'), 'NVFP4')).toThrow();
    for (const t of PURE_TYPES) expect(LLAMA_FTYPE[fileTypeForPureType(t)!.name], t).toBe(fileTypeForPureType(t)!.fileType);
  });
});

describe('planQuantization (no llama.cpp)', () => {
  it('orders tensors as llama-quantize: non-blk first, then by layer number, names sorted within', () => {
    expect(outputTensorOrder(['blk.10.a', 'token_embd.weight', 'blk.2.b', 'blk.2.a', 'output.weight', 'output_norm.weight', 'blk.x'])).toEqual([
      'blk.x', 'output.weight', 'output_norm.weight', 'token_embd.weight', 'blk.2.a', 'blk.2.b', 'blk.10.a',
    ]);
  });

  it('explains its choices: rules, fallbacks, tensors left alone', () => {
    const m = models.stories;
    const plan = new Map(planQuantization(m.tensors, modelInfoFromMetadata(m.metadata), { preset: 'Q4_K_M' }).map((p) => [p.name, p]));
    expect(plan.get('blk.0.attn_norm.weight')).toMatchObject({ type: 'f32', quantized: false, converted: false, reason: 'not quantized: 1-D' });
    expect(plan.get('blk.2.attn_v.weight')!.reason).toBe(
      'attn_v #2 of 5: use_more_bits -> q6_K; fallback: row 64 not a multiple of 256 (q6_K) -> q8_0',
    );
    expect(plan.get('blk.2.ffn_down.weight')).toMatchObject({ type: 'f16', converted: true });
    expect(plan.get('blk.2.ffn_down.weight')!.reason).toMatch(/row 172 not a multiple of 256 \(q6_K\) -> q8_0, not a multiple of 32 either -> f16$/);
    expect(plan.get('output.weight')!.reason).toBe("output: row 64 not a multiple of q4_K's 256 -> q8_0");
    const q80 = planQuantization(m.tensors, modelInfoFromMetadata(m.metadata), { type: 'q8_0' });
    expect(q80.find((p) => p.name === 'blk.0.ffn_down.weight')!.reason).toBe(
      'Q8_0 --pure -> q8_0; fallback: row 172 not a multiple of 32 (q8_0) -> f16',
    );
  });

  it('refuses what llama.cpp or GGUF would refuse', () => {
    const m = models.stories;
    const info = modelInfoFromMetadata(m.metadata);
    expect(() => planQuantization(m.tensors, info, { preset: 'Q7_K' })).toThrow(/unknown preset/);
    expect(() => planQuantization(m.tensors, info, { type: 'nf4' })).toThrow(/no file type/);
    expect(() => planQuantization(m.tensors, info, { preset: 'Q4_0' }, [{ pattern: 'attn', type: 'nf4' }])).toThrow(/not a type quantlab can write/);
    expect(() => planQuantization([...m.tensors, m.tensors[0]], info, { preset: 'Q4_0' })).toThrow(/duplicated/);
  });

  it('parses --tensor-type as llama-quantize does (pattern lower-cased)', () => {
    expect(parseTensorTypeOverride('Attn_V=Q8_0')).toEqual({ pattern: 'attn_v', type: 'q8_0' });
    expect(() => parseTensorTypeOverride('attn_v')).toThrow(/PATTERN=TYPE/);
    expect(() => parseTensorTypeOverride('attn_v=')).toThrow(/missing/);
    expect(() => parseTensorTypeOverride('attn_v=int8')).toThrow(/not a type/);
  });
});

describe('the synthetic models reach the rules they are there for', () => {
  const typeOf = (model: string, mode: PlanMode, name: string, options: PlanOptions = {}) => {
    const m = models[model];
    return planQuantization(m.tensors, modelInfoFromMetadata(m.metadata), mode, [], options).find((p) => p.name === name)!.type;
  };
  it('uses K-quants, use_more_bits, n_layer/16, GQA, experts, 70B, imatrix and block-32 fallbacks', () => {
    expect(typeOf('A', { preset: 'Q4_K_M' }, 'blk.0.attn_q.weight')).toBe('q4_K');
    expect(typeOf('A', { preset: 'Q4_K_M' }, 'blk.1.ffn_down.weight')).toBe('q6_K'); // use_more_bits
    expect(typeOf('A', { preset: 'IQ4_XS' }, 'blk.0.attn_v.weight')).toBe('q5_K'); // n_gqa 4
    expect(typeOf('B', { preset: 'Q3_K_M' }, 'blk.0.ffn_down.weight')).toBe('q5_K'); // i < n_layer/16
    expect(typeOf('B', { preset: 'Q4_K_M' }, 'token_embd.weight')).toBe('q6_K'); // tied to output
    expect(typeOf('B', { preset: 'Q4_0' }, 'blk.1.ffn_down.weight', { hasImatrix: true })).toBe('q4_1');
    expect(typeOf('C', { preset: 'Q4_K_M' }, 'blk.4.ffn_down.weight')).toBe('q5_0'); // rows of 800
    expect(typeOf('D', { preset: 'Q4_K_M' }, 'blk.0.attn_k.weight')).toBe('q8_0'); // 8 experts
    expect(typeOf('D', { preset: 'Q4_K_M' }, 'blk.2.ffn_down_exps.weight')).toBe('q6_K');
    expect(typeOf('E', { preset: 'Q4_K_M' }, 'blk.40.attn_v.weight')).toBe('q5_K'); // 70B
  });

  it('uses the sub-4-bit mixtures: guards, GQA, experts, imatrix, middle layers, q5_K output', () => {
    expect(typeOf('A', { preset: 'IQ2_XXS' }, 'output.weight')).toBe('q5_K');
    expect(typeOf('A', { preset: 'IQ2_XXS' }, 'token_embd.weight')).toBe('q2_K');
    expect(typeOf('A', { preset: 'IQ2_M' }, 'token_embd.weight')).toBe('iq3_s');
    expect(typeOf('A', { preset: 'IQ2_XS' }, 'blk.0.attn_v.weight')).toBe('q4_K'); // n_gqa 4
    expect(typeOf('B', { preset: 'IQ2_S' }, 'blk.1.attn_v.weight')).toBe('iq3_s'); // no GQA
    expect(typeOf('B', { preset: 'IQ1_S' }, 'blk.1.ffn_down.weight')).toBe('q2_K'); // first n_layer/8
    expect(typeOf('B', { preset: 'IQ1_M' }, 'blk.5.attn_output.weight')).toBe('iq2_xxs');
    expect(typeOf('B', { preset: 'IQ3_XXS' }, 'blk.1.attn_v.weight')).toBe('iq3_s'); // no imatrix
    expect(typeOf('B', { preset: 'IQ3_XXS' }, 'blk.1.attn_v.weight', { hasImatrix: true })).toBe('iq3_xxs');
    expect(typeOf('B', { preset: 'IQ3_XXS' }, 'blk.5.ffn_down.weight')).toBe('q3_K'); // no imatrix
    expect(typeOf('B', { preset: 'IQ3_XS' }, 'blk.8.ffn_up.weight')).toBe('iq3_xxs'); // middle layers
    expect(typeOf('B', { preset: 'IQ3_XS' }, 'blk.15.ffn_up.weight')).toBe('iq3_s');
    expect(typeOf('B', { preset: 'IQ3_M' }, 'blk.3.attn_output.weight')).toBe('q4_K');
    expect(typeOf('B', { preset: 'TQ1_0' }, 'token_embd.weight')).toBe('q6_K'); // tied: the output's rule
    expect(typeOf('A', { preset: 'Q2_0' }, 'token_embd.weight')).toBe('q4_K');
    expect(typeOf('D', { preset: 'MXFP4_MOE' }, 'blk.0.ffn_up_exps.weight')).toBe('mxfp4');
    expect(typeOf('D', { preset: 'MXFP4_MOE' }, 'blk.0.attn_q.weight')).toBe('q8_0');
    expect(typeOf('D', { preset: 'IQ2_XXS' }, 'blk.0.attn_k.weight')).toBe('q4_K'); // 8 experts
    expect(typeOf('E', { preset: 'IQ3_M' }, 'blk.40.attn_v.weight')).toBe('q5_K'); // 70B
    expect(typeOf('C', { preset: 'IQ2_XXS' }, 'blk.4.ffn_down.weight')).toBe('iq4_nl'); // rows of 800: fallback
  });
});

describe('planQuantization = llama-quantize (real llama.cpp)', () => {
  for (const [name, { presets, types }] of Object.entries(CHECKS)) {
    if (presets.length) {
      it(`${name}: ${presets === ALL_PRESETS ? 'every preset' : presets.join(' ')}`, async () => {
        for (const preset of presets) await checkAgainstLlama(models[name], { preset });
      });
    }
    if (types.length) {
      it(`${name}: --type ${types === PURE_TYPES ? '(every type)' : types.join(' ')} = llama-quantize --pure`, async () => {
        for (const type of types) await checkAgainstLlama(models[name], { type });
      });
    }
  }

  for (const name of ['stories', 'Ac', 'B', 'D']) {
    it(`${name}: --tensor-type overrides, with a mixture, with --pure, and ignored for F16`, async () => {
      for (const mode of [{ preset: 'Q4_K_M' }, { preset: 'Q3_K_M' }, { preset: 'Q4_K_M', pure: true }, { preset: 'F16' }]) {
        await checkAgainstLlama(models[name], mode, OVERRIDES);
      }
    });
  }

  for (const name of ['Ac', 'B']) {
    it(`${name}: --output-tensor-type, --token-embedding-type, --leave-output-tensor`, async () => {
      await checkAgainstLlama(models[name], { preset: 'Q4_K_M' }, [], { outputTensorType: 'q5_0' });
      await checkAgainstLlama(models[name], { preset: 'Q5_K_S' }, [], { outputTensorType: 'q4_K', tokenEmbeddingType: 'q8_0' });
      await checkAgainstLlama(models[name], { preset: 'Q2_K' }, [], { leaveOutputTensor: true });
    });
  }

  it('B: the rules that change with an importance matrix', async () => {
    for (const preset of ['Q4_0', 'Q5_0', 'IQ4_NL', 'IQ4_XS', 'Q2_K_S', 'IQ3_XXS', 'IQ3_XS', 'IQ2_M', 'IQ1_S']) {
      await checkAgainstLlama(models.B, { preset }, [], { hasImatrix: true });
    }
  });
});
