// Builds quantlab's fast codecs: AssemblyScript sources in wasm/*.ts -> wasm/build/quant.wasm
// (not committed: every checkout builds it from source). `npm run build:wasm`, postinstall,
// the Vite plugin (vite.config.ts) and the CLI on first use (src/quant/fast/node.ts) call it;
// it does nothing when the .wasm is newer than every source. `--force` rebuilds.
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const WASM_SOURCE_DIR = join(ROOT, 'wasm');
export const WASM_OUTPUT = join(WASM_SOURCE_DIR, 'build', 'quant.wasm');

function sources() {
  return readdirSync(WASM_SOURCE_DIR)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(WASM_SOURCE_DIR, f));
}

/** True when wasm/build/quant.wasm is missing or older than a source (or this script). */
export function wasmIsStale() {
  let built;
  try {
    built = statSync(WASM_OUTPUT).mtimeMs;
  } catch {
    return true;
  }
  return [...sources(), fileURLToPath(import.meta.url)].some((f) => statSync(f).mtimeMs > built);
}

/** Compile wasm/index.ts with asc (-O3, no runtime: the codecs allocate nothing). */
export async function buildWasm({ force = false, quiet = false } = {}) {
  if (!force && !wasmIsStale()) return WASM_OUTPUT;
  const asc = await import('assemblyscript/asc');
  mkdirSync(dirname(WASM_OUTPUT), { recursive: true });
  // Written under a temporary name and renamed, so a reader never sees half a file.
  const tmp = `${WASM_OUTPUT}.${process.pid}.tmp`;
  let errors = '';
  const { error } = await asc.main(
    [join(WASM_SOURCE_DIR, 'index.ts'), '--outFile', tmp, '-O3', '--runtime', 'stub', '--noAssert', '--initialMemory', '2', '--enable', 'simd'],
    { stdout: asc.createMemoryStream(), stderr: { write: (s) => { errors += String(s); return true; } } },
  );
  if (error) throw new Error(`build-wasm: ${error.message}\n${errors}`);
  const { renameSync } = await import('node:fs');
  renameSync(tmp, WASM_OUTPUT);
  if (!quiet) console.log(`build-wasm: ${WASM_OUTPUT} (${statSync(WASM_OUTPUT).size} bytes)`);
  return WASM_OUTPUT;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await buildWasm({ force: process.argv.includes('--force') });
}
