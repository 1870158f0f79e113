// LoRA end to end on stories260K: our GGUF adapter in llama.cpp (one child process), the
// PEFT round trip, `quantlab lora merge` (llama-export-lora then llama-quantize) and
// `quantlab eval --lora`.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { EVAL_TEXT } from '../model/eval-text.ts';
import { cpuLinear, modelConfig } from '../model/families/index.ts';
import { readModelWeights } from '../model/weights.ts';
import { SpmTokenizer, spmVocabFromGguf } from '../model/tokenizer.ts';
import { llamaQuantize } from '../testing/llama-peer.ts';
import { runLlamaCpp } from '../testing/llama-cpp-peer.ts';
import { createLoraAdapter, withRandomB, type LoraAdapter } from '../train/lora/adapter.ts';
import { loraLinear } from '../train/lora/apply.ts';
import { encodeLoraGguf } from '../train/lora/gguf.ts';
import { logitsOf, maxDifference, meanKl, openStories, type OpenedModel } from '../train/lora/testing.ts';
import { runInProcess } from './testing.ts';

const STORIES = join(FIXTURE_MODELS, 'stories260K.gguf');
const SCALE = 0.75;
let dir: string;
let m: OpenedModel;
let adapter: LoraAdapter;
let adapterPath: string;
let tokens: number[];
/** F32 base + adapter at SCALE: the reference every other result is measured against. */
let reference: Float32Array;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quantlab-lora-'));
  m = await openStories();
  adapter = withRandomB(createLoraAdapter(m.base, { rank: 4, alpha: 8, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], seed: 11 }), 12, 0.05);
  adapterPath = join(dir, 'adapter.gguf');
  await writeFile(adapterPath, await encodeLoraGguf(adapter));
  tokens = new SpmTokenizer(spmVocabFromGguf(m.model.metadata)).encode(EVAL_TEXT).slice(0, 64);
  reference = await logitsOf(m, tokens, (p) => loraLinear(cpuLinear(p), adapter, SCALE));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function logitsOfFile(path: string, withAdapter?: LoraAdapter): Promise<Float32Array> {
  const model = await loadModel([await fileSource(path)]);
  const config = modelConfig(model);
  const weights = await readModelWeights(model, config);
  return logitsOf({ config, weights }, tokens, withAdapter ? (p) => loraLinear(cpuLinear(p), withAdapter, SCALE) : undefined);
}

describe('GGUF LoRA adapter in llama.cpp', () => {
  it("loads on stories260K (scale 0.75); llama.cpp's logits equal quantlab's base + adapter within 1e-4 relative", async () => {
    const peer = await runLlamaCpp({ model: STORIES, logits: [tokens], lora: [{ path: adapterPath, scale: SCALE }] });
    const theirs = Float32Array.from(peer.logits[0].flat());
    expect(theirs.length).toBe(reference.length);
    const d = maxDifference(theirs, reference);
    const moved = maxDifference(await logitsOf(m, tokens), reference).abs;
    console.log(`llama.cpp vs quantlab, stories260K + rank-4 adapter on 7 modules, ${tokens.length} tokens: max |diff| ${d.abs.toExponential(2)}, relative ${d.rel.toExponential(2)} (the adapter moves logits by up to ${moved.toFixed(3)})`);
    expect(d.rel).toBeLessThan(1e-4);
    // Not vacuous: the adapter changes the logits far beyond the tolerance.
    expect(moved).toBeGreaterThan(1000 * d.abs);
  });
});

describe('quantlab lora', () => {
  it('convert: GGUF -> PEFT -> GGUF gives the same bytes; the PEFT directory evaluates as the GGUF does', async () => {
    const peft = join(dir, 'peft');
    expect((await runInProcess(['lora', 'convert', adapterPath, '--base', STORIES, '--peft', peft])).code).toBe(0);
    expect(JSON.parse(await readFile(join(peft, 'adapter_config.json'), 'utf8'))).toMatchObject({ r: 4, lora_alpha: 8, peft_type: 'LORA' });
    const back = join(dir, 'back.gguf');
    const r = await runInProcess(['lora', 'convert', peft, '--base', STORIES, '-o', back]);
    expect(r).toMatchObject({ code: 0 });
    expect(Buffer.compare(await readFile(back), await readFile(adapterPath))).toBe(0);
    expect(existsSync(`${back}.part`)).toBe(false);
    const evalWith = async (a: string) => runInProcess(['eval', STORIES, '--presets', 'Q8_0', '--tokens', '0', '--json', '--lora', a, '--lora-scale', String(SCALE)]);
    const [viaGguf, viaPeft, plain] = await Promise.all([evalWith(adapterPath), evalWith(peft), runInProcess(['eval', STORIES, '--presets', 'Q8_0', '--tokens', '0', '--json'])]);
    expect(viaGguf.code).toBe(0);
    expect(viaPeft.stdout).toBe(viaGguf.stdout);
    const a = JSON.parse(viaGguf.stdout) as { f32_ppl: number; results: { kl_mean: number }[] };
    const b = JSON.parse(plain.stdout) as { f32_ppl: number };
    console.log(`eval --lora: F32+adapter ppl ${a.f32_ppl.toFixed(3)} (without ${b.f32_ppl.toFixed(3)}), Q8_0 base + f32 adapter KL ${a.results[0].kl_mean.toExponential(3)}`);
    expect(a.f32_ppl).not.toBe(b.f32_ppl);
    // The PEFT directory on the HF safetensors checkpoint (its names, q/k rows in HF order): the same F32 + adapter.
    const hf = await runInProcess(['eval', join(FIXTURE_MODELS, 'stories260K.f32.safetensors'), join(FIXTURE_MODELS, 'stories260K.config.json'), join(FIXTURE_MODELS, 'tok512.model'), '--presets', 'F32', '--tokens', '0', '--json', '--lora', peft, '--lora-scale', String(SCALE)]);
    expect(hf.code, hf.stderr).toBe(0);
    expect(Math.abs((JSON.parse(hf.stdout) as { f32_ppl: number }).f32_ppl - a.f32_ppl) / a.f32_ppl).toBeLessThan(1e-5);
  });

  it('merge: the merged F32 model gives base + adapter; merge then quantize equals llama-quantize on the merged file (q8_0, q4_0 pure; Q4_K_M); KL beside quantized base + f32 adapter', async () => {
    const merged = join(dir, 'merged.gguf');
    expect((await runInProcess(['lora', 'merge', STORIES, adapterPath, '-o', merged, '--lora-scale', String(SCALE)])).code).toBe(0);
    const mergedModel = await loadModel([await fileSource(merged)]);
    expect(mergedModel.metadata['general.file_type']).toBe(1);
    expect(mergedModel.ggufMetadata!.at(-1)!.key).toBe('general.file_type');
    const viaMerge = await logitsOfFile(merged);
    const d = maxDifference(viaMerge, reference);
    console.log(`merged F32 vs base + adapter: max |diff| ${d.abs.toExponential(2)} (relative ${d.rel.toExponential(2)})`);
    expect(d.rel).toBeLessThan(1e-5);

    const lines: string[] = [];
    for (const type of ['q8_0', 'q4_0', 'Q4_K_M']) {
      // A lower-case name is a --type (llama-quantize --pure), an upper-case one a --preset.
      const pure = type === type.toLowerCase();
      const how = pure ? ['--type', type] : ['--preset', type];
      const mergedQ = join(dir, `merged-${type}.gguf`);
      const r = await runInProcess(['lora', 'merge', STORIES, adapterPath, '-o', mergedQ, ...how, '--lora-scale', String(SCALE)]);
      expect(r.code, r.stderr).toBe(0);
      expect(existsSync(`${mergedQ}.merged.part`)).toBe(false);
      // llama-export-lora then llama-quantize: llama.cpp's quantizer on our merged file gives the same bytes.
      const peerQ = join(dir, `peer-${type}.gguf`);
      llamaQuantize(merged, peerQ, type.toUpperCase(), { pure });
      expect(Buffer.compare(await readFile(mergedQ), await readFile(peerQ)), type).toBe(0);
      const baseQ = join(dir, `base-${type}.gguf`);
      expect((await runInProcess(['quantize', STORIES, '-o', baseQ, ...how])).code).toBe(0);
      const klMerge = meanKl(reference, await logitsOfFile(mergedQ), m.config.nVocab);
      const klAdapter = meanKl(reference, await logitsOfFile(baseQ, adapter), m.config.nVocab);
      const rmse = (a: Float32Array) => Math.sqrt(a.reduce((s, v, i) => s + (v - reference[i]) ** 2, 0) / a.length);
      lines.push(`${type}: merge then quantize KL ${klMerge.toExponential(3)} (logit RMSE ${rmse(await logitsOfFile(mergedQ)).toExponential(3)}); quantized base + f32 adapter KL ${klAdapter.toExponential(3)} (logit RMSE ${rmse(await logitsOfFile(baseQ, adapter)).toExponential(3)})`);
      expect(klMerge).toBeGreaterThan(0);
      expect(klAdapter).toBeGreaterThan(0);
    }
    console.log(`stories260K + rank-4 adapter, against F32 base + adapter over ${tokens.length} tokens:\n${lines.join('\n')}`);
  });

  it("merge on a Q8_0 base: adapted tensors dequantized, merged and stored F16 (llama-export-lora's rule), the rest copied byte for byte", async () => {
    const baseQ = join(dir, 'base-q8-for-merge.gguf');
    expect((await runInProcess(['quantize', STORIES, '-o', baseQ, '--type', 'q8_0'])).code).toBe(0);
    const out = join(dir, 'merged-on-q8.gguf');
    expect((await runInProcess(['lora', 'merge', baseQ, adapterPath, '-o', out, '--lora-scale', String(SCALE)])).code).toBe(0);
    const [a, b] = await Promise.all([baseQ, out].map(async (p) => loadModel([await fileSource(p)])));
    expect(b.tensors.map((t) => t.name)).toEqual(a.tensors.map((t) => t.name));
    for (const t of b.tensors) {
      const was = a.tensors.find((x) => x.name === t.name)!;
      if (adapter.weights.has(t.name)) expect(t.dtype, t.name).toBe('f16');
      else {
        expect(t.dtype, t.name).toBe(was.dtype);
        const bytes = async (m: typeof a, x: typeof t) => (await import('../formats/model.ts')).readTensorBytes(m, x);
        expect(Buffer.compare(await bytes(b, t), await bytes(a, was)), t.name).toBe(0);
      }
    }
    // Against the Q8_0 base + f32 adapter: only the f16 rounding of the merged weights differs.
    const d = maxDifference(await logitsOfFile(out), await logitsOfFile(baseQ, adapter));
    expect(d.rel).toBeLessThan(1e-2);
    expect(d.abs).toBeGreaterThan(0);
  });

  it('refuses an adapter that does not fit the model in one line and leaves no output', async () => {
    const w = [...adapter.weights.values()][0];
    const narrow = { ...adapter, weights: new Map([[w.name, { ...w, cols: w.cols - 4, a: new Float32Array(w.rank * (w.cols - 4)) }]]) };
    const bad = join(dir, 'narrow.gguf');
    await writeFile(bad, await encodeLoraGguf(narrow));
    const out = join(dir, 'never.gguf');
    const r = await runInProcess(['lora', 'merge', STORIES, bad, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("quantlab lora: LoRA tensor 'blk.0.attn_q.weight' is 64 x 60 (B 64 x 4, A 4 x 60), the model's is 64 x 64\n");
    expect(existsSync(out) || existsSync(`${out}.part`)).toBe(false);
    const rank0 = await runInProcess(['eval', STORIES, '--presets', 'Q8_0', '--lora', join(dir, 'missing-dir')]);
    expect(rank0.stderr).toMatch(/^missing-dir: at byte 0: cannot open the adapter \(ENOENT\)\n$|cannot open the adapter \(ENOENT\)/);
    expect((await runInProcess(['eval', STORIES, '--presets', 'Q8_0', '--lora-scale', '2'])).stderr).toMatch(/--lora-scale needs --lora/);
  });
});
