// Mixed precision by budget on real models: stories260K and a synthetic Llama with rows of
// 256. At the byte size of Q4_K_M and of Q3_K_M the plan fits, and its KL divergence
// measured on the held-out text (model/eval-text.ts, not the scan's calibration text) is
// not worse than the preset's, better at least once. The plan's file comes out at exactly
// the predicted size; llama.cpp's own quantizer (koffi peer) given the printed
// --tensor-type arguments writes the same bytes; node-llama-cpp loads it and generates.
// A budget below the smallest file is refused with that size. The figures are printed.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { exportGguf, writeStream } from '../export/write.ts';
import { loadModel, type ModelIndex } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { loadFastCodecs } from '../quant/fast/node.ts';
import { runInProcess } from '../cli/testing.ts';
import { llamaQuantize } from '../testing/llama-peer.ts';
import { childScript } from '../testing/child-script.ts';
import { syntheticLlamaTensors, writeSyntheticLlama } from '../testing/synthetic-llama.ts';
import { buildGgufImatrix, toolImatrixOptions } from '../testing/imatrix-file.ts';
import { readImatrix } from '../formats/imatrix.ts';
import { clearKlCache, errorDamage, KlProbe, roundTrip } from './sensitivity.ts';
import { BudgetTooSmallError, checkedExportPlan, exactNamePattern, planFromJson, planOverrides, planToJson, smallestPlanBytes, type BudgetPlan } from './budget.ts';
import { measureTypes, openBudgetSession, planForTarget, planTypes, presetPoints, type BudgetSession } from './session.ts';

const ROOT = join(import.meta.dirname, '../..');
const STORIES = join(FIXTURE_MODELS, 'stories260K.gguf');
const run = promisify(execFile);

let dir: string;
let synthetic: string;
const sessions = new Map<string, BudgetSession>();

async function open(path: string): Promise<ModelIndex> {
  return loadModel([await fileSource(path)]);
}

beforeAll(async () => {
  await loadFastCodecs(() => undefined);
  dir = mkdtempSync(join(tmpdir(), 'quantlab-budget-'));
  synthetic = join(dir, 'synthetic.gguf');
  writeSyntheticLlama(synthetic, { nLayer: 2, nEmbd: 256, nFf: 256, nHead: 8, nHeadKv: 2, nVocab: 288, seed: 7 });
  for (const [name, path] of [['stories260K', STORIES], ['synthetic', synthetic]] as const) {
    sessions.set(name, await openBudgetSession(await open(path)));
  }
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes the plan with the exporter; returns the file's bytes. */
async function writePlan(s: BudgetSession, plan: BudgetPlan, out: string): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  const exportPlan = checkedExportPlan(s.source, plan);
  const bytes = await writeStream(exportGguf(s.source, exportPlan, { measure: false }), (c) => void chunks.push(c));
  expect(bytes).toBe(plan.bytes);
  const file = Buffer.concat(chunks);
  writeFileSync(out, file);
  return file;
}

describe.each(['stories260K', 'synthetic'])('budget plans on %s', (name) => {
  it('at the size of Q4_K_M and of Q3_K_M: fits, and measures no worse than the preset (better at least once)', async () => {
    const s = sessions.get(name)!;
    expect(s.kind).toBe('kl');
    // The scan also measured each tensor's error, the same figure errorDamage gives.
    const plain = await errorDamage(s.source, s.budget);
    for (const t of s.budget.tensors) for (const c of t.candidates) expect(s.errors.get(t.name)!.get(c.type)).toBeCloseTo(plain.get(t.name)!.get(c.type)!, 12);
    const points = presetPoints(s);
    let better = 0;
    for (const preset of ['Q4_K_M', 'Q3_K_M']) {
      const p = points.find((x) => x.preset === preset)!;
      const plan = planForTarget(s, { bytes: p.bytes });
      expect(plan.bytes).toBeLessThanOrEqual(p.bytes);
      // The allocator's answer is at least as good as the preset's own types under its model.
      expect(plan.damage).toBeLessThanOrEqual(p.predicted);
      const ours = (await measureTypes(s, planTypes(plan)))!;
      const theirs = (await measureTypes(s, p.types))!;
      console.log(
        `${name} at ${preset}'s ${p.bytes} bytes: preset KL ${theirs.klMean.toExponential(4)} (predicted ${p.predicted.toExponential(3)}), ` +
          `plan ${plan.bytes} bytes KL ${ours.klMean.toExponential(4)} (predicted ${plan.damage.toExponential(3)}), ` +
          `top-1 ${(100 * theirs.top1Agree).toFixed(1)}% vs ${(100 * ours.top1Agree).toFixed(1)}% over ${ours.positions} positions`,
      );
      expect(ours.klMean).toBeLessThanOrEqual(theirs.klMean);
      if (ours.klMean < theirs.klMean) better++;
      // Different from the preset: the plan chose for itself.
      expect(plan.tensors.some((t) => t.type !== p.types[t.name])).toBe(true);
    }
    expect(better).toBeGreaterThanOrEqual(1);
  });

  it.each([['Q3_K_M', 1], ['F16', 1.6]])('at %s\'s size x %s the plan file is exactly the predicted size, and llama.cpp given the --tensor-type arguments writes the same bytes', async (preset, factor) => {
    const s = sessions.get(name)!;
    const bytes = Math.floor(presetPoints(s).find((x) => x.preset === preset)!.bytes * factor);
    const plan = planForTarget(s, { bytes });
    if (factor > 1) expect(new Set(plan.tensors.map((t) => t.type))).toEqual(new Set(['f32', 'f16'])); // kept f32 (copied) and f16
    const file = join(dir, `${name}-${preset}-plan.gguf`);
    const ours = await writePlan(s, plan, file);
    const reread = await open(file);
    for (const t of plan.tensors) expect(reread.tensors.find((x) => x.name === t.name)!.dtype).toBe(t.type);
    // The arguments as printed (JSON), through llama_model_quantize.
    const args = planToJson(name, plan, s.kind).tensor_type_args;
    const overrides: { pattern: string; type: string }[] = [];
    for (let i = 0; i < args.length; i += 2) {
      expect(args[i]).toBe('--tensor-type');
      const sep = args[i + 1].lastIndexOf('=');
      overrides.push({ pattern: args[i + 1].slice(0, sep).toLowerCase(), type: args[i + 1].slice(sep + 1) });
    }
    expect(overrides.length).toBe(new Set(plan.tensors.map((t) => t.type)).size);
    const theirsPath = join(dir, `${name}-${preset}-plan.llama.gguf`);
    llamaQuantize(name === 'synthetic' ? synthetic : STORIES, theirsPath, plan.base, { overrides });
    expect(readFileSync(theirsPath).equals(ours)).toBe(true);
  });

  it('never exceeds a budget, however tight; below the smallest file it refuses and names that size', () => {
    const s = sessions.get(name)!;
    const smallest = smallestPlanBytes(s.budget).fileBytes;
    const f16 = presetPoints(s).find((x) => x.preset === 'F16')!.bytes;
    let last = Infinity;
    for (let i = 0; i <= 12; i++) {
      const bytes = Math.round(smallest + ((f16 - smallest) * i) / 12);
      const plan = planForTarget(s, { bytes });
      expect(plan.bytes).toBeLessThanOrEqual(bytes);
      expect(plan.damage).toBeLessThanOrEqual(last + 1e-15); // more room never costs damage
      last = plan.damage;
    }
    expect(planForTarget(s, { bytes: smallest }).bytes).toBe(smallest);
    expect(() => planForTarget(s, { bytes: smallest - 1 })).toThrow(BudgetTooSmallError);
    expect(() => planForTarget(s, { bytes: smallest - 1 })).toThrow(new RegExp(`below the smallest possible, ${smallest} bytes`));
    // Bits per weight: the same rule on the tensors' data.
    const minBpw = (smallestPlanBytes(s.budget).dataBytes * 8) / s.budget.params;
    const plan = planForTarget(s, { bpw: minBpw + 0.5 });
    expect(plan.bpw).toBeLessThanOrEqual(minBpw + 0.5);
    expect(plan.bpw).toBeGreaterThan(minBpw + 0.3); // the room is used
    expect(() => planForTarget(s, { bpw: minBpw - 0.01 })).toThrow(new RegExp(`below the smallest possible, ${minBpw.toFixed(4)} bpw`));
  });
});

describe('plans as JSON and as llama-quantize patterns', () => {
  it('a pattern matches its tensors and no other (names with regex characters escaped)', () => {
    const names = ['blk.1.attn_q.weight', 'blk.11.attn_q.weight', 'a+b.weight'];
    const re = new RegExp(exactNamePattern(names.slice(0, 1)));
    expect(re.test('blk.1.attn_q.weight')).toBe(true);
    expect(re.test('blk.11.attn_q.weight')).toBe(false);
    expect(re.test('blk.1xattn_q.weight')).toBe(false);
    const group = new RegExp(exactNamePattern(names));
    for (const n of names) expect(group.test(n)).toBe(true);
    expect(group.test('aab.weight')).toBe(false);
    expect(() => planOverrides({ tensors: [{ name: 'Output.weight', type: 'q8_0', bytes: 0, damage: 0 }] })).toThrow(/upper-case/);
  });

  it('round-trips through JSON; a plan for another model or with a type that does not apply is refused', () => {
    const s = sessions.get('stories260K')!;
    const plan = planForTarget(s, { bytes: presetPoints(s).find((x) => x.preset === 'Q4_K_M')!.bytes });
    const json = JSON.parse(JSON.stringify(planToJson('stories260K.gguf', plan, 'kl')));
    const back = planFromJson(s.budget, json);
    expect(back.bytes).toBe(plan.bytes);
    expect(back.base).toBe(plan.base);
    expect(back.tensors.map((t) => t.type)).toEqual(plan.tensors.map((t) => t.type));
    const down = json.tensors.find((t: { name: string }) => t.name === 'blk.0.ffn_down.weight');
    down.type = 'q4_0'; // rows of 172: no block type applies
    expect(() => planFromJson(s.budget, json)).toThrow(/q4_0 does not apply to blk\.0\.ffn_down\.weight/);
    const other = sessions.get('synthetic')!;
    expect(() => planFromJson(other.budget, planToJson('x', plan, 'kl'))).toThrow(/not in the plan|not a quantizable tensor/);
  });
});

describe('quantlab plan / quantize --plan', () => {
  it('plans to a JSON file, quantizes from it to exactly that size, and the file generates in llama.cpp', async () => {
    const planPath = join(dir, 'plan.json');
    const { code, stdout } = await runInProcess(['plan', STORIES, '--target-size', '300KB', '-o', planPath, '--json']);
    expect(code).toBe(0);
    const json = JSON.parse(stdout);
    expect(JSON.parse(readFileSync(planPath, 'utf8'))).toEqual(json);
    expect(json.target).toEqual({ bytes: 300000 });
    expect(json.bytes).toBeLessThanOrEqual(300000);
    expect(json.damage.kind).toBe('kl');
    expect(json.measured.kl_mean).toBeGreaterThan(0);
    expect(json.tensors.every((t: { error: number }) => t.error >= 0)).toBe(true);
    expect(json.tensors.filter((t: { type: string; error: number }) => t.type !== 'f32' && t.error === 0)).toEqual([]);
    expect(json.presets.filter((p: { nearest: boolean }) => p.nearest).every((p: { measured_kl: number }) => p.measured_kl > 0)).toBe(true);
    expect(json.layers.map((l: { group: string }) => l.group)).toContain('blk.4');
    const near = json.presets.filter((p: { nearest: boolean }) => p.nearest).map((p: { preset: string }) => p.preset).sort();
    for (const l of json.layers) expect(Object.keys(l.presets).sort()).toEqual(near);
    // token_embd alone in its group: its bits are its type's (the plan's bytes over its 512 x 64 values).
    const embd = json.tensors.find((t: { name: string }) => t.name === 'token_embd.weight');
    expect(json.layers.find((l: { group: string }) => l.group === 'token_embd').bpw).toBeCloseTo((embd.bytes * 8) / (512 * 64), 12);
    const out = join(dir, 'stories-plan.gguf');
    const q = await runInProcess(['quantize', STORIES, '-o', out, '--plan', planPath]);
    expect(q.code).toBe(0);
    expect(readFileSync(out).length).toBe(json.bytes);
    const { stdout: gen } = await run(process.execPath, [childScript(join(ROOT, 'src/testing/generate-child.ts')), out, 'Once upon a time', '24'], { cwd: ROOT });
    const text = (JSON.parse(gen.trim().split('\n').pop()!) as { text: string }).text;
    console.log(`stories260K plan (${json.bytes} bytes) in llama.cpp: "Once upon a time${text}"`);
    expect(text).toMatch(/^[ ,.]*[A-Za-z]+( [A-Za-z,.']+){4,}/); // words, not noise
  });

  it('safetensors + config.json: the plan quantized by quantlab equals llama.cpp\'s from the F32 GGUF with the printed arguments', async () => {
    const st = ['stories260K.f32.safetensors', 'stories260K.config.json', 'tok512.model'].map((f) => join(FIXTURE_MODELS, f));
    const planPath = join(dir, 'st-plan.json');
    const { code, stdout } = await runInProcess(['plan', ...st, '--target-bpw', '7.5', '--damage', 'error', '-o', planPath]);
    expect(code).toBe(0);
    expect(stdout).toContain('MODEL-F32.gguf: the model as llama.cpp');
    const json = JSON.parse(readFileSync(planPath, 'utf8'));
    expect(json.bpw).toBeLessThanOrEqual(7.5);
    const ours = join(dir, 'st-plan.gguf');
    const f32 = join(dir, 'st-F32.gguf');
    expect((await runInProcess(['quantize', ...st, '-o', ours, '--plan', planPath])).code).toBe(0);
    expect((await runInProcess(['quantize', ...st, '-o', f32, '--type', 'f32'])).code).toBe(0);
    const overrides: { pattern: string; type: string }[] = [];
    for (let i = 1; i < json.tensor_type_args.length; i += 2) {
      const a: string = json.tensor_type_args[i];
      overrides.push({ pattern: a.slice(0, a.lastIndexOf('=')).toLowerCase(), type: a.slice(a.lastIndexOf('=') + 1) });
    }
    const theirs = join(dir, 'st-plan.llama.gguf');
    llamaQuantize(f32, theirs, json.base, { overrides });
    expect(readFileSync(ours).length).toBe(json.bytes);
    expect(readFileSync(ours).equals(readFileSync(theirs))).toBe(true);
  });

  it('refuses a target below the smallest file with that size, and a plan that does not fit the model', async () => {
    const small = await runInProcess(['plan', STORIES, '--target-size', '100KB']);
    expect(small.code).toBe(1);
    expect(small.stderr).toMatch(/a 100000-byte file is below the smallest possible, \d+ bytes/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ tensors: [{ name: 'blk.0.attn_q.weight', type: 'q8_0' }] }));
    const q = await runInProcess(['quantize', STORIES, '-o', join(dir, 'bad.gguf'), '--plan', bad]);
    expect(q.code).toBe(1);
    expect(q.stderr).toMatch(/is not in the plan/);
    const both = await runInProcess(['quantize', STORIES, '-o', join(dir, 'bad.gguf'), '--plan', bad, '--preset', 'Q4_K_M']);
    expect(both.stderr).toMatch(/give one of --preset P or --type T \(or --plan PLAN\.json\)/);
  });
});

describe('with an importance matrix, on a model the forward pass cannot run', () => {
  it('weights the tensor error by it, and the plan with --imatrix is the file llama.cpp writes given the same', async () => {
    const input = join(dir, 'compact.gguf');
    const options = { nLayer: 2, nEmbd: 256, nFf: 512, nHead: 8, nHeadKv: 2, nVocab: 288, compactRows: 4, seed: 5 };
    writeSyntheticLlama(input, options);
    const entries = syntheticLlamaTensors(options)
      .filter((t) => t.ne.length === 2)
      .map((t, k) => ({ name: t.name, sums: Float32Array.from({ length: t.ne[0] }, (_, i) => (i % 16 === k % 16 ? 400 : 1) + (i % 5)), counts: [4] }));
    const imatrixPath = join(dir, 'compact.imatrix.gguf');
    writeFileSync(imatrixPath, await buildGgufImatrix(entries, ['calibration.txt'], 3));

    // The damage is Σ importance·error², with the importance the quantizer also used.
    const model = await open(input);
    const matrix = await readImatrix(await fileSource(imatrixPath));
    const s = await openBudgetSession(model, { imatrix: { matrix, fileArgument: imatrixPath } });
    expect(s.kind).toBe('error'); // compact rows: the forward pass cannot run it
    const name = 'blk.1.ffn_up.weight';
    const t = s.budget.tensors.find((x) => x.name === name)!;
    const w = await s.source.readF32(s.source.tensors.find((x) => x.name === name)!, { first: 0, count: t.params / 256 });
    const imp = matrix.entries.get(name)!;
    for (const type of ['q4_K', 'q2_K']) {
      const q = roundTrip(type, w, 256, imp);
      let want = 0;
      for (let i = 0; i < w.length; i++) want += imp[i % 256] * (w[i] - q[i]) ** 2;
      expect(s.damage.get(name)!.get(type)).toBeCloseTo(want, 10);
    }
    const plain = await errorDamage(s.source, s.budget);
    expect(plain.get(name)!.get('q4_K')).not.toBeCloseTo(s.damage.get(name)!.get('q4_K')!, 6);

    const planPath = join(dir, 'compact-plan.json');
    const q4 = presetPoints(s).find((p) => p.preset === 'Q4_K_M')!;
    const cli = await runInProcess(['plan', input, '--target-size', String(q4.bytes), '--imatrix', imatrixPath, '-o', planPath, '--json']);
    expect(cli.code).toBe(0);
    const json = JSON.parse(cli.stdout);
    expect(json.damage.kind).toBe('error');
    expect(json.imatrix).toBe(imatrixPath);
    expect(json.measured).toBeNull();
    expect(json.bytes).toBeLessThanOrEqual(q4.bytes);
    expect(json.damage.predicted).toBeLessThanOrEqual(q4.predicted);
    const out = join(dir, 'compact-plan.gguf');
    const without = await runInProcess(['quantize', input, '-o', out, '--plan', planPath]);
    expect(without.stderr).toMatch(/made with the importance matrix .*: give it \(--imatrix\)/);
    expect((await runInProcess(['quantize', input, '-o', out, '--plan', planPath, '--imatrix', imatrixPath])).code).toBe(0);
    expect(readFileSync(out).length).toBe(json.bytes);
    const theirs = join(dir, 'compact-plan.llama.gguf');
    const overrides: { pattern: string; type: string }[] = [];
    for (let i = 1; i < json.tensor_type_args.length; i += 2) {
      const a: string = json.tensor_type_args[i];
      overrides.push({ pattern: a.slice(0, a.lastIndexOf('=')).toLowerCase(), type: a.slice(a.lastIndexOf('=') + 1) });
    }
    llamaQuantize(input, theirs, json.base, { overrides, ...toolImatrixOptions(imatrixPath, entries, 'calibration.txt', 3) });
    expect(readFileSync(out).equals(readFileSync(theirs))).toBe(true);
  });
});

describe('the sensitivity scan', () => {
  it('quantlab plan --scan-cache saves the scan to a file, and a later run reads it instead of scanning', async () => {
    const cache = join(dir, 'scan-cache.json');
    const first = await runInProcess(['plan', STORIES, '--target-size', '300KB', '--scan-cache', cache, '--json']);
    expect(first.code).toBe(0);
    const saved = JSON.parse(readFileSync(cache, 'utf8'));
    const pairs = sessions.get('stories260K')!.budget.tensors.reduce((n, t) => n + t.candidates.length, 0);
    expect(Object.keys(saved)).toHaveLength(pairs);
    clearKlCache();
    const measure = vi.spyOn(KlProbe.prototype, 'measure');
    const second = await runInProcess(['plan', STORIES, '--target-size', '300KB', '--scan-cache', cache, '--json']);
    expect(second.code).toBe(0);
    // Only the held-out measurements ran: the plan and its nearest presets, no scan step.
    expect(measure.mock.calls.length).toBe(1 + JSON.parse(second.stdout).presets.filter((p: { nearest: boolean }) => p.nearest).length);
    expect(JSON.parse(second.stdout)).toEqual(JSON.parse(first.stdout));
    measure.mockRestore();
  });

  it('reads a second scan of the same model from its cache, and stops when cancelled', async () => {
    const model = await open(STORIES);
    const measure = vi.spyOn(KlProbe.prototype, 'measure');
    const again = await openBudgetSession(model);
    expect(measure).not.toHaveBeenCalled();
    expect([...again.damage].map(([n, row]) => [n, [...row]])).toEqual([...sessions.get('stories260K')!.damage].map(([n, row]) => [n, [...row]]));
    clearKlCache();
    const abort = new AbortController();
    let seen = 0;
    const scan = openBudgetSession(model, {
      signal: abort.signal,
      onProgress: (p) => {
        seen = p.done;
        expect(p.total).toBe(again.budget.tensors.reduce((n, t) => n + t.candidates.length, 0));
        if (p.done === 5) abort.abort(new Error('stop here'));
      },
    });
    await expect(scan).rejects.toThrow('stop here');
    // A model above the size limit is scanned by its tensor error, unless KL is asked for.
    expect((await openBudgetSession(model, { klMaxParams: 1000 })).kind).toBe('error');
    await expect(openBudgetSession(await open(join(dir, 'compact.gguf')), { damage: 'kl' })).rejects.toThrow(/use --damage error/);
    expect(seen).toBe(5);
    expect(measure.mock.calls.length).toBeLessThanOrEqual(5);
    measure.mockRestore();
  });
});
