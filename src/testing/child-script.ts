// The llama.cpp children of the tests (llama-cpp-child.ts, llama-cpp-tokenizer.ts) compiled
// into plain JavaScript once per test process, so that each is run as `node FILE.mjs` instead
// of `node --import tsx FILE.ts`. Through tsx's loader every child, and the binding-test
// process node-llama-cpp forks from it (which inherits --import tsx), spent more than twice
// the CPU: 2.5-2.9 s against 1.1-1.2 s per child on stories260K (docs/measurements.md,
// "Test suite time"). Packages stay external (node-llama-cpp must keep its own files).
// Test support only.
import { buildSync } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const ROOT = join(import.meta.dirname, '../..');
/** Two levels under the root, as src/testing/ is: paths a child resolves from import.meta hold. */
const OUT_DIR = join(ROOT, 'build', 'test-children');
const built = new Map<string, string>();

/** The path of `entry` (a .ts file) bundled as an ES module; named by its content, so never stale. */
export function childScript(entry: string): string {
  const known = built.get(entry);
  if (known) return known;
  const { outputFiles } = buildSync({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    logLevel: 'error',
  });
  const code = outputFiles[0].contents;
  const hash = createHash('sha256').update(code).digest('hex').slice(0, 16);
  const path = join(OUT_DIR, `${basename(entry, '.ts')}-${hash}.mjs`);
  if (!existsSync(path)) {
    mkdirSync(OUT_DIR, { recursive: true });
    // Written under a temporary name and renamed: another test process may run it meanwhile.
    const tmp = `${path}.${process.pid}.part`;
    writeFileSync(tmp, code);
    renameSync(tmp, path);
  }
  built.set(entry, path);
  return path;
}
