// npx tsx bench/sub4bit-encode.ts [--types iq2_xxs,iq3_s] [--rounds N] [--wall]
//
// Encode speed of the sub-4-bit types (issue 18: iq1_s, iq1_m, iq2_xxs, iq2_xs, iq2_s,
// iq3_xxs, iq3_s, nvfp4, q1_0, q2_0): MB/s of f32 input of the codec the engine runs
// (quantType(id).codec.encode: the WebAssembly fast path where the type has one, loaded
// first; QUANTLAB_FAST_CODECS=0 measures the TypeScript reference instead) and of
// llama.cpp's ggml_quantize_chunk through koffi (single thread), on the same 64 x 1024
// Gaussians (std 0.02, seed 1234) with importance weights; each the best of --rounds
// interleaved rounds, timed in CPU time (--wall: wall clock). ggml's one-off grid set-up
// (iq2xs_init_impl / iq3xs_init_impl) and ours (the grid tables built in WebAssembly on
// first use) are warmed up first, and the bytes are checked equal.
import { ggmlQuantizeChunk } from '../src/testing/llama-peer.ts';
import { gaussians } from '../src/testing/random.ts';
import { quantType } from '../src/quant/types.ts';
import { loadFastCodecs } from '../src/quant/fast/node.ts';

const fast = await loadFastCodecs((m) => console.error(m));
console.log(`codecs: ${fast ? 'fast (WebAssembly where the type has it)' : 'reference (TypeScript)'}; timed by ${process.argv.includes('--wall') ? 'wall clock' : 'CPU time'}`);

const TYPES = ['iq1_s', 'iq1_m', 'iq2_xxs', 'iq2_xs', 'iq2_s', 'iq3_xxs', 'iq3_s', 'nvfp4', 'q1_0', 'q2_0'];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const types = arg('types')?.split(',') ?? TYPES;
const rounds = Number(arg('rounds') ?? 3);
const ROWS = 64;
const ROW = 1024;
const x = gaussians(ROWS * ROW, 1234, 0.02);
const importance = Float32Array.from({ length: ROW }, (_, i) => 0.5 + ((i * 7919) % 97) / 50);
const megabytes = (x.length * 4) / 1e6;

/**
 * The seconds fn takes: by default this process's CPU time (user + system; both encoders
 * run on this thread), which other jobs on a shared machine disturb far less than the
 * wall clock; `--wall` for the wall clock.
 */
const WALL = process.argv.includes('--wall');
function seconds(fn: () => void): number {
  if (WALL) {
    const t0 = performance.now();
    fn();
    return (performance.now() - t0) / 1000;
  }
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

console.log('type      ours MB/s   ggml MB/s   ours/ggml');
for (const id of types) {
  const t = quantType(id);
  if (!t?.ggml) throw new Error(`not a GGUF type: ${id}`);
  const ours = () => t.codec.encode(x, ROW, importance);
  const theirs = () => ggmlQuantizeChunk(t.ggml!.id, x, ROW, importance);
  if (Buffer.compare(ours(), theirs()) !== 0) throw new Error(`${id}: bytes differ from ggml's`);
  let best = Infinity;
  let bestGgml = Infinity;
  for (let r = 0; r < rounds; r++) {
    best = Math.min(best, seconds(ours));
    bestGgml = Math.min(bestGgml, seconds(theirs));
  }
  const mbs = megabytes / best;
  const ggmlMbs = megabytes / bestGgml;
  console.log(`${id.padEnd(8)} ${mbs.toFixed(2).padStart(10)} ${ggmlMbs.toFixed(2).padStart(11)} ${(mbs / ggmlMbs).toFixed(3).padStart(11)}`);
}
