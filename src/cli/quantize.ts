// `quantlab quantize FILE... -o OUT.gguf (--preset P | --type T) [--tensor-type REGEX=T]...
//  [--imatrix FILE] [--backend cpu|webgpu] [--threads N] [(--gptq [--act-order] | --awq) [--text FILE] [--chunk N]]`:
// the model quantized to a GGUF
// file, byte for byte llama-quantize's (src/export/), with a table of what each
// tensor became and how far its values moved (RMSE against the f32 source). --gptq (with
// --type q4_0|q4_K or --preset Q4_0|Q4_K_S|Q4_K_M): the blk.* linear weights the plan puts
// in q4_0 or q4_K hold GPTQ's blocks from a calibration text instead of round-to-nearest
// (calibrate/gptq-export.ts); the preset's other types are quantized as without it.
// --act-order: GPTQ's columns by decreasing Hessian diagonal, groups static (on the CPU).
// --awq (any --type or --preset): AWQ's input-channel scales, searched on a calibration text
// for each tensor's export type, folded into the norms and the v/up rows
// (calibrate/awq-export.ts); the scaled model is then quantized as usual.
// --smoothquant ALPHA (0..1, any --type or --preset): SmoothQuant's s_j = max|X_j|^α /
// max|W_j|^(1-α) from the calibration text, 1/s folded into attn_norm / ffn_norm and s into
// q/k/v and gate/up's columns (calibrate/smoothquant.ts), then the usual export.
import { didYouMean } from '../formats/suggest.ts';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { CancelledError } from '../engine/cancelled.ts';
import { awqModelJob, exportJob, gptqBlocksJob } from '../engine/jobs/export.ts';
import { smoothQuantModelJob, type SmoothQuantModel } from '../engine/jobs/activations.ts';
import type { JobContext } from '../engine/jobs/job.ts';
import type { Session } from '../engine/session.ts';
import type { ExportProgress, TensorReport } from '../export/write.ts';
import type { ExportRequest } from '../export/plan.ts';
import { exportSourceFor } from '../export/source.ts';
import type { ModelIndex } from '../formats/model.ts';
import { readImatrix } from '../formats/imatrix.ts';
import { fileSource } from '../formats/node-source.ts';
import { FormatError } from '../formats/errors.ts';
import { type PlanMode, type TensorTypeOverride, fileTypeForPureType, gptqPresets, gptqTargetTypes, parseTensorTypeOverride, resolveMode } from '../quant/presets.ts';
import { QUANT_TYPES, quantType } from '../quant/types.ts';
import { type CliIO, type Command, parseBackend, parseCommandLine, UsageError } from './command.ts';
import { openFiles } from './inspect.ts';
import { openSession } from './session.ts';
import { readTextFile } from './text.ts';
import { WorkerPool } from './quantize-pool.ts';
import { progressLine, stderrIsTTY } from './progress.ts';
import type { CalibrationProgress } from '../calibrate/activations.ts';
import type { AwqExport } from '../calibrate/awq-export.ts';
import type { GptqExport } from '../calibrate/gptq-export.ts';

const USAGE =
  'quantlab quantize FILE... -o OUT.gguf (--preset P | --type T | --plan PLAN.json) [--tensor-type REGEX=T]... [--imatrix FILE] [--backend cpu|webgpu] [--threads N] [(--gptq [--act-order] | --awq | --smoothquant ALPHA) [--text FILE] [--chunk N]]';

/** Without --threads, models smaller than this stay in one thread: starting the workers costs more. */
const POOL_MIN_MODEL_BYTES = 64 << 20;

export const quantizeCommand: Command = {
  name: 'quantize',
  summary: "quantize a model to a GGUF file, byte-identical to llama-quantize's",
  usage: USAGE,
  run: (args, io) => runQuantize(args, io, stderrIsTTY(io)),
};

interface QuantizeArgs {
  inputs: string[];
  output: string;
  mode: PlanMode;
  overrides: TensorTypeOverride[];
  imatrix?: string;
  /** `--plan PLAN.json` (quantlab plan's output): its types as --tensor-type overrides over its base preset. */
  plan?: string;
  backend: 'cpu' | 'webgpu';
  /** Worker threads; undefined: one per core for models of POOL_MIN_MODEL_BYTES or more. */
  threads?: number;
  /** `--gptq [--act-order] [--text FILE] [--chunk N]`: GPTQ's Q4_0/Q4_K blocks from that calibration text (default: the built-in one). */
  gptq?: { text?: string; chunk?: number; actOrder: boolean };
  /** `--awq [--text FILE] [--chunk N]`: AWQ's scales from that calibration text, folded, then the usual export. */
  awq?: { text?: string; chunk?: number };
  /** `--smoothquant ALPHA [--text FILE] [--chunk N]`: SmoothQuant's scales at α from that calibration text, folded, then the usual export. */
  smoothquant?: { alpha: number; text?: string; chunk?: number };
}

function parseQuantizeArgs(args: readonly string[]): QuantizeArgs {
  const { positionals, values } = parseCommandLine(args, {
        output: { type: 'string', short: 'o' },
        preset: { type: 'string' },
        type: { type: 'string' },
        'tensor-type': { type: 'string', multiple: true },
        imatrix: { type: 'string' },
        plan: { type: 'string' },
        backend: { type: 'string' },
        threads: { type: 'string' },
        gptq: { type: 'boolean' },
        'act-order': { type: 'boolean' },
        awq: { type: 'boolean' },
        smoothquant: { type: 'string' },
        text: { type: 'string' },
        chunk: { type: 'string' },
      });
  if (!values.output) throw new UsageError('-o OUT.gguf is required');
  if ([values.preset, values.type, values.plan].filter((v) => v !== undefined).length !== 1) {
    throw new UsageError('give one of --preset P or --type T (or --plan PLAN.json)');
  }
  if (values.plan !== undefined && values['tensor-type']?.length) throw new UsageError('--plan names every tensor\'s type: no --tensor-type with it');
  const smooth = values.smoothquant !== undefined;
  if (!values.gptq && !values.awq && !smooth && (values.text !== undefined || values.chunk !== undefined)) throw new UsageError('--text and --chunk go with --gptq or --awq (or --smoothquant)');
  if (values.gptq && values.awq) throw new UsageError('one of --gptq or --awq');
  if (smooth && (values.gptq || values.awq)) throw new UsageError('--smoothquant goes alone: not with --gptq or --awq');
  const alpha = smooth && values.smoothquant!.trim() !== '' ? Number(values.smoothquant) : NaN;
  if (smooth && !(alpha >= 0 && alpha <= 1)) throw new UsageError(`--smoothquant: α must be a number from 0 to 1, not '${values.smoothquant}'`);
  if (smooth && values.plan !== undefined) throw new UsageError('--smoothquant goes with --type or --preset, not --plan');
  if (smooth && values.imatrix !== undefined) throw new UsageError("--smoothquant changes the layers' inputs: an imatrix of the original model does not fit them (no --imatrix with it)");
  if (smooth && values.backend === 'webgpu') throw new UsageError('--smoothquant exports on the CPU: no --backend webgpu with it');
  if (values['act-order'] && !values.gptq) throw new UsageError('--act-order goes with --gptq');
  if (values.awq && values.plan !== undefined) throw new UsageError('--awq goes with --type or --preset, not --plan');
  if (values.awq && values.imatrix !== undefined) throw new UsageError('--awq calibrates on its own text: no --imatrix with it');
  if (values.awq && values.backend === 'webgpu') throw new UsageError('--awq exports on the CPU: no --backend webgpu with it');
  if (values.gptq && values.plan !== undefined) throw new UsageError(`${GPTQ_MODES}, not --plan`);
  if (values.gptq && values.imatrix !== undefined) throw new UsageError('--gptq calibrates on its own text: no --imatrix with it');
  const chunk = values.chunk === undefined ? undefined : Number(values.chunk);
  if (chunk !== undefined && (!Number.isInteger(chunk) || chunk < 16)) throw new UsageError(`--chunk must be a whole number of at least 16 tokens, not '${values.chunk}'`);
  const threads = values.threads === undefined ? undefined : Number(values.threads);
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) {
    throw new UsageError(`--threads must be a positive integer, not '${values.threads}'`);
  }
  return {
    inputs: positionals,
    output: values.output,
    mode: values.plan !== undefined ? { preset: 'Q8_0' } : values.preset !== undefined ? { preset: values.preset } : { type: ggufType(values.type!, '--type') },
    overrides: (values['tensor-type'] ?? []).map(parseOverride),
    imatrix: values.imatrix,
    plan: values.plan,
    backend: parseBackend(values.backend),
    threads,
    gptq: values.gptq ? { text: values.text, chunk, actOrder: values['act-order'] ?? false } : undefined,
    awq: values.awq ? { text: values.text, chunk } : undefined,
    smoothquant: smooth ? { alpha, text: values.text, chunk } : undefined,
  };
}

/**
 * The file types whose blk.* weights GPTQ export can write: the presets whose weights' type is
 * a GPTQ target in the type table (q4_0, q4_K; from the table, so that a refusal imports no
 * calibration code). --type q4_K is Q4_K_M.
 */
const GPTQ_FILE_TYPES: readonly string[] = gptqPresets();
const GPTQ_MODES = `--gptq writes ${gptqTargetTypes().map((t) => t.toUpperCase()).join(' or ')} blocks: it goes with --type ${gptqTargetTypes().join('|')} or --preset ${GPTQ_FILE_TYPES.join('|')}`;

/** --gptq's target: the mode must put the blk.* weights in q4_0 or q4_K. */
function checkGptqMode(mode: PlanMode): void {
  const { ftype } = resolveMode(mode);
  if (!GPTQ_FILE_TYPES.includes(ftype)) {
    const given = 'type' in mode ? `--type ${mode.type}` : `--preset ${mode.preset}`;
    throw new UsageError(`${GPTQ_MODES}, not ${given}`);
  }
}

/** The types `--type` can name: those with a llama.cpp file type (and so a GGUF type id). */
function pureTypes(): string[] {
  return QUANT_TYPES.filter((t) => t.ggml && fileTypeForPureType(t.id)).map((t) => t.id);
}

/** A type id GGUF can store, or a one-line reason why not. */
function ggufType(id: string, what: string): string {
  const t = quantType(id);
  if (!t) throw new UsageError(`${what}: unknown type '${id}'${didYouMean(id, what === '--type' ? pureTypes() : QUANT_TYPES.filter((x) => x.ggml && !x.activationOnly).map((x) => x.id))}`);
  if (!t.ggml) throw new UsageError(`${what}: ${t.id} cannot be stored in GGUF (${t.description}); GGUF types: ${pureTypes().join(' ')}`);
  if (what === '--type' && !fileTypeForPureType(t.id)) {
    throw new UsageError(`${what}: llama.cpp has no file type whose tensors are ${t.id}; one of: ${pureTypes().join(' ')}`);
  }
  return t.id;
}

function parseOverride(arg: string): TensorTypeOverride {
  const sep = arg.indexOf('=');
  if (sep > 0 && sep < arg.length - 1) ggufType(arg.slice(sep + 1), `--tensor-type ${arg}`);
  try {
    return parseTensorTypeOverride(arg);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

async function runQuantize(args: readonly string[], io: CliIO, stderrIsTTY: boolean): Promise<number> {
  const a = parseQuantizeArgs(args);
  if (a.inputs.some((p) => resolve(p) === resolve(a.output))) throw new UsageError('the output file is one of the inputs');
  if (a.gptq) checkGptqMode(a.mode);
  const session = await openSession(a.backend);
  const summary = await session.load(await openFiles(a.inputs));
  const threads = a.threads ?? (summary.totalBytes >= POOL_MIN_MODEL_BYTES ? availableParallelism() : 1);
  const imatrix = a.imatrix === undefined ? undefined : { matrix: await readImatrix(await openImatrix(a.imatrix)), fileArgument: a.imatrix };
  const plan = a.plan === undefined ? undefined : await budgetPlanFromFile(a.plan, session.loadedModel(), imatrix);
  if (plan) {
    a.mode = plan.request.mode;
    a.overrides = [...plan.request.overrides!];
  }
  // Calibrating for --gptq / --awq can take long too: its own progress line first.
  const calibrating = progressLine<CalibrationProgress>(io, stderrIsTTY, (p) => `quantize: ${a.gptq ? 'GPTQ' : a.awq ? 'AWQ' : 'SmoothQuant'} ${p.done}/${p.total}: ${p.label}`);
  const token = new AbortController();
  const onCalibration: JobContext<CalibrationProgress> = { signal: token.signal, onProgress: (p) => calibrating.update(p) };
  let gptq: GptqExport | undefined;
  let awq: AwqExport | undefined;
  let smoothed: SmoothQuantModel | undefined;
  try {
    if (a.gptq) gptq = await gptqBlocks(session, a, a.gptq, onCalibration);
    if (a.awq) awq = await awqModel(session, a, a.awq, onCalibration);
    if (a.smoothquant) smoothed = await smoothQuantModel(session, a.smoothquant, onCalibration);
  } finally {
    calibrating.clear();
  }

  const reports: TensorReport[] = [];
  const progress = progressLine<ExportProgress>(io, stderrIsTTY, (p) =>
    `quantize: ${p.tensorsDone}/${p.tensorCount} tensors, ${Math.floor((100 * p.done) / Math.max(p.total, 1))}% of ${p.total} bytes: ${p.label}`);
  const out = new PartFile(a.output);
  const pool = threads > 1 ? new WorkerPool(threads) : undefined;
  const t0 = performance.now();
  // Ctrl-C / kill: stop at the next slab and remove OUT.part (a second Ctrl-C kills at once).
  const stop = () => token.abort(new CancelledError());
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const bytes = await exportJob(session, {
      mode: a.mode,
      overrides: a.overrides,
      sink: (chunk) => out.write(chunk),
      imatrix,
      precomputed: gptq ?? awq?.precomputed ?? smoothed?.precomputed,
      source: awq?.source ?? smoothed?.source,
      cpu: pool,
      // The table shows each tensor's RMSE: only its sums are needed.
      measure: 'rmse',
      onTensor: (r) => reports.push(r),
    }, { signal: token.signal, onProgress: progress.update });
    if (plan && bytes !== plan.bytes) throw new Error(`the file has ${bytes} bytes, not the ${plan.bytes} the plan predicts`);
    await out.commit();
    progress.clear();
    io.stdout(reportTable(reports));
    if (gptq) {
      const types = Object.entries(gptq.types).map(([type, n]) => `${n} ${type.toUpperCase()}`).join(', ');
      const where = gptq.gpu.tensors > 0 ? `; ${gptq.gpu.tensors} of them on WebGPU (${gptq.gpu.device})` : '';
      io.stdout(`GPTQ${gptq.actOrder ? ' (act-order)' : ''}: ${gptq.tensors.size} tensors' blocks (${types}) from ${gptq.dataset} (${gptq.textTokens} tokens, ${gptq.chunks} chunks of ${gptq.chunk})${where}\n`);
    }
    if (awq) io.stdout(awqSummary(awq));
    if (smoothed) {
      const tensors = smoothed.groups.reduce((n, g) => n + g.linears.length, 0);
      io.stdout(`SmoothQuant: α ${smoothed.alpha}, ${tensors} tensors' columns scaled, 1/s in ${smoothed.groups.length} norms (attn_norm, ffn_norm); attn_output and ffn_down left unsmoothed; from ${smoothed.stats.textTokens} tokens, ${smoothed.stats.chunks} chunks of ${smoothed.stats.chunk}\n`);
    }
    io.stdout(`${a.output}: ${bytes} bytes, ${reports.length} tensors, ${((performance.now() - t0) / 1000).toFixed(2)} s\n`);
    return 0;
  } catch (e) {
    progress.clear();
    await out.discard();
    throw e;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await pool?.close();
  }
}

/** GPTQ's blocks for the tensors the export plan puts in q4_0 or q4_K (on the GPU with --backend webgpu). */
async function gptqBlocks(session: Session, a: QuantizeArgs, options: NonNullable<QuantizeArgs['gptq']>, ctx: JobContext<CalibrationProgress>) {
  const text = options.text === undefined ? undefined : await readTextFile(options.text);
  return gptqBlocksJob(session, { mode: a.mode, overrides: a.overrides, text, dataset: options.text, chunk: options.chunk, actOrder: options.actOrder }, ctx);
}

/** AWQ's scaled model (its export source) for the export plan's types (the calibration modules load only here). */
async function awqModel(session: Session, a: QuantizeArgs, options: NonNullable<QuantizeArgs['awq']>, ctx: JobContext<CalibrationProgress>) {
  const text = options.text === undefined ? undefined : await readTextFile(options.text);
  return awqModelJob(session, { mode: a.mode, overrides: a.overrides, text, dataset: options.text, chunk: options.chunk }, ctx);
}

/** SmoothQuant's smoothed model (its export source; the calibration modules load only here). */
async function smoothQuantModel(session: Session, options: NonNullable<QuantizeArgs['smoothquant']>, ctx: JobContext<CalibrationProgress>) {
  const text = options.text === undefined ? undefined : await readTextFile(options.text);
  return smoothQuantModelJob(session, { alpha: options.alpha, text, chunk: options.chunk, dataset: options.text, source: await exportSourceFor(session.loadedModel()) }, ctx);
}

/** What --awq did: how many linears it scaled, their α, what it left alone and why. */
function awqSummary(awq: AwqExport): string {
  const scaled = awq.groups.reduce((n, g) => n + g.linears.length, 0);
  const alphas = awq.groups.map((g) => g.alpha);
  const lines = [
    `AWQ: ${scaled} tensors scaled in ${awq.groups.length} groups (α ${Math.min(...alphas).toFixed(2)}..${Math.max(...alphas).toFixed(2)}; calibration loss ${sum(awq.groups.map((g) => g.loss)).toExponential(3)}, at α = 0 ${sum(awq.groups.map((g) => g.rtnLoss)).toExponential(3)}) from ${awq.dataset} (${awq.textTokens} tokens, ${awq.chunks} chunks of ${awq.chunk})`,
    ...awq.skipped.map((why) => `AWQ: not scaled: ${why}`),
  ];
  return lines.join('\n') + '\n';
}

const sum = (v: readonly number[]) => v.reduce((a, b) => a + b, 0);

/** A `quantlab plan` JSON file checked against the model: the export request that writes it and the file's size. */
async function budgetPlanFromFile(path: string, model: ModelIndex, imatrix: ExportRequest['imatrix']) {
  const { budgetModel, checkedExportPlan, planExportRequest, planFromJson } = await import('../budget/budget.ts');
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new FormatError(path, 0, `cannot read the plan (${error.code ?? error.message})`);
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FormatError(path, 0, `the plan is not JSON (${(e as Error).message})`);
  }
  const source = await exportSourceFor(model);
  const plan = planFromJson(budgetModel(source, imatrix), json, path);
  checkedExportPlan(source, plan, imatrix);
  return { request: planExportRequest(plan, imatrix), bytes: plan.bytes };
}

async function openImatrix(path: string) {
  return fileSource(path).catch((error: NodeJS.ErrnoException) => {
    throw new FormatError(path, 0, `cannot open the importance matrix (${error.code ?? error.message})`);
  });
}

/** The output, written to OUT.part and renamed when complete, so a failed run leaves no half file. */
class PartFile {
  private handle: Awaited<ReturnType<typeof open>> | null = null;
  private readonly part: string;

  constructor(private readonly path: string) {
    this.part = `${path}.part`;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.handle ??= await open(this.part, 'w');
    for (let done = 0; done < chunk.length; ) {
      const { bytesWritten } = await this.handle.write(chunk, done, chunk.length - done);
      done += bytesWritten;
    }
  }

  async commit(): Promise<void> {
    this.handle ??= await open(this.part, 'w');
    await this.handle.close();
    await rename(this.part, this.path);
  }

  async discard(): Promise<void> {
    await this.handle?.close().catch(() => undefined);
    await rm(this.part, { force: true });
  }
}

/** The per-tensor table: tensor, type, bytes, RMSE against the f32 source, backend. */
export function reportTable(reports: readonly TensorReport[]): string {
  const head = ['tensor', 'type', 'bytes', 'rmse', 'backend'];
  const rows = reports.map((r) => [
    r.name,
    r.sourceType === r.type ? r.type : `${r.sourceType}->${r.type}`,
    String(r.bytes),
    r.rmse === null ? '-' : r.rmse === 0 ? '0' : r.rmse.toExponential(3),
    r.method ?? r.backend,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 2 || i === 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}
