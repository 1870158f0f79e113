// npx tsx bench/quantize-vs-llama.ts [--preset Q4_K_M] [--threads 2] [--layers 6] [--dir /tmp/quantlab-bench]
//
// `quantlab quantize --preset P` against llama.cpp's own quantizer on the same GGUF, in one
// run on one machine: a synthetic Llama of about 340 MB in F32 (rows of 1024 and 2816,
// vocabulary 8192; built once and kept in --dir), quantized by
//   llama.cpp: llama_model_quantize from the npm build (src/testing/llama-peer.ts), nthread N,
//   quantlab:  bin/quantlab.js quantize --preset P --threads N,
// each in a child process under /usr/bin/time -v (wall time, CPU time, peak RSS; CPU time
// is the fair figure on a machine other work is loading). Both are Node processes (the
// peer under tsx), so each is also run on stories260K (1 MB) first: its start, which the
// second ratio leaves out of both (a real llama-quantize binary starts in milliseconds).
// Checks that the two outputs are byte-identical. Not a test.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeSyntheticLlama } from '../src/testing/synthetic-llama.ts';

const ROOT = join(import.meta.dirname, '..');
const { values } = parseArgs({
  options: {
    preset: { type: 'string', default: 'Q4_K_M' },
    threads: { type: 'string', default: '2' },
    layers: { type: 'string', default: '6' },
    dir: { type: 'string', default: '/tmp/quantlab-bench' },
  },
});
const preset = values.preset!;
const threads = Number(values.threads);
const layers = Number(values.layers);

interface Measured {
  wallS: number;
  /** User + system CPU seconds: what the work costs, whatever else the machine runs. */
  cpuS: number;
  peakRssMiB: number;
}

/** Runs a command under /usr/bin/time -v (which reports on stderr): wall time and peak RSS. */
function timeChild(label: string, command: string[]): Measured {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-v', ...command], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 64 << 20 });
  const wallS = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${label} failed: ${r.stderr.slice(-2000)}`);
  const field = (name: string) => {
    const m = new RegExp(`${name}: ([\\d.]+)`).exec(r.stderr);
    if (!m) throw new Error(`${label}: no '${name}' in /usr/bin/time's output`);
    return Number(m[1]);
  };
  return {
    wallS,
    cpuS: field('User time \\(seconds\\)') + field('System time \\(seconds\\)'),
    peakRssMiB: field('Maximum resident set size \\(kbytes\\)') / 1024,
  };
}

mkdirSync(values.dir!, { recursive: true });
const input = join(values.dir!, `llama-${layers}L-1024x2816.f32.gguf`);
if (!existsSync(input)) {
  console.log(`building ${input} ...`);
  writeSyntheticLlama(input, { nLayer: layers, nEmbd: 1024, nFf: 2816, nHead: 16, nHeadKv: 4, nVocab: 8192, seed: 1 });
}
const inputMiB = statSync(input).size / 2 ** 20;
const theirs = join(values.dir!, `llama.${preset}.gguf`);
const ours = join(values.dir!, `quantlab.${preset}.gguf`);

/** llama.cpp's quantizer in a Node child (the npm build has no llama-quantize binary). */
const peerCommand = (from: string, to: string) => [
  process.execPath, '--import', 'tsx', '--input-type=module', '-e',
  `const { llamaQuantize } = await import(${JSON.stringify(join(ROOT, 'src/testing/llama-peer.ts'))});
llamaQuantize(${JSON.stringify(from)}, ${JSON.stringify(to)}, ${JSON.stringify(preset)}, { threads: ${threads} });`,
];
const quantlabCommand = (from: string, to: string) =>
  [process.execPath, join(ROOT, 'bin/quantlab.js'), 'quantize', from, '-o', to, '--preset', preset, '--threads', String(threads)];

console.log(`input: ${input} (${inputMiB.toFixed(0)} MiB, F32), preset ${preset}, ${threads} threads, ${execFileSync('nproc', { encoding: 'utf8' }).trim()} cores`);
// Each command on a 1 MB model first: what it costs to start (Node, tsx for the peer's
// TypeScript, loading the library or our modules), subtracted below for the work alone.
const tiny = join(ROOT, '../shared/fixtures/models/stories260K.gguf');
const tinyOut = join(values.dir!, `tiny.${preset}.gguf`);
const llamaStart = timeChild('llama.cpp start', peerCommand(tiny, tinyOut));
const quantlabStart = timeChild('quantlab start', quantlabCommand(tiny, tinyOut));
const llama = timeChild('llama.cpp', peerCommand(input, theirs));
const quantlab = timeChild('quantlab', quantlabCommand(input, ours));

const identical = readFileSync(ours).equals(readFileSync(theirs));
const row = (name: string, m: Measured) =>
  `${name.padEnd(22)} ${m.wallS.toFixed(2).padStart(8)} s ${m.cpuS.toFixed(2).padStart(8)} s ${m.peakRssMiB.toFixed(0).padStart(8)} MiB`;
const minus = (a: Measured, b: Measured): Measured => ({ wallS: a.wallS - b.wallS, cpuS: a.cpuS - b.cpuS, peakRssMiB: a.peakRssMiB });
const ratios = (a: Measured, b: Measured) =>
  `wall x${(a.wallS / b.wallS).toFixed(2)}, CPU x${(a.cpuS / b.cpuS).toFixed(2)}, peak RSS x${(a.peakRssMiB / b.peakRssMiB).toFixed(2)}`;
console.log(`load average before: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
console.log(`${''.padEnd(22)} ${'wall'.padStart(10)} ${'CPU'.padStart(10)} ${'peak RSS'.padStart(12)}`);
console.log(row('llama.cpp, 1 MB model', llamaStart) + '   (its start: Node, tsx, the library)');
console.log(row('quantlab, 1 MB model', quantlabStart));
console.log(row('llama.cpp', llama));
console.log(row('quantlab', quantlab));
console.log(`quantlab / llama.cpp, whole runs:         ${ratios(quantlab, llama)}`);
console.log(`quantlab / llama.cpp, less their starts:  ${ratios(minus(quantlab, quantlabStart), minus(llama, llamaStart))}`);
console.log(`outputs byte-identical: ${identical}`);
rmSync(ours, { force: true });
rmSync(theirs, { force: true });
rmSync(tinyOut, { force: true });
