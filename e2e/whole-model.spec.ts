import { test, expect } from './fixtures.ts';

test('plans a preset for the whole sample model, with sizes across presets and error per layer', async ({ app }) => {
  await app.open();
  await app.loadSample();
  const panel = await app.openTab('Whole model');
  await panel.getByLabel('Preset', { exact: true }).selectOption('Q8_0');
  await expect(panel.getByTestId('plan-size')).toContainText('bits/weight');
  // stories260K: every 2-D weight is q8_0 except those whose rows (172) are not whole blocks.
  const plan = panel.getByRole('table', { name: 'Plan' });
  await expect(plan.locator('tr[data-tensor="blk.0.attn_q.weight"]')).toContainText('q8_0');
  await expect(plan.locator('tr[data-tensor="blk.0.attn_norm.weight"]')).toContainText('f32');
  await panel.getByRole('button', { name: 'Measure error per layer' }).click();
  await expect(panel.getByRole('columnheader', { name: 'Rel. error' })).toBeVisible({ timeout: 120_000 });
  await expect(panel.getByRole('figure', { name: 'Error per layer' })).toBeVisible();
  await app.screenshot('whole-model');
});
