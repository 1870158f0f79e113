import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SWIFTSHADER_ICD } from '../src/gpu/swiftshader.ts';
import { test, expect } from './fixtures.ts';

const ROOT = process.cwd();

test('the Calibration tab compares RTN, Q4_K (± imatrix), AWQ, GPTQ and GPTQ into Q4_K (both on WebGPU) per layer on the sample, in the worker', async ({ app }) => {
  await app.open();
  await app.loadSample();
  const panel = await app.openTab('Calibration');
  await expect(panel.getByTestId('calibration-text-name')).toHaveText('built-in stories');
  await panel.getByRole('button', { name: 'Calibrate and compare' }).click();
  const totals = panel.getByRole('table', { name: 'Calibration totals' });
  await expect(totals.locator('tr[data-method="gptq"]')).toBeVisible({ timeout: 120_000 });
  // GPTQ ran on WebGPU (the worker's device), for every layer.
  const gptqBackend = panel.getByTestId('gptq-backend');
  await expect(gptqBackend).toHaveAttribute('data-backend', 'webgpu');
  await expect(gptqBackend).toContainText(/GPTQ on WebGPU \(f32, .+\): all 35 layers/);
  const total = async (m: string) => Number(await totals.locator(`tr[data-method="${m}"] td[data-metric="total"]`).getAttribute('data-value'));
  const figures = Object.fromEntries(await Promise.all(['rtn', 'q4_K', 'q4_K_imatrix', 'awq', 'gptq', 'gptq_q4_K'].map(async (m) => [m, await total(m)] as const)));
  for (const v of Object.values(figures)) expect(Number.isFinite(v) && v > 0).toBe(true);
  expect(figures.gptq).toBeLessThan(figures.rtn);
  expect(figures.gptq_q4_K).toBeLessThan(figures.q4_K);
  // The whole model on the held-out text under each method: finite KL and perplexity.
  const modelFigures = await totals.locator('td[data-metric="kl"], td[data-metric="ppl"]').evaluateAll((tds) => tds.map((td) => Number(td.getAttribute('data-value'))));
  expect(modelFigures).toHaveLength(12);
  expect(modelFigures.every((v) => Number.isFinite(v) && v > 0)).toBe(true);
  // Every layer's figure shown is finite: 35 weights x 6 methods.
  const cells = panel.getByRole('table', { name: 'Calibration per layer' }).locator('td[data-method]');
  await expect(cells).toHaveCount(35 * 6);
  const values = await cells.evaluateAll((tds) => tds.map((td) => Number(td.getAttribute('data-value'))));
  expect(values.every((v) => Number.isFinite(v) && v > 0)).toBe(true);
  await expect(panel.getByRole('figure', { name: 'Output MSE per layer' }).locator('.recharts-bar-rectangle').first()).toBeVisible();
  await app.screenshot('calibration');
  const summary = panel.locator('p.muted', { hasText: 'Calibration:' });
  const builtIn = await summary.textContent();

  // A dropped .txt as the calibration text, and cancel through the worker.
  const story = 'The cat sat on the mat and looked at the sun. ' .repeat(60);
  await panel.getByLabel('Calibration text file').setInputFiles({ name: 'mine.txt', mimeType: 'text/plain', buffer: Buffer.from(story) });
  await expect(panel.getByTestId('calibration-text-name')).toContainText('mine.txt');
  await panel.getByRole('button', { name: 'Calibrate and compare' }).click();
  await panel.getByRole('button', { name: 'Cancel' }).click();
  await expect(panel.getByRole('button', { name: 'Calibrate and compare' })).toBeEnabled();
  await panel.getByRole('button', { name: 'Calibrate and compare' }).click();
  await expect(summary).not.toHaveText(builtIn!, { timeout: 120_000 });
  await expect(summary).toContainText(/Calibration: \d+ tokens/);
});

/** `quantlab quantize ARGS` in `cwd`; with --backend webgpu Dawn runs on SwiftShader, the page's GPU here. */
const quantlab = (args: string[], cwd = ROOT) =>
  execFileSync('node', [join(ROOT, 'bin/quantlab.js'), 'quantize', ...args], { cwd, stdio: 'pipe', env: { ...process.env, VK_ICD_FILENAMES: SWIFTSHADER_ICD } });

test('the Calibration tab downloads the GPTQ Q4_0 GGUF, GPTQ on WebGPU in the worker: the file quantlab quantize --type q4_0 --gptq --backend webgpu writes, with the built-in or a dropped text, and in act-order (--act-order)', async ({ app, page }, info) => {
  await app.open();
  await app.loadSample();
  const panel = await app.openTab('Calibration');
  const sample = join(ROOT, 'public/samples/stories260K.gguf');
  const exportOnce = async (name: string) => {
    const download = page.waitForEvent('download', { timeout: 120_000 });
    await panel.getByRole('button', { name: 'Download GPTQ Q4_0 GGUF' }).click();
    const got = info.outputPath(name);
    await (await download).saveAs(got);
    await expect(panel.getByRole('status').filter({ hasText: 'Wrote model-GPTQ-Q4_0.gguf' })).toBeVisible();
    return readFileSync(got);
  };

  const builtIn = await exportOnce('builtin.gguf');
  const [onGpu, onCpu] = [info.outputPath('cli-webgpu.gguf'), info.outputPath('cli-cpu.gguf')];
  expect(quantlab([sample, '-o', onGpu, '--type', 'q4_0', '--gptq', '--backend', 'webgpu']).toString()).toMatch(/30 of them on WebGPU/);
  quantlab([sample, '-o', onCpu, '--type', 'q4_0', '--gptq']);
  expect(builtIn.equals(readFileSync(onGpu))).toBe(true);
  // GPTQ in f32 rounds one of the file's scales to the next f16 (quantize-gptq.test.ts): so
  // the page's GPTQ ran on the GPU, not on the CPU reference.
  expect(builtIn.equals(readFileSync(onCpu))).toBe(false);

  // A dropped text: quantize.gptq.dataset is its name, as the CLI's --text with that file name.
  const dir = info.outputPath('text');
  mkdirSync(dir, { recursive: true });
  const story = 'The cat sat on the mat and looked at the sun. '.repeat(60);
  writeFileSync(join(dir, 'mine.txt'), story);
  await panel.getByLabel('Calibration text file').setInputFiles(join(dir, 'mine.txt'));
  await expect(panel.getByTestId('calibration-text-name')).toContainText('mine.txt');
  const dropped = await exportOnce('dropped.gguf');
  quantlab([sample, '-o', 'cli.gguf', '--type', 'q4_0', '--gptq', '--text', 'mine.txt', '--backend', 'webgpu'], dir);
  expect(dropped.equals(readFileSync(join(dir, 'cli.gguf')))).toBe(true);
  expect(dropped.equals(builtIn)).toBe(false);

  // Act-order (static groups) runs on the CPU: the page's file is the CLI's --act-order file.
  await panel.getByLabel('GPTQ act-order').check();
  await expect(panel.getByLabel('Calibrated export')).toContainText('in act-order, on the CPU');
  const actOrder = await exportOnce('act-order.gguf');
  quantlab([sample, '-o', 'cli-act.gguf', '--type', 'q4_0', '--gptq', '--act-order', '--text', 'mine.txt'], dir);
  expect(actOrder.equals(readFileSync(join(dir, 'cli-act.gguf')))).toBe(true);
  expect(actOrder.equals(dropped)).toBe(false);
});

test('the Calibration tab downloads the AWQ Q4_K_M GGUF quantlab quantize --preset Q4_K_M --awq --text writes; GPTQ says why stories260K has no Q4_K weight for it', async ({ app, page }, info) => {
  await app.open();
  await app.loadSample();
  const panel = await app.openTab('Calibration');
  const sample = join(ROOT, 'public/samples/stories260K.gguf');
  // A short dropped text keeps both searches (here and the CLI's) to seconds.
  const dir = info.outputPath('text');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'short.txt'), 'The cat sat on the mat and looked at the sun. '.repeat(30));
  await panel.getByLabel('Calibration text file').setInputFiles(join(dir, 'short.txt'));
  await expect(panel.getByTestId('calibration-text-name')).toContainText('short.txt');
  await panel.getByLabel('Calibration method').selectOption('AWQ');
  await panel.getByLabel('Export type').selectOption('Q4_K_M');
  const download = page.waitForEvent('download', { timeout: 180_000 });
  await panel.getByRole('button', { name: 'Download AWQ Q4_K_M GGUF' }).click();
  const got = info.outputPath('awq.gguf');
  await (await download).saveAs(got);
  await expect(panel.getByRole('status').filter({ hasText: 'Wrote model-AWQ-Q4_K_M.gguf' })).toBeVisible();
  execFileSync('node', [join(ROOT, 'bin/quantlab.js'), 'quantize', sample, '-o', 'cli-awq.gguf', '--preset', 'Q4_K_M', '--awq', '--text', 'short.txt'], { cwd: dir, stdio: 'pipe' });
  expect(readFileSync(got).equals(readFileSync(join(dir, 'cli-awq.gguf')))).toBe(true);

  // stories260K's rows (64, 172) make every Q4_K fall back: GPTQ has nothing to write, and says so.
  await panel.getByLabel('Calibration method').selectOption('GPTQ');
  await panel.getByRole('button', { name: 'Download GPTQ Q4_K_M GGUF' }).click();
  await expect(panel.getByRole('status').filter({ hasText: 'Export stopped' })).toContainText(/q4_0 or q4_K|Q4_0 or Q4_K/i);
});
