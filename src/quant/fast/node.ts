// Node only (the CLI, its worker threads, the bench, tests): the fast codecs' module from
// wasm/build/quant.wasm, built from the AssemblyScript sources first when it is missing or
// older than them (scripts/build-wasm.mjs), so a fresh clone works after `npm install`.
// The browser loads the same file through Vite (vite.config.ts, engine/worker.ts).
// The products' relaxed-SIMD module (wasm/build/matmul-relaxed.wasm) goes with it; Node 20's
// V8 (11.3) validates relaxed SIMD only behind a flag (Chromium 114+ and Node 22 without), set
// here, in Node alone, before the module is compiled.
import { existsSync, readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { WASM_OUTPUT, WASM_RELAXED_OUTPUT, buildWasm, wasmIsStale } from '../../../scripts/build-wasm.mjs';
import { fastCodecsInstalled, installFastCodecs } from './wasm-codecs.ts';

/** Environment switch: QUANTLAB_FAST_CODECS=0 runs the reference codecs only. */
function disabled(): boolean {
  return process.env.QUANTLAB_FAST_CODECS === '0';
}

/**
 * Install quant.wasm with the relaxed-SIMD products where they are built (installFastCodecs
 * uses them only where the engine validates them). QUANTLAB_RELAXED_SIMD=0 leaves them out.
 */
function install(): void {
  const relaxed = process.env.QUANTLAB_RELAXED_SIMD !== '0' && existsSync(WASM_RELAXED_OUTPUT);
  if (relaxed) setFlagsFromString('--experimental-wasm-relaxed-simd');
  installFastCodecs(readFileSync(WASM_OUTPUT), relaxed ? readFileSync(WASM_RELAXED_OUTPUT) : null);
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
    install();
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
  install();
  return true;
}
