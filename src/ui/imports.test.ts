// The UI's two rules, read from its source: components reach the engine only through the
// store (no import of src/engine, nor of the layers that run jobs), and no component reads
// the whole store (a bare `useApp()` re-renders on every progress tick of every job).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const UI = new URL('.', import.meta.url).pathname;

/** The page's sources (tests are not the page). */
const sources = readdirSync(UI)
  .filter((f) => /\.tsx?$/.test(f) && !/\.test\.tsx?$/.test(f))
  .map((f) => ({ file: f, text: readFileSync(join(UI, f), 'utf8') }));

/**
 * What a component may import: the UI itself, the store, the type table as data and the
 * presets (not quant/types.ts, the codec registry, which would put every codec in the
 * page's main bundle), and packages.
 */
const ALLOWED = [/^\.\/[^/]+$/, /^\.\.\/store\//, /^\.\.\/quant\/(type-data|presets)\.ts$/, /^[a-z@][^.]*$/];

function importsOf(text: string): string[] {
  return [...text.matchAll(/^\s*(?:import|export)\s[^'";]*?from\s+['"]([^'"]+)['"]/gm), ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]);
}

describe('src/ui', () => {
  it('has its components', () => {
    expect(sources.map((s) => s.file)).toEqual(expect.arrayContaining(['App.tsx', 'CompareTab.tsx', 'BudgetTab.tsx', 'ExportPanel.tsx']));
  });

  it('imports only the UI, the store, the type table and packages: never src/engine', () => {
    const bad = sources.flatMap(({ file, text }) => importsOf(text).filter((spec) => !ALLOWED.some((r) => r.test(spec))).map((spec) => `${file}: ${spec}`));
    expect(bad).toEqual([]);
  });

  it('reads the store through selectors, never whole', () => {
    const bad = sources.filter(({ text }) => /\buseApp\(\s*\)/.test(text)).map((s) => s.file);
    expect(bad).toEqual([]);
  });

  it('the checks catch what they are for', () => {
    expect(importsOf("import { engine } from '../engine/client.ts';").filter((spec) => !ALLOWED.some((r) => r.test(spec)))).toEqual(['../engine/client.ts']);
    expect(importsOf("import type { X } from '../quant/plan.ts';").filter((spec) => !ALLOWED.some((r) => r.test(spec)))).toEqual(['../quant/plan.ts']);
    expect(/\buseApp\(\s*\)/.test('const { model } = useApp();')).toBe(true);
  });
});
