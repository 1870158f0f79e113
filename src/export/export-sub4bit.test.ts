// The sub-4-bit presets (issue 18) against the real llama.cpp: `quantlab quantize --preset P
// --imatrix FILE` must write byte for byte the file llama_model_quantize (the npm build,
// src/testing/llama-peer.ts) writes with the same importance matrix, on synthetic Llamas with
// rows of 256 and 768 (GQA 4, separate output; no GQA, tied f16 embeddings; 8 experts);
// without an imatrix the presets that need one are refused before a byte is written, naming
// the tensor llama-quantize names; two of the files load and generate in llama.cpp.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readImatrix } from '../formats/imatrix.ts';
import { loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { PRESETS } from '../quant/presets.ts';
import { quantType } from '../quant/types.ts';
import { runInProcess } from '../cli/testing.ts';
import { firstDifference } from '../testing/gguf-diff.ts';
import { type ImatrixTestEntry, buildGgufImatrix, toolImatrixOptions } from '../testing/imatrix-file.ts';
import { runLlamaCpp } from '../testing/llama-cpp-peer.ts';
import { ggmlQuantizeChunk, llamaQuantize } from '../testing/llama-peer.ts';
import { type SyntheticLlamaOptions, syntheticLlamaTensors, writeSyntheticLlama } from '../testing/synthetic-llama.ts';
import { planExport } from './plan.ts';
import { exportSourceFromModel } from './source.ts';

// The presets added with the sub-4-bit codecs.
const NEW_PRESETS = [
  'IQ3_M', 'IQ3_S', 'IQ3_XS', 'IQ3_XXS', 'IQ2_M', 'IQ2_S', 'IQ2_XS', 'IQ2_XXS', 'IQ1_M', 'IQ1_S',
  'TQ2_0', 'TQ1_0', 'Q2_0', 'Q1_0', 'MXFP4_MOE',
];
// llama-quantize refuses these without an imatrix (a tensor of theirs gets iq1/iq2/iq3_xxs).
const NEED_IMATRIX = ['IQ3_XS', 'IQ3_XXS', 'IQ2_M', 'IQ2_S', 'IQ2_XS', 'IQ2_XXS', 'IQ1_M', 'IQ1_S'];

// compactRows: 2 rows per matrix (the rules read only row lengths, names and hparams), so
// the TypeScript encoders (0.5-2.5 MB/s for the grids) take milliseconds a file.
const MODELS: Record<string, SyntheticLlamaOptions> = {
  S: { nLayer: 8, nEmbd: 256, nFf: 768, nHead: 8, nHeadKv: 2, nVocab: 288, compactRows: 2, seed: 17 },
  T: { nLayer: 16, nEmbd: 256, nFf: 768, nHead: 4, nHeadKv: 4, nVocab: 288, tiedEmbeddings: true, weightType: 'f16', compactRows: 2, seed: 18 },
  M: { nLayer: 2, nEmbd: 256, nFf: 768, nHead: 8, nHeadKv: 2, nVocab: 288, nExpert: 8, nExpertUsed: 2, compactRows: 2, seed: 19 },
  // Loadable (full matrices), for llama.cpp to run.
  L: { nLayer: 2, nEmbd: 256, nFf: 768, nHead: 8, nHeadKv: 2, nVocab: 288, seed: 20 },
};

let dir: string;
const paths: Record<string, string> = {};
const imatrices: Record<string, { file: string; entries: ImatrixTestEntry[] }> = {};
let outputs = 0;

/** Random positive sums for every matrix, one count per expert slice. */
function imatrixEntries(o: SyntheticLlamaOptions, seed: number): ImatrixTestEntry[] {
  let s = seed;
  const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  return syntheticLlamaTensors(o)
    .filter((t) => t.ne.length >= 2 && !t.name.includes('_norm') && !t.name.includes('gate_inp'))
    .map((t) => {
      const nMat = t.ne[2] ?? 1;
      return { name: t.name, sums: Float32Array.from({ length: t.ne[0] * nMat }, () => Math.fround(next() * 40 + 0.05)), counts: Array.from({ length: nMat }, (_, j) => 50 + j) };
    });
}

beforeAll(async () => {
  // ggml builds the i-quant neighbour maps once a process on first use (iq1_s: a minute on a loaded 2-core machine).
  for (const id of ['iq1_s', 'iq1_m', 'iq2_xxs', 'iq2_xs', 'iq2_s', 'iq3_xxs', 'iq3_s']) {
    ggmlQuantizeChunk(quantType(id)!.ggml!.id, new Float32Array(256).fill(0.5), 256, new Float32Array(256).fill(1));
  }
  dir = mkdtempSync(join(tmpdir(), 'quantlab-sub4-'));
  for (const [name, o] of Object.entries(MODELS)) {
    paths[name] = join(dir, `${name}.gguf`);
    writeSyntheticLlama(paths[name], o);
    const entries = imatrixEntries(o, 99 + name.charCodeAt(0));
    const file = join(dir, `${name}.imatrix.gguf`);
    writeFileSync(file, await buildGgufImatrix(entries, ['calibration.txt'], 12));
    imatrices[name] = { file, entries };
  }
}, 600_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** `quantlab quantize` (in process): the file's bytes, or the one-line refusal. */
async function ours(model: string, preset: string, withImatrix: boolean): Promise<{ bytes?: Uint8Array; error?: string; out: string }> {
  const out = join(dir, `ours-${outputs++}.gguf`);
  const args = ['quantize', paths[model], '-o', out, '--preset', preset, ...(withImatrix ? ['--imatrix', imatrices[model].file] : [])];
  const { code, stderr } = await runInProcess(args);
  if (code !== 0) {
    expect(existsSync(out) || existsSync(`${out}.part`), 'nothing written on a refusal').toBe(false);
    return { error: stderr.trim(), out };
  }
  return { bytes: readFileSync(out), out };
}

/** llama_model_quantize with the matrix and keys `llama-quantize --imatrix FILE` would hand it. */
function theirs(model: string, preset: string, withImatrix: boolean): Uint8Array {
  const out = join(dir, `theirs-${outputs++}.gguf`);
  const { file, entries } = imatrices[model];
  llamaQuantize(paths[model], out, preset, withImatrix ? toolImatrixOptions(file, entries, 'calibration.txt', 12) : {});
  const bytes = readFileSync(out);
  rmSync(out);
  return bytes;
}

async function expectIdentical(model: string, preset: string, withImatrix: boolean): Promise<void> {
  const mine = await ours(model, preset, withImatrix);
  expect(mine.error, `${model} ${preset}`).toBeUndefined();
  // The plan's layout names the key, tensor info or tensor a first difference falls in.
  const source = exportSourceFromModel(await loadModel([await fileSource(paths[model])]));
  const file = imatrices[model].file;
  const imatrix = withImatrix ? { matrix: await readImatrix(await fileSource(file)), fileArgument: file } : undefined;
  const plan = planExport(source, { mode: { preset }, imatrix });
  expect(firstDifference(mine.bytes!, theirs(model, preset, withImatrix), plan.layout), `${model} ${preset}`).toBeNull();
  rmSync(mine.out);
}

describe('the new presets are all here', () => {
  it('every preset of this file is in PRESETS', () => {
    expect(NEW_PRESETS.filter((p) => !PRESETS.some((q) => q.name === p))).toEqual([]);
    expect(NEED_IMATRIX.every((p) => NEW_PRESETS.includes(p))).toBe(true);
  });
});

describe('quantlab quantize --imatrix = llama-quantize --imatrix, the sub-4-bit presets', () => {
  it.each(NEW_PRESETS)('rows of 256/768, 8 layers, GQA 4 -> %s', async (preset) => {
    await expectIdentical('S', preset, true);
  });

  it.each(NEW_PRESETS)('tied f16 embeddings, 16 layers, no GQA -> %s', async (preset) => {
    await expectIdentical('T', preset, true);
  });

  it.each(['MXFP4_MOE', 'IQ2_XXS', 'IQ3_M'])('8 experts (3-D tensors, one imatrix slice each) -> %s', async (preset) => {
    await expectIdentical('M', preset, true);
  });

  it.each(NEW_PRESETS.filter((p) => !NEED_IMATRIX.includes(p)))('without an imatrix -> %s', async (preset) => {
    await expectIdentical('S', preset, false);
  });
});

describe('refusals, as llama-quantize refuses', () => {
  it.each(NEED_IMATRIX)('%s without an imatrix: refused before writing, naming the tensor llama.cpp names', async (preset) => {
    const mine = await ours('S', preset, false);
    expect(mine.error).toMatch(/requires an imatrix/);
    let log = '';
    try {
      theirs('S', preset, false);
    } catch (e) {
      log = (e as Error).message;
    }
    expect(log).toMatch(/this quantization requires an importance matrix/);
    const named = (text: string) => /offending tensor: ([\w.]+)/.exec(text)?.[1];
    expect(named(mine.error!)).toBeDefined();
    expect(named(mine.error!)).toBe(named(log));
  });

  it('an imatrix without a tensor the type needs: "Missing importance matrix", as llama.cpp', async () => {
    const { entries } = imatrices.S;
    const partial = entries.filter((e) => e.name !== 'blk.3.ffn_up.weight');
    const file = join(dir, 'partial.imatrix.gguf');
    writeFileSync(file, await buildGgufImatrix(partial, ['calibration.txt'], 12));
    const out = join(dir, 'partial-out.gguf');
    const { code, stderr } = await runInProcess(['quantize', paths.S, '-o', out, '--preset', 'IQ2_XS', '--imatrix', file]);
    expect(code).toBe(1);
    expect(stderr).toMatch('Missing importance matrix for tensor blk.3.ffn_up.weight in a very low-bit quantization');
    expect(existsSync(out)).toBe(false);
    expect(() => llamaQuantize(paths.S, join(dir, 'partial-theirs.gguf'), 'IQ2_XS', toolImatrixOptions(file, partial, 'calibration.txt', 12))).toThrow(
      /Missing importance matrix for tensor blk\.3\.ffn_up\.weight/,
    );
  });
});

describe('llama.cpp runs our files', () => {
  it.each(['IQ2_XXS', 'IQ3_M'])('%s of a loadable synthetic Llama: llama.cpp loads it and generates greedily', async (preset) => {
    const mine = await ours('L', preset, true);
    expect(mine.error).toBeUndefined();
    const { greedy } = await runLlamaCpp({ model: mine.out, greedy: [{ prompt: [1, 40, 41, 42], maxTokens: 8 }], contextSize: 64 });
    expect(greedy[0].tokens).toHaveLength(8);
    for (const t of greedy[0].tokens) expect(t >= 0 && t < MODELS.L.nVocab).toBe(true);
    rmSync(mine.out);
  }, 240_000);
});
