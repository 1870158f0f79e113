// The docs stay a front door and a set of pages a clone can follow (docs/architecture.md,
// house rule 10): README.md at most README_MAX_LINES lines; every relative link in README.md
// and docs/*.md reaches a file in the repository (and, into a Markdown page, a heading that
// exists); no code, test or script cites the design notes that used to live in ../shared.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
export const README_MAX_LINES = 200;

/** Where code, tests and scripts live, and the config files at the top. */
const CODE_DIRS = ['src', 'e2e', 'bench', 'scripts', 'shaders', 'wasm', 'bin', '.ci'];
const CODE_FILES = ['vite.config.ts', 'playwright.config.ts', 'eslint.config.js', 'package.json', 'tsconfig.json', 'index.html'];
const SKIPPED_DIRS = new Set(['node_modules', 'build', 'dist', 'test-results', 'playwright-report']);

/** The old homes of the contracts and house rules, outside the repository (built from parts so this file does not match itself). */
const STALE_DOC = new RegExp(['\\.\\./shared/(?:DESIGN|INTERFACES|webgpu)', '\\b(?:DESIGN|INTERFACES)'].map((p) => `${p}\\.md`).join('|'));

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return SKIPPED_DIRS.has(entry.name) ? [] : filesUnder(path);
    return entry.isFile() ? [path] : [];
  });
}

const markdownPages = () => [join(ROOT, 'README.md'), ...filesUnder(join(ROOT, 'docs')).filter((p) => p.endsWith('.md'))];

/** Markdown without fenced code blocks and inline code, where a link is only text. */
function withoutCode(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** The targets of inline links and images `[text](target "title")` and reference definitions `[id]: target`. */
export function linkTargets(markdown: string): string[] {
  const text = withoutCode(markdown);
  const inline = [...text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]);
  const defined = [...text.matchAll(/^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$/gm)].map((m) => m[1]);
  return [...inline, ...defined];
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const [, heading] of withoutFences(markdown).matchAll(/^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const slug = heading.toLowerCase().replace(/[^\p{L}\p{N}\p{M} _-]/gu, '').replace(/ /g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  for (const [, id] of markdown.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) anchors.add(id);
  return anchors;
}

function withoutFences(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
}

const isExternal = (target: string) => /^[a-z][a-z0-9+.-]*:/i.test(target);

/** What is wrong with one relative link of `page`, or null when it reaches its target. */
function brokenLink(page: string, target: string): string | null {
  const [pathPart, anchor] = target.split('#', 2);
  const path = pathPart === '' ? page : resolve(dirname(page), decodeURIComponent(pathPart));
  const where = relative(ROOT, path);
  if (where.startsWith(`..${sep}`) || where === '..') return `${target}: outside the repository (a clone does not have it)`;
  if (!existsSync(path)) return `${target}: no such file`;
  if (anchor && path.endsWith('.md') && statSync(path).isFile() && !headingAnchors(readFileSync(path, 'utf8')).has(anchor)) {
    return `${target}: no heading #${anchor} in ${where}`;
  }
  return null;
}

describe('the docs', () => {
  it(`README.md is a front door: at most ${README_MAX_LINES} lines`, () => {
    const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').replace(/\n$/, '').split('\n').length;
    expect(lines).toBeLessThanOrEqual(README_MAX_LINES);
  });

  it('every relative link in README.md and docs/*.md reaches a file (and heading) in the repository', () => {
    const pages = markdownPages();
    expect(pages.length).toBeGreaterThan(1);
    const broken = pages.flatMap((page) =>
      linkTargets(readFileSync(page, 'utf8'))
        .filter((target) => !isExternal(target))
        .map((target) => brokenLink(page, target))
        .filter((problem): problem is string => problem !== null)
        .map((problem) => `${relative(ROOT, page)}: ${problem}`),
    );
    expect(broken).toEqual([]);
  });

  it('no code, test or script cites the design notes that lived in ../shared (docs/ holds them now)', () => {
    const self = fileURLToPath(import.meta.url); // its own checks spell the old names out
    const files = [...CODE_DIRS.flatMap((d) => filesUnder(join(ROOT, d))), ...CODE_FILES.map((f) => join(ROOT, f)).filter(existsSync)].filter((f) => f !== self);
    expect(files.length).toBeGreaterThan(100);
    const citing = files.filter((file) => STALE_DOC.test(readFileSync(file, 'utf8'))).map((file) => relative(ROOT, file));
    expect(citing).toEqual([]);
  });

  it('the docs the code cites exist', () => {
    for (const page of ['architecture.md', 'contracts.md', 'webgpu.md']) expect(existsSync(join(ROOT, 'docs', page)), page).toBe(true);
  });
});

describe('the link checker itself', () => {
  it('finds inline links, images and reference definitions, not links inside code', () => {
    const md = '[a](x.md) ![b](img.png "t") `[c](no.md)`\n```\n[d](no2.md)\n```\n[id]: ref.md\n';
    expect(linkTargets(md)).toEqual(['x.md', 'img.png', 'ref.md']);
  });

  it("makes GitHub's anchors", () => {
    const anchors = headingAnchors('# JSON shapes\n## Type ids (one table: `src/quant/types.ts`)\n## GPTQ export (`quantlab quantize --gptq`)\n## JSON shapes\n');
    expect([...anchors]).toEqual(['json-shapes', 'type-ids-one-table-srcquanttypests', 'gptq-export-quantlab-quantize---gptq', 'json-shapes-1']);
  });

  it('sees a citation of the old notes in any of their spellings', () => {
    for (const text of ['../shared/DESIGN.md', 'see ../shared/INTERFACES.md', '(INTERFACES.md)', 'rule 1 of DESIGN.md', '../shared/webgpu.md']) expect(STALE_DOC.test(text), text).toBe(true);
    for (const text of ['docs/contracts.md', 'docs/architecture.md', 'docs/webgpu.md', '../shared/fixtures/golden']) expect(STALE_DOC.test(text), text).toBe(false);
  });
});
