import { test, expect } from './fixtures.ts';

test('the Model output panel scores presets against F32 on the sample', async ({ app }) => {
  await app.open();
  await app.loadSample();
  const panel = await app.openTab('Model output');
  await panel.getByRole('button', { name: /Evaluate 3 presets/ }).click();
  const table = panel.getByRole('table', { name: 'Model output metrics' });
  await expect(table.locator('tr[data-preset="Q2_K"]')).toBeVisible({ timeout: 170_000 });
  const value = async (preset: string, metric: string) =>
    Number(await table.locator(`tr[data-preset="${preset}"] td[data-metric="${metric}"]`).getAttribute('data-value'));
  // KL grows as bits fall; agreement falls.
  const kl = [await value('Q8_0', 'kl'), await value('Q4_K_M', 'kl'), await value('Q2_K', 'kl')];
  expect(kl[0]).toBeGreaterThan(0);
  expect(kl[0]).toBeLessThan(kl[1]);
  expect(kl[1]).toBeLessThan(kl[2]);
  expect(await value('Q8_0', 'top1')).toBeGreaterThan(0.9);
  expect(await value('Q8_0', 'ppl')).toBeLessThan(await value('Q2_K', 'ppl'));
  // Every matrix product of every model ran on the quantized WebGPU kernels.
  await expect(panel.getByTestId('eval-backend')).toHaveAttribute('data-backend', 'webgpu');
  await expect(panel.getByTestId('eval-backend')).not.toContainText('on the CPU');
  // The F32 model reproduces the known story.
  await expect(panel.getByLabel('Greedy continuations')).toContainText('there was a little girl named Lily');
  await app.screenshot('model-output');
});
