// Node only (the CLI, its worker threads, the bench, tests): the fast codecs' module from
// wasm/build/quant.wasm, built from the AssemblyScript sources first when it is missing or
// older than them (scripts/build-wasm.mjs), so a fresh clone works after `npm install`.
// The browser loads the same file through Vite (vite.config.ts, engine/worker.ts).
import { existsSync, readFileSync } from 'node:fs';
import { WASM_OUTPUT, buildWasm, wasmIsStale } from '../../../scripts/build-wasm.mjs';
import { fastCodecsInstalled, installFastCodecs } from './wasm-codecs.ts';

/** Environment switch: QUANTLAB_FAST_CODECS=0 runs the reference codecs only. */
function disabled(): boolean {
  return process.env.QUANTLAB_FAST_CODECS === '0';
}

/**
 * Build (if stale) and install the fast codecs. Returns false, and the reference codecs keep
 * running, when they are switched off or cannot be built (the reason goes to `warn`).
 */
export async function loadFastCodecs(warn: (message: string) => void = () => undefined): Promise<boolean> {
  if (disabled()) return false;
  if (fastCodecsInstalled()) return true;
  try {
    if (wasmIsStale()) await buildWasm({ quiet: true });
    installFastCodecs(readFileSync(WASM_OUTPUT));
    return true;
  } catch (e) {
    warn(`fast codecs unavailable, using the reference codecs: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
    return false;
  }
}

/** Install the already built module, if there is one (worker threads: the parent built it). */
export function loadBuiltFastCodecs(): boolean {
  if (disabled()) return false;
  if (fastCodecsInstalled()) return true;
  if (!existsSync(WASM_OUTPUT)) return false;
  installFastCodecs(readFileSync(WASM_OUTPUT));
  return true;
}
