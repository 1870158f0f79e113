// Builds quantlab's fast codecs: AssemblyScript sources in wasm/*.ts -> wasm/build/quant.wasm,
// and the matrix products again with relaxed SIMD -> wasm/build/matmul-relaxed.wasm (loaded
// only where the engine validates it: src/quant/fast/wasm-codecs.ts). Not committed: every
// checkout builds them from source. `npm run build:wasm`, postinstall,
// the Vite plugin (vite.config.ts) and the CLI on first use (src/quant/fast/node.ts) call it;
// it does nothing when the .wasm is newer than every source. `--force` rebuilds.
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const WASM_SOURCE_DIR = join(ROOT, 'wasm');
export const WASM_OUTPUT = join(WASM_SOURCE_DIR, 'build', 'quant.wasm');
export const WASM_RELAXED_OUTPUT = join(WASM_SOURCE_DIR, 'build', 'matmul-relaxed.wasm');
/** Each module: its entry and the features beyond asc's defaults. */
const MODULES = [
  { entry: 'index.ts', output: WASM_OUTPUT, features: ['simd'] },
  { entry: 'matmul-relaxed.ts', output: WASM_RELAXED_OUTPUT, features: ['simd', 'relaxed-simd'] },
];

function sources() {
  return readdirSync(WASM_SOURCE_DIR)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(WASM_SOURCE_DIR, f));
}

/** True when a module is missing or older than a source (or this script). */
export function wasmIsStale() {
  let built;
  try {
    built = Math.min(...MODULES.map((m) => statSync(m.output).mtimeMs));
  } catch {
    return true;
  }
  return [...sources(), fileURLToPath(import.meta.url)].some((f) => statSync(f).mtimeMs > built);
}

/** Compile each module with asc (-O3, no runtime: the codecs allocate nothing). Returns quant.wasm's path. */
export async function buildWasm({ force = false, quiet = false } = {}) {
  if (!force && !wasmIsStale()) return WASM_OUTPUT;
  const asc = await import('assemblyscript/asc');
  const { renameSync } = await import('node:fs');
  mkdirSync(dirname(WASM_OUTPUT), { recursive: true });
  for (const { entry, output, features } of MODULES) {
    // Written under a temporary name and renamed, so a reader never sees half a file.
    const tmp = `${output}.${process.pid}.tmp`;
    let errors = '';
    const { error } = await asc.main(
      [join(WASM_SOURCE_DIR, entry), '--outFile', tmp, '-O3', '--runtime', 'stub', '--noAssert', '--initialMemory', '2', ...features.flatMap((f) => ['--enable', f])],
      { stdout: asc.createMemoryStream(), stderr: { write: (s) => { errors += String(s); return true; } } },
    );
    if (error) throw new Error(`build-wasm: ${entry}: ${error.message}\n${errors}`);
    renameSync(tmp, output);
    if (!quiet) console.log(`build-wasm: ${output} (${statSync(output).size} bytes)`);
  }
  return WASM_OUTPUT;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await buildWasm({ force: process.argv.includes('--force') });
}
