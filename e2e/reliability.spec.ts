// Failures injected into the real page: the WebGPU device lost mid-job, the engine worker
// dying mid-job and mid-export, an export cancelled. Each time the job reruns or finishes on
// the CPU with the same numbers, the page says what happened, the loaded model and results
// stay, and no export is left looking complete.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import type { Locator, Page, Worker } from '@playwright/test';
import { test, expect, FIXTURES } from './fixtures.ts';

// Rows of 64 (the sample's ffn_down has rows of 172, which block-32 types do not divide).
const A = 'blk.1.ffn_up.weight';
const B = 'blk.2.ffn_gate.weight';

async function engineWorker(page: Page): Promise<Worker> {
  await expect.poll(() => page.workers().length, { timeout: 30_000 }).toBeGreaterThan(0);
  return page.workers().at(-1)!;
}

/** Shown RMSE by type, once every applicable type has its number. */
async function rmseByType(metrics: Locator): Promise<Map<string, number>> {
  await expect(metrics.locator('td[data-metric="rmse"]')).toHaveCount(8, { timeout: 120_000 });
  const out = new Map<string, number>();
  for (const row of await metrics.locator('tbody tr').all()) {
    out.set((await row.getAttribute('data-type'))!, Number(await row.locator('td[data-metric="rmse"]').getAttribute('data-value')));
  }
  return out;
}

async function expectSame(got: Map<string, number>, want: Map<string, number>) {
  expect([...got.keys()]).toEqual([...want.keys()]);
  // The codecs are bit-exact on both backends; the GPU adds its sums in f32 partials.
  for (const [type, rmse] of want) expect(got.get(type), type).toBeCloseTo(rmse, 9);
}

/** Types of the sample whose rows (64, 172 long) every type divides: all eight apply. */
async function openWithTypes(app: { open(h: string): Promise<void>; loadSample(): Promise<void> }) {
  await app.open(`#types=f16,bf16,q8_0,int8,q4_0,nf4,q5_1,iq4_nl&tensor=${A}`);
  await app.loadSample();
}

test('WebGPU device lost mid-compare: the job finishes on the CPU with the same numbers, and the page says so', async ({ app, page }) => {
  await openWithTypes(app);
  await expect(app.backendBadge()).toContainText('WebGPU');
  const metrics = page.getByRole('table', { name: 'Error metrics' });
  const before = await rmseByType(metrics);
  await expect(metrics.locator('tbody tr[data-backend="webgpu"]')).toHaveCount(8);
  await app.selectTensor(B);
  const beforeB = await rmseByType(metrics);
  await expect(metrics.locator('tbody tr[data-backend="webgpu"]')).toHaveCount(8);

  // In the worker: the device is destroyed right after the 4th queue submission from now.
  await (await engineWorker(page)).evaluate(() => {
    const g = self as unknown as { __device?: GPUDevice };
    const encoder = GPUDevice.prototype.createCommandEncoder;
    GPUDevice.prototype.createCommandEncoder = function (this: GPUDevice, ...args: [GPUCommandEncoderDescriptor?]) {
      g.__device = this;
      return encoder.apply(this, args);
    };
    const submit = GPUQueue.prototype.submit;
    let n = 0;
    GPUQueue.prototype.submit = function (this: GPUQueue, ...args: [Iterable<GPUCommandBuffer>]) {
      const r = submit.apply(this, args);
      if (++n === 4) g.__device!.destroy();
      return r;
    };
  });
  await app.selectTensor(A);
  const notice = page.getByRole('status', { name: 'Engine notice' });
  await expect(notice).toContainText('WebGPU stopped');
  await expect(app.backendBadge()).toContainText('CPU fallback: GPU device lost');
  // Lost mid-job: the steps after the loss ran on the CPU, and the numbers are the GPU's.
  await expect(metrics.locator('tbody tr[data-backend="cpu"]')).toHaveCount(8, { timeout: 120_000 });
  await expectSame(await rmseByType(metrics), before);
  // The next job runs on the CPU from the start.
  await app.selectTensor(B);
  await expect(metrics.locator('tbody tr[data-backend="cpu"]')).toHaveCount(8, { timeout: 120_000 });
  await expectSame(await rmseByType(metrics), beforeB);
});

test('engine worker dies mid-compare: restarted on the CPU, model kept, the job reruns with the same numbers', async ({ app, page }) => {
  await openWithTypes(app);
  const metrics = page.getByRole('table', { name: 'Error metrics' });
  const before = await rmseByType(metrics);
  await app.selectTensor(B);
  const beforeB = await rmseByType(metrics);

  // In the worker: the next GPU read-back never returns, and the worker stops (self.close()).
  await (await engineWorker(page)).evaluate(() => {
    GPUBuffer.prototype.mapAsync = () => {
      setTimeout(() => self.close(), 0);
      return new Promise<undefined>(() => {});
    };
  });
  await app.selectTensor(A);
  const notice = page.getByRole('status', { name: 'Engine notice' });
  await expect(notice).toContainText('The engine stopped (the engine worker stopped)');
  await expect(app.backendBadge()).toContainText('CPU fallback: engine restarted');
  await expect(metrics.locator('tbody tr[data-backend="cpu"]')).toHaveCount(8, { timeout: 120_000 });
  await expectSame(await rmseByType(metrics), before);
  // The model is still the one loaded, in the new worker too.
  await expect(page.getByRole('region', { name: 'Model overview' })).toContainText('stories260K.gguf');
  await app.selectTensor(B);
  await expect(metrics.locator('tbody tr[data-backend="cpu"]')).toHaveCount(8, { timeout: 120_000 });
  await expectSame(await rmseByType(metrics), beforeB);
});

/** A stand-in for showSaveFilePicker that records what the page does with the file. */
async function fileHook(page: Page, writeDelayMs = 0) {
  await page.addInitScript((delay) => {
    const state = { writes: 0, bytes: 0, closed: false, aborted: false };
    (window as unknown as { __quantlabTest: unknown }).__quantlabTest = {
      state,
      showSaveFilePicker: async () => ({
        createWritable: async () => ({
          write: async (c: Uint8Array) => {
            state.writes++;
            state.bytes += c.length;
            if (delay) await new Promise((r) => setTimeout(r, delay));
          },
          close: async () => void (state.closed = true),
          abort: async () => void (state.aborted = true),
        }),
      }),
    };
  }, writeDelayMs);
  return () => page.evaluate(() => (window as unknown as { __quantlabTest: { state: { writes: number; bytes: number; closed: boolean; aborted: boolean } } }).__quantlabTest.state);
}

test('engine worker dies mid-export: the file is discarded, never closed as done; the next export is whole', async ({ app, page }, info) => {
  const state = await fileHook(page);
  await app.open();
  await app.loadSample();
  const panel = await app.openTab('Whole model');
  await panel.getByLabel('Preset', { exact: true }).selectOption('Q8_0');
  await (await engineWorker(page)).evaluate(() => {
    GPUBuffer.prototype.mapAsync = () => {
      setTimeout(() => self.close(), 0);
      return new Promise<undefined>(() => {});
    };
  });
  await panel.getByRole('button', { name: 'Save GGUF to disk…' }).click();
  await expect(panel.getByRole('status').filter({ hasText: 'Export stopped' })).toContainText('the engine stopped');
  const s = await state();
  expect(s.writes).toBeGreaterThan(0); // it had begun
  expect(s.aborted).toBe(true);
  expect(s.closed).toBe(false);
  await expect(page.getByRole('status', { name: 'Engine notice' })).toContainText('restarted on the CPU');

  // The restarted engine has the model: a download now is the CLI's file, byte for byte.
  const download = page.waitForEvent('download');
  await panel.getByRole('button', { name: 'Download GGUF' }).click();
  const got = join(info.outputPath(), 'after-crash.gguf');
  await (await download).saveAs(got);
  const want = join(info.outputPath(), 'cli.gguf');
  execFileSync('node', ['bin/quantlab.js', 'quantize', join(FIXTURES, 'stories260K.gguf'), '-o', want, '--preset', 'Q8_0'], { stdio: 'pipe' });
  expect(readFileSync(got).equals(readFileSync(want))).toBe(true);
});

test('cancel mid-export: the file is discarded, never closed as done, and the page says the export stopped', async ({ app, page }) => {
  const state = await fileHook(page, 150);
  await app.open();
  await app.loadSample();
  const panel = await app.openTab('Whole model');
  await panel.getByLabel('Preset', { exact: true }).selectOption('Q8_0');
  await panel.getByRole('button', { name: 'Save GGUF to disk…' }).click();
  await expect.poll(async () => (await state()).writes, { timeout: 60_000 }).toBeGreaterThan(2);
  await panel.getByRole('status', { name: 'Export progress' }).getByRole('button', { name: 'Cancel' }).click();
  await expect(panel.getByRole('status').filter({ hasText: 'Export stopped' })).toContainText('cancelled');
  const s = await state();
  expect(s.aborted).toBe(true);
  expect(s.closed).toBe(false);
  await expect(panel.getByRole('status').filter({ hasText: 'Wrote' })).toHaveCount(0);
});

test('a model file changed on disk after it was opened: the job names the file and the byte, and the page keeps working', async ({ app, page }, info) => {
  const dir = info.outputPath('changed');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'stories260K.gguf');
  copyFileSync(join(FIXTURES, 'stories260K.gguf'), path);
  await app.open(`#types=q8_0,q4_0&tensor=${A}`);
  await app.loadFiles([path]);
  const metrics = page.getByRole('table', { name: 'Error metrics' });
  await expect(metrics.locator('td[data-metric="rmse"]')).toHaveCount(2, { timeout: 120_000 });
  truncateSync(path, 100_000);
  await app.selectTensor(B);
  const alert = page.getByRole('region', { name: 'Compare types' }).getByRole('alert');
  await expect(alert).toContainText(/stories260K\.gguf: at byte \d+: cannot read/);
  await expect(alert).toContainText('changed or moved');
  // Nothing else is lost: the model stays listed, and a fresh model loads and compares.
  await expect(page.getByRole('region', { name: 'Model overview' })).toContainText('stories260K.gguf');
  await app.loadSample();
  await app.selectTensor(A);
  await expect(metrics.locator('td[data-metric="rmse"]')).toHaveCount(2, { timeout: 120_000 });
});
