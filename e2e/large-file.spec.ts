// A multi-GB model file in the browser: a sparse GGUF of Llama 3.1 8B's shape cut to 5
// layers, all Q8_0 (2.3 GB, past 2^31 bytes; src/testing/sparse-model.ts), opened from a
// file input. The page reads it with Blob.slice, a tensor is compared, and the whole file is exported
// through the File System Access stream (a test hook that only counts), tensors copied as
// they are. The page survives, stays usable, and its processes' peak memory (VmHWM of the
// renderer, which runs the page and the engine worker, and of the GPU process) stays far
// below the file's size.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GGML_TYPE } from '../src/formats/gguf/constants.ts';
import { loadModel } from '../src/formats/model.ts';
import { fileSource } from '../src/formats/node-source.ts';
import { exportSourceFromModel } from '../src/export/source.ts';
import { planExport } from '../src/export/plan.ts';
import { writeSparseLlamaGguf } from '../src/testing/sparse-model.ts';
import { test, expect } from './fixtures.ts';

const GiB = 1024 ** 3;
/** Peak resident memory allowed to any one browser process while a 2.3 GB file goes through. */
const MAX_PROCESS_PEAK_BYTES = 1.5 * GiB;

/** Chromium processes started under this test process, with their peak RSS (VmHWM). */
function browserProcesses(): { pid: number; type: string; peakBytes: number }[] {
  const parent = new Map<number, number>();
  const info = new Map<number, { type: string; peakBytes: number }>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      parent.set(pid, Number(/PPid:\s+(\d+)/.exec(status)?.[1] ?? 0));
      const peak = /VmHWM:\s+(\d+) kB/.exec(status);
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (peak && cmdline.includes('chrom')) info.set(pid, { type: /--type=([\w-]+)/.exec(cmdline)?.[1] ?? 'browser', peakBytes: Number(peak[1]) * 1024 });
    } catch {
      // the process ended while we looked
    }
  }
  const under = (pid: number): boolean => {
    for (let p = parent.get(pid); p; p = parent.get(p)) if (p === process.pid) return true;
    return false;
  };
  return [...info].filter(([pid]) => under(pid)).map(([pid, i]) => ({ pid, ...i }));
}

test('a 2.3 GB GGUF: opened, listed, a tensor compared and the whole file exported as a stream; the page survives', async ({ app, page }) => {
  test.setTimeout(300_000);
  const dir = mkdtempSync(join(tmpdir(), 'quantlab-e2e-large-'));
  try {
    const path = join(dir, 'Llama-3.1-8B-5-layers-Q8_0.gguf');
    const layout = await writeSparseLlamaGguf(path, ['blk.0.attn_k.weight'], 3, { layers: 5, outputType: GGML_TYPE.Q8_0 });
    expect(layout.totalBytes).toBeGreaterThan(2 * GiB);
    const plan = planExport(exportSourceFromModel(await loadModel([await fileSource(path)])), { mode: { type: 'q8_0' } });
    expect(plan.tensors.every((t) => !t.converted)).toBe(true);

    // The export goes to a stream that keeps nothing: a count, and the first bytes to check.
    await page.addInitScript(() => {
      const state = { bytes: 0, head: [] as number[], closed: false, aborted: false };
      (window as unknown as { __quantlabTest: unknown }).__quantlabTest = {
        state,
        showSaveFilePicker: async () => ({
          createWritable: async () => ({
            write: async (c: Uint8Array) => {
              if (state.head.length < 1 << 16) state.head.push(...c.subarray(0, (1 << 16) - state.head.length));
              state.bytes += c.length;
            },
            close: async () => void (state.closed = true),
            abort: async () => void (state.aborted = true),
          }),
        }),
      };
    });
    await app.open('#types=q8_0,q4_0&tensor=blk.0.attn_k.weight');
    await app.loadFiles([path]);
    const overview = page.getByRole('region', { name: 'Model overview' });
    await expect(overview).toContainText('Llama-3.1-8B-5-layers-Q8_0.gguf', { timeout: 60_000 });
    await expect(page.getByRole('region', { name: 'Tensors' }).getByRole('row')).toHaveCount(layout.tensors.length + 1);
    const metrics = page.getByRole('table', { name: 'Error metrics' });
    await expect(metrics.locator('td[data-metric="rmse"]')).toHaveCount(2, { timeout: 120_000 });
    const q8 = Number(await metrics.locator('tr[data-type="q8_0"] td[data-metric="rmse"]').getAttribute('data-value'));
    const q4 = Number(await metrics.locator('tr[data-type="q4_0"] td[data-metric="rmse"]').getAttribute('data-value'));
    expect(q8).toBeGreaterThan(0);
    expect(q4).toBeGreaterThan(q8);

    const panel = await app.openTab('Whole model');
    await panel.getByLabel('Preset', { exact: true }).selectOption('type:q8_0');
    await panel.getByRole('button', { name: 'Save GGUF to disk…' }).click();
    await expect(panel.getByRole('status').filter({ hasText: 'Wrote' })).toBeVisible({ timeout: 240_000 });
    const state = await page.evaluate(
      () => (window as unknown as { __quantlabTest: { state: { bytes: number; head: number[]; closed: boolean; aborted: boolean } } }).__quantlabTest.state,
    );
    expect(state.closed).toBe(true);
    expect(state.aborted).toBe(false);
    expect(state.bytes).toBe(plan.layout.totalBytes);
    // The header (2.6 MB: a 128k-token vocabulary) begins as planned.
    expect(state.head.length).toBe(1 << 16);
    expect(Buffer.from(state.head).equals(Buffer.from(plan.layout.header.subarray(0, 1 << 16)))).toBe(true);

    // Still usable: another tensor compares.
    await page.getByRole('tab', { name: 'Compare types' }).click();
    await app.selectTensor('blk.0.attn_norm.weight');
    await expect(metrics.locator('td[data-metric="rmse"]')).toHaveCount(2, { timeout: 120_000 });

    const processes = browserProcesses();
    const renderer = processes.filter((p) => p.type === 'renderer');
    expect(renderer.length).toBeGreaterThan(0);
    test.info().annotations.push({ type: 'peak memory', description: processes.map((p) => `${p.type} ${(p.peakBytes / 2 ** 20).toFixed(0)} MiB`).join(', ') });
    console.log(`browser processes' peak RSS: ${processes.map((p) => `${p.type} ${(p.peakBytes / 2 ** 20).toFixed(0)} MiB`).join(', ')}`);
    for (const p of processes) expect(p.peakBytes, `${p.type} ${p.pid}`).toBeLessThan(MAX_PROCESS_PEAK_BYTES);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
