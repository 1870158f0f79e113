// `quantlab calibrate FILE... [--text FILE] [--chunk N] -o IMATRIX.gguf [--json]`: the
// model run over a calibration text (built-in, or a UTF-8 file), the input activations of
// every blk.* weight accumulated as llama.cpp's llama-imatrix does, written as its GGUF
// imatrix (src/calibrate/imatrix.ts), which `quantlab quantize --imatrix` and
// llama-quantize read.
// `--backend webgpu` with -o: the forward pass resident on the GPU, the sums summed there
// (calibrate/imatrix.ts, model/gpu-stats.ts), read back once.
// `--compare [--held-out FILE] [--group N] [--act-order] [--backend cpu|webgpu]` (with or
// without -o): per-layer output MSE on held-out text of RTN, Q4_K, Q4_K + imatrix, AWQ and
// GPTQ at ~4 bits (src/calibrate/compare.ts); with --backend webgpu GPTQ runs on the GPU, as
// the page's Calibration tab runs it (the same job: engine/jobs/calibrate.ts).
// `--activation-stats`: every blk.* linear's per-channel max |x|, per-token range and its
// weights' per-channel max |W| over the calibration text, the outlier channels named
// (calibrate/smoothquant.ts); `--smoothquant-sweep`: W8A8 (Q8_0 weights, per-token INT8
// inputs) KL to F32 on the eval text without SmoothQuant and at α = 0, 0.1, ..., 1.
// Long runs show their progress on stderr (progress.ts).
import { rename, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { BUILTIN_CALIBRATION_DATASET, CALIBRATION_STORY_TEXT as CALIBRATION_TEXT } from '../calibrate/calibration-text.ts';
import type { CalibrationProgress } from '../calibrate/activations.ts';
import { CALIBRATION_METHODS, METHOD_LABELS, type CalibrationComparison } from '../calibrate/compare.ts';
import { calibrationModel, compareCalibrationJob, imatrixJob } from '../engine/jobs/calibrate.ts';
import { activationStatsJob, smoothQuantSweepJob } from '../engine/jobs/activations.ts';
import type { ActivationStats, SmoothQuantSweep } from '../calibrate/smoothquant.ts';
import { uncancelled } from '../engine/jobs/job.ts';
import { withGpuUsage } from '../engine/gpu-usage.ts';
import { type Command, parseBackend, parseCommandLine, UsageError } from './command.ts';
import { openFiles } from './inspect.ts';
import { toJson } from './json.ts';
import { gpuField } from './gpu-json.ts';
import { progressLine, stderrIsTTY } from './progress.ts';
import { openSession } from './session.ts';
import { readTextFile } from './text.ts';

/** imatrix.datasets for the built-in text (llama-imatrix writes the -f file name). */
export const BUILTIN_DATASET = BUILTIN_CALIBRATION_DATASET;

export function parseChunk(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 16) throw new UsageError(`--chunk must be a whole number of at least 16 tokens, not '${value}'`);
  return n;
}

export const calibrateCommand: Command = {
  name: 'calibrate',
  summary: "run a calibration text through the model and write llama-imatrix's importance matrix (GGUF)",
  usage: 'quantlab calibrate FILE... [--text FILE] [--chunk N] [--backend cpu|webgpu] (-o IMATRIX.gguf | --compare [--held-out FILE] [--group 32|64|128] [--act-order] | --activation-stats | --smoothquant-sweep) [--json]',
  async run(args, io) {
    const { positionals, values } = parseCommandLine(args, {
      text: { type: 'string' },
      chunk: { type: 'string' },
      output: { type: 'string', short: 'o' },
      json: { type: 'boolean' },
      compare: { type: 'boolean' },
      'held-out': { type: 'string' },
      group: { type: 'string' },
      'act-order': { type: 'boolean' },
      backend: { type: 'string' },
      'activation-stats': { type: 'boolean' },
      'smoothquant-sweep': { type: 'boolean' },
    });
    if (values['activation-stats'] || values['smoothquant-sweep']) return activationsRun(positionals, values, io);
    if (values.output === undefined && !values.compare) throw new UsageError('-o IMATRIX.gguf is required (or --compare)');
    if (!values.compare && (values['held-out'] !== undefined || values.group !== undefined || values['act-order'])) throw new UsageError('--held-out, --group and --act-order go with --compare');
    const backend = parseBackend(values.backend);
    if (values.output !== undefined && positionals.some((p) => resolve(p) === resolve(values.output!))) throw new UsageError('the output file is one of the inputs');
    const group = values.group === undefined ? undefined : Number(values.group);
    if (group !== undefined && ![32, 64, 128].includes(group)) throw new UsageError(`--group must be 32, 64 or 128, not '${values.group}'`);
    const chunk = parseChunk(values.chunk);
    const text = values.text === undefined ? CALIBRATION_TEXT : await readTextFile(values.text);
    const heldOut = values['held-out'] === undefined ? undefined : await readTextFile(values['held-out']);
    const session = await openSession(backend);
    await session.load(await openFiles(positionals));
    // Opened once for both jobs (the model's weights in f32).
    const cm = await calibrationModel(session);
    const output = values.output;
    const progress = progressLine<CalibrationProgress>(io, stderrIsTTY(io), (p) => `calibrate: ${p.label}`);
    if (values.compare) {
      const actOrder = values['act-order'] ?? false;
      const request = { calibrationText: text, heldOutText: heldOut, chunk, group, actOrder, calibrationModel: cm };
      const r = await compareCalibrationJob(session, request, uncancelled((p) => progress.update(p)));
      progress.clear();
      // Where GPTQ ran, when --backend is given (the docs/contracts.md shape stays as it is without it).
      const gptqRun = values.backend === undefined ? undefined : r.gptq;
      io.stdout(values.json ? `${toJson({ ...comparisonJson(r, gptqRun), ...gpuField(r.gpu) })}\n` : comparisonText(r, gptqRun));
    }
    if (output === undefined) return 0;
    const t0 = performance.now();
    const onProgress = (p: CalibrationProgress) => progress.update({ ...p, label: `imatrix, ${p.label}` });
    const request = { text, chunk, dataset: values.text ?? BUILTIN_DATASET, calibrationModel: cm, onGpu: backend === 'webgpu' };
    const { value: imatrix, gpu } = await withGpuUsage(session, () => imatrixJob(session, request, uncancelled(onProgress)));
    const { stats, bytes } = imatrix;
    progress.clear();
    const part = `${output}.part`;
    await writeFile(part, bytes);
    await rename(part, output);
    const seconds = (performance.now() - t0) / 1000;
    if (values.json && !values.compare) {
      io.stdout(`${toJson({
        output: values.output,
        bytes: bytes.length,
        dataset: stats.datasets[0],
        text_tokens: stats.textTokens,
        chunk_size: stats.chunkSize,
        chunk_count: stats.chunkCount,
        entries: [...stats.sums.keys()].sort().map((name) => ({ name, columns: stats.sums.get(name)!.length, count: stats.counts.get(name)! })),
        ...(values.backend === undefined ? {} : { backend: stats.backend, ...(stats.cpuReason ? { cpu_reason: stats.cpuReason } : {}) }),
        ...gpuField(gpu),
      })}\n`);
    } else if (!values.json) {
      io.stdout(
        `${stats.datasets[0]}: ${stats.textTokens} tokens, ${stats.chunkCount} chunks of ${stats.chunkSize} (${seconds.toFixed(1)} s)\n` +
          `${values.output}: ${bytes.length} bytes, ${stats.sums.size} entries\n` +
          (values.backend === undefined ? '' : `forward pass and sums on ${stats.backend === 'webgpu' ? `WebGPU (${gpu?.adapter})` : `the CPU${stats.cpuReason ? ` (${stats.cpuReason})` : ''}`}\n`),
      );
    }
    return 0;
  },
};

/**
 * The `calibrate --compare --json` shape; with `gptq` (--backend given), `gptq_backend` (where
 * every layer's GPTQ ran: webgpu, or cpu where any ran there), `gptq_device` and `gptq_gpu_layers`.
 */
export function comparisonJson(r: CalibrationComparison, gptq?: CalibrationComparison['gptq']) {
  return {
    calibration: r.calibration,
    held_out: r.heldOut,
    group: r.group,
    gptq_act_order: r.gptq.actOrder,
    f32_ppl: r.model.f32Ppl,
    positions: r.model.positions,
    methods: CALIBRATION_METHODS.map((m) => ({
      method: m,
      label: METHOD_LABELS[m],
      bpw: r.bpw[m],
      total_mse: r.totals[m],
      kl_mean: r.model.methods[m].klMean,
      ppl: r.model.methods[m].ppl,
      top1_agree: r.model.methods[m].top1Agree,
    })),
    layers: r.layers.map((l) => ({ name: l.name, rows: l.rows, cols: l.cols, awq_alpha: l.awqAlpha, mse: l.mse })),
    ...(gptq ? { gptq_backend: gptq.backend, ...(gptq.device ? { gptq_device: gptq.device } : {}), gptq_gpu_layers: gptq.gpuLayers } : {}),
  };
}

function comparisonText(r: CalibrationComparison, gptq?: CalibrationComparison['gptq']): string {
  const head =
    `calibration: ${r.calibration.tokens} tokens, ${r.calibration.chunks} chunks of ${r.calibration.chunk}; ` +
    `held-out: ${r.heldOut.tokens} tokens (${r.heldOut.rows} input rows per layer); INT4 groups of ${r.group}${r.gptq.actOrder ? '; GPTQ in act-order' : ''}\n` +
    `layer output MSE ||XW^T - XQ(W)^T||^2 / (rows * tokens) on the held-out text\n\n`;
  const cols = ['tensor', ...CALIBRATION_METHODS.map((m) => METHOD_LABELS[m]), 'awq_alpha'];
  const rows = r.layers.map((l) => [l.name, ...CALIBRATION_METHODS.map((m) => l.mse[m].toExponential(3)), l.awqAlpha.toFixed(2)]);
  rows.push(['total', ...CALIBRATION_METHODS.map((m) => r.totals[m].toExponential(4)), '']);
  rows.push(['bpw', ...CALIBRATION_METHODS.map((m) => r.bpw[m].toFixed(3)), '']);
  const widths = cols.map((c, i) => Math.max(c.length, ...rows.map((x) => x[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const model = [
    `\nthe whole model on the held-out text (${r.model.positions} positions; blk.* weights quantized, the rest F32; F32 ppl ${r.model.f32Ppl.toFixed(4)}):`,
    ...CALIBRATION_METHODS.map((m) => {
      const s = r.model.methods[m];
      return `  ${METHOD_LABELS[m].padEnd(15)} kl_mean ${s.klMean.toExponential(3)}  ppl ${s.ppl.toFixed(4)}  top1_agree ${(100 * s.top1Agree).toFixed(1)}%`;
    }),
  ];
  const where = gptq ? `\nGPTQ ran on ${gptq.gpuLayers > 0 ? `WebGPU (${gptq.device}) for ${gptq.gpuLayers} of ${gptq.layers} layers` : 'the CPU'}\n` : '';
  return `${head}${[line(cols), ...rows.map(line)].join('\n')}\n${model.join('\n')}\n${where}`;
}

/** `--activation-stats` / `--smoothquant-sweep` (one of them, alone: no -o or --compare with it). */
async function activationsRun(
  positionals: string[],
  values: { text?: string; chunk?: string; json?: boolean; output?: string; compare?: boolean; 'held-out'?: string; group?: string; 'act-order'?: boolean; backend?: string; 'activation-stats'?: boolean; 'smoothquant-sweep'?: boolean },
  io: Parameters<Command['run']>[1],
): Promise<number> {
  if (values['activation-stats'] && values['smoothquant-sweep']) throw new UsageError('one of --activation-stats or --smoothquant-sweep');
  const flag = values['activation-stats'] ? '--activation-stats' : '--smoothquant-sweep';
  if (values.output !== undefined || values.compare || values['held-out'] !== undefined || values.group !== undefined || values['act-order'] || values.backend !== undefined) {
    throw new UsageError(`${flag} goes with --text, --chunk and --json alone`);
  }
  const chunk = parseChunk(values.chunk);
  const text = values.text === undefined ? undefined : await readTextFile(values.text);
  const session = await openSession('cpu');
  await session.load(await openFiles(positionals));
  const progress = progressLine<CalibrationProgress>(io, stderrIsTTY(io), (p) => `calibrate: ${p.label}`);
  const ctx = uncancelled((p: CalibrationProgress) => progress.update(p));
  if (values['activation-stats']) {
    const stats = await activationStatsJob(session, { text, chunk }, ctx);
    progress.clear();
    io.stdout(values.json ? `${toJson(activationStatsJson(stats))}\n` : activationStatsText(stats));
  } else {
    const sweep = await smoothQuantSweepJob(session, { text, chunk }, ctx);
    progress.clear();
    io.stdout(values.json ? `${toJson(sweepJson(sweep))}\n` : sweepText(sweep));
  }
  return 0;
}

/** The `calibrate --activation-stats --json` shape: per linear, per-channel and per-token arrays. */
export function activationStatsJson(s: ActivationStats) {
  return {
    text_tokens: s.textTokens,
    chunk_size: s.chunk,
    chunk_count: s.chunks,
    linears: s.linears.map((l) => ({
      name: l.name,
      layer: l.layer,
      columns: l.cols,
      outlier_channels: l.outliers,
      act_abs_max: l.actMax,
      weight_abs_max: l.weightMax,
      token_min: l.tokenMin,
      token_max: l.tokenMax,
    })),
  };
}

function median(a: ArrayLike<number>): number {
  const s = Float64Array.from(a).sort();
  return s.length % 2 ? s[(s.length - 1) / 2] : 0.5 * (s[s.length / 2 - 1] + s[s.length / 2]);
}

function activationStatsText(s: ActivationStats): string {
  const cols = ['tensor', 'cols', 'max|x|', 'median max|x|', 'token min', 'token max', 'max|W|', 'outlier channels'];
  const rows = s.linears.map((l) => [
    l.name,
    String(l.cols),
    Math.max(...l.actMax).toPrecision(4),
    median(l.actMax).toPrecision(4),
    Math.min(...l.tokenMin).toPrecision(4),
    Math.max(...l.tokenMax).toPrecision(4),
    Math.max(...l.weightMax).toPrecision(4),
    l.outliers.length > 8 ? `${l.outliers.slice(0, 8).join(' ')} ... (${l.outliers.length})` : l.outliers.join(' ') || '-',
  ]);
  const widths = cols.map((c, i) => Math.max(c.length, ...rows.map((x) => x[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return (
    `calibration text: ${s.textTokens} tokens, ${s.chunks} chunks of ${s.chunk}; per input channel max |x| over its tokens, ` +
    `each token's smallest and largest value, the weights' per-channel max |W|; outliers: max |x| >= 10x the median channel\n\n` +
    `${[line(cols), ...rows.map(line)].join('\n')}\n`
  );
}

/** The `calibrate --smoothquant-sweep --json` shape. */
export function sweepJson(s: SmoothQuantSweep) {
  const point = (p: SmoothQuantSweep['without']) => ({ alpha: p.alpha, kl_mean: p.klMean, top1_agree: p.top1Agree });
  return { preset: s.preset, activations: s.activations, positions: s.positions, without: point(s.without), sweep: s.points.map(point), best: point(s.best) };
}

function sweepText(s: SmoothQuantSweep): string {
  const row = (label: string, p: SmoothQuantSweep['without']) => `  ${label.padEnd(22)} kl_mean ${p.klMean.toExponential(3)}  top1_agree ${(100 * p.top1Agree).toFixed(1)}%`;
  return [
    `W8A8: ${s.preset} weights, per-token INT8 activations (eval --activations int8); KL to F32 on the eval text (${s.positions} positions)`,
    row('without SmoothQuant', s.without),
    ...s.points.map((p) => row(`SmoothQuant α = ${p.alpha!.toFixed(1)}`, p)),
    `best α ${s.best.alpha!.toFixed(1)}: kl_mean ${s.best.klMean.toExponential(3)} (without: ${s.without.klMean.toExponential(3)})`,
    '',
  ].join('\n');
}
