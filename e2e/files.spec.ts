import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, expect, FIXTURES } from './fixtures.ts';

test('loads the sharded safetensors model and exports it as the GGUF quantlab quantize writes', async ({ app, page }, info) => {
  await app.open();
  const dir = join(FIXTURES, 'stories260K-sharded');
  const files = [
    join(dir, 'model-00001-of-00002.safetensors'),
    join(dir, 'model-00002-of-00002.safetensors'),
    join(dir, 'model.safetensors.index.json'),
    join(FIXTURES, 'stories260K.config.json'),
    join(FIXTURES, 'tok512.model'),
  ];
  await app.loadFiles(files);
  const overview = page.getByRole('region', { name: 'Model overview' });
  await expect(overview).toContainText('safetensors');
  await expect(overview).toContainText('llama');
  await expect(overview).toContainText('model-00002-of-00002.safetensors');
  const tensors = page.getByRole('region', { name: 'Tensors' });
  await expect(tensors.getByRole('cell', { name: 'model.layers.4.mlp.down_proj.weight', exact: true })).toBeVisible();
  await app.screenshot('sharded');

  // Whole model: llama.cpp's plan under GGUF names, and a download equal to the CLI's file.
  const panel = await app.openTab('Whole model');
  await panel.getByLabel('Preset', { exact: true }).selectOption('Q8_0');
  await expect(panel.getByRole('table', { name: 'Plan' }).locator('tr[data-tensor="blk.4.ffn_down.weight"]')).toBeVisible();
  const download = page.waitForEvent('download');
  await panel.getByRole('button', { name: 'Download GGUF' }).click();
  const got = join(info.outputPath(), 'download.gguf');
  await (await download).saveAs(got);
  const want = join(info.outputPath(), 'cli.gguf');
  execFileSync('node', ['bin/quantlab.js', 'quantize', ...files, '-o', want, '--preset', 'Q8_0'], { stdio: 'pipe' });
  expect(readFileSync(got).equals(readFileSync(want))).toBe(true);
});

test('a truncated file shows what is wrong and where, and the loaded model stays', async ({ app, page }, info) => {
  await app.open();
  await app.loadSample();
  const overview = page.getByRole('region', { name: 'Model overview' });
  await expect(overview).toContainText('stories260K.gguf');

  const dir = info.outputPath('bad');
  mkdirSync(dir, { recursive: true });
  const truncated = join(dir, 'truncated.gguf');
  writeFileSync(truncated, readFileSync(join(FIXTURES, 'stories260K.gguf')).subarray(0, 5000));
  await app.loadFiles([truncated]);

  const alert = page.getByRole('alert');
  await expect(alert).toContainText('truncated.gguf');
  await expect(alert).toContainText(/byte \d+/);
  // The sample is still loaded and usable.
  await expect(overview).toContainText('stories260K.gguf');
  await app.selectTensor('blk.1.attn_k.weight');
  await expect(page.getByRole('table', { name: 'Error metrics' }).locator('td[data-metric="rmse"]').first()).toBeVisible({ timeout: 120_000 });
  await app.screenshot('bad-file');
});
