// `quantlab quantize ... --awq`: AWQ's input-channel scales, searched on a calibration text
// for the export's own types, folded into attn_norm / ffn_norm and the rows of attn_v (when
// n_head == n_head_kv) and ffn_up, then the plain export. Checked: the folded F32 model is
// the original function (logits within float rounding); the file has the plain export's
// layout plus quantize.awq.* keys and runs in llama.cpp; on held-out text (the eval text) the
// groups' summed search losses are below round-to-nearest's; in llama.cpp the whole model's KL
// to F32 is lower than RTN's (stories260K Q4_0 and Q4_K_M, the synthetic Llama's Q4_K_M).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectInputs, openCalibrationModel } from '../calibrate/activations.ts';
import { AWQ_KEYS, awqExport, type AwqExport } from '../calibrate/awq-export.ts';
import { CALIBRATION_STORY_TEXT } from '../calibrate/calibration-text.ts';
import { exportGguf, writeStream } from '../export/write.ts';
import { exportSourceFor } from '../export/source.ts';
import { planExport } from '../export/plan.ts';
import { metadataToObject } from '../formats/gguf/metadata.ts';
import { loadModel, readTensorBytes, type ModelIndex } from '../formats/model.ts';
import { memorySource } from '../formats/bytes.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { EVAL_TEXT } from '../model/eval-text.ts';
import { klDivergence, logSoftmax, modelTokenizer } from '../model/eval.ts';
import { llamaConfig, LlamaModel } from '../model/llama.ts';
import { mapProvider, readLlamaWeights } from '../model/weights.ts';
import type { PlanMode } from '../quant/presets.ts';
import { runLlamaCpp } from '../testing/llama-cpp-peer.ts';
import { childScript } from '../testing/child-script.ts';
import { writeSyntheticLlama } from '../testing/synthetic-llama.ts';
import { BUILTIN_DATASET } from './calibrate.ts';
import { expectQuantizeRefused, runInProcess } from './testing.ts';

const ROOT = join(import.meta.dirname, '../..');
const STORIES = join(FIXTURE_MODELS, 'stories260K.gguf');
const run = promisify(execFile);

let dir: string;
const path = (name: string) => join(dir, name);
const open = async (p: string) => loadModel([await fileSource(p)]);
/** The synthetic Llama: rows of 256 and 768, n_head_kv = n_head (attn_output scaled too). */
const SYNTHETIC = () => path('synthetic.gguf');
const THIRD = () => path('calibration-third.txt');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quantlab-awq-'));
  writeSyntheticLlama(SYNTHETIC(), { nLayer: 2, nEmbd: 256, nFf: 768, nHead: 8, nHeadKv: 8, nVocab: 300, seed: 5 });
  writeFileSync(THIRD(), CALIBRATION_STORY_TEXT.slice(0, CALIBRATION_STORY_TEXT.length / 3));
  for (const [out, input, args] of [
    ['rtn.gguf', STORIES, ['--type', 'q4_0']],
    ['rtn-q4km.gguf', STORIES, ['--preset', 'Q4_K_M']],
    ['awq-q4km.gguf', STORIES, ['--preset', 'Q4_K_M', '--awq']],
    ['syn-q4km.gguf', SYNTHETIC(), ['--preset', 'Q4_K_M']],
  ] as const) {
    const r = await runInProcess(['quantize', input, '-o', path(out), ...args]);
    expect(r.code, r.stderr).toBe(0);
    if (out === 'awq-q4km.gguf') {
      expect(r.stdout).toMatch(/AWQ: 30 tensors scaled in 15 groups \(α [\d.]+\.\.[\d.]+; .*\) from quantlab built-in calibration text \(1491 tokens, 2 chunks of 512\)/);
      for (let i = 0; i < 5; i++) expect(r.stdout).toContain(`AWQ: not scaled: blk.${i}.attn_output.weight: n_head 8 != n_head_kv 4`);
    }
  }
  // The other AWQ files as the CLI's CPU export writes them, from the searches the tests
  // share (each search takes from seconds to a minute: done once).
  const write = async (name: string, awq: AwqExport, mode: PlanMode) => {
    const plan = planExport(awq.source, { mode, precomputed: awq.precomputed });
    const parts: Uint8Array[] = [];
    await writeStream(exportGguf(awq.source, plan, {}), (c) => void parts.push(c.slice()));
    writeFileSync(path(name), Buffer.concat(parts));
  };
  await write('awq.gguf', (await awqFor('stories', { type: 'q4_0' })).awq, { type: 'q4_0' });
  const { awq } = await awqFor('synthetic', { preset: 'Q4_K_M' });
  expect(awq.groups.flatMap((g) => g.linears)).toHaveLength(14);
  expect(awq.skipped).toEqual([]);
  await write('syn-awq-q4km.gguf', awq, { preset: 'Q4_K_M' });
}, 400_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const searched = new Map<string, Promise<{ model: ModelIndex; awq: AwqExport }>>();

/**
 * AWQ's export of stories260K (built-in text) or the synthetic Llama (a sixth of it: 2 chunks
 * of 256 byte tokens; its search costs a minute per 1,000 tokens), once per mode.
 */
function awqFor(input: 'stories' | 'synthetic', mode: PlanMode): Promise<{ model: ModelIndex; awq: AwqExport }> {
  const key = `${input} ${JSON.stringify(mode)}`;
  if (!searched.has(key)) {
    searched.set(key, (async () => {
      const model = await open(input === 'synthetic' ? SYNTHETIC() : STORIES);
      const source = await exportSourceFor(model);
      const options = input === 'synthetic' ? { text: CALIBRATION_STORY_TEXT.slice(0, CALIBRATION_STORY_TEXT.length / 6), chunk: 256 } : {};
      return { model, awq: await awqExport(model, source, planExport(source, { mode }), options) };
    })());
  }
  return searched.get(key)!;
}

/** The scaled model written as F32 (the export of AWQ's source with every tensor kept in f32). */
async function foldedF32(awq: AwqExport): Promise<ModelIndex> {
  const parts: Uint8Array[] = [];
  await writeStream(exportGguf(awq.source, planExport(awq.source, { mode: { type: 'f32' } }), {}), (c) => void parts.push(c.slice()));
  const bytes = new Uint8Array(Buffer.concat(parts));
  return loadModel([memorySource(bytes, 'folded.gguf')]);
}

/** Logits of every position of the first 128 eval-text tokens, in quantlab's forward pass. */
async function logits(m: ModelIndex, tokens: number[]): Promise<Float32Array> {
  const config = llamaConfig(m);
  const model = new LlamaModel(config, mapProvider(await readLlamaWeights(m, config)));
  return model.forward(tokens, model.newCache(tokens.length), { logits: 'all' });
}

/** Mean KL of llama.cpp's teacher-forced logits (per position) to the reference's. */
function meanKl(reference: number[][], quantized: number[][]): number {
  const V = reference[0].length;
  const [lp, lq] = [new Float64Array(V), new Float64Array(V)];
  let sum = 0;
  for (let i = 0; i < reference.length - 1; i++) sum += klDivergence(logSoftmax(reference[i], 0, V, lp), logSoftmax(quantized[i], 0, V, lq));
  return sum / (reference.length - 1);
}

describe('quantlab quantize --awq', () => {
  it.each([
    ['stories260K Q4_0 (n_head_kv 4 of 8: attn_output not scaled)', 'stories', { type: 'q4_0' }],
    ['synthetic Llama Q4_K_M (attn_v rows folded for attn_output)', 'synthetic', { preset: 'Q4_K_M' }],
  ] as const)('%s: the folded F32 model computes the original function (logits within float rounding); exactly the scaled tensors changed', async (label, input, mode) => {
    const { model, awq } = await awqFor(input, mode);
    expect(awq.groups.some((g) => g.alpha > 0)).toBe(true);
    const folded = await foldedF32(awq);
    const differs: string[] = [];
    for (const t of folded.tensors) {
      const same = Buffer.from(await readTensorBytes(folded, t)).equals(Buffer.from(await readTensorBytes(model, model.tensors.find((x) => x.name === t.name)!)));
      if (!same) differs.push(t.name);
    }
    // Each group with α > 0: its linears and the norm (or the rows) its 1/s went into.
    const scaled = awq.groups.filter((g) => g.alpha > 0).flatMap((g) => [...g.linears, g.foldedInto.split(' ')[0]]);
    expect(differs.sort()).toEqual([...new Set(scaled)].sort());
    expect(differs.some((n) => n.endsWith('attn_output.weight'))).toBe(input === 'synthetic');
    expect(differs.filter((n) => n.endsWith('_norm.weight')).length).toBeGreaterThan(0);
    const tokens = (await modelTokenizer(model)).encode(EVAL_TEXT).slice(0, 128);
    const [a, b] = [await logits(model, tokens), await logits(folded, tokens)];
    let maxDiff = 0;
    let maxAbs = 0;
    for (let i = 0; i < a.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
      maxAbs = Math.max(maxAbs, Math.abs(a[i]));
    }
    console.log(`${label}: folded F32 vs original, max |Δ logit| ${maxDiff.toExponential(3)} (max |logit| ${maxAbs.toFixed(2)})`);
    expect(maxDiff).toBeLessThan(1e-5 * Math.max(1, maxAbs));
  }, 180_000);

  it.each([
    ['awq.gguf', 'rtn.gguf'],
    ['awq-q4km.gguf', 'rtn-q4km.gguf'],
    ['syn-awq-q4km.gguf', 'syn-q4km.gguf'],
  ])("%s has %s's tensors, types and keys (plus quantize.awq.*); embedding and output untouched", async (awqFile, rtnFile) => {
    const [a, r] = [await open(path(awqFile)), await open(path(rtnFile))];
    expect(a.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual(r.tensors.map((t) => [t.name, t.dtype, t.shape]));
    expect(a.ggufMetadata!.map((e) => e.key)).toEqual([...r.ggufMetadata!.map((e) => e.key), AWQ_KEYS.dataset, AWQ_KEYS.tensors, AWQ_KEYS.chunks, AWQ_KEYS.chunkSize]);
    const meta = metadataToObject(a.ggufMetadata!);
    if (awqFile === 'awq.gguf') {
      expect(meta[AWQ_KEYS.dataset]).toBe(BUILTIN_DATASET);
      expect(meta[AWQ_KEYS.tensors]).toBe(30);
      expect(meta[AWQ_KEYS.chunks]).toBe(2);
      expect(meta[AWQ_KEYS.chunkSize]).toBe(512);
    }
    for (const [i, t] of a.tensors.entries()) {
      const same = Buffer.from(await readTensorBytes(a, t)).equals(Buffer.from(await readTensorBytes(r, r.tensors[i])));
      if (/^(token_embd|output|output_norm)\.weight$/.test(t.name)) expect(same, t.name).toBe(true);
      if (/^blk\.\d+\.attn_norm\.weight$/.test(t.name)) expect(same, t.name).toBe(false);
    }
  });

  it.each([
    ['stories260K Q4_0', 'stories', { type: 'q4_0' }],
    ['synthetic Llama Q4_K_M', 'synthetic', { preset: 'Q4_K_M' }],
  ] as const)("%s: on held-out text (the eval text), the groups' summed losses (the attention block's, the MLP's, attn_output's and ffn_down's outputs) are below round-to-nearest's", async (label, input, mode) => {
    const { model, awq } = await awqFor(input, mode);
    const held = await collectInputs(await openCalibrationModel(model), EVAL_TEXT, 64);
    let [withAwq, rtn, better] = [0, 0, 0];
    for (const g of awq.groups) {
      const r = await g.heldOut(held.get(g.linears[0])!, 64);
      withAwq += r.awq;
      rtn += r.rtn;
      if (r.awq < r.rtn) better++;
    }
    console.log(`${label}: held-out summed loss of the ${awq.groups.length} groups: RTN ${rtn.toExponential(4)}, AWQ ${withAwq.toExponential(4)} (${better} groups lower)`);
    expect(withAwq).toBeGreaterThan(0);
    expect(withAwq).toBeLessThan(rtn);
  }, 180_000);

  it('in llama.cpp (teacher-forced logits): KL to the F32 file of AWQ below RTN (stories260K Q4_0 and Q4_K_M, synthetic Llama Q4_K_M)', async () => {
    const storiesTokens = (await modelTokenizer(await open(STORIES))).encode(EVAL_TEXT);
    const syntheticTokens = (await modelTokenizer(await open(SYNTHETIC()))).encode(EVAL_TEXT).slice(0, 255);
    const logitsOf = async (model: string, tokens: number[]) => (await runLlamaCpp({ model, logits: [tokens] })).logits[0];
    const [f32, rtn, awq, rtnK, awqK] = await Promise.all(
      [STORIES, path('rtn.gguf'), path('awq.gguf'), path('rtn-q4km.gguf'), path('awq-q4km.gguf')].map((m) => logitsOf(m, storiesTokens)),
    );
    const [sf32, srtn, sawq] = await Promise.all([SYNTHETIC(), path('syn-q4km.gguf'), path('syn-awq-q4km.gguf')].map((m) => logitsOf(m, syntheticTokens)));
    const kl = { rtn: meanKl(f32, rtn), awq: meanKl(f32, awq), rtnK: meanKl(f32, rtnK), awqK: meanKl(f32, awqK), srtn: meanKl(sf32, srtn), sawq: meanKl(sf32, sawq) };
    console.log(
      `in llama.cpp, mean KL to the F32 file: stories260K eval text: Q4_0 ${kl.rtn.toFixed(5)}, AWQ Q4_0 ${kl.awq.toFixed(5)}; Q4_K_M ${kl.rtnK.toFixed(5)}, AWQ Q4_K_M ${kl.awqK.toFixed(5)}; ` +
        `synthetic Llama (255 tokens): Q4_K_M ${kl.srtn.toExponential(3)}, AWQ Q4_K_M ${kl.sawq.toExponential(3)}`,
    );
    for (const v of Object.values(kl)) expect(Number.isFinite(v) && v > 0).toBe(true);
    expect(kl.awq).toBeLessThan(kl.rtn);
    expect(kl.awqK).toBeLessThan(kl.rtnK);
    expect(kl.sawq).toBeLessThan(kl.srtn);
  }, 120_000);

  it('the stories260K AWQ Q4_0 file writes a story in llama.cpp (node-llama-cpp)', async () => {
    const { stdout } = await run(process.execPath, [childScript(join(ROOT, 'src/testing/generate-child.ts')), path('awq.gguf'), 'Once upon a time', '24'], { cwd: ROOT });
    const text = (JSON.parse(stdout.trim().split('\n').pop()!) as { text: string }).text;
    expect(text).toMatch(/^[ ,.]*[A-Za-z]+( [A-Za-z,.']+){4,}/);
  });

  it('from safetensors + config.json (converted; Q/K rows permuted): the same file as from the GGUF', async () => {
    // A short calibration (a third of the text, chunks of 128): two searches of seconds.
    const short = ['--type', 'q4_0', '--awq', '--text', THIRD(), '--chunk', '128'];
    const inputs = ['stories260K.f32.safetensors', 'stories260K.config.json', 'tok512.model'].map((f) => join(FIXTURE_MODELS, f));
    for (const [from, out] of [[inputs, path('awq-st.gguf')], [[STORIES], path('awq-short.gguf')]] as const) {
      const r = await runInProcess(['quantize', ...from, '-o', out, ...short]);
      expect(r.code, r.stderr).toBe(0);
    }
    const [a, b] = [await open(path('awq-st.gguf')), await open(path('awq-short.gguf'))];
    expect(a.tensors.map((t) => t.name)).toEqual(b.tensors.map((t) => t.name));
    for (const [i, t] of a.tensors.entries()) {
      expect(Buffer.from(await readTensorBytes(a, t)).equals(Buffer.from(await readTensorBytes(b, b.tensors[i]))), t.name).toBe(true);
    }
  }, 60_000);

  it.each([
    [['--type', 'q4_0', '--awq', '--gptq'], /one of --gptq or --awq/],
    [['--plan', 'plan.json', '--awq'], /--awq goes with --type or --preset, not --plan/],
    [['--type', 'q4_0', '--awq', '--imatrix', 'x.gguf'], /--awq calibrates on its own text: no --imatrix with it/],
    [['--type', 'q4_0', '--awq', '--backend', 'webgpu'], /--awq exports on the CPU: no --backend webgpu with it/],
    [['--type', 'q4_0', '--chunk', '64'], /--text and --chunk go with --gptq or --awq/],
  ])('%j fails with one line and leaves no file', async (args, message) => {
    await expectQuantizeRefused(STORIES, path('refused.gguf'), args, message);
  });
});
