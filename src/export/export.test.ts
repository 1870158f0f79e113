// The export against the real llama.cpp (llama_model_quantize from the npm build, through
// koffi, src/testing/llama-peer.ts): for stories260K.gguf and synthetic Llama GGUFs with
// rows of 256/768, every preset, --pure types, --tensor-type overrides, importance
// matrices (GGUF and legacy, dense and 8 experts) and requantized inputs, our file must
// be byte for byte the file llama-quantize writes. On a mismatch the failure names the
// first differing byte and the key, tensor info or tensor it falls in.
import { loadFastCodecs } from '../quant/fast/node.ts';
import { uninstallFastCodecs } from '../quant/fast/wasm-codecs.ts';
import { gguf as hfGguf } from '@huggingface/gguf';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memorySource } from '../formats/bytes.ts';
import { GGUF_VALUE_TYPE } from '../formats/gguf/constants.ts';
import { ggufArray, ggufEntry, metadataToObject } from '../formats/gguf/metadata.ts';
import { readGguf } from '../formats/gguf/read.ts';
import { loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS, collect } from '../formats/testing.ts';
import { PRESETS, fileTypeForPureType, type PlanMode, type TensorTypeOverride } from '../quant/presets.ts';
import { firstDifference } from '../testing/gguf-diff.ts';
import { type ImatrixTestEntry, buildGgufImatrix, buildLegacyImatrix, toolImatrixValues } from '../testing/imatrix-file.ts';
import { llamaQuantize, type QuantizeOptions } from '../testing/llama-peer.ts';
import { type SyntheticLlamaOptions, syntheticLlamaTensors, writeSyntheticLlama } from '../testing/synthetic-llama.ts';
import { type ExportRequest, ggmlDims, planExport, quantizedMetadata } from './plan.ts';
import { exportSourceFor, exportSourceFromModel } from './source.ts';
import { type ExportOptions, type TensorReport, exportGguf, inlineQuantizer } from './write.ts';
import { type Imatrix, readImatrix } from '../formats/imatrix.ts';
import { type QuantizeJob, joinResults, matrixSegments, quantizeRows, splitJob } from '../quant/quantize-rows.ts';

const STORIES = join(FIXTURE_MODELS, 'stories260K.gguf');

// Synthetic models: the rules look at row lengths, names and hparams, so most keep few rows
// per matrix (compactRows) and cost milliseconds; a whole one runs through the CLI in cli/quantize.test.ts.
const SYNTHETIC: Record<string, SyntheticLlamaOptions> = {
  // Rows of 256 and 768, GQA 4, separate output, 8 layers (use_more_bits, n_layer/8 rules).
  S: { nLayer: 8, nEmbd: 256, nFf: 768, nHead: 8, nHeadKv: 2, nVocab: 288, compactRows: 2, seed: 7 },
  // Tied embeddings, f16 weights (converted through f32), rope_freqs, no GQA, 16 layers.
  T: { nLayer: 16, nEmbd: 256, nFf: 768, nHead: 4, nHeadKv: 4, nVocab: 288, tiedEmbeddings: true, weightType: 'f16', ropeFreqs: true, compactRows: 2, seed: 8 },
  // 8 experts: 3-D tensors, one imatrix slice per expert.
  M: { nLayer: 2, nEmbd: 256, nFf: 768, nHead: 8, nHeadKv: 2, nVocab: 288, nExpert: 8, nExpertUsed: 2, compactRows: 2, seed: 9 },
};

let dir: string;
let outputs = 0;
const paths: Record<string, string> = {};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'quantlab-export-'));
  for (const [name, o] of Object.entries(SYNTHETIC)) {
    paths[name] = join(dir, `${name}.gguf`);
    writeSyntheticLlama(paths[name], o);
  }
  paths.stories = STORIES;
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Case {
  mode: PlanMode;
  overrides?: { pattern: string; type: string }[];
  imatrix?: { path: string; matrix: Imatrix; toolValues: ReadonlyMap<string, Float32Array> };
}

/** Our file for an input and a request, with its plan's layout and per-tensor reports. */
async function ours(input: string, c: Case, options: ExportOptions = {}) {
  const model = await loadModel([await fileSource(input)]);
  const source = exportSourceFromModel(model);
  const request: ExportRequest = {
    mode: c.mode,
    overrides: c.overrides as TensorTypeOverride[] | undefined,
    imatrix: c.imatrix && { matrix: c.imatrix.matrix, fileArgument: c.imatrix.path },
  };
  const plan = planExport(source, request);
  const reports: TensorReport[] = [];
  const bytes = await collect(exportGguf(source, plan, { ...options, onTensor: (r) => reports.push(r) }));
  return { bytes, plan, reports };
}

/** llama-quantize's file for the same request (the tool's imatrix keys as kv overrides). */
function theirs(input: string, c: Case): Uint8Array {
  const out = join(dir, `llama-${outputs++}.gguf`);
  const options: QuantizeOptions = { overrides: c.overrides };
  let preset: string;
  if ('type' in c.mode) {
    preset = fileTypeForPureType(c.mode.type)!.name;
    options.pure = true;
  } else preset = c.mode.preset;
  if (c.imatrix) {
    const m = c.imatrix.matrix;
    options.imatrix = c.imatrix.toolValues;
    options.kvOverrides = [
      { key: 'quantize.imatrix.file', value: c.imatrix.path },
      ...(m.datasets.length ? [{ key: 'quantize.imatrix.dataset', value: m.datasets[0] }] : []),
      { key: 'quantize.imatrix.entries_count', value: { int: m.entries.size } },
      ...(m.chunkCount > 0 ? [{ key: 'quantize.imatrix.chunks_count', value: { int: m.chunkCount } }] : []),
    ];
  }
  llamaQuantize(input, out, preset, options);
  const bytes = readFileSync(out);
  rmSync(out);
  return bytes;
}

async function expectIdentical(input: string, c: Case, options: ExportOptions = {}) {
  const mine = await ours(input, c, options);
  const reference = theirs(input, c);
  expect(firstDifference(mine.bytes, reference, mine.plan.layout)).toBeNull();
  expect(mine.bytes.length).toBe(mine.plan.layout.totalBytes);
  return mine;
}

// The sub-4-bit presets (IQ1_S...IQ3_M, TQ*, Q1_0, Q2_0, MXFP4_MOE) are checked with an imatrix in export-sub4bit.test.ts.
const SUB4BIT_DEFAULTS = ['iq3_s', 'iq3_xxs', 'iq2_s', 'iq2_xs', 'iq2_xxs', 'iq1_m', 'iq1_s', 'tq2_0', 'tq1_0', 'q2_0', 'q1_0', 'mxfp4'];
const presetNames = PRESETS.filter((p) => !SUB4BIT_DEFAULTS.includes(p.defaultType)).map((p) => p.name);
const needsImatrix = (preset: string) => preset === 'Q2_K_S';

describe('byte-identical to llama-quantize, every preset', () => {
  it.each(presetNames.filter((p) => !needsImatrix(p)))('stories260K.gguf (rows of 64 and 172: K-quants fall back) -> %s', async (preset) => {
    await expectIdentical(paths.stories, { mode: { preset } });
  });

  it.each(presetNames.filter((p) => !needsImatrix(p)))('synthetic Llama, rows of 256/768, 8 layers, GQA 4 -> %s', async (preset) => {
    await expectIdentical(paths.S, { mode: { preset } });
  });

  it.each(presetNames.filter((p) => !needsImatrix(p)))('synthetic Llama, f16 weights, tied embeddings, 16 layers -> %s', async (preset) => {
    await expectIdentical(paths.T, { mode: { preset } });
  });

  it('Q2_K_S without an importance matrix fails, as llama.cpp does', async () => {
    await expect(ours(paths.S, { mode: { preset: 'Q2_K_S' } })).rejects.toThrow(/requires an imatrix.*blk\.0\.attn_k\.weight/);
    expect(() => theirs(paths.S, { mode: { preset: 'Q2_K_S' } })).toThrow(/imatrix/);
  });
});

describe('byte-identical to llama-quantize: --type, --tensor-type, experts', () => {
  it.each(['q8_0', 'q4_K', 'iq4_nl', 'f16', 'bf16', 'f32', 'tq2_0'])('--type %s (llama-quantize --pure)', async (type) => {
    await expectIdentical(paths.S, { mode: { type } });
  });

  it('--tensor-type overrides with a preset and with --type', async () => {
    const overrides = [
      { pattern: 'attn_v', type: 'q8_0' },
      { pattern: 'blk\\.[0-3]\\.ffn_(up|gate)', type: 'iq4_xs' },
      { pattern: 'token_embd', type: 'q5_0' },
    ];
    await expectIdentical(paths.S, { mode: { preset: 'Q4_K_M' }, overrides });
    await expectIdentical(paths.stories, { mode: { type: 'q8_0' }, overrides: [{ pattern: 'ffn_down', type: 'q4_0' }, { pattern: 'output', type: 'q6_K' }] });
  });

  it('8 experts (3-D tensors) -> Q4_K_M and Q3_K_M', async () => {
    await expectIdentical(paths.M, { mode: { preset: 'Q4_K_M' } });
    await expectIdentical(paths.M, { mode: { preset: 'Q3_K_M' } });
  });
});

// ---- importance matrices ------------------------------------------------------------------

/** Random positive sums for every quantizable weight of a synthetic model, counts per expert. */
function imatrixEntries(o: SyntheticLlamaOptions): ImatrixTestEntry[] {
  let seed = 12345;
  const next = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  return syntheticLlamaTensors(o)
    .filter((t) => t.ne.length >= 2 && !t.name.includes('_norm') && !t.name.includes('gate_inp'))
    .map((t) => {
      const nMat = t.ne[2] ?? 1;
      const counts = Array.from({ length: nMat }, (_, j) => (j === 1 ? 0 : 96 + j)); // expert 1 never routed: count 0
      return { name: t.name, sums: Float32Array.from({ length: t.ne[0] * nMat }, () => Math.fround(next() * 50 + 0.01)), counts };
    });
}

async function imatrixCase(entries: ImatrixTestEntry[], file: string, bytes: Uint8Array): Promise<Case['imatrix']> {
  const path = join(dir, file);
  writeFileSync(path, bytes);
  const matrix = await readImatrix(await fileSource(path));
  return { path, matrix, toolValues: new Map(entries.map((e) => [e.name, toolImatrixValues(e)])) };
}

describe('byte-identical to llama-quantize with --imatrix', () => {
  it.each(['Q2_K_S', 'Q4_K_M', 'Q3_K_S', 'IQ4_XS', 'Q4_0', 'Q5_1'])('GGUF imatrix -> %s (has_imatrix rules, weighted quantizers, quantize.imatrix.* keys)', async (preset) => {
    const entries = imatrixEntries(SYNTHETIC.S);
    const imatrix = await imatrixCase(entries, 'S.imatrix.gguf', await buildGgufImatrix(entries, ['wiki.train.raw'], 33));
    const { bytes } = await expectIdentical(paths.S, { mode: { preset }, imatrix });
    const keys = (await readGguf(memorySource(bytes, 'out.gguf'))).metadata.slice(-6).map((e) => e.key);
    expect(keys).toEqual([
      'general.quantization_version', 'general.file_type', 'quantize.imatrix.file', 'quantize.imatrix.dataset',
      'quantize.imatrix.entries_count', 'quantize.imatrix.chunks_count',
    ]);
  });

  it('GGUF imatrix with one slice per expert (8 experts, one never routed) -> Q4_K_M', async () => {
    const entries = imatrixEntries(SYNTHETIC.M);
    const imatrix = await imatrixCase(entries, 'M.imatrix.gguf', await buildGgufImatrix(entries, ['moe.txt'], 4));
    await expectIdentical(paths.M, { mode: { preset: 'Q4_K_M' }, imatrix });
  });

  it('legacy .dat imatrix -> Q4_K_S (values / ncall)', async () => {
    const entries = imatrixEntries(SYNTHETIC.S).map((e) => ({ name: e.name, values: e.sums, ncall: 7 }));
    const bytes = buildLegacyImatrix(entries, 7, 'legacy.txt');
    const path = join(dir, 'S.imatrix.dat');
    writeFileSync(path, bytes);
    const matrix = await readImatrix(await fileSource(path));
    expect(matrix.datasets).toEqual(['legacy.txt']);
    const toolValues = new Map(entries.map((e) => [e.name, e.values.map((v) => Math.fround(v / 7))]));
    await expectIdentical(paths.S, { mode: { preset: 'Q4_K_S' }, imatrix: { path, matrix, toolValues } });
  });

  it('slab by slab: tiny slabs (across expert boundaries, with per-expert importance) give the same file', async () => {
    const entries = imatrixEntries(SYNTHETIC.M);
    const imatrix = await imatrixCase(entries, 'M2.imatrix.gguf', await buildGgufImatrix(entries, ['moe.txt'], 4));
    const c: Case = { mode: { preset: 'Q4_K_M' }, imatrix };
    const model = await loadModel([await fileSource(paths.M)]);
    const source = { ...exportSourceFromModel(model), slabElements: 3 * 256 };
    const plan = planExport(source, { mode: c.mode, imatrix: { matrix: imatrix!.matrix, fileArgument: imatrix!.path } });
    const bytes = await collect(exportGguf(source, plan));
    expect(firstDifference(bytes, theirs(paths.M, c), plan.layout)).toBeNull();
  });

  it('refuses an imatrix whose size does not fit a tensor, as llama.cpp does', async () => {
    const entries = imatrixEntries(SYNTHETIC.S).map((e) => (e.name === 'blk.0.attn_q.weight' ? { ...e, sums: e.sums.subarray(0, 128) } : e));
    const imatrix = await imatrixCase(entries, 'bad.imatrix.gguf', await buildGgufImatrix(entries, ['x'], 1));
    await expect(ours(paths.S, { mode: { preset: 'Q4_K_M' }, imatrix })).rejects.toThrow('imatrix size 128 is different from tensor size 256 for blk.0.attn_q.weight');
    expect(() => theirs(paths.S, { mode: { preset: 'Q4_K_M' }, imatrix })).toThrow(/imatrix size 128/);
  });

  it('refuses a GGUF imatrix without its metadata keys, or with sums but no counts (as llama-quantize)', async () => {
    const entries = imatrixEntries(SYNTHETIC.S).slice(0, 2);
    const bare = await buildGgufImatrix(entries, ['x'], 1, { withMetadata: false });
    await expect(readImatrix(memorySource(bare, 'bare.gguf'))).rejects.toThrow(/missing imatrix metadata/);
    await expect(readImatrix(memorySource(new Uint8Array(8), 'empty.dat'))).rejects.toThrow(/no data/);
  });

  it('normalizes GGUF sums by their count per matrix (zero count: ones)', async () => {
    const entry = { name: 'w', sums: Float32Array.of(3, 6, 9, 12), counts: [3, 0] };
    const m = await readImatrix(memorySource(await buildGgufImatrix([entry], ['d'], 5), 'i.gguf'));
    expect([...m.entries.get('w')!]).toEqual([1, 2, 1, 1]);
    expect(m).toMatchObject({ datasets: ['d'], chunkCount: 5 });
  });
});

// ---- requantizing ---------------------------------------------------------------------------

describe('requantizing a quantized input (dequantized to f32 first, as llama.cpp)', () => {
  let storiesQ4KM: string;
  let synthQ4KM: string;
  beforeAll(() => {
    storiesQ4KM = join(dir, 'stories-Q4_K_M.gguf');
    synthQ4KM = join(dir, 'S-Q4_K_M.gguf');
    llamaQuantize(paths.stories, storiesQ4KM, 'Q4_K_M');
    llamaQuantize(paths.S, synthQ4KM, 'Q4_K_M');
  });

  it.each(['Q8_0', 'Q4_0', 'Q6_K', 'F16', 'Q5_K_M'])('stories260K Q4_K_M (llama.cpp) -> %s', async (preset) => {
    await expectIdentical(storiesQ4KM, { mode: { preset } });
  });

  it.each(['Q8_0', 'Q3_K_M', 'IQ4_XS', 'BF16'])('synthetic Q4_K_M (q4_K/q6_K blocks) -> %s', async (preset) => {
    const { reports } = await expectIdentical(synthQ4KM, { mode: { preset } });
    expect(reports.some((r) => r.sourceType === 'q4_K' && r.backend === 'cpu')).toBe(true);
  });
});

// ---- the file read back ---------------------------------------------------------------------

describe('our output read back', () => {
  it('by our reader and by @huggingface/gguf: keys, tensor names, types and shapes', async () => {
    const { bytes, plan } = await ours(paths.S, { mode: { preset: 'Q4_K_M' } });
    const path = join(dir, 'ours-S-Q4_K_M.gguf');
    writeFileSync(path, bytes);
    const header = await readGguf(await fileSource(path));
    expect(header.version).toBe(3);
    expect(header.tensors.map((t) => [t.name, t.typeName])).toEqual(plan.tensors.map((t) => [t.name, t.type]));
    const meta = metadataToObject(header.metadata);
    expect(meta['general.file_type']).toBe(15);
    expect(meta['general.quantization_version']).toBe(2);

    const hf = await hfGguf(path, { allowLocalFile: true });
    expect((hf.metadata as Record<string, unknown>)['general.file_type']).toBe(15);
    expect(hf.tensorInfos.map((t) => t.name)).toEqual(plan.tensors.map((t) => t.name));
    expect(hf.tensorInfos.map((t) => t.shape.map(Number))).toEqual(plan.tensors.map((t) => t.ne));
    expect(hf.tensorInfos.map((t) => Number(t.offset))).toEqual(plan.layout.tensors.map((t) => t.offset));
  });

  it('reports every tensor: copies with RMSE 0, converted tensors with their error', async () => {
    const { reports } = await ours(paths.stories, { mode: { preset: 'Q8_0' } });
    expect(reports).toHaveLength(48);
    const norm = reports.find((r) => r.name === 'blk.0.attn_norm.weight')!;
    expect(norm).toMatchObject({ backend: 'copy', rmse: 0, type: 'f32' });
    const q = reports.find((r) => r.name === 'blk.0.attn_q.weight')!;
    expect(q).toMatchObject({ backend: 'cpu', type: 'q8_0', sourceType: 'f32', bytes: 64 * 64 * 34 / 32 });
    expect(q.rmse).toBeGreaterThan(1e-5);
    expect(q.rmse).toBeLessThan(1e-2);
  });

  it("the WebAssembly codecs' one pass, full or measure 'rmse' (the CLI's), gives the reference's bytes and RMSEs exactly", async () => {
    for (const mode of [{ preset: 'Q8_0' }, { preset: 'Q4_K_M' }]) {
      const reference = await ours(paths.stories, { mode });
      expect(await loadFastCodecs()).toBe(true);
      try {
        for (const measure of [true, 'rmse'] as const) {
          const fast = await ours(paths.stories, { mode }, { measure });
          expect(fast.bytes).toEqual(reference.bytes);
          expect(fast.reports.map((r) => [r.name, r.rmse])).toEqual(reference.reports.map((r) => [r.name, r.rmse]));
          const converted = fast.reports.filter((r) => r.backend === 'cpu');
          if (measure === 'rmse') expect(converted.every((r) => r.sums === null)).toBe(true);
          else expect(converted.map((r) => r.sums)).toEqual(reference.reports.filter((r) => r.backend === 'cpu').map((r) => r.sums));
        }
      } finally {
        uninstallFastCodecs();
      }
    }
  });
});

// ---- pure parts -----------------------------------------------------------------------------

describe('the header', () => {
  const { STRING, UINT32, UINT16, ARRAY, FLOAT32 } = GGUF_VALUE_TYPE;
  it('copies the keys in order, moves file type and quantization version to the end, drops split keys', () => {
    const input = [
      ggufEntry('general.architecture', STRING, 'llama'),
      ggufEntry('general.file_type', UINT32, 0),
      ggufEntry('split.no', UINT16, 0),
      ggufEntry('general.name', STRING, 'a\0b'),
      ggufEntry('tokenizer.ggml.tokens', ARRAY, ggufArray(STRING, ['x\0y', 'z'])),
      ggufEntry('split.count', UINT16, 1),
      ggufEntry('llama.rope.freq_base', FLOAT32, 10000),
    ];
    const out = quantizedMetadata(input, 15, [ggufEntry('quantize.imatrix.file', STRING, 'i.gguf')]);
    expect(out.map((e) => e.key)).toEqual([
      'general.architecture', 'general.name', 'tokenizer.ggml.tokens', 'llama.rope.freq_base',
      'general.quantization_version', 'general.file_type', 'quantize.imatrix.file',
    ]);
    expect(out[1].value).toBe('a'); // C strings: cut at the NUL
    expect(out[2].value).toEqual({ itemType: STRING, items: ['x', 'z'] });
    expect(out.at(-2)).toEqual({ key: 'general.file_type', type: UINT32, value: 15 });
  });

  it('writes n_dims as ggml_n_dims (trailing 1s dropped, at least one)', () => {
    expect(ggmlDims([64, 1])).toEqual([64]);
    expect(ggmlDims([64, 1, 8])).toEqual([64, 1, 8]);
    expect(ggmlDims([])).toEqual([1]);
    expect(ggmlDims([1, 1, 1, 1])).toEqual([1]);
  });
});

describe('the job', () => {
  it('stops at the next tensor when cancelled, with the signal\'s reason', async () => {
    const model = await loadModel([await fileSource(paths.stories)]);
    const source = exportSourceFromModel(model);
    const plan = planExport(source, { mode: { preset: 'Q8_0' } });
    const abort = new AbortController();
    let tensors = 0;
    const chunks = exportGguf(source, plan, {
      signal: abort.signal,
      onTensor: () => {
        if (++tensors === 3) abort.abort(new Error('user cancelled'));
      },
    });
    await expect(collect(chunks)).rejects.toThrow('user cancelled');
    expect(tensors).toBe(3);
  });

  it('a read-ahead that fails while a slab is quantized fails the stream once, never as an unhandled rejection', async () => {
    const model = await loadModel([await fileSource(paths.stories)]);
    const whole = exportSourceFromModel(model);
    let reads = 0;
    // The second slab's read fails at once; the first slab's quantization outlasts it.
    const source = {
      ...whole,
      slabElements: 512,
      readF32: (t: Parameters<typeof whole.readF32>[0], r: Parameters<typeof whole.readF32>[1]) => (++reads === 2 ? Promise.reject(new Error('in.gguf: at byte 1: cut')) : whole.readF32(t, r)),
    };
    const slow = { quantize: (job: QuantizeJob) => new Promise<ReturnType<typeof quantizeRows>>((resolve) => setTimeout(() => resolve(quantizeRows(job)), 50)) };
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const plan = planExport(source, { mode: { preset: 'Q8_0' } });
      await expect(collect(exportGguf(source, plan, { cpu: slow }))).rejects.toThrow('in.gguf: at byte 1: cut');
      await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(reads).toBe(2);
    expect(unhandled).toEqual([]);
  });

  it('quantizes a safetensors model through the converter: the same tensor bytes as from the GGUF', async () => {
    const files = ['stories260K.f32.safetensors', 'stories260K.config.json', 'tok512.model'];
    const hf = await loadModel(await Promise.all(files.map((f) => fileSource(join(FIXTURE_MODELS, f)))));
    expect(() => exportSourceFromModel(hf)).toThrow(/not GGUF/);
    const gguf = await loadModel([await fileSource(paths.stories)]);
    const tensorsOf = async (model: typeof hf) => {
      const source = await exportSourceFor(model);
      const plan = planExport(source, { mode: { preset: 'Q4_0' } });
      const file = Buffer.from(await collect(exportGguf(source, plan)));
      return new Map(plan.tensors.map((t, i) => {
        const at = plan.layout.dataOffset + plan.layout.tensors[i].offset;
        return [t.name, { type: t.type, bytes: file.subarray(at, at + t.nbytes) }];
      }));
    };
    const fromHf = await tensorsOf(hf);
    const fromGguf = await tensorsOf(gguf);
    expect([...fromHf.keys()].sort()).toEqual([...fromGguf.keys()].sort());
    for (const [name, t] of fromGguf) {
      expect(fromHf.get(name)!.type, name).toBe(t.type);
      expect(fromHf.get(name)!.bytes.equals(t.bytes), name).toBe(true);
    }
  });

  it('reports progress in file bytes, ending at the file size', async () => {
    const model = await loadModel([await fileSource(paths.stories)]);
    const source = exportSourceFromModel(model);
    const plan = planExport(source, { mode: { preset: 'Q4_0' } });
    const seen: number[] = [];
    await collect(exportGguf(source, plan, { onProgress: (p) => seen.push(p.done) }));
    expect(seen[0]).toBe(plan.layout.dataOffset);
    expect(seen.at(-1)).toBe(plan.layout.totalBytes);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
  });
});

describe('row splitting', () => {
  const job = (importance: Float32Array | null): QuantizeJob => ({
    type: 'q4_K',
    data: Float32Array.from({ length: 256 * 12 }, (_, i) => Math.sin(i * 0.37) * 0.05),
    rowLength: 256,
    firstRow: 0,
    rowsPerMatrix: 4,
    importance,
    measure: true,
  });

  it('keeps each range inside one matrix', () => {
    expect(matrixSegments(7, 2, 4)).toEqual([[0, 2], [2, 6], [6, 7]]);
  });

  it('gives the same bytes and sums however the rows are split, with per-matrix importance', async () => {
    const importance = Float32Array.from({ length: 256 * 3 }, (_, i) => 1 + (i % 7));
    for (const imp of [null, importance]) {
      const whole = quantizeRows(job(imp));
      const parts = joinResults(splitJob(job(imp), 5).map(quantizeRows));
      expect(parts.bytes).toEqual(whole.bytes);
      expect(parts.sums!.count).toBe(whole.sums!.count);
      expect(parts.sums!.sumSqErr).toBeCloseTo(whole.sums!.sumSqErr, 15);
      expect((await inlineQuantizer.quantize(job(imp))).bytes).toEqual(whole.bytes);
    }
    expect(quantizeRows(job(importance)).bytes).not.toEqual(quantizeRows(job(null)).bytes);
  });

  it('stops between slabs when cancelled', async () => {
    const big: QuantizeJob = { ...job(null), type: 'q8_0', data: new Float32Array(1 << 22), rowLength: 1024, rowsPerMatrix: 4096 };
    const abort = new AbortController();
    abort.abort(new Error('stop'));
    await expect(inlineQuantizer.quantize(big, abort.signal)).rejects.toThrow('stop');
  });
});
