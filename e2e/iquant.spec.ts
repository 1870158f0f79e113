// Issue 18 on the page: an i-quant that needs an importance matrix compares on the sample with
// the one computed in the Calibration tab, and an IQ preset exported from the Whole model tab
// with it is byte for byte `quantlab quantize --preset IQ2_XXS --imatrix` (which the unit
// tests hold to llama-quantize's bytes).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, expect, FIXTURES } from './fixtures.ts';

const ROOT = process.cwd();
const SAMPLE = join(FIXTURES, 'stories260K.gguf');

test('iq2_xxs compares with the computed imatrix; the IQ2_XXS export equals quantlab quantize --imatrix', async ({ app, page }) => {
  test.setTimeout(300_000);
  // Its own folder: test-results is shared with other runs.
  const dir = mkdtempSync(join(tmpdir(), 'quantlab-iquant-e2e-'));
  await app.open();
  await app.loadSample();

  const calibration = await app.openTab('Calibration');
  await calibration.getByRole('button', { name: 'Compute importance matrix' }).click();
  await expect(calibration.getByTestId('computed-imatrix')).toContainText('stories260K.imatrix.gguf: 35 weights', { timeout: 120_000 });

  // Compare: iq2_xxs (ggml refuses it without importance) now has numbers, marked imatrix.
  await app.openTab('Compare types');
  await app.selectTensor('blk.0.attn_q.weight');
  const chip = page.getByRole('group', { name: 'Quantization types' }).locator('button.chip', { hasText: /^iq2_xxs$/ });
  if ((await chip.getAttribute('aria-pressed')) !== 'true') await chip.click();
  const row = page.getByRole('table', { name: 'Error metrics' }).locator('tr[data-type="iq2_xxs"]');
  await expect(row.locator('td[data-metric="rmse"]')).toHaveCount(1, { timeout: 120_000 });
  await expect(row.locator('[data-imatrix]')).toHaveText('imatrix');
  expect(Number(await row.locator('td[data-metric="rmse"]').getAttribute('data-value'))).toBeGreaterThan(0);

  // Whole model: the IQ2_XXS preset with the computed matrix = the CLI with the CLI's matrix.
  const whole = await app.openTab('Whole model');
  await expect(whole.getByTestId('imatrix-status')).toContainText('stories260K.imatrix.gguf: 35 weights');
  await whole.getByLabel('Preset', { exact: true }).selectOption('IQ2_XXS');
  const saved = page.waitForEvent('download', { timeout: 120_000 });
  await whole.getByRole('button', { name: 'Download GGUF' }).click();
  const file = join(dir, 'iq2_xxs.gguf');
  await (await saved).saveAs(file);
  await expect(whole.getByRole('status').filter({ hasText: 'Wrote' })).toBeVisible();
  const cli = (...args: string[]) => execFileSync(process.execPath, [join(ROOT, 'bin/quantlab.js'), ...args], { cwd: dir, stdio: 'pipe' });
  cli('calibrate', SAMPLE, '-o', 'stories260K.imatrix.gguf');
  cli('quantize', SAMPLE, '-o', 'want.gguf', '--preset', 'IQ2_XXS', '--imatrix', 'stories260K.imatrix.gguf');
  expect(readFileSync(file).equals(readFileSync(join(dir, 'want.gguf')))).toBe(true);
  rmSync(dir, { recursive: true, force: true });
});
