// The store owns every job's result, so a tab keeps what it computed when the user looks at
// another tab and comes back: the same numbers, without computing them again.
import type { Locator } from '@playwright/test';
import { test, expect } from './fixtures.ts';

// Rows of 64: every type of the comparison applies.
const TENSOR = 'blk.1.ffn_up.weight';
const TABS = ['Compare types', 'Quantized matmul', 'Whole model', 'Model output', 'Budget', 'Calibration'];

/** The figures a table shows (each cell's exact data-value), in order. */
const figures = (table: Locator) => table.locator('td[data-value]').evaluateAll((tds) => tds.map((td) => td.getAttribute('data-value')));

test('results stay when the user switches tabs and back: a comparison, a model output evaluation, a calibration comparison, a matmul, the error per layer', async ({ app, page }) => {
  test.setTimeout(600_000);
  await app.open(`#types=q8_0,q4_0&tensor=${TENSOR}`);
  await app.loadSample();

  // Compare types: runs on its own for the selected tensor.
  const metrics = page.getByRole('table', { name: 'Error metrics' });
  await expect(metrics.locator('td[data-metric="rmse"]')).toHaveCount(2, { timeout: 120_000 });
  const compare = await figures(metrics);

  // Model output: one preset, to keep it short.
  let panel = await app.openTab('Model output');
  for (const preset of ['Q4_K_M', 'Q2_K']) await panel.getByRole('button', { name: preset, exact: true }).click();
  await panel.getByRole('button', { name: 'Evaluate 1 preset' }).click();
  const evalTable = panel.getByRole('table', { name: 'Model output metrics' });
  await expect(evalTable.locator('tr[data-preset="Q8_0"] td[data-metric="kl"]')).toBeVisible({ timeout: 170_000 });
  const evaluation = await figures(evalTable);
  const greedy = await panel.getByLabel('Greedy continuations').textContent();

  // Calibration: the six methods per layer.
  panel = await app.openTab('Calibration');
  await panel.getByRole('button', { name: 'Calibrate and compare' }).click();
  const totals = panel.getByRole('table', { name: 'Calibration totals' });
  await expect(totals.locator('tr[data-method="gptq"]')).toBeVisible({ timeout: 170_000 });
  const calibration = [...(await figures(totals)), ...(await figures(panel.getByRole('table', { name: 'Calibration per layer' })))];

  // Quantized matmul and the Whole model tab's error per layer.
  panel = await app.openTab('Quantized matmul');
  await panel.getByRole('button', { name: 'Run y = W x' }).click();
  const matmulTable = panel.getByRole('table', { name: 'Matmul results' });
  await expect(matmulTable.locator('td[data-metric="rel"]')).toHaveCount(2, { timeout: 120_000 });
  const matmul = await figures(matmulTable);
  panel = await app.openTab('Whole model');
  await panel.getByLabel('Preset', { exact: true }).selectOption('Q8_0');
  await panel.getByRole('button', { name: 'Measure error per layer' }).click();
  await expect(panel.getByRole('columnheader', { name: 'Rel. error' })).toBeVisible({ timeout: 120_000 });
  const planTable = panel.getByRole('table', { name: 'Plan' });
  // Bytes and relative error of each tensor.
  const perTensor = await planTable.locator('tbody td.num').allTextContents();
  expect(perTensor.length).toBe(2 * (await planTable.locator('tbody tr').count()));

  // Every tab, then each result again: nothing runs, nothing is lost.
  for (const tab of TABS) await app.openTab(tab);

  await app.openTab('Compare types');
  await expect(metrics.locator('td[data-metric="rmse"]')).toHaveCount(2);
  expect(await figures(metrics)).toEqual(compare);
  // It was not computed again: no progress line came back.
  await expect(page.getByRole('region', { name: 'Compare types' }).getByRole('status')).toHaveCount(0);

  panel = await app.openTab('Model output');
  expect(await figures(evalTable)).toEqual(evaluation);
  await expect(panel.getByLabel('Greedy continuations')).toHaveText(greedy!);
  await expect(panel.getByRole('button', { name: 'Evaluate 1 preset' })).toBeEnabled();

  panel = await app.openTab('Calibration');
  expect([...(await figures(totals)), ...(await figures(panel.getByRole('table', { name: 'Calibration per layer' })))]).toEqual(calibration);

  await app.openTab('Quantized matmul');
  expect(await figures(matmulTable)).toEqual(matmul);

  panel = await app.openTab('Whole model');
  await expect(panel.getByLabel('Preset', { exact: true })).toHaveValue('Q8_0');
  await expect(panel.getByRole('columnheader', { name: 'Rel. error' })).toBeVisible();
  expect(await planTable.locator('tbody td.num').allTextContents()).toEqual(perTensor);
  await app.screenshot('tabs-kept');
});
