// `quantlab eval ... --ctx N`, `--kl-divergence-base FILE [--save-logits]`: llama-perplexity's
// KL mode (tools/perplexity/perplexity.cpp). --ctx N chunks the text as perplexity.cpp does;
// --kl-divergence-base FILE scores the presets against a `_logits_` file (made by
// `llama-perplexity --kl-divergence-base FILE` or by quantlab); with --save-logits it writes
// FILE from the F32 pass instead. The report is printed as llama-perplexity prints it.
import { readFile, writeFile } from 'node:fs/promises';
import { FormatError } from '../formats/errors.ts';
import type { EvalOptions, ModelEval, PresetEval } from '../model/eval.ts';
import { formatChunkLines, formatKlReport, type Estimate, type KlReport } from '../model/kl-report.ts';
import { readLogitsFile, writeLogitsFile } from '../model/logits-file.ts';
import { UsageError } from './command.ts';

export const KL_OPTIONS = {
  ctx: { type: 'string' },
  'kl-divergence-base': { type: 'string' },
  'save-logits': { type: 'boolean' },
} as const;

export interface KlFlags {
  ctx?: string;
  'kl-divergence-base'?: string;
  'save-logits'?: boolean;
}

export type KlEvalOptions = Pick<EvalOptions, 'ctx' | 'klBase' | 'saveLogits'>;

/** The eval options these flags ask for (reading the base file now: a bad file fails before any pass runs). */
export async function klEvalOptions(flags: KlFlags): Promise<KlEvalOptions> {
  const base = flags['kl-divergence-base'];
  const save = flags['save-logits'] === true;
  let ctx: number | undefined;
  if (flags.ctx !== undefined) {
    ctx = Number(flags.ctx);
    if (!Number.isInteger(ctx) || ctx < 4) throw new UsageError(`--ctx must be a whole number of at least 4, not '${flags.ctx}'`);
  }
  if (save && base === undefined) throw new UsageError('--save-logits needs --kl-divergence-base FILE (where to write)');
  if (save && ctx === undefined) throw new UsageError('--save-logits needs --ctx N (the base file holds chunks of N tokens)');
  if (base !== undefined && !save) {
    if (ctx !== undefined) throw new UsageError(`--ctx comes from the base file when reading one (leave it out, or add --save-logits to write ${base})`);
    const bytes = await readFile(base).catch((e: NodeJS.ErrnoException) => {
      throw new FormatError(base, 0, `cannot read the base log-probs (${e.code ?? e.message})`);
    });
    return { klBase: { file: readLogitsFile(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), base), name: base } };
  }
  return { ctx, saveLogits: save };
}

/** Writes the F32 pass's base file when --save-logits asked for it; returns its path. */
export async function saveKlBase(flags: KlFlags, result: Pick<ModelEval, 'logitsFile'>): Promise<string | undefined> {
  const path = flags['kl-divergence-base'];
  if (!flags['save-logits'] || path === undefined || !result.logitsFile) return undefined;
  await writeFile(path, writeLogitsFile(result.logitsFile));
  return path;
}

type Reported = Pick<ModelEval, 'chunking'> & { results: Pick<PresetEval, 'preset' | 'report'>[] };

/** After the eval's table: per preset, llama-perplexity's chunk lines and summary. */
export function klText(r: Reported, saved?: string): string {
  if (!r.chunking) return '';
  const { nCtx, nChunk, base } = r.chunking;
  const out: string[] = [];
  if (saved) out.push(`\nsaved the F32 pass's log-probs to ${saved} (llama-perplexity _logits_: n_ctx ${nCtx}, ${nChunk} chunks)`);
  for (const p of r.results) {
    if (!p.report) continue;
    out.push(`\n${p.preset} against ${base} (n_ctx ${nCtx}, ${nChunk} chunks, ${p.report.count} tokens scored), as llama-perplexity --kl-divergence:`);
    out.push(formatChunkLines(p.report));
    if (p.report.count < 100) out.push(`(llama-perplexity prints no summary under 100 scored tokens; ${p.report.count} here)`);
    out.push(formatKlReport(p.report));
  }
  return `${out.join('\n')}`;
}

const est = (e: Estimate) => ({ value: e.value, uncertainty: e.uncertainty });

/** The report in the JSON: snake_case, every figure at full precision, the percentiles by label. */
export function klReportJson(r: KlReport) {
  return {
    count: r.count,
    ppl_q: est(r.pplQ),
    ppl_base: est(r.pplBase),
    ln_ppl_correlation: r.lnPplCorrelation,
    ln_ppl_ratio: est(r.lnPplRatio),
    ppl_ratio: est(r.pplRatio),
    ppl_diff: est(r.pplDiff),
    kld_mean: est(r.kldMean),
    kld_percentiles: Object.fromEntries(r.kldQuantiles.map((q) => [q.label, q.value])),
    p_diff_mean: est(r.pDiffMean),
    p_diff_percentiles: Object.fromEntries(r.pDiffQuantiles.map((q) => [q.label, q.value])),
    p_diff_rms: est(r.pDiffRms),
    same_top: est(r.sameTop),
    chunks: r.chunks.map((c) => ({ ppl: est(c.ppl), ln_ppl_ratio: est(c.lnPplRatio), kld: est(c.kld), p_diff_rms: est(c.rmsPDiff), same_top: est(c.sameTop) })),
  };
}

/** Fields the JSON gains in KL mode: `chunking`, `kl_reports` by preset, `saved_logits`. */
export function klJson(r: Reported, saved?: string) {
  if (!r.chunking) return {};
  return {
    chunking: { n_ctx: r.chunking.nCtx, n_chunk: r.chunking.nChunk, base: r.chunking.base },
    kl_reports: Object.fromEntries(r.results.filter((p) => p.report).map((p) => [p.preset, klReportJson(p.report!)])),
    ...(saved ? { saved_logits: saved } : {}),
  };
}
