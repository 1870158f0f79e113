import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, expect, FIXTURES } from './fixtures.ts';

const STORIES = join(FIXTURES, 'stories260K.gguf');

test('the Budget tab plans the sample at the size of Q4_K_M: fits, measures below the preset, exports the file quantlab quantize --plan writes', async ({ app, page }, info) => {
  await app.open();
  await app.loadSample();
  const panel = await app.openTab('Budget');
  // Cancel stops the scan: no result, the reason shown, and it can start again.
  await panel.getByRole('button', { name: 'Scan sensitivity' }).click();
  const progress = panel.getByLabel('Budget progress');
  await expect(progress.locator('progress')).toHaveAttribute('value', /^[1-9]/);
  await progress.getByRole('button', { name: 'Cancel' }).click();
  await expect(panel.getByRole('alert')).toContainText('cancelled');
  await expect(panel.getByTestId('budget-scan')).toHaveCount(0);
  await panel.getByRole('button', { name: 'Scan sensitivity' }).click();
  await expect(panel.getByLabel('Budget progress')).toBeVisible();
  await expect(panel.getByTestId('budget-scan')).toHaveAttribute('data-kind', 'kl', { timeout: 170_000 });
  await panel.getByRole('button', { name: 'Size of Q4_K_M' }).click();
  const table = panel.getByRole('table', { name: 'Plan and presets' });
  await expect(table.locator('tr[data-row="plan"]')).toBeVisible({ timeout: 60_000 });
  const value = async (row: string, metric: string) =>
    Number(await table.locator(`tr[data-row="${row}"] td[data-metric="${metric}"]`).getAttribute('data-value'));
  const presetBytes = await value('Q4_K_M', 'bytes');
  const planBytes = await value('plan', 'bytes');
  expect(planBytes).toBeLessThanOrEqual(presetBytes);
  expect(planBytes).toBeGreaterThan(presetBytes * 0.95);
  const [planKl, presetKl] = [await value('plan', 'kl'), await value('Q4_K_M', 'kl')];
  expect(planKl).toBeGreaterThan(0);
  expect(planKl).toBeLessThan(presetKl);
  // Output, token_embd and 5 layers, for the plan and each of the nearest presets (Q4_K_M among them).
  const nearest = await table.locator('tr.on').count();
  expect(nearest).toBeGreaterThanOrEqual(1);
  await expect(panel.getByLabel('Bits per layer').locator('.recharts-bar-rectangle')).toHaveCount(7 * (1 + nearest));
  await expect(panel.getByLabel('llama-quantize command')).toContainText("--tensor-type '^(?:");

  // The plan JSON and the GGUF, as downloaded.
  const planDownload = page.waitForEvent('download');
  await panel.getByRole('button', { name: 'Download plan JSON' }).click();
  const planFile = join(info.outputPath(), 'plan.json');
  await (await planDownload).saveAs(planFile);
  const plan = JSON.parse(readFileSync(planFile, 'utf8'));
  expect(plan.bytes).toBe(planBytes);
  const ggufDownload = page.waitForEvent('download');
  await panel.getByRole('button', { name: 'Download GGUF' }).click();
  const ggufFile = join(info.outputPath(), 'plan.gguf');
  expect((await ggufDownload).suggestedFilename()).toBe('stories260K-budget.gguf');
  await (await ggufDownload).saveAs(ggufFile);
  const got = readFileSync(ggufFile);
  expect(got.length).toBe(planBytes);
  const cliOut = join(info.outputPath(), 'cli.gguf');
  execFileSync('node', ['bin/quantlab.js', 'quantize', STORIES, '-o', cliOut, '--plan', planFile], { stdio: 'pipe' });
  expect(got.equals(readFileSync(cliOut))).toBe(true);

  await app.screenshot('budget');
  // A budget below the smallest file is refused with that size.
  await panel.getByLabel('Target value').fill('1KB');
  await panel.getByRole('button', { name: 'Plan', exact: true }).click();
  await expect(panel.getByRole('alert')).toContainText(/a 1000-byte file is below the smallest possible, \d+ bytes/);
  await panel.getByLabel('Target value').fill('300 kb');
  await panel.getByRole('button', { name: 'Plan', exact: true }).click();
  await expect(table.locator('tr[data-row="plan"]')).toBeVisible({ timeout: 60_000 });
  expect(await value('plan', 'bytes')).toBeLessThanOrEqual(300_000);
  expect(await value('plan', 'bytes')).toBeGreaterThan(290_000);
});
