// Shared Playwright fixtures: every test fails if the page asks for anything outside its
// own origin (nothing leaves the machine), and `app` is a page object over the UI.
import { test as base, expect, type Page } from '@playwright/test';

export const FIXTURES = new URL('../../shared/fixtures/models/', import.meta.url).pathname;

export class AppPage {
  constructor(readonly page: Page) {}

  async open(hash = '') {
    await this.page.goto(`./${hash}`);
    await expect(this.page.getByRole('heading', { name: 'quantlab' })).toBeVisible();
  }

  async loadSample() {
    await this.page.getByRole('button', { name: /Try the sample/ }).click();
    await expect(this.page.getByRole('region', { name: 'Model overview' })).toBeVisible();
  }

  async loadFiles(paths: string[]) {
    await this.page.getByLabel('Model files').setInputFiles(paths);
  }

  backendBadge() {
    return this.page.getByLabel('Compute backend');
  }

  /** Clicks a tab and returns its panel. */
  async openTab(name: string) {
    await this.page.getByRole('tab', { name }).click();
    return this.page.getByRole('region', { name });
  }

  async selectTensor(name: string) {
    await this.page.getByRole('searchbox', { name: 'Search tensors' }).fill(name);
    await this.page.getByRole('region', { name: 'Tensors' }).getByRole('cell', { name, exact: true }).click();
  }

  /** The whole page, and what a 1280x800 screen shows first, for a person to look at. */
  async screenshot(name: string) {
    await this.page.screenshot({ path: `test-results/screens/${name}.png`, fullPage: true });
    await this.page.screenshot({ path: `test-results/screens/${name}-1280x800.png` });
  }
}

export const test = base.extend<{ app: AppPage; foreignRequests: string[] }>({
  foreignRequests: async ({ page, baseURL }, use) => {
    const origin = new URL(baseURL!).origin;
    const foreign: string[] = [];
    const isForeign = (url: string) => !url.startsWith(`${origin}/`) && url !== origin && !url.startsWith('data:') && !url.startsWith('blob:');
    page.on('request', (r) => {
      if (isForeign(r.url())) foreign.push(r.url());
    });
    // Requests the page's events may not show (its workers') are caught here too, and
    // stopped: nothing reaches the network even if the app tried.
    await page.context().route((url) => isForeign(url.href), async (route) => {
      const url = route.request().url();
      if (!foreign.includes(url)) foreign.push(url);
      await route.abort('blockedbyclient');
    });
    await use(foreign);
    expect(foreign, 'requests that left the page origin').toEqual([]);
  },
  app: async ({ page, foreignRequests }, use) => {
    void foreignRequests;
    await use(new AppPage(page));
  },
});

export { expect };
