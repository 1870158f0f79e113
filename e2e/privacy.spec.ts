// Nothing leaves the machine: the Content-Security-Policy allows no remote script, and no
// connection but to the Hugging Face Hub (only when the user opens a Hub model: hub.spec.ts),
// in the page (its <meta>) and in the engine worker (the header, which is what a worker
// obeys); a real session makes no request off the origin (the fixture fails any test that
// does, and stops such requests before they reach the network).
import { test, expect } from './fixtures.ts';
import { CONTENT_SECURITY_POLICY, HUB_CONNECT_SOURCES } from '../vite.config.ts';

/** directive -> sources */
function parsePolicy(policy: string): Map<string, string[]> {
  return new Map(
    policy.split(';').map((d) => d.trim()).filter(Boolean).map((d) => {
      const [name, ...sources] = d.split(/\s+/);
      return [name, sources] as const;
    }),
  );
}

test('the policy allows scripts and workers from this origin only, connections to it and the Hub only, in the page and the worker', async ({ app, page }) => {
  const response = await page.goto('./');
  const header = response!.headers()['content-security-policy'];
  expect(header).toBe(CONTENT_SECURITY_POLICY);
  const meta = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  expect(meta).toBe(CONTENT_SECURITY_POLICY);
  const policy = parsePolicy(CONTENT_SECURITY_POLICY);
  const local = new Set(["'self'", "'none'", 'blob:', 'data:', "'wasm-unsafe-eval'", "'unsafe-inline'"]);
  for (const directive of ['default-src', 'script-src', 'worker-src']) {
    expect(policy.get(directive), directive).toBeDefined();
    for (const source of policy.get(directive)!) expect(local.has(source), `${directive} ${source}`).toBe(true);
  }
  // Connections: this origin, and the Hugging Face Hub with its download hosts (docs/hub.md),
  // which the page contacts only when the user opens a Hub model (hub.spec.ts).
  expect(policy.get('connect-src')).toEqual(["'self'", 'blob:', 'data:', ...HUB_CONNECT_SOURCES]);
  expect(HUB_CONNECT_SOURCES.every((s) => /^https:\/\/([a-z0-9-]+\.)*(huggingface\.co|hf\.co)$/.test(s))).toBe(true);
  // 'unsafe-inline' only for styles (React's style attributes), never for scripts.
  expect(policy.get('script-src')).not.toContain("'unsafe-inline'");
  await app.open();

  // The browser enforces it: a remote fetch is refused before it is sent, in the page...
  const fromPage = await page.evaluate(async () => {
    const violations: string[] = [];
    document.addEventListener('securitypolicyviolation', (e) => violations.push(`${e.violatedDirective} ${e.blockedURI}`));
    const outcome = await fetch('https://example.com/collect').then(() => 'sent', (e: Error) => `refused: ${e.name}`);
    await new Promise((r) => setTimeout(r, 100));
    return { outcome, violations };
  });
  expect(fromPage.outcome).toBe('refused: TypeError');
  // Reported once per policy in force: the header's and the <meta>'s.
  expect(fromPage.violations).toEqual(['connect-src https://example.com/collect', 'connect-src https://example.com/collect']);
  // ...and in the engine worker, which is governed by the header.
  await expect.poll(() => page.workers().length).toBeGreaterThan(0);
  const fromWorker = await page.workers()[0].evaluate(async () => {
    const violations: string[] = [];
    self.addEventListener('securitypolicyviolation', (e) => violations.push(`${(e as SecurityPolicyViolationEvent).violatedDirective} ${(e as SecurityPolicyViolationEvent).blockedURI}`));
    const outcome = await fetch('https://example.com/collect').then(() => 'sent', (e: Error) => `refused: ${e.name}`);
    await new Promise((r) => setTimeout(r, 100));
    return { outcome, violations };
  });
  expect(fromWorker.outcome).toBe('refused: TypeError');
  expect(fromWorker.violations).toContain('connect-src https://example.com/collect');
});

test('a whole session (sample, compare, plan, export) asks for nothing off the origin', async ({ app, page, foreignRequests }) => {
  await app.open();
  await app.loadSample();
  await expect(page.getByRole('table', { name: 'Error metrics' }).locator('td[data-metric="rmse"]').first()).toBeVisible({ timeout: 120_000 });
  const panel = await app.openTab('Whole model');
  await panel.getByLabel('Preset', { exact: true }).selectOption('Q4_0');
  const download = page.waitForEvent('download');
  await panel.getByRole('button', { name: 'Download GGUF' }).click();
  await download;
  // The guard sees requests: a remote one made here would be recorded (and stopped).
  expect(foreignRequests).toEqual([]);
  const seen: string[] = [];
  page.on('request', (r) => seen.push(r.url()));
  await page.evaluate(() => fetch('./samples/stories260K.gguf', { method: 'HEAD' }));
  expect(seen.some((u) => u.endsWith('/samples/stories260K.gguf'))).toBe(true);
});
