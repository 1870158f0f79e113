// `quantlab train FILE... (--qat TYPE | --preset P) --steps N [--lr X] [--text F] [--loss kl|ce]
//  [--seq N] [--seed N] [--backend cpu|webgpu] -o OUT.gguf [--json]`: quantization-aware training
// on the CPU or (--backend webgpu) on WebGPU (src/train/qat.ts, src/train/gpu/) of a GGUF model (llama, qwen2, qwen3; WebGPU: llama), for the plan of a pure type or a file type, then
// the GGUF of the trained model (src/train/export.ts: the last step's blocks, which llama.cpp
// runs). `--lora RANK --base-type T`: QLoRA (src/train/qlora.ts), a frozen base held as T's
// blocks with LoRA adapters trained on top, written as a GGUF LoRA adapter (and PEFT files
// with --peft DIR). Progress on stderr; the file is written to OUT.part and renamed when complete, so a
// failure, a diverging learning rate or Ctrl-C leaves nothing half-written.
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CancelledError } from '../engine/cancelled.ts';
import { writeStream } from '../export/write.ts';
import type { GpuUsage } from '../engine/types.ts';
import { loadModel } from '../formats/model.ts';
import { gpuCounters, gpuCountersSince } from '../gpu/counters.ts';
import type { GpuContext } from '../gpu/device.ts';
import { didYouMean } from '../formats/suggest.ts';
import { pureFileTypes, type PlanMode } from '../quant/presets.ts';
import { QUANT_TYPES, quantType } from '../quant/types.ts';
import { qatFileChunks, qloraFiles } from '../train/files.ts';
import { trainQat, type QatLoss, type StepRecord, type TrainingRunOptions } from '../train/qat.ts';
import { trainQlora } from '../train/qlora.ts';
import { type BackendChoice, type CliIO, type Command, parseBackend, parseCommandLine, UsageError } from './command.ts';
import { gpuField } from './gpu-json.ts';
import { openFiles } from './inspect.ts';
import { toJson } from './json.ts';
import { progressLine, stderrIsTTY } from './progress.ts';
import { readTextFile } from './text.ts';

const USAGE =
  'quantlab train FILE... (--qat TYPE | --preset P | --lora RANK --base-type nf4|q4_K|TYPE [--alpha A] [--targets q_proj,v_proj,...] [--dropout P] [--peft DIR]) --steps N [--lr X] [--text FILE] [--loss kl|ce] [--seq N] [--seed N] [--backend cpu|webgpu] -o OUT.gguf [--json]';

export const trainCommand: Command = {
  name: 'train',
  summary: 'quantization-aware training (QAT) or QLoRA on the CPU or WebGPU, exported as a GGUF (model or LoRA adapter) llama.cpp runs',
  usage: USAGE,
  run: (args, io) => runTrain(args, io),
};

interface TrainArgs {
  inputs: string[];
  output: string;
  mode: PlanMode;
  lora?: LoraArgs;
  steps: number;
  lr?: number;
  text?: string;
  loss: QatLoss;
  seqLen?: number;
  seed?: number;
  backend: BackendChoice;
  json: boolean;
}

interface LoraArgs {
  rank: number;
  alpha?: number;
  targets?: string[];
  baseType: string;
  dropout?: number;
  peft?: string;
}

function positiveInteger(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${what} must be a positive whole number, not '${value}'`);
  return n;
}

/** A type `--qat` can name: one with a llama.cpp file type, so that the result is a GGUF. */
function qatType(id: string): string {
  const storable = pureFileTypes();
  const t = quantType(id);
  if (!t) throw new UsageError(`--qat: unknown type '${id}'${didYouMean(id, storable)}`);
  if (!storable.includes(t.id)) throw new UsageError(`--qat: ${t.id} has no llama.cpp file type; one of: ${storable.join(' ')}`);
  return t.id;
}

function parseTrainArgs(args: readonly string[]): TrainArgs {
  const { positionals, values } = parseCommandLine(args, {
    output: { type: 'string', short: 'o' },
    qat: { type: 'string' },
    preset: { type: 'string' },
    steps: { type: 'string' },
    lr: { type: 'string' },
    text: { type: 'string' },
    loss: { type: 'string' },
    seq: { type: 'string' },
    seed: { type: 'string' },
    json: { type: 'boolean' },
    backend: { type: 'string' },
    lora: { type: 'string' },
    alpha: { type: 'string' },
    targets: { type: 'string' },
    'base-type': { type: 'string' },
    dropout: { type: 'string' },
    peft: { type: 'string' },
  });
  if (!values.output) throw new UsageError('-o OUT.gguf is required');
  const lora = values.lora !== undefined ? parseLoraArgs(values) : undefined;
  if (lora ? values.qat !== undefined || values.preset !== undefined : (values.qat === undefined) === (values.preset === undefined)) {
    throw new UsageError('give one of --qat TYPE, --preset P or --lora RANK');
  }
  if (!lora) {
    const stray = (['alpha', 'targets', 'base-type', 'dropout', 'peft'] as const).find((k) => values[k] !== undefined);
    if (stray) throw new UsageError(`--${stray} goes with --lora RANK`);
  }
  const steps = positiveInteger(values.steps, '--steps');
  if (steps === undefined) throw new UsageError('--steps N is required');
  const lr = values.lr === undefined ? undefined : Number(values.lr);
  if (lr !== undefined && !(lr > 0 && Number.isFinite(lr))) throw new UsageError(`--lr must be a positive number, not '${values.lr}'`);
  const loss = values.loss ?? 'kl';
  if (loss !== 'kl' && loss !== 'ce') throw new UsageError(`--loss must be kl or ce, not '${loss}'`);
  const seed = values.seed === undefined ? undefined : Number(values.seed);
  if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32)) throw new UsageError(`--seed must be a whole number from 0 to 2^32-1, not '${values.seed}'`);
  return {
    inputs: positionals,
    output: values.output,
    mode: lora ? { type: 'f32' } : values.qat !== undefined ? { type: qatType(values.qat) } : { preset: values.preset! },
    lora,
    steps,
    lr,
    text: values.text,
    loss,
    seqLen: positiveInteger(values.seq, '--seq'),
    seed,
    backend: parseBackend(values.backend),
    json: values.json ?? false,
  };
}

function parseLoraArgs(values: { lora?: string; alpha?: string; targets?: string; 'base-type'?: string; dropout?: string; peft?: string }): LoraArgs {
  const rank = Number(values.lora);
  if (!Number.isInteger(rank) || rank < 1) throw new UsageError(`--lora: the rank must be a whole number >= 1, not '${values.lora}'`);
  const alpha = values.alpha === undefined ? undefined : Number(values.alpha);
  if (alpha !== undefined && !(alpha > 0 && Number.isFinite(alpha))) throw new UsageError(`--alpha must be a positive number, not '${values.alpha}'`);
  const dropout = values.dropout === undefined ? undefined : Number(values.dropout);
  if (dropout !== undefined && !(dropout >= 0 && dropout < 1)) throw new UsageError(`--dropout must be a number in [0, 1), not '${values.dropout}'`);
  const baseType = values['base-type'];
  if (baseType === undefined) throw new UsageError('--base-type nf4|q4_K is required with --lora');
  const type = quantType(baseType);
  if (!type) throw new UsageError(`--base-type: '${baseType}' is not a type with a codec in quantlab${didYouMean(baseType, QUANT_TYPES.map((t) => t.id))}`);
  const targets = values.targets?.split(',').map((t) => t.trim()).filter((t) => t !== '');
  return { rank, alpha, targets, baseType: type.id, dropout, peft: values.peft };
}

/** A run's cancel token (Ctrl-C, SIGTERM; `release` stops listening) and its progress line, one step at a time. */
function trainingRun(io: CliIO) {
  const token = new AbortController();
  const stop = () => token.abort(new CancelledError());
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const progress = progressLine<StepRecord>(io, stderrIsTTY(io), (s) => `train: step ${s.step}/${s.steps}, loss ${s.loss.toFixed(5)}, lr ${s.lr.toExponential(2)}`);
  const release = () => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  };
  return { token, progress, release };
}

/** What every training run takes from the command line. */
function runOptions(a: TrainArgs, text: string | undefined, signal: AbortSignal, onStep: (s: StepRecord) => void, gpu: GpuContext | undefined): TrainingRunOptions {
  return { steps: a.steps, lr: a.lr, loss: a.loss, text, dataset: a.text, seqLen: a.seqLen, seed: a.seed, signal, onStep, gpu };
}

/** --backend webgpu: Dawn's device (loaded only then; no adapter is an error, not a CPU run) and what the run cost it, for --json's "gpu". */
async function trainingGpu(backend: BackendChoice) {
  if (backend !== 'webgpu') return { gpu: undefined, usage: () => null };
  const gpu = await (await import('../gpu/node-gpu.ts')).createNodeGpu();
  const before = gpuCounters(gpu.device);
  return { gpu, usage: (): GpuUsage => ({ adapter: gpu.description, ...gpuCountersSince(gpu.device, before) }) };
}

async function runTrain(args: readonly string[], io: CliIO): Promise<number> {
  const a = parseTrainArgs(args);
  if (a.inputs.some((p) => resolve(p) === resolve(a.output))) throw new UsageError('the output file is one of the inputs');
  const model = await loadModel(await openFiles(a.inputs, io));
  const text = a.text === undefined ? undefined : await readTextFile(a.text);
  const device = await trainingGpu(a.backend);
  try {
    return a.lora ? await runQlora(a, a.lora, model, text, io, device) : await runQat(a, model, text, io, device);
  } finally {
    device.gpu?.destroy();
  }
}

type TrainingGpu = Awaited<ReturnType<typeof trainingGpu>>;

async function runQat(a: TrainArgs, model: Awaited<ReturnType<typeof loadModel>>, text: string | undefined, io: CliIO, device: TrainingGpu): Promise<number> {
  const { token, progress, release } = trainingRun(io);
  const part = `${a.output}.part`;
  const t0 = performance.now();
  try {
    const result = await trainQat(model, {
      mode: a.mode,
      ...runOptions(a, text, token.signal, progress.update, device.gpu),
    });
    progress.clear();
    const trainSeconds = (performance.now() - t0) / 1000;
    const handle = await open(part, 'w');
    let bytes: number;
    try {
      bytes = await writeStream(qatFileChunks(result, a.mode, token.signal), async (chunk) => {
        for (let done = 0; done < chunk.length; ) done += (await handle.write(chunk, done, chunk.length - done)).bytesWritten;
      });
    } finally {
      await handle.close();
    }
    await rename(part, a.output);
    const summary = {
      output: a.output,
      bytes,
      mode: 'type' in a.mode ? { type: a.mode.type } : { preset: a.mode.preset },
      loss: result.options.loss,
      steps: result.options.steps,
      lr: result.options.lr,
      warmup: result.options.warmup,
      seqLen: result.options.seqLen,
      seed: result.options.seed,
      dataset: result.options.dataset,
      trainTokens: result.trainTokens,
      evalTokens: result.evalTokens,
      losses: result.losses,
      heldOut: { f32: { ppl: result.f32Ppl }, ptq: result.before, qat: result.after },
      trainSeconds,
      stepsPerSecond: result.options.steps / trainSeconds,
      backend: result.backend,
      ...gpuField(device.usage()),
    };
    if (a.json) io.stdout(`${toJson(summary)}\n`);
    else io.stdout(humanSummary(summary));
    return 0;
  } catch (e) {
    progress.clear();
    await rm(part, { force: true });
    throw e;
  } finally {
    release();
  }
}

function humanSummary(s: {
  output: string;
  bytes: number;
  steps: number;
  loss: string;
  losses: number[];
  heldOut: { f32: { ppl: number }; ptq: { kl: number; ppl: number }; qat: { kl: number; ppl: number } };
  trainSeconds: number;
  stepsPerSecond: number;
  backend: string;
}): string {
  const h = s.heldOut;
  return [
    `QAT: ${s.steps} step${s.steps === 1 ? '' : 's'} (${s.loss} loss ${s.losses[0].toFixed(5)} -> ${s.losses[s.losses.length - 1].toFixed(5)}), ${s.trainSeconds.toFixed(1)} s (${s.stepsPerSecond.toFixed(2)} steps/s on ${s.backend})`,
    `held-out text    KL vs F32   PPL`,
    `F32              ${'-'.padEnd(10)}  ${h.f32.ppl.toFixed(4)}`,
    `PTQ (rounding)   ${h.ptq.kl.toFixed(6).padEnd(10)}  ${h.ptq.ppl.toFixed(4)}`,
    `QAT              ${h.qat.kl.toFixed(6).padEnd(10)}  ${h.qat.ppl.toFixed(4)}`,
    `${s.output}: ${s.bytes} bytes`,
  ].join('\n') + '\n';
}

/** Writes the chunks to PATH.part and renames it to PATH once complete; a failure leaves neither. */
async function writePart(path: string, chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<number> {
  const part = `${path}.part`;
  const handle = await open(part, 'w');
  let bytes = 0;
  try {
    for await (const chunk of chunks) {
      for (let done = 0; done < chunk.length; ) done += (await handle.write(chunk, done, chunk.length - done)).bytesWritten;
      bytes += chunk.length;
    }
    await handle.close();
    await rename(part, path);
    return bytes;
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(part, { force: true });
    throw error;
  }
}

/** `--lora RANK`: QLoRA, then ADAPTER.gguf (and the PEFT files). */
async function runQlora(a: TrainArgs, l: LoraArgs, model: Awaited<ReturnType<typeof loadModel>>, text: string | undefined, io: CliIO, device: TrainingGpu): Promise<number> {
  if (model.format !== 'gguf') throw new Error('QLoRA writes a GGUF adapter for a GGUF base: convert a safetensors model to GGUF first (quantlab quantize --type f32)');
  const { token, progress, release } = trainingRun(io);
  const t0 = performance.now();
  try {
    const result = await trainQlora(model, {
      rank: l.rank,
      alpha: l.alpha,
      targetModules: l.targets,
      baseType: l.baseType,
      dropout: l.dropout,
      ...runOptions(a, text, token.signal, progress.update, device.gpu),
    });
    progress.clear();
    const trainSeconds = (performance.now() - t0) / 1000;
    const files = qloraFiles(result, model);
    const bytes = await writePart(a.output, files.adapterChunks());
    if (l.peft) {
      await mkdir(l.peft, { recursive: true });
      for (const [name, contents] of Object.entries(files.peft())) await writePart(join(l.peft, name), [contents]);
    }
    const o = result.options;
    const summary = {
      output: a.output,
      bytes,
      ...(l.peft ? { peft: l.peft } : {}),
      lora: { rank: result.adapter.rank, alpha: result.adapter.alpha, targets: result.adapter.targetModules, dropout: o.dropout, tensors: result.adapter.weights.size },
      baseType: result.baseType,
      quantizedTensors: result.quantized.length,
      loss: o.loss,
      steps: o.steps,
      lr: o.lr,
      warmup: o.warmup,
      seqLen: o.seqLen,
      seed: o.seed,
      dataset: o.dataset,
      trainTokens: result.trainTokens,
      evalTokens: result.evalTokens,
      losses: result.losses,
      heldOut: { f32: { ppl: result.f32Ppl }, base: result.before, adapted: result.after },
      trainSeconds,
      stepsPerSecond: o.steps / trainSeconds,
      backend: result.backend,
      ...gpuField(device.usage()),
    };
    if (a.json) io.stdout(`${toJson(summary)}\n`);
    else {
      const h = summary.heldOut;
      io.stdout(
        [
          `QLoRA: rank ${summary.lora.rank} on ${summary.lora.targets.join(',')} over a ${summary.baseType} base, ${o.steps} step${o.steps === 1 ? '' : 's'} (${o.loss} loss ${result.losses[0].toFixed(5)} -> ${result.losses[result.losses.length - 1].toFixed(5)}), ${trainSeconds.toFixed(1)} s on ${result.backend}`,
          `held-out text            KL vs F32   PPL`,
          `F32                      ${'-'.padEnd(10)}  ${h.f32.ppl.toFixed(4)}`,
          `${`${summary.baseType} base`.padEnd(25)}${h.base.kl.toFixed(6).padEnd(10)}  ${h.base.ppl.toFixed(4)}`,
          `${`${summary.baseType} base + adapter`.padEnd(25)}${h.adapted.kl.toFixed(6).padEnd(10)}  ${h.adapted.ppl.toFixed(4)}`,
          `${a.output}: ${bytes} bytes${l.peft ? `; PEFT files in ${l.peft}` : ''}`,
        ].join('\n') + '\n',
      );
    }
    return 0;
  } catch (e) {
    progress.clear();
    throw e;
  } finally {
    release();
  }
}
