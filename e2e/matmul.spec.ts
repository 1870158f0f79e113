import { test, expect } from './fixtures.ts';

test('runs y = W x on the quantized WebGPU kernels and shows the product error per type', async ({ app }) => {
  await app.open();
  await app.loadSample();
  await app.selectTensor('blk.0.ffn_up.weight');
  const panel = await app.openTab('Quantized matmul');
  await panel.getByRole('button', { name: 'Run y = W x' }).click();
  const table = panel.getByRole('table', { name: 'Matmul results' });
  // The default GGUF types of the comparison: f16, bf16, q8_0, q4_0 apply to rows of 64.
  for (const type of ['f16', 'bf16', 'q8_0', 'q4_0']) {
    const row = table.locator(`tr[data-type="${type}"]`);
    await expect(row.locator('[data-backend]')).toHaveAttribute('data-backend', 'webgpu', { timeout: 120_000 });
    const kernel = Number(await row.locator('td[data-metric="kernel"]').getAttribute('data-value'));
    expect(kernel, `${type}: kernel vs CPU product`).toBeLessThan(1e-5);
  }
  const rel = async (t: string) => Number(await table.locator(`tr[data-type="${t}"] td[data-metric="rel"]`).getAttribute('data-value'));
  // Fewer bits, more error in the product.
  expect(await rel('f16')).toBeLessThan(await rel('q8_0'));
  expect(await rel('q8_0')).toBeLessThan(await rel('q4_0'));
  await app.screenshot('matmul');
});
