// The CLI bundle (scripts/build-cli.mjs, what bin/quantlab.js runs when it is up to date)
// against the TypeScript sources under tsx: the same output file and table, with the
// quantize pool's worker threads (a bundled worker of their own) doing part of the rows.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without types
import { CLI_ENTRY, buildCli, cliBundleIsStale } from '../../scripts/build-cli.mjs';
import { writeSyntheticLlama } from '../testing/synthetic-llama.ts';

const ROOT = join(import.meta.dirname, '../..');
const run = promisify(execFile);
let dir: string;
let input: string;
let launcher: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quantlab-bundle-'));
  input = join(dir, 'llama.gguf');
  writeSyntheticLlama(input, { nLayer: 2, nEmbd: 256, nFf: 768, nHead: 8, nHeadKv: 2, nVocab: 288, seed: 3 });
  // The bundle itself, without bin/quantlab.js's choice between it and the sources.
  launcher = join(dir, 'bundle.mjs');
  writeFileSync(launcher, `const { main } = await import(${JSON.stringify(pathToFileURL(CLI_ENTRY).href)});\nprocess.exitCode = await main(process.argv.slice(2));\n`);
  await buildCli({ quiet: true }); // nothing to do when it is up to date (test-all.sh built it)
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The table without the last line's run time. */
const table = (stdout: string) => stdout.replace(/, [\d.]+ s\n$/, '\n');

it('is up to date after a build, and quantizes as the sources do (Q8_0 and Q4_K_M, two threads)', async () => {
  expect(cliBundleIsStale()).toBe(false);
  for (const preset of ['Q8_0', 'Q4_K_M']) {
    const args = (out: string) => ['quantize', input, '-o', out, '--preset', preset, '--threads', '2'];
    const bundled = join(dir, `${preset}.from-bundle.gguf`);
    const fromSources = join(dir, `${preset}.from-sources.gguf`);
    const a = await run(process.execPath, [launcher, ...args(bundled)], { cwd: ROOT });
    const b = await run(process.execPath, [join(ROOT, 'bin/quantlab.js'), ...args(fromSources)], { cwd: ROOT, env: { ...process.env, QUANTLAB_CLI_SOURCES: '1' } });
    expect(readFileSync(bundled).equals(readFileSync(fromSources))).toBe(true);
    expect(table(a.stdout).replace('.from-bundle', '')).toBe(table(b.stdout).replace('.from-sources', ''));
    expect(a.stderr).toBe('');
  }
});
