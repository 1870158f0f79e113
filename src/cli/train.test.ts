// `quantlab train`: a QAT run on stories260K writes the GGUF and a JSON summary whose
// held-out KL is the file's; a diverging learning rate, Ctrl-C and bad arguments leave
// nothing behind, with one line on stderr.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { QAT_KEYS } from '../train/export.ts';
import { expectOnlyProgress, expectTrainRefused, runInProcess, runTrainInterrupted } from './testing.ts';

const STORIES = join(FIXTURE_MODELS, 'stories260K.gguf');
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'quantlab-train-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const expectRefused = (args: readonly string[], out: string, message: RegExp) => expectTrainRefused(STORIES, out, args, message);

describe('quantlab train', () => {
  it('--qat q4_0 --json: the loss per step, held-out KL/PPL before and after, the file', async () => {
    const out = join(dir, 'qat.gguf');
    const { code, stdout, stderr } = await runInProcess(['train', STORIES, '--qat', 'q4_0', '--steps', '4', '--seq', '32', '--lr', '1e-4', '--json', '-o', out]);
    expectOnlyProgress(stderr);
    expect(code).toBe(0);
    const s = JSON.parse(stdout);
    expect(s.losses).toHaveLength(4);
    expect(s.losses.every((l: number) => l > 0 && Number.isFinite(l))).toBe(true);
    expect(s.heldOut.ptq.kl).toBeGreaterThan(0);
    expect(s.heldOut.qat.kl).toBeGreaterThan(0);
    expect(s.heldOut.qat.kl).not.toBe(s.heldOut.ptq.kl);
    expect(s).toMatchObject({ mode: { type: 'q4_0' }, loss: 'kl', steps: 4, lr: 1e-4, seqLen: 32, seed: 0 });
    expect(existsSync(`${out}.part`)).toBe(false);
    const file = await loadModel([await fileSource(out)]);
    expect(file.tensors.find((t) => t.name === 'blk.0.attn_q.weight')?.dtype).toBe('q4_0');
    expect(file.metadata[QAT_KEYS.steps]).toBe(4);
    expect(s.bytes).toBe((await fileSource(out)).size);
  });

  it("--preset Q4_K_M: the file has the tensor types quantize --preset Q4_K_M gives", async () => {
    const out = join(dir, 'qat-Q4_K_M.gguf');
    const plain = join(dir, 'plain-Q4_K_M.gguf');
    const trained = await runInProcess(['train', STORIES, '--preset', 'Q4_K_M', '--steps', '1', '--seq', '16', '-o', out]);
    expectOnlyProgress(trained.stderr);
    expect(trained.stdout).toMatch(/^QAT: 1 step \(kl loss .*\nheld-out text {4}KL vs F32 {3}PPL\nF32 .*\nPTQ \(rounding\) .*\nQAT .*\n.*qat-Q4_K_M\.gguf: \d+ bytes\n$/);
    expect((await runInProcess(['quantize', STORIES, '--preset', 'Q4_K_M', '-o', plain])).code).toBe(0);
    const types = async (path: string) => (await loadModel([await fileSource(path)])).tensors.map((t) => `${t.name} ${t.dtype}`);
    const theirs = await types(plain);
    expect(new Set(theirs.map((t) => t.split(' ')[1])).size).toBeGreaterThan(2);
    expect(await types(out)).toEqual(theirs);
  });

  it('a learning rate that makes the loss NaN: one line naming the step, nothing written', async () => {
    await expectRefused(['--qat', 'q4_0', '--steps', '3', '--lr', '1e30', '--seq', '16'], join(dir, 'nan.gguf'), /^quantlab train: training diverged at step \d: the (loss|gradient) is not a number/);
  });

  it('Ctrl-C during training leaves neither the file nor OUT.part', async () => {
    const out = join(dir, 'cancelled.gguf');
    const { code, stderr, signalled } = await runTrainInterrupted(['train', STORIES, '--qat', 'q4_0', '--steps', '50', '--seq', '16', '-o', out]);
    expect(signalled).toBe(true);
    expect(code).toBe(1);
    expect(stderr).toMatch(/quantlab train: cancelled\n$/);
    expect(existsSync(out) || existsSync(`${out}.part`)).toBe(false);
  });

  it('refuses bad arguments in one line', async () => {
    const out = join(dir, 'bad.gguf');
    await expectRefused(['--steps', '3'], out, /give one of --qat TYPE, --preset P or --lora RANK/);
    await expectRefused(['--qat', 'q4_0', '--preset', 'Q4_0', '--steps', '3'], out, /give one of --qat TYPE, --preset P or --lora RANK/);
    await expectRefused(['--qat', 'q4_0'], out, /--steps N is required/);
    await expectRefused(['--qat', 'q4_0', '--steps', '0'], out, /--steps must be a positive whole number, not '0'/);
    await expectRefused(['--qat', 'q4_O', '--steps', '3'], out, /--qat: unknown type 'q4_O'.*q4_0/);
    await expectRefused(['--qat', 'q4_0', '--steps', '3', '--lr', 'fast'], out, /--lr must be a positive number, not 'fast'/);
    await expectRefused(['--qat', 'q4_0', '--steps', '3', '--loss', 'mse'], out, /--loss must be kl or ce, not 'mse'/);
    await expectRefused(['--qat', 'q4_0', '--steps', '3', '--text', join(dir, 'missing.txt')], out, /missing\.txt.*cannot read the text/);
  });
});
