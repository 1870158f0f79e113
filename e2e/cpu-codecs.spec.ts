// The browser's CPU path runs the WebAssembly fast codecs: the engine worker installs them
// before a model loads, and its status says which CPU codecs run (the overview shows it).
import { test, expect } from './fixtures.ts';

test('the engine reports the WebAssembly codecs as its CPU codecs once the sample is loaded', async ({ app, page }) => {
  await app.open();
  await app.loadSample();
  const overview = page.getByRole('region', { name: 'Model overview' });
  await expect(overview.getByTestId('cpu-codecs')).toHaveText('WebAssembly (fast)', { timeout: 60_000 });
});
