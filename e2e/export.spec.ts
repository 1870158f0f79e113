import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, expect, FIXTURES } from './fixtures.ts';

/** What `quantlab quantize` writes for the sample with this preset. */
function cliExport(preset: string, dir: string): Buffer {
  const out = join(dir, `cli-${preset}.gguf`);
  execFileSync('node', ['bin/quantlab.js', 'quantize', join(FIXTURES, 'stories260K.gguf'), '-o', out, '--preset', preset], { stdio: 'pipe' });
  return readFileSync(out);
}

test('Download GGUF streams the same bytes as quantlab quantize (Q4_K_M)', async ({ app, page }, info) => {
  await app.open();
  await app.loadSample();
  const panel = await app.openTab('Whole model');
  await panel.getByLabel('Preset', { exact: true }).selectOption('Q4_K_M');
  const download = page.waitForEvent('download');
  await panel.getByRole('button', { name: 'Download GGUF' }).click();
  const file = join(info.outputPath(), 'download.gguf');
  await (await download).saveAs(file);
  const got = readFileSync(file);
  await expect(panel.getByRole('status').filter({ hasText: 'Wrote' })).toContainText(`${(got.length / 1024).toFixed(0)} KiB`);
  const want = cliExport('Q4_K_M', info.outputPath());
  expect(got.length).toBe(want.length);
  expect(got.equals(want)).toBe(true);
  await app.screenshot('export');
});

test('Save GGUF to disk writes through the File System Access API (test hook) the same bytes', async ({ app, page }, info) => {
  // A stand-in for showSaveFilePicker: the writable stream collects the chunks in the page.
  await page.addInitScript(() => {
    const chunks: number[][] = [];
    (window as unknown as { __quantlabTest: unknown }).__quantlabTest = {
      chunks,
      showSaveFilePicker: async () => ({
        createWritable: async () => ({
          write: async (c: Uint8Array) => void chunks.push(Array.from(c)),
          close: async () => void ((window as unknown as { __saved: boolean }).__saved = true),
          abort: async () => void (chunks.length = 0),
        }),
      }),
    };
  });
  await app.open();
  await app.loadSample();
  const panel = await app.openTab('Whole model');
  await panel.getByLabel('Preset', { exact: true }).selectOption('Q8_0');
  await panel.getByRole('button', { name: 'Save GGUF to disk…' }).click();
  await page.waitForFunction(() => (window as unknown as { __saved?: boolean }).__saved === true, undefined, { timeout: 120_000 });
  const bytes = Buffer.from(
    await page.evaluate(() => (window as unknown as { __quantlabTest: { chunks: number[][] } }).__quantlabTest.chunks.flat()),
  );
  expect(bytes.equals(cliExport('Q8_0', info.outputPath()))).toBe(true);
});
