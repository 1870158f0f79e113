// The CLI bundle: src/cli/main.ts and the quantize pool's worker compiled by esbuild into
// build/cli/*.mjs (not committed), so that `quantlab` starts in plain Node: through tsx's
// loader, a command spent ~0.5 s of CPU compiling TypeScript before doing anything (a third
// of a 320 MB Q8_0 quantize). bin/quantlab.js runs the bundle when it is newer than every
// source and the TypeScript through tsx otherwise, so an edit to src/ is never run stale.
// postinstall, `npm run build:cli` and scripts/test-all.sh build it; `--force` rebuilds.
// build/cli sits two levels under the root, as src/<dir>/ does, so the paths the sources
// resolve from import.meta.url (../../shaders/) hold in the bundle too.
import { readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE_DIR = join(ROOT, 'src');
export const CLI_BUNDLE_DIR = join(ROOT, 'build', 'cli');
export const CLI_ENTRY = join(CLI_BUNDLE_DIR, 'main.mjs');

/** Newest modification time of the sources (tests aside) and of this script. */
function newestSource(dir = SOURCE_DIR) {
  let newest = statSync(fileURLToPath(import.meta.url)).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** True when the bundle is missing or older than a source: bin/quantlab.js then runs the sources. */
export function cliBundleIsStale() {
  try {
    return statSync(CLI_ENTRY).mtimeMs < newestSource();
  } catch {
    return true;
  }
}

/**
 * scripts/*.mjs stay outside the bundle (they find the repository from their own path),
 * imported by their path relative to build/cli.
 */
const keepScriptsExternal = {
  name: 'keep-scripts-external',
  setup(build) {
    build.onResolve({ filter: /\/scripts\/[^/]+\.mjs$/ }, (args) => ({
      path: relative(CLI_BUNDLE_DIR, resolve(args.resolveDir, args.path)),
      external: true,
    }));
  },
};

export async function buildCli({ force = false, quiet = false } = {}) {
  if (!force && !cliBundleIsStale()) return CLI_ENTRY;
  const { build } = await import('esbuild');
  // Built beside the old bundle and swapped in, so a running CLI never sees half of one.
  const tmp = `${CLI_BUNDLE_DIR}.${process.pid}.tmp`;
  await build({
    entryPoints: [join(SOURCE_DIR, 'cli/main.ts'), join(SOURCE_DIR, 'cli/quantize-worker.ts'), join(SOURCE_DIR, 'cli/forward-worker.ts')],
    outdir: tmp,
    bundle: true,
    splitting: true, // main.ts loads each command's modules on demand: they stay separate chunks
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    outExtension: { '.js': '.mjs' },
    logLevel: quiet ? 'error' : 'warning',
    plugins: [keepScriptsExternal],
  });
  const old = `${CLI_BUNDLE_DIR}.${process.pid}.old`;
  try {
    renameSync(CLI_BUNDLE_DIR, old);
  } catch {
    // no bundle yet
  }
  renameSync(tmp, CLI_BUNDLE_DIR);
  rmSync(old, { recursive: true, force: true });
  if (!quiet) console.log(`quantlab: CLI bundle -> ${relative(ROOT, CLI_BUNDLE_DIR)}/`);
  return CLI_ENTRY;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildCli({ force: process.argv.includes('--force') });
}
