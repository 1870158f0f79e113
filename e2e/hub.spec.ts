// A model opened straight from the Hugging Face Hub in the page, against a local server that
// behaves as the Hub does (src/hub/testing.ts, run in this test process): the page is
// pointed at it with ?hf_endpoint= (HF_ENDPOINT). Nothing is asked of any other origin until
// the user presses Open; then the headers are read, tensors on demand, and the export
// equals the CLI's for the same hf:// reference, byte for byte.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test as base, expect } from '@playwright/test';
import { test as guarded, AppPage } from './fixtures.ts';
import { MockHub } from '../src/hub/testing.ts';

const SHARDS = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
const SHARDS_SIZE = 590280 + 585888;

let hub: MockHub;
base.beforeAll(async () => {
  hub = await MockHub.start();
});
base.afterAll(() => hub.close());
base.beforeEach(() => {
  hub.faults.length = 0;
  hub.resetCounts();
});

guarded('no request leaves the origin until the user opens a Hub model', async ({ app, page, foreignRequests }) => {
  await app.open(`?hf_endpoint=${encodeURIComponent(hub.hubUrl)}`);
  const form = page.getByRole('form', { name: 'Open from the Hugging Face Hub' });
  await form.getByLabel('Hub model').fill('test/stories-sharded');
  await form.getByText('Hub settings').click();
  await expect(form.getByLabel('Hub endpoint')).toHaveValue(hub.hubUrl);
  await app.loadSample();
  await page.waitForTimeout(500);
  // Typed, not opened: nothing was asked of the Hub (the fixture also fails the test on any).
  expect(foreignRequests).toEqual([]);
  expect(hub.requests).toEqual([]);
});

/** The page, recording every request that leaves its origin (and letting them through: this test opens a Hub model). */
const test = base.extend<{ app: AppPage; offOrigin: string[] }>({
  // The policy allows the real Hub's hosts only (privacy.spec.ts), and the local server's
  // 127.0.0.1 ports stand in for them here: the <meta> policy is bypassed, and the header
  // (which is what the engine worker, where the reads run, obeys) taken off the responses.
  bypassCSP: true,
  // Chromium asks the user before a page reaches the loopback address space (Local Network
  // Access); the real Hub is not on it, the local server is.
  permissions: ['local-network-access'],
  offOrigin: async ({ page, baseURL }, use) => {
    const origin = new URL(baseURL!).origin;
    await page.context().route((url) => url.origin === origin, async (route) => {
      const response = await route.fetch();
      const headers = { ...response.headers() };
      delete headers['content-security-policy'];
      await route.fulfill({ response, headers });
    });
    const seen: string[] = [];
    page.context().on('request', (r) => {
      if (!r.url().startsWith(`${origin}/`)) seen.push(r.url());
    });
    await use(seen);
  },
  app: async ({ page }, use) => use(new AppPage(page)),
});

test('opens a sharded safetensors model from the Hub: headers only, one tensor on demand, the CLI\'s export', async ({ app, page, offOrigin }, info) => {
  await app.open(`?hf_endpoint=${encodeURIComponent(hub.hubUrl)}`);
  const form = page.getByRole('form', { name: 'Open from the Hugging Face Hub' });
  await form.getByLabel('Hub model').fill('test/stories-sharded');
  expect(offOrigin).toEqual([]);
  await form.getByRole('button', { name: 'Open from the Hub' }).click();
  const overview = page.getByRole('region', { name: 'Model overview' });
  await expect(overview).toBeVisible();
  await expect(overview).toContainText('safetensors');
  // Only the Hub and its CDN were asked, and of the shards only their headers and the first
  // matrix (which the page compares at once: 64x64 f32, 16 KiB) were read.
  expect(offOrigin.length).toBeGreaterThan(0);
  expect(offOrigin.every((u) => u.startsWith(hub.hubUrl) || u.startsWith(hub.cdnUrl))).toBe(true);
  expect(hub.requests.some((r) => r.on === 'cdn')).toBe(true);
  await expect(page.getByRole('table', { name: 'Error metrics' }).locator('td[data-metric="rmse"]').first()).toBeVisible({ timeout: 120_000 });
  const opened = SHARDS.reduce((n, f) => n + hub.served('test/stories-sharded', f), 0);
  expect(opened / SHARDS_SIZE).toBeLessThan(0.025);
  await expect(page.getByLabel('Hub transfer')).toContainText(/Hub: [\d.]+ MiB read of [\d.]+ MiB needed/);

  // One tensor compared: its bytes, and not the rest of the shards.
  await app.selectTensor('model.layers.1.mlp.up_proj.weight');
  await expect(page.getByRole('table', { name: 'Error metrics' }).locator('td[data-metric="rmse"]').first()).toBeVisible({ timeout: 120_000 });
  // up_proj is 172x64 f32: 44032 bytes, read once.
  await expect.poll(() => SHARDS.reduce((n, f) => n + hub.served('test/stories-sharded', f), 0)).toBe(opened + 44032);

  // The export streams every tensor's range in and the GGUF out: the CLI's bytes.
  const panel = await app.openTab('Whole model');
  await panel.getByLabel('Preset', { exact: true }).selectOption('Q8_0');
  const download = page.waitForEvent('download');
  await panel.getByRole('button', { name: 'Download GGUF' }).click();
  const file = join(info.outputPath(), 'hub.gguf');
  await (await download).saveAs(file);
  const out = join(info.outputPath(), 'cli.gguf');
  // Not execFileSync: the local Hub answers from this process's event loop.
  await promisify(execFile)('node', ['bin/quantlab.js', 'quantize', 'hf://test/stories-sharded', '-o', out, '--preset', 'Q8_0'], { env: { ...process.env, HF_ENDPOINT: hub.hubUrl } });
  const [got, want] = [readFileSync(file), readFileSync(out)];
  expect(got.length).toBeGreaterThan(100_000);
  expect(got.equals(want)).toBe(true);
  await app.screenshot('hub');
});

test('a gated model asks for a token, which goes to the Hub only; a missing one says so', async ({ app, page, offOrigin }) => {
  void offOrigin;
  await app.open(`?hf_endpoint=${encodeURIComponent(hub.hubUrl)}`);
  const form = page.getByRole('form', { name: 'Open from the Hugging Face Hub' });
  await form.getByLabel('Hub model').fill('test/nothing');
  await form.getByRole('button', { name: 'Open from the Hub' }).click();
  await expect(page.getByText('hf://test/nothing: at byte 0: not found on the Hub (404): Repository not found')).toBeVisible();

  await form.getByLabel('Hub model').fill('test/gated');
  await form.getByRole('button', { name: 'Open from the Hub' }).click();
  const token = form.getByRole('group', { name: 'Hub access token' });
  await expect(token).toContainText('the Hub answered 401');
  await token.getByLabel('Access token').fill(hub.token);
  await form.getByRole('button', { name: 'Open from the Hub' }).click();
  await expect(page.getByRole('region', { name: 'Model overview' })).toContainText('GGUF');
  const authorized = hub.requests.filter((r) => r.authorization);
  expect(authorized.length).toBeGreaterThan(0);
  expect(authorized.every((r) => r.on === 'hub' && r.authorization === `Bearer ${hub.token}`)).toBe(true);
  // Kept in memory only: nothing in the page's storage holds it.
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
  expect(stored).not.toContain(hub.token);
});

test('a Hub load waiting out a 429 can be cancelled, and opened again', async ({ app, page, offOrigin }) => {
  void offOrigin;
  await app.open(`?hf_endpoint=${encodeURIComponent(hub.hubUrl)}`);
  hub.fail({ on: 'hub', path: '/api/models/test/stories-gguf/revision', fault: { kind: 'status', status: 429, retryAfter: '100' } });
  const form = page.getByRole('form', { name: 'Open from the Hugging Face Hub' });
  await form.getByLabel('Hub model').fill('test/stories-gguf');
  await form.getByRole('button', { name: 'Open from the Hub' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Opening test/stories-gguf on the Hub' })).toBeVisible();
  await expect.poll(() => hub.requests.length).toBe(1);
  await form.getByRole('button', { name: 'Cancel' }).click();
  await expect(form.getByRole('button', { name: 'Cancel' })).toBeHidden({ timeout: 5_000 });
  await expect(page.getByRole('alert')).toBeHidden();
  await expect(page.getByRole('region', { name: 'Model overview' })).toBeHidden();
  await form.getByRole('button', { name: 'Open from the Hub' }).click();
  await expect(page.getByRole('region', { name: 'Model overview' })).toContainText('GGUF');
});

/** Requests to https://huggingface.co and https://cdn-lfs.hf.co are answered by the local Hub and CDN. */
async function playTheRealHub(page: import('@playwright/test').Page) {
  const hosts = new Map([
    ['https://huggingface.co', hub.hubUrl],
    ['https://cdn-lfs.hf.co', hub.cdnUrl],
  ]);
  hub.publicHubUrl = 'https://huggingface.co';
  await page.context().route((url) => hosts.has(url.origin), async (route) => {
    const url = new URL(route.request().url());
    const response = await route.fetch({ url: `${hosts.get(url.origin)}${url.pathname}${url.search}`, maxRedirects: 0 });
    await route.fulfill({ response });
  });
}

guarded.describe("under the page's own Content-Security-Policy", () => {
  guarded.afterEach(() => {
    hub.publicHubUrl = hub.hubUrl;
    hub.lfsMinBytes = 10_000;
  });

  // The fixture's guard would stop (and fail on) the Hub's hosts: this test lists what went out itself.
  base('the default Hub is reached from the engine worker, its CDN allowed, other hosts refused', async ({ page }) => {
    await playTheRealHub(page);
    // Playwright does not route a request that a fulfilled redirect leads to, so here the
    // Hub serves the file itself (as it does small, non-LFS files); the CDN is asked directly below.
    hub.lfsMinBytes = Infinity;
    const app = new AppPage(page);
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/.test(m.text())) violations.push(m.text());
    });
    const offOrigin: string[] = [];
    page.context().on('request', (r) => {
      if (!r.url().startsWith('http://127.0.0.1')) offOrigin.push(new URL(r.url()).origin);
    });
    await app.open();
    const form = page.getByRole('form', { name: 'Open from the Hugging Face Hub' });
    await form.getByText('Hub settings').click();
    await expect(form.getByLabel('Hub endpoint')).toHaveValue('https://huggingface.co');
    await form.getByLabel('Hub model').fill('https://huggingface.co/test/stories-gguf');
    await form.getByRole('button', { name: 'Open from the Hub' }).click();
    await expect(page.getByRole('region', { name: 'Model overview' })).toContainText('GGUF');
    expect([...new Set(offOrigin)]).toEqual(['https://huggingface.co']);
    expect(violations).toEqual([]);
    // The engine worker, which obeys the header's policy, may ask the CDN, and nothing else.
    const worker = page.workers()[0];
    const outcomes = await worker.evaluate(async () => {
      const seen: string[] = [];
      self.addEventListener('securitypolicyviolation', (e) => seen.push((e as SecurityPolicyViolationEvent).blockedURI));
      const cdn = await fetch('https://cdn-lfs.hf.co/cdn/probe').then((r) => r.status, (e: Error) => e.name);
      const other = await fetch('https://example.com/collect').then((r) => r.status, (e: Error) => e.name);
      await new Promise((r) => setTimeout(r, 100));
      return { cdn, other, seen };
    });
    expect(outcomes).toEqual({ cdn: 403, other: 'TypeError', seen: ['https://example.com/collect'] });
  });
});
