// npm run bench:train [-- --steps N] [--seq N]
// Not a test: training steps per second on the CPU (train/ops.ts, f64) and on WebGPU
// (train/gpu/, f32) in the same run, on stories260K with 64 tokens a step: QAT to q4_0 and
// QLoRA over an NF4 base (rank 4 on q/v/down). A run's rate is (steps - 1) over the time
// from the first step's end to the last's (setup, compilation and held-out scoring left
// out); the ratio is WebGPU's rate over the CPU's. The load average is printed with the
// figures (a shared machine: compare the ratio within one run). Node's WebGPU is Dawn; with
// no GPU it is SwiftShader (a CPU), whose figures say nothing of a real GPU's.
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel, type ModelIndex } from '../src/formats/model.ts';
import { fileSource } from '../src/formats/node-source.ts';
import { FIXTURE_MODELS } from '../src/formats/testing.ts';
import type { GpuContext } from '../src/gpu/device.ts';
import { createNodeGpu } from '../src/gpu/node-gpu.ts';
import { trainQat, type StepRecord } from '../src/train/qat.ts';
import { trainQlora } from '../src/train/qlora.ts';

const { values } = parseArgs({ options: { steps: { type: 'string', default: '12' }, seq: { type: 'string', default: '64' } } });
const steps = Number(values.steps);
const seqLen = Number(values.seq);
if (!(steps >= 2) || !(seqLen >= 2)) throw new Error('--steps needs at least 2, --seq at least 2');

/** Steps per second between the first step's end and the last's. */
async function rate(run: (onStep: (s: StepRecord) => void) => Promise<unknown>): Promise<number> {
  const at: number[] = [];
  await run(() => at.push(performance.now()));
  return ((at.length - 1) * 1000) / (at[at.length - 1] - at[0]);
}

type Trainer = (model: ModelIndex, gpu: GpuContext | undefined, onStep: (s: StepRecord) => void) => Promise<unknown>;
const RUNS: [string, Trainer][] = [
  ['QAT q4_0', (m, gpu, onStep) => trainQat(m, { mode: { type: 'q4_0' }, steps, seqLen, gpu, onStep })],
  ['QLoRA nf4 r4', (m, gpu, onStep) => trainQlora(m, { rank: 4, baseType: 'nf4', targetModules: ['q_proj', 'v_proj', 'down_proj'], steps, seqLen, gpu, onStep })],
];

const model = await loadModel([await fileSource(join(FIXTURE_MODELS, 'stories260K.gguf'))]);
const gpu = await createNodeGpu({ label: 'bench-train' });
console.log(`stories260K, ${seqLen} tokens a step, ${steps} steps; WebGPU: ${gpu.description}`);
console.log('run            CPU steps/s  WebGPU steps/s  WebGPU/CPU  load');
for (const [name, train] of RUNS) {
  const cpu = await rate((onStep) => train(model, undefined, onStep));
  const web = await rate((onStep) => train(model, gpu, onStep));
  console.log(`${name.padEnd(14)} ${cpu.toFixed(2).padStart(11)}  ${web.toFixed(2).padStart(14)}  ${(web / cpu).toFixed(2).padStart(10)}  ${loadavg()[0].toFixed(1)}`);
}
gpu.destroy();
