// `quantlab train --lora`: QLoRA on stories260K over an NF4 base. Training lowers the
// held-out KL of base + adapter below the base alone; the GGUF adapter loads in llama.cpp on
// the F32 base (one child process) with logits equal to quantlab's; the PEFT files hold the
// same adapter; same seed, same bytes; bad arguments give one line and leave nothing.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { EVAL_TEXT } from '../model/eval-text.ts';
import { cpuLinear } from '../model/families/index.ts';
import { SpmTokenizer, spmVocabFromGguf } from '../model/tokenizer.ts';
import { runLlamaCpp } from '../testing/llama-cpp-peer.ts';
import type { LoraAdapter } from '../train/lora/adapter.ts';
import { loraLinear } from '../train/lora/apply.ts';
import { readLoraGguf } from '../train/lora/gguf.ts';
import { PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE, peftBase, readPeft } from '../train/lora/peft.ts';
import { logitsOf, maxDifference, openStories } from '../train/lora/testing.ts';
import { expectOnlyProgress, expectTrainRefused, runInProcess, runTrainInterrupted } from './testing.ts';

const STORIES = join(FIXTURE_MODELS, 'stories260K.gguf');
/** The run the tests read: rank 4 on q_proj and v_proj over NF4, KL to F32, 30 steps of 32 tokens. */
const RUN = ['--lora', '4', '--alpha', '8', '--base-type', 'nf4', '--steps', '30', '--seq', '32', '--lr', '5e-3', '--seed', '3'];
let dir: string;
let adapterPath: string;
let peftDir: string;
let summary: { losses: number[]; heldOut: { f32: { ppl: number }; base: { kl: number; ppl: number }; adapted: { kl: number; ppl: number } }; bytes: number; lora: unknown; baseType: string };
let adapter: LoraAdapter;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quantlab-train-lora-'));
  adapterPath = join(dir, 'adapter.gguf');
  peftDir = join(dir, 'peft');
  const r = await runInProcess(['train', STORIES, ...RUN, '--json', '--peft', peftDir, '-o', adapterPath]);
  expectOnlyProgress(r.stderr);
  expect(r.code).toBe(0);
  summary = JSON.parse(r.stdout);
  adapter = await readLoraGguf(await fileSource(adapterPath));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const expectRefused = (args: readonly string[], message: RegExp) => expectTrainRefused(STORIES, join(dir, 'bad.gguf'), args, message);

describe('quantlab train --lora (QLoRA)', () => {
  it('--json: the loss per step; the held-out KL of NF4 base + adapter is below the NF4 base alone', async () => {
    const h = summary.heldOut;
    console.log(`stories260K QLoRA rank 4 (q_proj, v_proj) over NF4, 30 steps: held-out KL ${h.base.kl.toFixed(5)} -> ${h.adapted.kl.toFixed(5)}, PPL ${h.base.ppl.toFixed(3)} -> ${h.adapted.ppl.toFixed(3)} (F32 ${h.f32.ppl.toFixed(3)})`);
    expect(summary.losses).toHaveLength(30);
    expect(summary.losses.every((l) => l > 0 && Number.isFinite(l))).toBe(true);
    expect(summary).toMatchObject({ baseType: 'nf4', lora: { rank: 4, alpha: 8, targets: ['q_proj', 'v_proj'], dropout: 0 } });
    expect(h.base.kl).toBeGreaterThan(0);
    expect(h.adapted.kl).toBeLessThan(h.base.kl);
    expect(summary.bytes).toBe((await fileSource(adapterPath)).size);
  });

  it('the GGUF adapter: trained (B no longer zero), alpha and rank kept; the PEFT files hold the same adapter', async () => {
    expect(adapter).toMatchObject({ architecture: 'llama', alpha: 8, rank: 4, targetModules: ['q_proj', 'v_proj'] });
    const m = await openStories();
    expect([...adapter.weights.keys()]).toEqual(Array.from({ length: m.config.nLayer }, (_, il) => [`blk.${il}.attn_q.weight`, `blk.${il}.attn_v.weight`]).flat());
    expect(summary.lora).toMatchObject({ tensors: adapter.weights.size });
    for (const w of adapter.weights.values()) expect(w.b.some((v) => v !== 0), w.name).toBe(true);
    const peft = await readPeft(await fileSource(join(peftDir, PEFT_CONFIG_FILE)), await fileSource(join(peftDir, PEFT_WEIGHTS_FILE)), peftBase(m.config, 'llama'));
    expect(peft.rank).toBe(4);
    expect(peft.alpha).toBe(8);
    for (const [name, w] of adapter.weights) {
      expect(peft.weights.get(name)!.a, name).toEqual(w.a);
      expect(peft.weights.get(name)!.b, name).toEqual(w.b);
    }
    expect(existsSync(`${adapterPath}.part`) || existsSync(join(peftDir, `${PEFT_WEIGHTS_FILE}.part`))).toBe(false);
  });

  it("loads in llama.cpp on the F32 base: its logits equal quantlab's base + adapter within 1e-4 relative", async () => {
    const m = await openStories();
    const tokens = new SpmTokenizer(spmVocabFromGguf(m.model.metadata)).encode(EVAL_TEXT).slice(0, 64);
    const ours = await logitsOf(m, tokens, (p) => loraLinear(cpuLinear(p), adapter));
    const peer = await runLlamaCpp({ model: STORIES, logits: [tokens], lora: [{ path: adapterPath }] });
    const theirs = Float32Array.from(peer.logits[0].flat());
    expect(theirs.length).toBe(ours.length);
    const d = maxDifference(theirs, ours);
    const moved = maxDifference(await logitsOf(m, tokens), ours).abs;
    console.log(`llama.cpp vs quantlab, F32 stories260K + trained adapter, ${tokens.length} tokens: max |diff| ${d.abs.toExponential(2)}, relative ${d.rel.toExponential(2)}; the adapter moves logits by up to ${moved.toFixed(4)}`);
    expect(d.rel).toBeLessThan(1e-4);
    // Not vacuous: the trained adapter changes the logits well beyond the difference.
    expect(moved).toBeGreaterThan(100 * d.abs);
  });

  it('deterministic: the same seed writes the same bytes, another seed other bytes (with dropout)', async () => {
    const short = ['--lora', '2', '--base-type', 'nf4', '--steps', '3', '--seq', '16', '--dropout', '0.1', '--targets', 'v_proj,down_proj'];
    const run = async (seed: string, name: string) => {
      const out = join(dir, name);
      const r = await runInProcess(['train', STORIES, ...short, '--seed', seed, '-o', out]);
      expect(r.code, r.stderr).toBe(0);
      return readFile(out);
    };
    const [a, b, c] = [await run('7', 'a.gguf'), await run('7', 'b.gguf'), await run('8', 'c.gguf')];
    expect(Buffer.compare(a, b)).toBe(0);
    expect(Buffer.compare(a, c)).not.toBe(0);
  });

  it('a diverging learning rate: one line naming the step, no adapter; Ctrl-C leaves neither ADAPTER.gguf nor its .part', async () => {
    // RMSNorm keeps absurd but finite adapters' outputs finite: only a rate that overflows f32 (B = ±3e38 after one step, ±Infinity after two) makes the loss NaN.
    const all = 'q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj';
    await expectRefused(['--lora', '4', '--base-type', 'nf4', '--targets', all, '--steps', '4', '--seq', '16', '--lr', '3e38'], /^quantlab train: training diverged at step \d: the (loss|gradient|held-out KL after the last step) is not a number/);
    const out = join(dir, 'cancelled.gguf');
    const { code, stderr, signalled } = await runTrainInterrupted(['train', STORIES, '--lora', '2', '--base-type', 'nf4', '--steps', '50', '--seq', '16', '-o', out]);
    expect(signalled).toBe(true);
    expect(code).toBe(1);
    expect(stderr).toMatch(/quantlab train: cancelled\n$/);
    expect(existsSync(out) || existsSync(`${out}.part`)).toBe(false);
  });

  it('refuses a rank of 0, an unknown target, a base type without a codec or whose blocks do not fit, in one line', async () => {
    const rest = ['--steps', '2', '--seq', '16'];
    await expectRefused(['--lora', '0', '--base-type', 'nf4', ...rest], /--lora: the rank must be a whole number >= 1, not '0'/);
    await expectRefused(['--lora', '4', '--base-type', 'nf4', '--targets', 'q_proj,qq_proj', ...rest], /LoRA target module 'qq_proj' is not one of q_proj, k_proj/);
    await expectRefused(['--lora', '4', '--base-type', 'nf5', ...rest], /--base-type: 'nf5' is not a type with a codec in quantlab.*nf4/);
    await expectRefused(['--lora', '4', '--base-type', 'q4_K', ...rest], /QLoRA base type q4_K: 'blk\.0\.attn_q\.weight' has rows of 64, not a multiple of its blocks of 256/);
    await expectRefused(['--lora', '4', ...rest], /--base-type nf4\|q4_K is required with --lora/);
    await expectRefused(['--lora', '4', '--qat', 'q4_0', '--base-type', 'nf4', ...rest], /give one of --qat TYPE, --preset P or --lora RANK/);
    await expectRefused(['--qat', 'q4_0', '--peft', dir, ...rest], /--peft goes with --lora RANK/);
  });
});
