// `npm run fuzz [-- --seconds N] [--seed S]`: the long run of the parser fuzzer
// (src/testing/fuzz.ts). The inputs run in a child process that reports each one before it
// starts; a child silent for HANG_MS is killed, its input recorded as a hang, and a new
// child carries on after it. Every finding is written to test-results/fuzz/ as the input's
// bytes plus a line saying how to make it again (run seed + input index).
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { allSeeds, emptyTally, fuzzRange, makeInput, type FuzzTally } from './fuzz.ts';

const HANG_MS = 30_000;
/** Inputs per progress message from the child. */
const BATCH = 200;
const OUT_DIR = join(import.meta.dirname, '../../test-results/fuzz');

type ChildMessage =
  | { kind: 'start'; index: number }
  | { kind: 'batch'; to: number; tally: SerialTally };

type SerialTally = Omit<FuzzTally, 'reasons'> & { reasons: [string, number][] };

async function child(runSeed: number, from: number, deadline: number): Promise<void> {
  const seeds = await allSeeds();
  for (let i = from; Date.now() < deadline; i += BATCH) {
    const tally = emptyTally();
    for (let j = i; j < i + BATCH && Date.now() < deadline; j++) {
      process.send!({ kind: 'start', index: j } satisfies ChildMessage);
      await fuzzRange(seeds, runSeed, j, j + 1, tally);
    }
    process.send!({ kind: 'batch', to: i + tally.inputs, tally: { ...tally, reasons: [...tally.reasons] } } satisfies ChildMessage);
  }
  process.disconnect();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { seconds: { type: 'string', default: '300' }, seed: { type: 'string' }, child: { type: 'boolean' }, from: { type: 'string' }, deadline: { type: 'string' } },
  });
  const runSeed = values.seed === undefined ? (Date.now() % 0x7fffffff) : Number(values.seed);
  if (values.child) return child(runSeed, Number(values.from), Number(values.deadline));

  const deadline = Date.now() + Number(values.seconds) * 1000;
  const seeds = await allSeeds();
  const total = emptyTally();
  const hangs: number[] = [];
  let next = 0;
  console.log(`fuzzing the GGUF and safetensors parsers: ${seeds.length} seeds, run seed ${runSeed}, ${values.seconds} s`);
  while (Date.now() < deadline) {
    const proc = fork(import.meta.filename, ['--child', '--seed', String(runSeed), '--from', String(next), '--deadline', String(deadline)], {
      execArgv: ['--import', 'tsx'],
    });
    let current = next;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => proc.kill('SIGKILL'), HANG_MS);
    };
    arm();
    proc.on('message', (m: ChildMessage) => {
      arm();
      if (m.kind === 'start') current = m.index;
      else {
        next = m.to;
        total.inputs += m.tally.inputs;
        total.parsed += m.tally.parsed;
        total.formatErrors += m.tally.formatErrors;
        for (const [k, v] of m.tally.reasons) total.reasons.set(k, (total.reasons.get(k) ?? 0) + v);
        total.findings.push(...m.tally.findings);
        if (process.stdout.isTTY) process.stdout.write(`\r${total.inputs} inputs, ${total.findings.length + hangs.length} findings`);
      }
    });
    const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
    clearTimeout(timer);
    if (code !== 0 && Date.now() < deadline) {
      // Killed for silence, or died: the input it had started is a finding; go on after it.
      hangs.push(current);
      total.inputs++;
      next = current + 1;
    }
  }
  console.log('');
  mkdirSync(OUT_DIR, { recursive: true });
  const save = (index: number, what: string) => {
    const input = makeInput(seeds, runSeed, index);
    const path = join(OUT_DIR, `${runSeed}-${index}-${input.name}`);
    writeFileSync(path, input.bytes);
    writeFileSync(`${path}.txt`, `${what}\nseed file: ${input.seed}; mutations: ${input.mutations.join(', ')}\nremake: makeInput(await allSeeds(), ${runSeed}, ${index})\n`);
    return path;
  };
  for (const f of total.findings) console.log(`FINDING ${f.outcome.problem}: ${save(f.index, f.outcome.message)}\n  ${f.outcome.message.split('\n')[0]}`);
  for (const index of hangs) console.log(`FINDING hang or crash: ${save(index, `no answer for ${HANG_MS} ms, or the process died`)}`);
  console.log(
    `${total.inputs} inputs: ${total.parsed} parsed, ${total.formatErrors} FormatErrors (${total.reasons.size} distinct reasons), ` +
      `${total.findings.length + hangs.length} findings`,
  );
  process.exitCode = total.findings.length + hangs.length > 0 ? 1 : 0;
}

await main();
