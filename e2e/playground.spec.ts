import { execFileSync } from 'node:child_process';
import { test, expect, FIXTURES } from './fixtures.ts';

test('loads the sample and compares four or more types on WebGPU, matching the CLI', async ({ app, page }) => {
  await app.open();
  await expect(app.backendBadge()).toContainText('WebGPU', { timeout: 60_000 });
  await app.loadSample();
  const overview = page.getByRole('region', { name: 'Model overview' });
  await expect(overview).toContainText('llama');
  await expect(overview).toContainText('GGUF v3');
  await expect(page.getByRole('region', { name: 'Tensors' }).getByRole('row')).toHaveCount(49);
  await app.screenshot('overview');

  const tensor = 'blk.0.attn_q.weight';
  await app.selectTensor(tensor);
  const metrics = page.getByRole('table', { name: 'Error metrics' });
  await expect(metrics.locator('tbody tr')).toHaveCount(9);
  // Rows of 64: the three K-quants (blocks of 256) are compared on rows zero-padded to 256, and say so.
  await expect(metrics.locator('td[data-metric="rmse"]')).toHaveCount(9, { timeout: 120_000 });
  for (const type of ['q6_K', 'q4_K', 'q2_K']) await expect(metrics.locator(`tr[data-type="${type}"] .badge`)).toHaveText('padded');
  await app.screenshot('compare');
  // WebGPU did the work for every type: no silent CPU fallback.
  await expect(metrics.locator('tbody tr[data-backend="webgpu"]')).toHaveCount(9);

  // The numbers shown are the engine's: equal to the CLI's `compare --pad --json` on the same tensor.
  const cli = JSON.parse(
    execFileSync('node', ['bin/quantlab.js', 'compare', `${FIXTURES}/stories260K.gguf`, '--tensor', tensor, '--types', 'f16,bf16,q8_0,q6_K,int8,q4_0,q4_K,nf4,q2_K', '--pad', '--json', '--backend', 'webgpu'], { encoding: 'utf8' }),
  ) as { results: { type: string; rmse: number; padded?: unknown; error?: string }[] };
  expect(cli.results.filter((r) => r.padded).map((r) => r.type)).toEqual(['q6_K', 'q4_K', 'q2_K']);
  for (const r of cli.results) {
    const row = metrics.locator(`tr[data-type="${r.type}"]`);
    expect(r.error, r.type).toBeUndefined();
    const shown = Number(await row.locator('td[data-metric="rmse"]').getAttribute('data-value'));
    expect(shown, r.type).toBeCloseTo(r.rmse, 12);
  }
});

test('the selected tensor, types and preset live in the URL hash and come back on reload', async ({ app, page }) => {
  await app.open('#types=q8_0,q4_0,nf4,int4_g32_asym&preset=Q5_K_M&tensor=blk.3.ffn_gate.weight');
  await app.loadSample();
  const metrics = page.getByRole('table', { name: 'Error metrics' });
  await expect(page.getByRole('region', { name: 'Compare types' })).toContainText('blk.3.ffn_gate.weight');
  await expect(metrics.locator('tbody tr')).toHaveCount(4, { timeout: 120_000 });
  await expect(metrics.locator('tr[data-type="int4_g32_asym"] td[data-metric="rmse"]')).toBeVisible({ timeout: 120_000 });
  await page.getByRole('button', { name: 'fp8_e4m3', exact: true }).click();
  await expect(page).toHaveURL(/types=q8_0%2Cq4_0%2Cnf4%2Cint4_g32_asym%2Cfp8_e4m3/);
  await page.getByRole('tab', { name: 'Whole model' }).click();
  await expect(page.getByLabel('Preset', { exact: true })).toHaveValue('Q5_K_M');
});
