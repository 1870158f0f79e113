// `quantlab quantize --type q4_0 --gptq`: a GGUF whose blk.* linear Q4_0 tensors hold GPTQ's
// blocks (calibrated on the built-in text or --text) and which is otherwise the plain Q4_0
// export: same tensors, order, types, alignment and metadata (plus quantize.gptq.* keys);
// every other tensor byte for byte the same. The file reads back through our reader and
// @huggingface/gguf, runs in llama.cpp (node-llama-cpp, a child process), and its model is
// closer to F32 on held-out text (the eval text, not the calibration text) than the plain
// round-to-nearest Q4_0 export's, in our forward pass and in llama.cpp's.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gguf as hfGguf } from '@huggingface/gguf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CALIBRATION_STORIES, CALIBRATION_STORY_TEXT } from '../calibrate/calibration-text.ts';
import { collectInputs, openCalibrationModel } from '../calibrate/activations.ts';
import { gptqQ4_K, gptqQuantize, hessian } from '../calibrate/gptq.ts';
import { GPTQ_KEYS } from '../calibrate/gptq-export.ts';
import { Engine } from '../engine/engine.ts';
import { exportSourceFromModel } from '../export/source.ts';
import { planExport } from '../export/plan.ts';
import { metadataToObject } from '../formats/gguf/metadata.ts';
import { SWIFTSHADER_ICD } from '../gpu/gpu-test-setup.ts';
import { loadModel, readTensorBytes, type ModelIndex } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { EVAL_TEXT } from '../model/eval-text.ts';
import { klDivergence, logSoftmax, modelTokenizer } from '../model/eval.ts';
import { llamaConfig, LlamaModel } from '../model/llama.ts';
import { mapProvider, readLlamaWeights } from '../model/weights.ts';
import { quantType } from '../quant/types.ts';
import { runLlamaCpp } from '../testing/llama-cpp-peer.ts';
import { childScript } from '../testing/child-script.ts';
import { writeSyntheticLlama } from '../testing/synthetic-llama.ts';
import { differingBlocks } from '../gpu/testing.ts';
import { BUILTIN_DATASET } from './calibrate.ts';
import { expectQuantizeRefused, runInProcess } from './testing.ts';

const ROOT = join(import.meta.dirname, '../..');
const STORIES = join(FIXTURE_MODELS, 'stories260K.gguf');
const run = promisify(execFile);
/** The blk.* linear weights stories260K's Q4_0 plan puts in q4_0 (ffn_down's rows of 172 go to f16). */
const GPTQ_TENSOR = /^blk\.\d+\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up)\.weight$/;

let dir: string;
const path = (name: string) => join(dir, name);
const open = async (p: string) => loadModel([await fileSource(p)]);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quantlab-gptq-'));
  for (const [out, args] of [
    ['rtn.gguf', ['--type', 'q4_0']],
    ['gptq.gguf', ['--type', 'q4_0', '--gptq']],
    ['gptq-preset.gguf', ['--preset', 'Q4_0', '--gptq']],
    ['rtn-preset.gguf', ['--preset', 'Q4_0']],
  ] as const) {
    const r = await runInProcess(['quantize', STORIES, '-o', path(out), ...args]);
    expect(r.code, r.stderr).toBe(0);
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Mean KL of llama.cpp's teacher-forced logits (per position) to the reference's. */
function meanKlOfLogits(reference: number[][], quantized: number[][]): number {
  const V = reference[0].length;
  const [lp, lq] = [new Float64Array(V), new Float64Array(V)];
  let sum = 0;
  for (let i = 0; i < reference.length - 1; i++) sum += klDivergence(logSoftmax(reference[i], 0, V, lp), logSoftmax(quantized[i], 0, V, lq));
  return sum / (reference.length - 1);
}

/** Mean KL(F32 || file's model) over every next-token position of `text` (one teacher-forced pass each). */
async function meanKl(f32: ModelIndex, quantized: ModelIndex, text: string): Promise<number> {
  const tokens = (await modelTokenizer(f32)).encode(text);
  const logitsOf = async (m: ModelIndex) => {
    const config = llamaConfig(m);
    const model = new LlamaModel(config, mapProvider(await readLlamaWeights(m, config)));
    return model.forward(tokens.slice(0, -1), model.newCache(tokens.length), { logits: 'all' });
  };
  const [p, q] = [await logitsOf(f32), await logitsOf(quantized)];
  const V = llamaConfig(f32).nVocab;
  const lp = new Float64Array(V);
  const lq = new Float64Array(V);
  let kl = 0;
  const positions = tokens.length - 1;
  for (let i = 0; i < positions; i++) kl += klDivergence(logSoftmax(p, i * V, V, lp), logSoftmax(q, i * V, V, lq));
  return kl / positions;
}

describe('quantlab quantize --gptq', () => {
  it.each([
    ['gptq.gguf', 'rtn.gguf'],
    ['gptq-preset.gguf', 'rtn-preset.gguf'],
  ])('%s is %s with GPTQ blocks in the blk.* q4_0 tensors: same layout, other tensors byte-identical; read back by @huggingface/gguf', async (gptqFile, rtnFile) => {
    const [g, r] = [await open(path(gptqFile)), await open(path(rtnFile))];
    expect(g.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual(r.tensors.map((t) => [t.name, t.dtype, t.shape]));
    expect(g.alignment).toBe(r.alignment);
    // The RTN file's keys in their order, then the quantize.gptq.* keys.
    const keys = g.ggufMetadata!.map((e) => e.key);
    expect(keys).toEqual([...r.ggufMetadata!.map((e) => e.key), GPTQ_KEYS.dataset, GPTQ_KEYS.tensors, GPTQ_KEYS.chunks, GPTQ_KEYS.chunkSize]);
    const gm = metadataToObject(g.ggufMetadata!);
    const rm = metadataToObject(r.ggufMetadata!);
    for (const k of Object.keys(rm)) expect(gm[k], k).toEqual(rm[k]);
    expect(gm[GPTQ_KEYS.dataset]).toBe(BUILTIN_DATASET);
    expect(gm[GPTQ_KEYS.chunkSize]).toBe(512);
    expect(gm[GPTQ_KEYS.chunks]).toBe(2);

    let gptq = 0;
    for (const [i, t] of g.tensors.entries()) {
      const [a, b] = [await readTensorBytes(g, t), await readTensorBytes(r, r.tensors[i])];
      expect(a.length).toBe(b.length);
      if (GPTQ_TENSOR.test(t.name)) {
        expect(t.dtype, t.name).toBe('q4_0');
        expect(Buffer.from(a).equals(Buffer.from(b)), t.name).toBe(false);
        gptq++;
      } else {
        expect(Buffer.from(a).equals(Buffer.from(b)), t.name).toBe(true);
      }
    }
    expect(gptq).toBe(30);
    expect(gm[GPTQ_KEYS.tensors]).toBe(gptq);

    const hf = await hfGguf(path(gptqFile), { allowLocalFile: true });
    const meta = hf.metadata as Record<string, unknown>;
    expect(meta['general.file_type']).toBe(2); // LLAMA_FTYPE_MOSTLY_Q4_0
    expect(meta[GPTQ_KEYS.dataset]).toBe(BUILTIN_DATASET);
    expect(hf.tensorInfos.map((t) => t.name)).toEqual(g.tensors.map((t) => t.name));
    expect(hf.tensorInfos.map((t) => t.shape.map(Number))).toEqual(g.tensors.map((t) => [...t.shape].reverse()));
    expect(hf.tensorInfos.map((t) => Number(t.offset))).toEqual(g.tensors.map((t) => t.offset - g.tensors[0].offset));
  });

  it("a GPTQ tensor's blocks decode to GPTQ's own values on the Q4_0 grid (the calibration inputs recomputed here)", async () => {
    const g = await open(path('gptq.gguf'));
    const cm = await openCalibrationModel(await open(STORIES));
    const name = 'blk.2.ffn_up.weight';
    const x = (await collectInputs(cm, CALIBRATION_STORY_TEXT, 512, { only: new Set([name]) })).get(name)!;
    const w = cm.weights.get(name)!;
    const rows = w.length / x.cols;
    const expected = gptqQuantize(w, rows, x.cols, hessian(x.x, x.n, x.cols), { grid: { kind: 'q4_0' } });
    const decoded = quantType('q4_0')!.reference.decode(await readTensorBytes(g, g.tensors.find((t) => t.name === name)!), rows, x.cols);
    expect(Array.from(decoded)).toEqual(Array.from(expected, (v) => Math.fround(v)));
  });

  it('its model is closer to F32 than the RTN Q4_0 export on held-out text (mean KL over the eval text)', async () => {
    const f32 = await open(STORIES);
    const rtn = await meanKl(f32, await open(path('rtn.gguf')), EVAL_TEXT);
    const gptq = await meanKl(f32, await open(path('gptq.gguf')), EVAL_TEXT);
    console.log(`stories260K, eval text: mean KL to F32: RTN Q4_0 ${rtn.toFixed(5)}, GPTQ Q4_0 ${gptq.toFixed(5)}`);
    expect(gptq).toBeGreaterThan(0);
    expect(gptq).toBeLessThan(rtn);
  });

  it('in llama.cpp too (teacher-forced logits of the eval text, Q4_0 matmuls): GPTQ closer to the F32 file than RTN', async () => {
    const tokens = (await modelTokenizer(await open(STORIES))).encode(EVAL_TEXT);
    const [f32, rtn, gptq] = await Promise.all([STORIES, path('rtn.gguf'), path('gptq.gguf')].map(async (model) => (await runLlamaCpp({ model, logits: [tokens] })).logits[0]));
    const kl = (q: number[][]) => {
      const V = f32[0].length;
      const [lp, lq] = [new Float64Array(V), new Float64Array(V)];
      let sum = 0;
      for (let i = 0; i < tokens.length - 1; i++) sum += klDivergence(logSoftmax(f32[i], 0, V, lp), logSoftmax(q[i], 0, V, lq));
      return sum / (tokens.length - 1);
    };
    const [klRtn, klGptq] = [kl(rtn), kl(gptq)];
    console.log(`stories260K, eval text, in llama.cpp: mean KL to the F32 file: RTN Q4_0 ${klRtn.toFixed(5)}, GPTQ Q4_0 ${klGptq.toFixed(5)}`);
    expect(klGptq).toBeGreaterThan(0);
    expect(klGptq).toBeLessThan(klRtn);
  });

  it('loads and writes a story in llama.cpp (node-llama-cpp)', async () => {
    const { stdout } = await run(process.execPath, [childScript(join(ROOT, 'src/testing/generate-child.ts')), path('gptq.gguf'), 'Once upon a time', '24'], { cwd: ROOT });
    const text = (JSON.parse(stdout.trim().split('\n').pop()!) as { text: string }).text;
    expect(text).toMatch(/^[ ,.]*[A-Za-z]+( [A-Za-z,.']+){4,}/); // words, not noise
  });

  it('--text FILE calibrates on that text (its name in quantize.gptq.dataset, other blocks); the table names gptq; a terminal sees the progress', async () => {
    const text = path('stories-reversed.txt');
    writeFileSync(text, [...CALIBRATION_STORIES].reverse().join('\n\n'));
    const out = path('gptq-text.gguf');
    const r = await runInProcess(['quantize', STORIES, '-o', out, '--type', 'q4_0', '--gptq', '--text', text, '--chunk', '256'], { stderrIsTTY: true });
    expect(r.code, r.stderr).toBe(0);
    // The live line: calibration chunks, then a step per tensor (5 chunks + 30 tensors), erased before the table.
    expect(r.stderr).toMatch(/^\r\x1b\[Kquantize: GPTQ 1\/35: calibration text: chunk 1 of 5/);
    expect(r.stderr.endsWith('\r\x1b[K')).toBe(true);
    expect(r.stdout).toMatch(/blk\.0\.attn_q\.weight\s+f32->q4_0\s+2304\s+\S+\s+gptq/);
    expect(r.stdout).toMatch(/blk\.0\.ffn_down\.weight\s+f32->f16\s+\d+\s+\S+\s+cpu/);
    expect(r.stdout).toMatch(/GPTQ: 30 tensors' blocks \(30 Q4_0\) from .*stories-reversed\.txt \(\d+ tokens, 5 chunks of 256\)/);
    const [a, b] = [await open(out), await open(path('gptq.gguf'))];
    const meta = metadataToObject(a.ggufMetadata!);
    expect(meta[GPTQ_KEYS.dataset]).toBe(text);
    expect(meta[GPTQ_KEYS.chunkSize]).toBe(256);
    const t = (m: ModelIndex) => m.tensors.find((x) => x.name === 'blk.1.attn_q.weight')!;
    expect(Buffer.from(await readTensorBytes(a, t(a))).equals(Buffer.from(await readTensorBytes(b, t(b))))).toBe(false);
  });

  it('from safetensors + config.json (converted; Q/K rows permuted as convert_hf_to_gguf.py): every tensor as from the GGUF', async () => {
    const out = path('gptq-st.gguf');
    const inputs = ['stories260K.f32.safetensors', 'stories260K.config.json', 'tok512.model'].map((f) => join(FIXTURE_MODELS, f));
    const r = await runInProcess(['quantize', ...inputs, '-o', out, '--type', 'q4_0', '--gptq']);
    expect(r.code, r.stderr).toBe(0);
    const [a, b] = [await open(out), await open(path('gptq.gguf'))];
    expect(a.tensors.map((t) => t.name)).toEqual(b.tensors.map((t) => t.name));
    for (const [i, t] of a.tensors.entries()) {
      expect(Buffer.from(await readTensorBytes(a, t)).equals(Buffer.from(await readTensorBytes(b, b.tensors[i]))), t.name).toBe(true);
    }
  });

  it("--backend webgpu runs GPTQ on the GPU (f32): the CPU's file (f64) but for a few codes one grid point away or scales one f16 step", async () => {
    process.env.VK_ICD_FILENAMES ??= SWIFTSHADER_ICD;
    const out = path('gptq-webgpu.gguf');
    const r = await runInProcess(['quantize', STORIES, '-o', out, '--type', 'q4_0', '--gptq', '--backend', 'webgpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/GPTQ: 30 tensors' blocks \(30 Q4_0\) .*; 30 of them on WebGPU \(.+\)\n/);
    const [gpu, cpu] = [await open(out), await open(path('gptq.gguf'))];
    expect(gpu.ggufMetadata).toEqual(cpu.ggufMetadata);
    let codes = 0;
    let moved = 0;
    let scales = 0;
    for (const [i, t] of gpu.tensors.entries()) {
      const [a, b] = [await readTensorBytes(gpu, t), await readTensorBytes(cpu, cpu.tensors[i])];
      if (!GPTQ_TENSOR.test(t.name)) {
        expect(Buffer.from(a).equals(Buffer.from(b)), t.name).toBe(true);
        continue;
      }
      // block_q4_0: the f16 d (2 bytes: a scale may round to the next f16), then 32 4-bit codes.
      for (let at = 0; at < a.length; at += 18) {
        const ulps = Math.abs((a[at] | (a[at + 1] << 8)) - (b[at] | (b[at + 1] << 8)));
        expect(ulps, `${t.name} block ${at / 18}: d`).toBeLessThanOrEqual(1);
        scales += ulps;
        for (let j = at + 2; j < at + 18; j++) {
          for (const shift of [0, 4]) {
            const step = Math.abs(((a[j] >> shift) & 15) - ((b[j] >> shift) & 15));
            expect(step, `${t.name} byte ${j}`).toBeLessThanOrEqual(1);
            moved += step;
            codes++;
          }
        }
      }
    }
    console.log(`GPTQ Q4_0 on WebGPU vs the CPU: ${moved} of ${codes} codes one grid point away, ${scales} of ${codes / 32} scales one f16 step`);
    expect(scales / (codes / 32)).toBeLessThan(1e-2);
    const elements = gpu.tensors.filter((t) => GPTQ_TENSOR.test(t.name)).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    expect(codes).toBe(elements);
    expect(moved / codes).toBeLessThan(1e-3);
  });

  it("the engine's export with { gptq } (the page's path through the worker) writes the CLI's file; it refuses a plan with no q4_0 or q4_K tensor", async () => {
    const engine = new Engine(null);
    await engine.load([await fileSource(STORIES)]);
    const parts: Uint8Array[] = [];
    const labels = new Set<string>();
    const onProgress = (p: { label: string }) => void labels.add(p.label.split(':')[0]);
    await engine.exportGguf({ type: 'q4_0' }, [], (c) => void parts.push(c.slice()), onProgress, { gptq: {} });
    expect(Buffer.concat(parts).equals(readFileSync(path('gptq.gguf')))).toBe(true);
    expect(labels.has('GPTQ')).toBe(true);
    await expect(engine.exportGguf({ type: 'q8_0' }, [], () => undefined, undefined, { gptq: {} })).rejects.toThrow(/GPTQ export writes Q4_0 or Q4_K blocks: the Q8_0 plan puts no blk\.\* linear weight in q4_0 or q4_K/);
    // stories260K's rows of 64 and 172 cannot hold Q4_K: Q4_K_M falls back to q5_0/q8_0 there.
    await expect(engine.exportGguf({ preset: 'Q4_K_M' }, [], () => undefined, undefined, { gptq: {} })).rejects.toThrow(/the Q4_K_M plan puts no blk\.\* linear weight in q4_0 or q4_K/);
  });

  it('the export refuses precomputed data of the wrong size, for a tensor it copies, or for no tensor of the model', async () => {
    const source = exportSourceFromModel(await open(STORIES));
    const request = (tensors: Map<string, Uint8Array>) => ({ mode: { type: 'q4_0' }, precomputed: { tensors, keys: [], method: 'gptq' } });
    expect(() => planExport(source, request(new Map([['blk.0.attn_q.weight', new Uint8Array(10)]])))).toThrow(/tensor blk\.0\.attn_q\.weight: gptq gives 10 bytes, q4_0 needs 2304/);
    expect(() => planExport(source, request(new Map([['blk.0.attn_norm.weight', new Uint8Array(256)]])))).toThrow(/blk\.0\.attn_norm\.weight keeps its f32 data/);
    expect(() => planExport(source, request(new Map([['blk.9.attn_q.weight', new Uint8Array(2304)]])))).toThrow(/gptq: no tensor 'blk\.9\.attn_q\.weight' in the model/);
  });

  it.each([
    [['--type', 'q8_0', '--gptq'], /--gptq writes Q4_0 or Q4_K blocks: it goes with --type q4_0\|q4_K or --preset Q4_0\|Q4_K_S\|Q4_K_M, not --type q8_0/],
    [['--preset', 'Q5_K_M', '--gptq'], /--gptq writes Q4_0 or Q4_K blocks: .* not --preset Q5_K_M/],
    [['--preset', 'Q4_K_M', '--gptq'], /GPTQ export writes Q4_0 or Q4_K blocks: the Q4_K_M plan puts no blk\.\* linear weight in q4_0 or q4_K/],
    [['--plan', 'plan.json', '--gptq'], /--gptq writes Q4_0 or Q4_K blocks: .*, not --plan/],
    [['--type', 'q4_0', '--gptq', '--imatrix', 'x.gguf'], /no --imatrix with it/],
    [['--type', 'q4_0', '--text', 'calib.txt'], /--text and --chunk go with --gptq/],
    [['--type', 'q4_0', '--act-order'], /--act-order goes with --gptq/],
    [['--type', 'q4_0', '--gptq', '--text', '/nonexistent/calib.txt'], /nonexistent\/calib\.txt: at byte 0: cannot read the text \(ENOENT\)/],
  ])('%j fails with one line and leaves no file', async (args, message) => {
    await expectQuantizeRefused(STORIES, path('refused.gguf'), args, message);
  });
});

// --act-order: GPTQ's columns by decreasing H_ii with static groups (gptq.ts), so each block's
// scale is found on the weights before the walk: every scale is the RTN file's, the codes GPTQ's.
describe('quantlab quantize --gptq --act-order', () => {
  beforeAll(async () => {
    const r = await runInProcess(['quantize', STORIES, '-o', path('gptq-act.gguf'), '--type', 'q4_0', '--gptq', '--act-order']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/GPTQ \(act-order\): 30 tensors' blocks \(30 Q4_0\)/);
  });

  it("every GPTQ block's scale is the RTN export's and its codes decode to gptqQuantize's act-order values; quantize.gptq.act_order = true", async () => {
    const [act, rtn, plain] = [await open(path('gptq-act.gguf')), await open(path('rtn.gguf')), await open(path('gptq.gguf'))];
    expect(act.ggufMetadata!.map((e) => e.key)).toEqual([...plain.ggufMetadata!.map((e) => e.key), GPTQ_KEYS.actOrder]);
    expect(metadataToObject(act.ggufMetadata!)[GPTQ_KEYS.actOrder]).toBe(true);
    for (const [i, t] of act.tensors.entries()) {
      const [a, r, p] = [await readTensorBytes(act, t), await readTensorBytes(rtn, rtn.tensors[i]), await readTensorBytes(plain, plain.tensors[i])];
      if (!GPTQ_TENSOR.test(t.name)) {
        expect(Buffer.from(a).equals(Buffer.from(r)), t.name).toBe(true);
        continue;
      }
      for (let at = 0; at < a.length; at += 18) expect([a[at], a[at + 1]], `${t.name} block ${at / 18}`).toEqual([r[at], r[at + 1]]);
      expect(Buffer.from(a).equals(Buffer.from(r)), t.name).toBe(false);
      expect(Buffer.from(a).equals(Buffer.from(p)), t.name).toBe(false);
    }
    const cm = await openCalibrationModel(await open(STORIES));
    const name = 'blk.3.attn_v.weight';
    const x = (await collectInputs(cm, CALIBRATION_STORY_TEXT, 512, { only: new Set([name]) })).get(name)!;
    const w = cm.weights.get(name)!;
    const rows = w.length / x.cols;
    const expected = gptqQuantize(w, rows, x.cols, hessian(x.x, x.n, x.cols), { grid: { kind: 'q4_0' }, actOrder: true });
    const decoded = quantType('q4_0')!.reference.decode(await readTensorBytes(act, act.tensors.find((t) => t.name === name)!), rows, x.cols);
    expect(Array.from(decoded)).toEqual(Array.from(expected, (v) => Math.fround(v)));
  });

  it('in llama.cpp: closer to the F32 file than RTN Q4_0 on the eval text (mean KL, teacher-forced)', async () => {
    const tokens = (await modelTokenizer(await open(STORIES))).encode(EVAL_TEXT);
    const [f32, rtn, plain, act] = await Promise.all(
      [STORIES, path('rtn.gguf'), path('gptq.gguf'), path('gptq-act.gguf')].map(async (model) => (await runLlamaCpp({ model, logits: [tokens] })).logits[0]),
    );
    const [klRtn, klPlain, klAct] = [meanKlOfLogits(f32, rtn), meanKlOfLogits(f32, plain), meanKlOfLogits(f32, act)];
    console.log(`stories260K, eval text, in llama.cpp: mean KL to F32: RTN Q4_0 ${klRtn.toFixed(5)}, GPTQ ${klPlain.toFixed(5)}, GPTQ act-order ${klAct.toFixed(5)}`);
    expect(klAct).toBeGreaterThan(0);
    expect(klAct).toBeLessThan(klRtn);
  });

  it('--backend webgpu with --act-order runs GPTQ on the CPU (the GPU walk keeps GPTQ\'s order): the CPU act-order file, 0 tensors on WebGPU', async () => {
    process.env.VK_ICD_FILENAMES ??= SWIFTSHADER_ICD;
    const out = path('gptq-act-webgpu.gguf');
    const r = await runInProcess(['quantize', STORIES, '-o', out, '--type', 'q4_0', '--gptq', '--act-order', '--backend', 'webgpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/on WebGPU/);
    expect(readFileSync(out).equals(readFileSync(path('gptq-act.gguf')))).toBe(true);
  });
});

// Q4_K: stories260K's rows (64, 172) cannot hold it, so a synthetic Llama with rows of 256
// and 768 (random weights, the byte vocabulary: a token per character; n_head_kv = n_head),
// calibrated on a third of the built-in text (--text, 1408 tokens).
describe('quantlab quantize --gptq into Q4_K (synthetic Llama, rows of 256 and 768)', () => {
  const model = () => path('synthetic.gguf');
  const calibration = () => path('calibration-third.txt');
  const gptqArgs = () => ['--gptq', '--text', calibration(), '--chunk', '256'];
  beforeAll(async () => {
    writeSyntheticLlama(model(), { nLayer: 2, nEmbd: 256, nFf: 768, nHead: 8, nHeadKv: 8, nVocab: 300, seed: 5 });
    writeFileSync(calibration(), CALIBRATION_STORY_TEXT.slice(0, CALIBRATION_STORY_TEXT.length / 3));
    for (const [out, args] of [
      ['syn-q4km.gguf', ['--preset', 'Q4_K_M']],
      ['syn-q4km-gptq.gguf', ['--preset', 'Q4_K_M', ...gptqArgs()]],
      ['syn-q4ks.gguf', ['--preset', 'Q4_K_S']],
      ['syn-q4ks-gptq.gguf', ['--preset', 'Q4_K_S', ...gptqArgs()]],
      ['syn-q4k-gptq.gguf', ['--type', 'q4_K', ...gptqArgs()]],
    ] as const) {
      const r = await runInProcess(['quantize', model(), '-o', path(out), ...args]);
      expect(r.code, r.stderr).toBe(0);
      if (out === 'syn-q4km-gptq.gguf') expect(r.stdout).toMatch(/GPTQ: 12 tensors' blocks \(12 Q4_K\) from .*calibration-third\.txt \(1408 tokens, 5 chunks of 256\)/);
    }
  }, 120_000);

  it.each([
    ['syn-q4km-gptq.gguf', 'syn-q4km.gguf'],
    ['syn-q4ks-gptq.gguf', 'syn-q4ks.gguf'],
  ])("%s is %s with GPTQ blocks in every blk.* linear q4_K tensor; the preset's q6_K/q5_K tensors byte-identical", async (gptqFile, rtnFile) => {
    const [g, r] = [await open(path(gptqFile)), await open(path(rtnFile))];
    expect(g.tensors.map((t) => [t.name, t.dtype, t.shape])).toEqual(r.tensors.map((t) => [t.name, t.dtype, t.shape]));
    expect(g.ggufMetadata!.map((e) => e.key)).toEqual([...r.ggufMetadata!.map((e) => e.key), GPTQ_KEYS.dataset, GPTQ_KEYS.tensors, GPTQ_KEYS.chunks, GPTQ_KEYS.chunkSize]);
    const linear = /^blk\.\d+\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down)\.weight$/;
    let gptq = 0;
    const otherTypes = new Set<string>();
    for (const [i, t] of g.tensors.entries()) {
      const same = Buffer.from(await readTensorBytes(g, t)).equals(Buffer.from(await readTensorBytes(r, r.tensors[i])));
      if (linear.test(t.name) && t.dtype === 'q4_K') {
        expect(same, t.name).toBe(false);
        gptq++;
      } else {
        expect(same, t.name).toBe(true);
        if (linear.test(t.name)) otherTypes.add(t.dtype);
      }
    }
    expect(gptq).toBeGreaterThanOrEqual(10);
    expect(otherTypes.size).toBeGreaterThan(0); // the preset's own choices for attn_v/ffn_down stay
    expect(metadataToObject(g.ggufMetadata!)[GPTQ_KEYS.tensors]).toBe(gptq);
  });

  it("--backend webgpu: GPTQ into Q4_K on the GPU (ggml's super-block search in WGSL): the CPU's file but for a few super-blocks, and closer to F32 than plain Q4_K_M in llama.cpp", async () => {
    process.env.VK_ICD_FILENAMES ??= SWIFTSHADER_ICD;
    const out = path('syn-q4km-gptq-webgpu.gguf');
    const r = await runInProcess(['quantize', model(), '-o', out, '--preset', 'Q4_K_M', ...gptqArgs(), '--backend', 'webgpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/GPTQ: 12 tensors' blocks \(12 Q4_K\) .*; 12 of them on WebGPU \(.+\)\n/);
    const [gpu, cpu] = [await open(out), await open(path('syn-q4km-gptq.gguf'))];
    expect(gpu.ggufMetadata).toEqual(cpu.ggufMetadata);
    let [superBlocks, same] = [0, 0];
    for (const [i, t] of gpu.tensors.entries()) {
      const [a, b] = [await readTensorBytes(gpu, t), await readTensorBytes(cpu, cpu.tensors[i])];
      if (t.dtype !== 'q4_K' || !t.name.startsWith('blk.')) {
        expect(Buffer.from(a).equals(Buffer.from(b)), t.name).toBe(true);
        continue;
      }
      superBlocks += a.length / 144;
      same += a.length / 144 - differingBlocks(a, b, 144).length;
    }
    console.log(`synthetic Q4_K_M, GPTQ on WebGPU vs the CPU: ${same} of ${superBlocks} super-blocks identical`);
    expect(same / superBlocks).toBeGreaterThanOrEqual(0.9);
    const tokens = (await modelTokenizer(await open(model()))).encode(EVAL_TEXT).slice(0, 255);
    const [f32, plain, onGpu] = await Promise.all([model(), path('syn-q4km.gguf'), out].map(async (m) => (await runLlamaCpp({ model: m, logits: [tokens] })).logits[0]));
    const [klPlain, klGpu] = [meanKlOfLogits(f32, plain), meanKlOfLogits(f32, onGpu)];
    console.log(`synthetic Llama, llama.cpp mean KL to F32: Q4_K_M ${klPlain.toExponential(3)}, GPTQ Q4_K_M on WebGPU ${klGpu.toExponential(3)}`);
    expect(klGpu).toBeLessThan(klPlain);
  }, 60_000);

  it("a GPTQ Q4_K tensor's blocks decode to gptqQ4_K's values (the calibration inputs recomputed)", async () => {
    const g = await open(path('syn-q4k-gptq.gguf'));
    const cm = await openCalibrationModel(await open(model()));
    const name = 'blk.1.ffn_down.weight';
    const text = CALIBRATION_STORY_TEXT.slice(0, CALIBRATION_STORY_TEXT.length / 3);
    const x = (await collectInputs(cm, text, 256, { only: new Set([name]) })).get(name)!;
    const w = cm.weights.get(name)!;
    const rows = w.length / x.cols;
    const expected = gptqQ4_K(w, rows, x.cols, hessian(x.x, x.n, x.cols)).values;
    const t = g.tensors.find((t) => t.name === name)!;
    expect(t.dtype).toBe('q4_K');
    const decoded = quantType('q4_K')!.reference.decode(await readTensorBytes(g, t), rows, x.cols);
    expect(Array.from(decoded)).toEqual(Array.from(expected));
  }, 30_000);

  it('in llama.cpp (teacher-forced logits, the first 255 eval-text tokens): GPTQ Q4_K_M and Q4_K_S closer to the F32 file than plain Q4_K_M and Q4_K_S', async () => {
    const tokens = (await modelTokenizer(await open(model()))).encode(EVAL_TEXT).slice(0, 255);
    const files = [model(), path('syn-q4km.gguf'), path('syn-q4km-gptq.gguf'), path('syn-q4ks.gguf'), path('syn-q4ks-gptq.gguf')];
    const [f32, ...quantized] = await Promise.all(files.map(async (m) => (await runLlamaCpp({ model: m, logits: [tokens] })).logits[0]));
    const [m, mGptq, s, sGptq] = quantized.map((q) => meanKlOfLogits(f32, q));
    console.log(`synthetic Llama (256/768), eval text (255 tokens), in llama.cpp: mean KL to the F32 file: Q4_K_M ${m.toExponential(3)}, GPTQ Q4_K_M ${mGptq.toExponential(3)}; Q4_K_S ${s.toExponential(3)}, GPTQ Q4_K_S ${sGptq.toExponential(3)}`);
    expect(mGptq).toBeGreaterThan(0);
    expect(mGptq).toBeLessThan(m);
    expect(sGptq).toBeLessThan(s);
  }, 120_000);
});
