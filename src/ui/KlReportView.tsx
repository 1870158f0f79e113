// The Model output tab's KL report: llama-perplexity --kl-divergence's statistics for one
// preset (its labels, in its order; docs/eval.md) and the distribution of the per-token KLD.
import { useState } from 'react';
import { Bar, BarChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { ModelEval } from '../store/slices/modelOutput.ts';
import { ChartFigure, TableTakeaway } from './Takeaway.tsx';
import type { TableData } from './takeaway.ts';

type Report = NonNullable<ModelEval['results'][number]['report']>;
type Estimate = Report['pplQ'];

/** One line of the report: llama-perplexity's label, the value, its uncertainty (if it prints one), as a fraction or in %. */
interface Line {
  section: string;
  label: string;
  value: number;
  uncertainty?: number;
  percent?: boolean;
}

/** The report's lines in llama-perplexity's order (its summary after the last chunk). */
export function klReportLines(r: Report): Line[] {
  const est = (section: string, label: string, e: Estimate, percent = false): Line => ({ section, label, value: e.value, uncertainty: e.uncertainty, percent });
  const P = 'Perplexity statistics';
  const K = 'KL divergence statistics';
  const T = 'Token probability statistics';
  return [
    est(P, 'Mean PPL(Q)', r.pplQ),
    est(P, 'Mean PPL(base)', r.pplBase),
    { section: P, label: 'Cor(ln(PPL(Q)), ln(PPL(base)))', value: r.lnPplCorrelation, percent: true },
    est(P, 'Mean ln(PPL(Q)/PPL(base))', r.lnPplRatio),
    est(P, 'Mean PPL(Q)/PPL(base)', r.pplRatio),
    est(P, 'Mean PPL(Q)-PPL(base)', r.pplDiff),
    est(K, 'Mean KLD', r.kldMean),
    ...r.kldQuantiles.map((q) => ({ section: K, label: `${q.label} KLD`, value: q.value })),
    est(T, 'Mean Δp', r.pDiffMean, true),
    ...r.pDiffQuantiles.map((q) => ({ section: T, label: `${q.label} Δp`, value: q.value, percent: true })),
    est(T, 'RMS Δp', r.pDiffRms, true),
    est(T, 'Same top p', r.sameTop, true),
  ];
}

/** As llama-perplexity prints it: 6 decimals, or 3 in % (2 for the correlation). */
function shown(v: number, line: Line): string {
  if (!line.percent) return v.toFixed(6);
  return `${(100 * v).toFixed(line.label.startsWith('Cor') ? 2 : 3)}%`;
}

export function klReportTableData(preset: string, r: Report): TableData {
  return {
    header: ['Preset', 'Section', 'Statistic', 'Value', 'Uncertainty'],
    rows: klReportLines(r).map((l) => [preset, l.section, l.label, l.value, l.uncertainty ?? '']),
  };
}

/** Bin edges as the chart's axis shows them: the lower edge, in powers of ten. */
function binLabel(lo: number): string {
  return lo === 0 ? '0' : lo.toExponential(1).replace('e+', 'e');
}

export function KlReportView({ results, positions, chunking }: { results: ModelEval['results']; positions: number; chunking?: ModelEval['chunking'] }) {
  const reported = results.filter((r) => r.report);
  const [chosen, setChosen] = useState<string | null>(null);
  const current = reported.find((r) => r.preset === chosen) ?? reported[0];
  if (!current?.report) return null;
  const report = current.report;
  const lines = klReportLines(report);
  // The first and last bins that hold a token, so the chart shows the populated range.
  const used = report.kldHistogram.map((b, i) => (b.count > 0 ? i : -1)).filter((i) => i >= 0);
  const bins = report.kldHistogram.slice(used[0], used[used.length - 1] + 1).map((b) => ({ bin: binLabel(b.lo), lo: b.lo, hi: b.hi, count: b.count }));
  const scope = chunking
    ? `${chunking.nChunk} chunks of ${chunking.nCtx} tokens, the second half of each scored (${report.count} tokens), against ${chunking.base}`
    : `every position of the text (${positions} tokens, one chunk), against the F32 pass`;
  return (
    <section className="kl-report" aria-label="KL report">
      <div className="row" style={{ margin: '8px 0' }}>
        <label>
          KL report of{' '}
          <select aria-label="KL report preset" value={current.preset} onChange={(e) => setChosen(e.target.value)}>
            {reported.map((r) => (
              <option key={r.preset} value={r.preset}>
                {r.preset}
              </option>
            ))}
          </select>
        </label>
        <span className="muted"> as llama-perplexity --kl-divergence prints it: {scope}.</span>
        <TableTakeaway label="KL report" data={() => klReportTableData(current.preset, report)} />
      </div>
      <div className="grid2">
        <table className="metrics" aria-label="KL report statistics" data-preset={current.preset}>
          <tbody>
            {lines.map((l) => (
              <tr key={l.label} data-statistic={l.label}>
                <td>{l.label}</td>
                <td className="num" data-value={l.value}>
                  {shown(l.value, l)}
                </td>
                <td className="num">{l.uncertainty === undefined ? '' : `± ${shown(l.uncertainty, l)}`}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <ChartFigure label="KLD distribution" caption={`Tokens per KLD bin (quarter decades), ${current.preset} against the base`}>
          <ResponsiveContainer width="100%" height={260}>
            <BarChart data={bins} margin={{ top: 16, right: 16, bottom: 4, left: 4 }}>
              <CartesianGrid strokeDasharray="3 3" stroke="#e5e7eb" />
              <XAxis dataKey="bin" tick={{ fontSize: 10 }} interval="preserveStartEnd" name="KLD from" />
              <YAxis allowDecimals={false} tick={{ fontSize: 11 }} width={40} name="tokens" />
              <Tooltip formatter={(v) => [`${v} tokens`, 'count']} labelFormatter={(l) => `KLD from ${l}`} />
              <Bar dataKey="count" fill="#0072B2" isAnimationActive={false} />
            </BarChart>
          </ResponsiveContainer>
        </ChartFigure>
      </div>
    </section>
  );
}
