import { test, expect } from './fixtures.ts';

test("the Model output tab shows llama-perplexity's KL report and the KLD distribution", async ({ app }) => {
  await app.open();
  await app.loadSample();
  const panel = await app.openTab('Model output');
  await panel.getByRole('button', { name: 'Q8_0', exact: true }).click();
  await panel.getByRole('button', { name: 'Q2_K', exact: true }).click();
  await panel.getByRole('button', { name: /Evaluate 1 preset/ }).click();
  const metrics = panel.getByRole('table', { name: 'Model output metrics' });
  await expect(metrics.locator('tr[data-preset="Q4_K_M"]')).toBeVisible({ timeout: 170_000 });
  const report = panel.getByRole('table', { name: 'KL report statistics' });
  await expect(report).toHaveAttribute('data-preset', 'Q4_K_M');
  const stat = async (label: string) => Number(await report.locator(`tr[data-statistic="${label}"] td[data-value]`).getAttribute('data-value'));
  const metric = async (m: string) => Number(await metrics.locator(`tr[data-preset="Q4_K_M"] td[data-metric="${m}"]`).getAttribute('data-value'));
  // The whole-text report is built from the same per-position figures as the table.
  expect(await stat('Mean KLD')).toBeCloseTo(await metric('kl'), 12);
  expect(await stat('Same top p')).toBe(await metric('top1'));
  expect(await stat('Mean PPL(Q)')).toBeCloseTo(await metric('ppl'), 9);
  expect(await stat('Maximum KLD')).toBeGreaterThan(await stat('99.0% KLD'));
  await expect(report.locator('tr[data-statistic]')).toHaveCount(34);
  const chart = panel.getByRole('figure', { name: 'KLD distribution' });
  await expect(chart.locator('.recharts-bar-rectangle').first()).toBeVisible();
  await chart.scrollIntoViewIfNeeded();
  await app.screenshot('model-output-kl-report');
});
