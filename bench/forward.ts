// npx tsx bench/forward.ts [--tokens N] [--threads N] [--repeat N] [--small] [--no-cli] [--keep DIR]
// (npm run bench:forward; `npm run bench` runs it with --small --no-cli). --threads N: quantlab's
// products on the CLI's forward pool, llama.cpp with N threads, eval and quantize with --threads N.
// Not a test: the CPU forward pass at scale, against llama.cpp.
//
// Writes a seeded random model of Qwen2.5-0.5B's shape (bench/forward-model.ts: qwen2, 24
// layers, n_embd 896, vocabulary 151,936, F32, ~2 GB) to a temporary directory (deleted
// after), then in the same run: quantlab's CPU forward pass (WebAssembly SIMD products,
// model/fast-linear.ts) and llama.cpp's (node-llama-cpp, bench/forward-llama-child.ts) on a
// prompt of N tokens (logits of the last only, both), the same file, the same threads, one
// warm-up evaluation excluded for both, then --repeat timed ones; prints each time, the median's
// tokens/s and the ratio of medians, for quantlab's two ways of summing:
//   default (f64 sums)  what eval and the CLI run: the reference's figures to an f32 ulp
//   f32 sums            llama.cpp's own arithmetic for F32 weights (f32 products and sums): what
//                       `eval --activations ggml` runs on F32 weights (fast-linear.ts Sums; llama.cpp
//                       quantizes no activations for them). Not the default: its logits move eval's
//                       KL figures ~1e-5 relative, past the 1e-6 fast-linear.test.ts holds.
//                       With relaxed SIMD (wasm/build/matmul-relaxed.wasm, where the engine
//                       validates it) each step is one fused multiply-add, as llama.cpp's
//   f32 sums, mul + add the same without relaxed SIMD (quant.wasm's kernel), for comparison
//                       (1 thread only: the pool's workers load what node.ts loads)
// Peak RSS: this process's after quantlab's passes (the file write streams one tensor at a time;
// the f32 weights are the bulk), llama.cpp's child's. Then `quantlab eval --presets Q4_K_M` (a short text) and `quantlab
// quantize --preset Q4_K_M` on it under /usr/bin/time -v: wall time and peak RSS. The load
// average is printed with every figure (a shared machine: compare ratios within one run).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../src/formats/model.ts';
import { fileSource } from '../src/formats/node-source.ts';
import { readFileSync } from 'node:fs';
import { WASM_OUTPUT, WASM_RELAXED_OUTPUT } from '../scripts/build-wasm.mjs';
import { loadFastCodecs } from '../src/quant/fast/node.ts';
import { installFastCodecs, relaxedMatmulInstalled } from '../src/quant/fast/wasm-codecs.ts';
import { fastCpuLinear, fastMatmulAvailable, type Accumulate } from '../src/model/fast-linear.ts';
import { llamaConfig, LlamaModel } from '../src/model/llama.ts';
import { mapProvider, readModelWeights } from '../src/model/weights.ts';
import { ForwardPool, sharedCopy } from '../src/cli/forward-pool.ts';
import { QWEN25_05B, writeShapeGguf, type Shape } from './forward-model.ts';

const { values: args } = parseArgs({
  options: {
    tokens: { type: 'string', default: '64' },
    threads: { type: 'string', default: '1' },
    repeat: { type: 'string', default: '3' },
    small: { type: 'boolean', default: false },
    'no-cli': { type: 'boolean', default: false },
    keep: { type: 'string' },
  },
});
const N = Number(args.tokens);
const THREADS = Number(args.threads);
const REPEAT = Number(args.repeat);
// --small: a reduced shape (4 layers, vocabulary 32,000) to try the bench in seconds.
const SHAPE: Shape = args.small ? { ...QWEN25_05B, nLayer: 4, nVocab: 32000 } : QWEN25_05B;
const ROOT = join(import.meta.dirname, '..');

const load = () => `load ${loadavg().map((v) => v.toFixed(1)).join(' ')}`;
const log = (s: string) => console.log(`${s}  [${load()}]`);

/** Seeded prompt: ids of the real (non-filler) tokens 3..511, BOS first. */
function prompt(n: number): number[] {
  let x = 12345;
  return [1, ...Array.from({ length: n - 1 }, () => {
    x = (x * 1103515245 + 12345) >>> 0;
    return 3 + (x % 509);
  })];
}

/** A way of summing to time: its label, its Accumulate, and whether the relaxed-SIMD products run it. */
interface Mode {
  label: string;
  accumulate: Accumulate;
  relaxed: boolean;
}

/** The modes this run times: the f32 sums twice (relaxed SIMD, then mul + add) where relaxed SIMD loaded and one thread runs. */
function modes(): Mode[] {
  const relaxed = relaxedMatmulInstalled();
  const list: Mode[] = [
    { label: 'default (f64 sums)', accumulate: 'f64', relaxed },
    { label: `f32 sums (--activations ggml${relaxed ? ', relaxed SIMD fused multiply-add' : ''})`, accumulate: 'f32', relaxed },
  ];
  if (relaxed && THREADS === 1) list.push({ label: 'f32 sums, mul + add (without relaxed SIMD)', accumulate: 'f32', relaxed: false });
  return list;
}

/** Install the products with or without the relaxed-SIMD module. */
function useRelaxed(relaxed: boolean): void {
  installFastCodecs(readFileSync(WASM_OUTPUT), relaxed ? readFileSync(WASM_RELAXED_OUTPUT) : null);
}

/** Seconds per forward of each mode (on the pool with --threads N). */
async function ours(file: string, tokens: number[]): Promise<Map<string, number[]>> {
  const model = await loadModel([await fileSource(file)]);
  const config = llamaConfig(model);
  const t0 = performance.now();
  const weights = await readModelWeights(model, config);
  log(`quantlab: read the weights as f32 in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  // --threads N: the CLI's forward pool, the weights moved into shared memory as eval --threads does.
  const pool = THREADS > 1 ? await ForwardPool.start(THREADS) : null;
  if (pool) for (const [name, w] of weights) weights.set(name, sharedCopy(w));
  const provider = mapProvider(weights);
  const out = new Map<string, number[]>();
  try {
    for (const { label, accumulate, relaxed } of modes()) {
      useRelaxed(relaxed);
      const m = new LlamaModel(config, provider, pool ? pool.linear(provider, null, accumulate) : fastCpuLinear(provider, null, undefined, accumulate));
      const seconds: number[] = [];
      for (let i = 0; i <= REPEAT; i++) {
        const t = performance.now();
        await m.forward(tokens, m.newCache(tokens.length));
        if (i > 0) seconds.push((performance.now() - t) / 1000);
      }
      out.set(label, seconds);
    }
  } finally {
    await pool?.close();
  }
  return out;
}

function llamaCpp(file: string, tokens: number[]): { seconds: number[]; maxRssKiB: number } {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/forward-llama-child.ts'), file, String(THREADS), String(REPEAT), tokens.join(',')], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  return JSON.parse(out.trim().split('\n').pop()!) as { seconds: number[]; maxRssKiB: number };
}

/** A command under /usr/bin/time -v: wall seconds and peak RSS (MiB). */
function timed(label: string, argv: string[]): void {
  const r = spawnSync('/usr/bin/time', ['-v', process.execPath, join(ROOT, 'bin/quantlab.js'), ...argv], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 26 });
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)/.exec(r.stderr)?.[1] ?? '?';
  const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1] ?? NaN) / 1024;
  if (r.status !== 0) console.log(`${label}: exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  log(`${label}: wall ${wall}, peak RSS ${rss.toFixed(0)} MiB`);
  if (r.stdout) console.log(r.stdout.trim().split('\n').slice(0, 6).map((l) => `  | ${l}`).join('\n'));
}

/** The median of the timed runs (the lower middle one of an even count). */
const median = (s: number[]) => [...s].sort((a, b) => a - b)[Math.floor((s.length - 1) / 2)];
const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`;

async function main(): Promise<void> {
  if (!(await loadFastCodecs((m) => console.log(m))) || !fastMatmulAvailable()) throw new Error('the WebAssembly module did not load: no fast products to measure');
  const dir = args.keep ?? (await mkdtemp(join(tmpdir(), 'quantlab-forward-')));
  const file = join(dir, 'qwen2.5-0.5b-shape-f32.gguf');
  try {
    let t = performance.now();
    const bytes = await writeShapeGguf(file, SHAPE, 1);
    log(`wrote ${file}: ${(bytes / 2 ** 30).toFixed(2)} GiB (${SHAPE.nLayer} layers, n_embd ${SHAPE.nEmbd}, vocab ${SHAPE.nVocab}) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const tokens = prompt(N);
    const threads = `${THREADS} thread${THREADS === 1 ? '' : 's'}`;
    const ourTimes = await ours(file, tokens);
    for (const [mode, q] of ourTimes) log(`quantlab CPU forward, ${mode}: ${N} tokens in ${q.map((s) => s.toFixed(2)).join(', ')} s -> ${(N / median(q)).toFixed(2)} tokens/s (median; ${threads})`);
    log(`quantlab peak RSS (this process): ${mib(process.resourceUsage().maxRSS)}`);
    const { seconds: l, maxRssKiB } = llamaCpp(file, tokens);
    log(`llama.cpp CPU forward (f32 arithmetic on F32 weights): ${N} tokens in ${l.map((s) => s.toFixed(2)).join(', ')} s -> ${(N / median(l)).toFixed(2)} tokens/s (median; ${threads}); peak RSS ${mib(maxRssKiB)}`);
    for (const [mode, q] of ourTimes) log(`ratio quantlab ${mode} / llama.cpp: ${(median(l) / median(q)).toFixed(3)} (tokens/s, medians; goal >= 0.5)`);
    if (!args['no-cli']) {
      t = performance.now();
      const text = join(dir, 'text.txt');
      await writeFile(text, 'Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine.');
      timed('quantlab eval --presets Q4_K_M (short text, 8 greedy tokens)', ['eval', file, '--presets', 'Q4_K_M', '--text', text, '--tokens', '8', '--threads', String(THREADS)]);
      timed('quantlab quantize --preset Q4_K_M', ['quantize', file, '-o', join(dir, 'q4_k_m.gguf'), '--preset', 'Q4_K_M', '--threads', String(THREADS)]);
    }
  } finally {
    if (!args.keep) await rm(dir, { recursive: true, force: true });
  }
}

await main();
