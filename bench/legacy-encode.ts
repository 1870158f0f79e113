// npx tsx bench/legacy-encode.ts [--wasm a.wasm,b.wasm] [--types q4_0,q4_1] [--rounds N] [--no-ggml]
//
// A closer look at the legacy encoders' speed than bench/run.ts gives (for tuning wasm/legacy.ts):
// per type, MB/s of f32 input of
//   kernel: the module's encode() alone, the rows already in its memory (no copies in or out);
//   codec:  the codec the engine runs (quantType(id).codec.encode: Float32Array in, Uint8Array
//           out, the copy into the module's memory included), as bench/run.ts's "cpu enc";
//   ggml:   llama.cpp's ggml_quantize_chunk through koffi (Float32Array in, Uint8Array out), as
//           bench/run.ts's "ggml enc";
// each the best of --rounds rounds of 5 ms (short: some fall between a busy machine's other
// work), the rounds of all columns interleaved so that a noisy neighbour slows them alike. With several --wasm modules, each one's kernel and codec
// columns are measured in the same run (old build against new). Same values as bench/run.ts
// (256 x 1024 Gaussians, std 0.02, seed 1234).
import { readFileSync } from 'node:fs';
import { WASM_OUTPUT, buildWasm } from '../scripts/build-wasm.mjs';
import { WASM_IMPORTS, installFastCodecs } from '../src/quant/fast/wasm-codecs.ts';
import { quantType, type QuantType } from '../src/quant/types.ts';
import { gaussians } from '../src/testing/random.ts';
import { secondsPerCall } from './cpu.ts';

const TYPE_CODES: Record<string, number> = { q4_0: 0, q4_1: 1, q5_0: 2, q5_1: 3, q8_0: 4 };
const BLOCK_BYTES: Record<string, number> = { q4_0: 18, q4_1: 20, q5_0: 22, q5_1: 24, q8_0: 34 };

interface Exports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  encode(type: number, src: number, rows: number, rowLength: number, imp: number, out: number, flags: number): number;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Calls per second of fn over at least `seconds`. */
function rate(fn: () => void, seconds = 0.005): number {
  return 1 / secondsPerCall(fn, seconds);
}

const rows = 256;
const cols = 1024;
const values = gaussians(rows * cols, 1234, 0.02);
const mb = (values.length * 4) / 1e6;
const types = (arg('--types') ?? 'q4_0,q4_1,q5_0,q5_1,q8_0').split(',');
const rounds = Number(arg('--rounds') ?? 100);
let wasmPaths = arg('--wasm')?.split(',');
if (!wasmPaths) {
  await buildWasm({ quiet: true });
  wasmPaths = [WASM_OUTPUT];
}
const modules = wasmPaths.map((p) => new WebAssembly.Module(readFileSync(p)));
const ggml = process.argv.includes('--no-ggml') ? undefined : (await import('../src/testing/llama-peer.ts')).ggmlQuantizeChunk;

interface Column {
  label: string;
  run: () => void;
  /** Called before each round's timing (not timed). */
  setup?: () => void;
  best: number;
}

for (const id of types) {
  const type: QuantType = quantType(id)!;
  const columns: Column[] = [];
  const outputs: Uint8Array[] = [];
  modules.forEach((module, m) => {
    const e = new WebAssembly.Instance(module, WASM_IMPORTS).exports as unknown as Exports;
    const base = (e.heapBase() + 15) & ~15;
    const outAt = base + values.length * 4;
    const flagsAt = outAt + (values.length / 32) * BLOCK_BYTES[id];
    const need = flagsAt + rows - e.memory.buffer.byteLength;
    if (need > 0) e.memory.grow(Math.ceil(need / 65536));
    new Float32Array(e.memory.buffer, base, values.length).set(values);
    const code = TYPE_CODES[id];
    columns.push({ label: `kernel${modules.length > 1 ? m : ''}`, run: () => e.encode(code, base, rows, cols, 0, outAt, flagsAt), best: 0 });
    const codecModule = module;
    columns.push({
      label: `codec${modules.length > 1 ? m : ''}`,
      setup: () => {
        // A fresh instance: its first call grows and touches its memory (not timed).
        installFastCodecs(codecModule);
        outputs[m] = type.codec.encode(values, cols);
      },
      run: () => {
        outputs[m] = type.codec.encode(values, cols);
      },
      best: 0,
    });
  });
  if (ggml && type.ggml) columns.push({ label: 'ggml', run: () => ggml(type.ggml!.id, values, cols), best: 0 });
  for (const c of columns) {
    c.setup?.();
    c.run(); // warm-up
  }
  for (let r = 0; r < rounds; r++) {
    for (const c of columns) {
      c.setup?.();
      c.best = Math.max(c.best, mb * rate(c.run));
    }
  }
  if (ggml && type.ggml) {
    const want = ggml(type.ggml.id, values, cols);
    outputs.forEach((o, m) => {
      if (Buffer.compare(Buffer.from(o), Buffer.from(want)) !== 0) console.log(`${id}: module ${m} differs from ggml!`);
    });
  }
  console.log(`${id.padEnd(5)} ${columns.map((c) => `${c.label} ${c.best.toFixed(0).padStart(5)}`).join('  ')}  MB/s`);
}
