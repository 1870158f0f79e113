import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildLegacyImatrix } from '../src/testing/imatrix-file.ts';
import { test, expect, FIXTURES } from './fixtures.ts';

const ROOT = process.cwd();
const SAMPLE = join(FIXTURES, 'stories260K.gguf');

test('an importance matrix computed in the Calibration tab downloads as quantlab calibrate writes it, and the export quantizes with it as quantlab quantize --imatrix', async ({ app, page }, info) => {
  const dir = info.outputPath('cli');
  mkdirSync(dir, { recursive: true });
  await app.open();
  await app.loadSample();

  // Computed in the worker over the built-in text: the CLI's file, byte for byte.
  const calibration = await app.openTab('Calibration');
  await calibration.getByRole('button', { name: 'Compute importance matrix' }).click();
  await expect(calibration.getByTestId('computed-imatrix')).toContainText('stories260K.imatrix.gguf: 35 weights', { timeout: 120_000 });
  const download = page.waitForEvent('download');
  await calibration.getByRole('button', { name: 'Download imatrix GGUF' }).click();
  const computed = info.outputPath('computed.imatrix.gguf');
  await (await download).saveAs(computed);
  execFileSync('node', [join(ROOT, 'bin/quantlab.js'), 'calibrate', SAMPLE, '-o', join(dir, 'stories260K.imatrix.gguf')], { stdio: 'pipe' });
  expect(readFileSync(computed).equals(readFileSync(join(dir, 'stories260K.imatrix.gguf')))).toBe(true);

  // The Whole model tab's export uses it: the bytes of quantlab quantize --imatrix (which the
  // unit tests hold to llama-quantize's), and not those of the export without it.
  const whole = await app.openTab('Whole model');
  await expect(whole.getByTestId('imatrix-status')).toContainText('stories260K.imatrix.gguf: 35 weights');
  await whole.getByLabel('Preset', { exact: true }).selectOption('Q4_K_M');
  const exportOnce = async (name: string) => {
    const saved = page.waitForEvent('download', { timeout: 120_000 });
    await whole.getByRole('button', { name: 'Download GGUF' }).click();
    const file = info.outputPath(name);
    await (await saved).saveAs(file);
    await expect(whole.getByRole('status').filter({ hasText: 'Wrote' })).toBeVisible();
    return readFileSync(file);
  };
  const withImatrix = await exportOnce('with-imatrix.gguf');
  execFileSync('node', [join(ROOT, 'bin/quantlab.js'), 'quantize', SAMPLE, '-o', 'want.gguf', '--preset', 'Q4_K_M', '--imatrix', 'stories260K.imatrix.gguf'], { cwd: dir, stdio: 'pipe' });
  expect(withImatrix.equals(readFileSync(join(dir, 'want.gguf')))).toBe(true);

  // A file that does not fit the model is refused with its reason; the matrix in use stays.
  const wrong = join(dir, 'other-model.imatrix.dat');
  writeFileSync(wrong, buildLegacyImatrix([{ name: 'blk.0.attn_q.weight', values: new Float32Array(100).fill(1), ncall: 1 }], 1, 'other.txt'));
  await whole.getByLabel('Importance matrix file').setInputFiles(wrong);
  await expect(whole.getByRole('alert')).toContainText('imatrix size 100 is different from tensor size 64 for blk.0.attn_q.weight');
  await expect(whole.getByTestId('imatrix-status')).toContainText('stories260K.imatrix.gguf');
  const truncated = join(dir, 'truncated.imatrix.gguf');
  writeFileSync(truncated, readFileSync(computed).subarray(0, 200));
  await whole.getByLabel('Importance matrix file').setInputFiles(truncated);
  await expect(whole.getByRole('alert')).toContainText('truncated.imatrix.gguf');
  await expect(whole.getByTestId('imatrix-status')).toContainText('stories260K.imatrix.gguf');

  // A file given here (the CLI's, by name): used as given; then none, as llama-quantize without --imatrix.
  await whole.getByLabel('Importance matrix file').setInputFiles(join(dir, 'stories260K.imatrix.gguf'));
  await expect(whole.getByTestId('imatrix-status')).not.toContainText('computed here');
  expect((await exportOnce('given.gguf')).equals(withImatrix)).toBe(true);
  await whole.getByRole('button', { name: 'Export without it' }).click();
  await expect(whole.getByTestId('imatrix-status')).toContainText('none');
  const without = await exportOnce('without.gguf');
  execFileSync('node', [join(ROOT, 'bin/quantlab.js'), 'quantize', SAMPLE, '-o', 'plain.gguf', '--preset', 'Q4_K_M'], { cwd: dir, stdio: 'pipe' });
  expect(without.equals(readFileSync(join(dir, 'plain.gguf')))).toBe(true);
  expect(without.equals(withImatrix)).toBe(false);
});
