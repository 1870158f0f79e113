// Issue 23, take-away on every tab: on the sample, each tab's job is run, one chart's SVG is
// downloaded (its bars / lines / points and its caption in the file) and each table's CSV is
// downloaded (one line per row, every figure the table shows equal to the CSV's, at full precision).
import { readFileSync } from 'node:fs';
import type { Locator, Page } from '@playwright/test';
import { test, expect } from './fixtures.ts';

// Rows of 64: every type of the comparison applies (as e2e/tabs.spec.ts).
const TENSOR = 'blk.1.ffn_up.weight';

/** RFC 4180 rows: quoted cells may hold commas, doubled quotes. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  const endCell = () => {
    row.push(cell);
    cell = '';
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') endCell();
    else if (c === '\r' && text[i + 1] === '\n') {
      endCell();
      rows.push(row);
      row = [];
      i++;
    } else cell += c;
  }
  if (cell || row.length) {
    endCell();
    rows.push(row);
  }
  return rows;
}

/** Clicks a download button and returns the file's text. */
async function download(page: Page, button: string): Promise<string> {
  const pending = page.waitForEvent('download');
  await page.getByRole('button', { name: button, exact: true }).click();
  return readFileSync((await (await pending).path())!, 'utf8');
}

/**
 * The CSV of `label` against its table: a header the width of the table's, one line per body row
 * (the row's first cell names it), and in every cell that carries its figure (data-value) the
 * CSV's number at that column is the same number; where the cell shows it as a plain number,
 * that is the CSV's rounded.
 */
async function expectCsvMatches(page: Page, label: string, table: Locator): Promise<string[][]> {
  const [header, ...lines] = parseCsv(await download(page, `Download ${label} as CSV`));
  expect(header.length, `${label} header`).toBe(await table.locator('thead th').count());
  const rows = table.locator('tbody tr');
  expect(lines.length, `${label} rows`).toBe(await rows.count());
  let checked = 0;
  for (const [i, line] of lines.entries()) {
    expect(line.length, `${label} line ${i}`).toBe(header.length);
    const cells = rows.nth(i).locator('td');
    const name = (await cells.first().innerText()).trim();
    expect(name.startsWith(line[0]) || line[0].startsWith(name), `${label} row ${i}: ${name} vs ${line[0]}`).toBe(true);
    const figures = await cells.evaluateAll((tds) => tds.map((td) => [td.getAttribute('data-value'), (td as HTMLElement).innerText.trim()] as const));
    for (const [j, [value, shown]] of figures.entries()) {
      if (value === null) continue;
      const where = `${label} ${line[0]} ${header[j]}`;
      if (value === '') {
        expect(line[j], where).toBe('');
        continue;
      }
      const csv = Number(line[j]);
      expect(csv, where).toBe(Number(value));
      const asShown = Number(shown);
      if (shown !== '' && Number.isFinite(asShown)) expect(Math.abs(asShown - csv), `${where} shown ${shown}`).toBeLessThanOrEqual(Math.abs(csv) * 5e-4 + 5e-5);
      checked++;
    }
  }
  expect(checked, `${label}: figures compared`).toBeGreaterThan(0);
  return [header, ...lines];
}

/** The chart's SVG: `count` marks of `mark` (as the page draws them), its caption as the title. */
async function expectSvgMatches(page: Page, panel: Locator, label: string, caption: string, mark: string) {
  const figure = panel.getByRole('figure', { name: label, exact: true });
  const drawn = await figure.locator(`.recharts-wrapper .${mark}`).count();
  expect(drawn, `${label}: ${mark} drawn`).toBeGreaterThan(0);
  const svg = await download(page, `Download ${label} as SVG`);
  expect(svg.startsWith('<svg')).toBe(true);
  expect(svg).toContain('xmlns="http://www.w3.org/2000/svg"');
  expect(svg.match(new RegExp(`class="[^"]*\\b${mark}\\b[^"]*"`, 'g'))?.length ?? 0, `${label}: ${mark} in the SVG`).toBe(drawn);
  expect(svg).toContain(`>${caption}</text>`);
  for (const legend of await figure.locator('.recharts-legend-item-text').allInnerTexts()) expect(svg).toContain(`>${legend}</text>`);
  return svg;
}

test('Whole model: the plan, the sizes per preset and the error per layer as CSV; the charts as SVG', async ({ app, page }) => {
  test.setTimeout(300_000);
  await app.open(`#tensor=${TENSOR}`);
  await app.loadSample();
  await expectCsvMatches(page, 'Data types', page.getByRole('table', { name: 'Data types' }));
  const panel = await app.openTab('Whole model');
  await panel.getByLabel('Preset', { exact: true }).selectOption('Q8_0');
  await panel.getByRole('button', { name: 'Measure error per layer' }).click();
  await expect(panel.getByRole('columnheader', { name: 'Rel. error' })).toBeVisible({ timeout: 120_000 });
  const [header, ...plan] = await expectCsvMatches(page, 'Plan', panel.getByRole('table', { name: 'Plan', exact: true }));
  expect(header).toEqual(['Tensor', 'Shape', 'From', 'To', 'Bytes', 'Rel. error', 'Rule']);
  expect(plan.filter((l) => l[3] === 'q8_0').length).toBeGreaterThan(0);

  const sizes = parseCsv(await download(page, 'Download Size per preset as CSV'));
  const bars = await panel.getByRole('figure', { name: 'Size per preset' }).locator('.recharts-bar-rectangle').count();
  expect(sizes.length - 1).toBe(bars);
  expect(sizes.find((l) => l[0] === 'Q8_0')).toBeTruthy();
  const layers = parseCsv(await download(page, 'Download Error per layer as CSV'));
  expect(layers[0]).toEqual(['Layer', 'Rel. error', 'SNR (dB)']);
  for (const l of layers.slice(1)) expect(Number(l[1])).toBeGreaterThan(0);

  await expectSvgMatches(page, panel, 'Size per preset', 'File size and bits per weight of this model under each preset', 'recharts-bar-rectangle');
  const svg = await expectSvgMatches(page, panel, 'Error per layer', 'Relative error ‖Ŵ − W‖ / ‖W‖ per layer under this plan', 'recharts-line-curve');
  for (const l of layers.slice(1)) expect(svg).toContain(`>${l[0]}</tspan>`);
});

test('Model output: the metrics as CSV, the quality-vs-size chart as SVG', async ({ app, page }) => {
  test.setTimeout(300_000);
  await app.open();
  await app.loadSample();
  const panel = await app.openTab('Model output');
  for (const preset of ['Q4_K_M', 'Q2_K']) await panel.getByRole('button', { name: preset, exact: true }).click();
  await panel.getByRole('button', { name: 'Evaluate 1 preset' }).click();
  const table = panel.getByRole('table', { name: 'Model output metrics' });
  await expect(table.locator('tr[data-preset="Q8_0"] td[data-metric="kl"]')).toBeVisible({ timeout: 170_000 });
  const [header, f32, q8] = await expectCsvMatches(page, 'Model output metrics', table);
  expect(header).toEqual(['Preset', 'Bytes', 'bits/weight', 'Perplexity', 'KL mean', 'KL median', 'KL p99', 'Top-1 agree']);
  expect(f32[0]).toBe('F32');
  expect(q8[0]).toBe('Q8_0');
  expect(Number(q8[1])).toBeLessThan(Number(f32[1]));
  const svg = await expectSvgMatches(page, panel, 'Quality vs size', 'Mean KL divergence to F32 against file size', 'recharts-scatter-symbol');
  expect(svg).toContain('>Q8_0<');
});

test('Calibration: the totals and the per-layer table as CSV, the MSE chart as SVG', async ({ app, page }) => {
  test.setTimeout(300_000);
  await app.open();
  await app.loadSample();
  const panel = await app.openTab('Calibration');
  await panel.getByRole('button', { name: 'Calibrate and compare' }).click();
  const totals = panel.getByRole('table', { name: 'Calibration totals' });
  await expect(totals.locator('tr[data-method="gptq"]')).toBeVisible({ timeout: 170_000 });
  await expectCsvMatches(page, 'Calibration totals', totals);
  const [, ...layers] = await expectCsvMatches(page, 'Calibration per layer', panel.getByRole('table', { name: 'Calibration per layer' }));
  expect(layers.length).toBeGreaterThan(0);
  await expectSvgMatches(page, panel, 'Output MSE per layer', 'Held-out layer output MSE per weight (lower is better)', 'recharts-bar-rectangle');
});

test('Quantized matmul: the results as CSV, the error chart as SVG', async ({ app, page }) => {
  test.setTimeout(300_000);
  await app.open(`#types=q8_0,q4_0&tensor=${TENSOR}`);
  await app.loadSample();
  const panel = await app.openTab('Quantized matmul');
  await panel.getByRole('button', { name: 'Run y = W x' }).click();
  const table = panel.getByRole('table', { name: 'Matmul results' });
  await expect(table.locator('td[data-metric="rel"]')).toHaveCount(2, { timeout: 120_000 });
  const [, ...rows] = await expectCsvMatches(page, 'Matmul results', table);
  expect(rows.map((r) => r[0])).toEqual(['q8_0', 'q4_0']);
  await expectSvgMatches(page, panel, 'Product error per type', 'Error the quantization puts into y = W x (log scale)', 'recharts-bar-rectangle');
});

test('Budget: the plan beside the presets and the type of each tensor as CSV, the bits per layer as SVG', async ({ app, page }) => {
  test.setTimeout(300_000);
  await app.open();
  await app.loadSample();
  const panel = await app.openTab('Budget');
  await panel.getByRole('button', { name: 'Scan sensitivity' }).click();
  await expect(panel.getByTestId('budget-scan')).toHaveAttribute('data-kind', /./, { timeout: 170_000 });
  await panel.getByRole('button', { name: 'Size of Q4_K_M' }).click();
  const summary = panel.getByRole('table', { name: 'Plan and presets' });
  await expect(summary.locator('tr[data-row="plan"]')).toBeVisible({ timeout: 60_000 });
  const [, plan] = await expectCsvMatches(page, 'Plan and presets', summary);
  expect(plan[0]).toBe('Budget plan');
  await panel.getByText('Type of each tensor').click();
  const [, ...tensors] = await expectCsvMatches(page, 'Plan tensors', panel.getByRole('table', { name: 'Plan tensors' }));
  // The tensors' bytes add up to less than the file (the rest is the header and metadata).
  expect(tensors.reduce((s, t) => s + Number(t[2]), 0)).toBeLessThan(Number(plan[1]));
  await expectSvgMatches(page, panel, 'Bits per layer', 'Bits per weight of each layer: the budget plan and the nearest presets', 'recharts-bar-rectangle');
});
