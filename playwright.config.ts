import { defineConfig } from '@playwright/test';

// Debian's Chromium with WebGPU on (docs/webgpu.md): Playwright cannot download its
// own browser here. The page must be a secure context: 127.0.0.1.
// E2E_PORT and E2E_DIST let several checkouts or builds be tested side by side.
const PORT = Number(process.env.E2E_PORT ?? 4173);
const DIST = process.env.E2E_DIST ?? 'dist';

export default defineConfig({
  testDir: 'e2e',
  timeout: 180_000,
  expect: { timeout: 60_000 },
  // Two browsers on CI's 2 cores: with one, the browser tests' ~950 CPU s were about half of
  // CI's 1814 s, mostly on one core (docs/measurements.md, "Test suite time"). Every test has
  // its own page and files, so tests of one file may run in either worker. E2E_WORKERS=1 on
  // a machine shared with other runs.
  fullyParallel: true,
  workers: Number(process.env.E2E_WORKERS ?? 2),
  retries: 0,
  outputDir: 'test-results',
  use: {
    baseURL: `http://127.0.0.1:${PORT}/`,
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--enable-unsafe-webgpu',
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    },
  },
  webServer: {
    command: `npx vite preview --host 127.0.0.1 --port ${PORT} --strictPort --outDir ${DIST}`,
    url: `http://127.0.0.1:${PORT}/`,
    reuseExistingServer: !process.env.CI,
    timeout: 60_000,
  },
});
