// The Training tab (issue 21): a QAT and a QLoRA run on the sample in the page's worker, the
// loss curve drawn step by step, the held-out comparison, and downloads byte for byte the
// files `quantlab train` writes for the same options; cancel and a diverging run keep the
// result the user had.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import type { Download, Locator, Page } from '@playwright/test';
import { SWIFTSHADER_ICD } from '../src/gpu/swiftshader.ts';
import { test, expect } from './fixtures.ts';

const ROOT = process.cwd();
const SAMPLE = join(ROOT, 'public/samples/stories260K.gguf');
const STEPS = 10;

/**
 * `quantlab train SAMPLE ARGS --backend webgpu` in `cwd`: Dawn on SwiftShader, the page's GPU
 * here. Started with the test and awaited at its end, so the CLI's run overlaps the page's.
 */
function quantlabTrain(args: string[], cwd: string) {
  const run = promisify(execFile)('node', [join(ROOT, 'bin/quantlab.js'), 'train', SAMPLE, ...args, '--backend', 'webgpu'], { cwd, env: { ...process.env, VK_ICD_FILENAMES: SWIFTSHADER_ICD } });
  run.catch(() => {}); // awaited at the test's end; a test that fails before then leaves no unhandled rejection
  return run;
}

/** The run was WebGPU's: the result says so, and the device counted its submits and readbacks. */
async function expectOnWebGpu(panel: Locator) {
  await expect(panel.getByTestId('training-backend')).toHaveAttribute('data-backend', 'webgpu');
  await expect(panel.getByTestId('training-backend')).toContainText('on WebGPU');
  const usage = panel.getByTestId('gpu-usage');
  expect(Number(await usage.getAttribute('data-submits'))).toBeGreaterThan(0);
  expect(Number(await usage.getAttribute('data-readbacks'))).toBeGreaterThan(0);
}

/** Clicks the download button and saves what the page hands over. */
async function download(page: Page, button: Locator, to: string): Promise<Buffer> {
  const saved: Promise<Download> = page.waitForEvent('download', { timeout: 60_000 });
  await button.click();
  await (await saved).saveAs(to);
  return readFileSync(to);
}

/** The loss curve's points: the line's SVG path has one M/L command per step. */
async function curvePoints(panel: Locator): Promise<number> {
  const d = await panel.getByRole('figure', { name: 'Training loss' }).locator('path.recharts-line-curve').getAttribute('d');
  return (d?.match(/[ML]/g) ?? []).length;
}

async function heldOut(panel: Locator, row: 'f32' | 'before' | 'after', metric: 'kl' | 'ppl'): Promise<number> {
  return Number(await panel.getByRole('table', { name: 'Training comparison' }).locator(`tr[data-row="${row}"] td[data-metric="${metric}"]`).getAttribute('data-value'));
}

/** axe-core's serious or critical violations on the page as it is, light and dark. */
async function axeViolations(page: Page): Promise<string[]> {
  const bad: string[] = [];
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    const { violations } = await new AxeBuilder({ page }).analyze();
    bad.push(...violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${scheme}: ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join('; ')})`));
  }
  await page.emulateMedia({ colorScheme: 'light' });
  return bad;
}

async function train(panel: Locator) {
  await panel.getByRole('button', { name: 'Train', exact: true }).click();
  await expect(panel.getByRole('button', { name: 'Train', exact: true })).toBeEnabled({ timeout: 120_000 });
}

test('QAT in the page: live loss curve, PTQ vs QAT on held-out text, the GGUF quantlab train --qat writes; cancel and a diverging rate keep the result', async ({ app, page }, info) => {
  const dir = info.outputPath();
  mkdirSync(dir, { recursive: true });
  const cli = quantlabTrain(['--qat', 'q4_0', '--steps', String(STEPS), '-o', 'cli-qat.gguf'], dir);
  await app.open();
  await app.loadSample();
  const panel = await app.openTab('Training');
  await panel.getByLabel('QAT type or preset').selectOption('type:q4_0');
  await panel.getByLabel('Steps').fill(String(STEPS));
  await expect(panel.getByTestId('training-command')).toHaveText(`quantlab train stories260K.gguf --qat q4_0 --steps ${STEPS} -o OUT.gguf`);
  await train(panel);
  await expect(panel.getByRole('alert')).toHaveCount(0);

  await expectOnWebGpu(panel);
  expect(Number(await panel.getByTestId('training-backend').getAttribute('data-steps-per-second'))).toBeGreaterThan(0);
  expect(await curvePoints(panel)).toBe(STEPS);
  // QAT lowers the held-out KL below rounding's (measured 0.0926 -> 0.071 at 10 steps).
  const before = await heldOut(panel, 'before', 'kl');
  const after = await heldOut(panel, 'after', 'kl');
  expect(before).toBeGreaterThan(0);
  expect(after).toBeLessThan(before);
  expect(await heldOut(panel, 'f32', 'ppl')).toBeGreaterThan(1);
  await app.screenshot('training-qat');

  // A long run cancelled after a few live steps: the curve grew as it ran; then the old result is back, nothing changed.
  await panel.getByLabel('Steps').fill('2000');
  await panel.getByRole('button', { name: 'Train', exact: true }).click();
  await expect(page.getByRole('status', { name: 'Training progress' })).toContainText(/Step [3-9]\/2000/, { timeout: 60_000 });
  expect(await curvePoints(panel)).toBeGreaterThanOrEqual(3);
  await page.getByRole('status', { name: 'Training progress' }).getByRole('button', { name: 'Cancel' }).click();
  await expect(panel.getByTestId('training-cancelled')).toContainText('nothing was written; the previous result is kept');
  expect(await heldOut(panel, 'after', 'kl')).toBe(after);
  expect(await curvePoints(panel)).toBe(STEPS);

  // A rate that makes the loss NaN: one line, the previous result kept.
  await panel.getByLabel('Steps').fill('3');
  await panel.getByLabel('Learning rate').fill('1e30');
  await train(panel);
  await expect(panel.getByRole('alert')).toHaveText(/^training diverged at step \d: the (loss|gradient) is not a number \(try a smaller learning rate\); nothing was written$/);
  expect(await heldOut(panel, 'after', 'kl')).toBe(after);

  // The download is the kept run's: the CLI's file for the same options, byte for byte.
  const got = await download(page, panel.getByRole('button', { name: 'Download QAT model GGUF' }), join(dir, 'page-qat.gguf'));
  await cli;
  const want = readFileSync(join(dir, 'cli-qat.gguf'));
  expect(got.length).toBe(want.length);
  expect(got.equals(want)).toBe(true);
});

test('QLoRA in the page: the nf4 base alone vs with the adapter, the adapter GGUF and PEFT files quantlab train --lora --peft writes; a rank of 0 is one line', async ({ app, page }, info) => {
  const dir = info.outputPath();
  mkdirSync(join(dir, 'peft'), { recursive: true });
  const cli = quantlabTrain(['--lora', '4', '--base-type', 'nf4', '--targets', 'q_proj,v_proj', '--steps', String(STEPS), '-o', 'cli-adapter.gguf', '--peft', 'peft'], dir);
  await app.open();
  await app.loadSample();
  const panel = await app.openTab('Training');
  await panel.getByRole('radio', { name: /QLoRA/ }).check();
  await panel.getByLabel('Rank').fill('0');
  await train(panel);
  await expect(panel.getByRole('alert')).toHaveText(/rank 0 must be a whole number >= 1/);

  await panel.getByLabel('Rank').fill('4');
  await expect(panel.getByLabel('QLoRA base type')).toHaveValue('nf4');
  await panel.getByLabel('Steps').fill(String(STEPS));
  await expect(panel.getByTestId('training-command')).toHaveText(
    `quantlab train stories260K.gguf --lora 4 --base-type nf4 --targets q_proj,v_proj --steps ${STEPS} -o ADAPTER.gguf --peft PEFT_DIR`,
  );
  // From the keyboard: Tab from the loss to the Train button, Enter runs it.
  await panel.getByLabel('Loss').focus();
  await page.keyboard.press('Tab');
  await expect(panel.getByRole('button', { name: 'Train', exact: true })).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(panel.getByRole('button', { name: 'Train', exact: true })).toBeEnabled({ timeout: 120_000 });
  await expect(panel.getByRole('alert')).toHaveCount(0);
  await expectOnWebGpu(panel);
  expect(await curvePoints(panel)).toBe(STEPS);
  const base = await heldOut(panel, 'before', 'kl');
  const adapted = await heldOut(panel, 'after', 'kl');
  expect(base).toBeGreaterThan(0);
  expect(adapted).toBeLessThan(base);
  await app.screenshot('training-qlora');
  expect(await axeViolations(page), 'the tab with a result, its chart, table and downloads').toEqual([]);

  await cli;
  const files = [
    ['Download LoRA adapter GGUF', 'cli-adapter.gguf'],
    ['Download PEFT adapter_model.safetensors', 'peft/adapter_model.safetensors'],
    ['Download PEFT adapter_config.json', 'peft/adapter_config.json'],
  ] as const;
  for (const [button, cli] of files) {
    const got = await download(page, panel.getByRole('button', { name: button }), join(dir, `page-${cli.replace('/', '-')}`));
    const want = readFileSync(join(dir, cli));
    expect(got.length, cli).toBe(want.length);
    expect(got.equals(want), cli).toBe(true);
  }
});
