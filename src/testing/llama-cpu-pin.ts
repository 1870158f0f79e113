// The llama.cpp children of the tests compute on the same CPU kernels on every x86 machine.
// node-llama-cpp's prebuilt package holds one libggml-cpu-*.so per x86 generation and ggml
// loads the best one the CPU supports. Only the sapphirerapids build enables AMX, whose
// kernels (ggml-cpu/amx/) compute quantized products their own way: on an AMX machine
// llama.cpp's Q8_0 KL on stories260K is 5.355e-4, against 5.710e-4 with every other build
// (AVX2, AVX-512, VNNI) — and quantlab's ggml activation mode follows the AVX path. So that
// a test's bar does not depend on which machine CI lands on, a child imports node-llama-cpp
// through a copy of the binaries package without the AMX build (links, not copies; the
// files are the package's own), redirected by a module resolve hook.
// Test support only: the children (llama-cpp-child.ts, generate-child.ts) call it first.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync } from 'node:fs';
import { register } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const BINARIES_PACKAGE = '@node-llama-cpp/linux-x64';
/** The builds left out: those that run ggml's AMX kernels. */
const LEFT_OUT = /^libggml-cpu-sapphirerapids\./;

/** The package's folder with bins/linux-x64 holding every file but the AMX build's; made once. */
function pinnedPackage(): string {
  const original = dirname(dirname(fileURLToPath(import.meta.resolve(BINARIES_PACKAGE))));
  const bins = join(original, 'bins', 'linux-x64');
  const { version } = JSON.parse(readFileSync(join(original, 'package.json'), 'utf8')) as { version: string };
  // build/ at the root: this file runs from src/testing/ or, compiled, build/test-children/.
  const pinned = join(import.meta.dirname, '..', '..', 'build', `llama-cpu-pinned-${version}`);
  if (existsSync(join(pinned, 'dist', 'index.js'))) return pinned;
  // Built under a temporary name and renamed: another test process may be building it too.
  const tmp = `${pinned}.${process.pid}.part`;
  mkdirSync(join(tmp, 'dist'), { recursive: true });
  mkdirSync(join(tmp, 'bins', 'linux-x64'), { recursive: true });
  copyFileSync(join(original, 'package.json'), join(tmp, 'package.json'));
  copyFileSync(join(original, 'dist', 'index.js'), join(tmp, 'dist', 'index.js'));
  for (const name of readdirSync(bins)) {
    if (!LEFT_OUT.test(name)) symlinkSync(join(bins, name), join(tmp, 'bins', 'linux-x64', name));
  }
  try {
    renameSync(tmp, pinned);
  } catch (e) {
    if (!existsSync(join(pinned, 'dist', 'index.js'))) throw e;
  }
  return pinned;
}

/** Call before importing node-llama-cpp: its binaries package then resolves to the pinned copy. */
export function pinLlamaCpuKernels(): void {
  if (process.platform !== 'linux' || process.arch !== 'x64') return;
  const target = pathToFileURL(join(pinnedPackage(), 'dist', 'index.js')).href;
  const hook = `export async function resolve(specifier, context, next) {
    return specifier === ${JSON.stringify(BINARIES_PACKAGE)} ? { url: ${JSON.stringify(target)}, shortCircuit: true } : next(specifier, context);
  }`;
  register(`data:text/javascript,${encodeURIComponent(hook)}`);
}
