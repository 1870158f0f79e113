// @vitest-environment happy-dom
// The KL report's table in the page: llama-perplexity's lines in its order, the figures as it
// prints them, the CSV at full precision; the chart's bins the populated range.
import { act, createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { describe, expect, it } from 'vitest';
import { KlAccumulator, klReport } from '../model/kl-report.ts';
import { KlReportView, klReportLines, klReportTableData } from './KlReportView.tsx';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

function sampleReport() {
  const acc = new KlAccumulator();
  for (let i = 0; i < 120; i++) acc.addToken(1 + (i % 7) * 0.1, 1 + (i % 5) * 0.1, 1e-3 * (1 + (i % 11)), i % 9 !== 0);
  acc.endChunk();
  return klReport(acc);
}

describe('KlReportView', () => {
  const report = sampleReport();

  it('lists llama-perplexity\'s statistics in its order', () => {
    expect(klReportLines(report).map((l) => l.label)).toEqual([
      'Mean PPL(Q)', 'Mean PPL(base)', 'Cor(ln(PPL(Q)), ln(PPL(base)))', 'Mean ln(PPL(Q)/PPL(base))', 'Mean PPL(Q)/PPL(base)', 'Mean PPL(Q)-PPL(base)',
      'Mean KLD', 'Maximum KLD', '99.9% KLD', '99.0% KLD', '95.0% KLD', '90.0% KLD', 'Median KLD', '10.0% KLD', '5.0% KLD', '1.0% KLD', '0.1% KLD', 'Minimum KLD',
      'Mean Δp', 'Maximum Δp', '99.9% Δp', '99.0% Δp', '95.0% Δp', '90.0% Δp', '75.0% Δp', 'Median Δp', '25.0% Δp', '10.0% Δp', '5.0% Δp', '1.0% Δp', '0.1% Δp', 'Minimum Δp',
      'RMS Δp', 'Same top p',
    ]);
    const csv = klReportTableData('Q4_K_M', report);
    expect(csv.rows.find((r) => r[2] === 'Same top p')).toEqual(['Q4_K_M', 'Token probability statistics', 'Same top p', report.sameTop.value, report.sameTop.uncertainty]);
  });

  it('renders the table with the figures as llama-perplexity prints them', async () => {
    const host = document.createElement('div');
    document.body.append(host);
    const root = createRoot(host);
    const results = [{ preset: 'Q4_K_M', report }, { preset: 'Q2_K' }] as never;
    await act(async () => root.render(createElement(KlReportView, { results, positions: 120 })));
    const row = (s: string) => host.querySelector(`tr[data-statistic="${s}"]`)!.textContent;
    expect(row('Mean KLD')).toBe(`Mean KLD${report.kldMean.value.toFixed(6)}± ${report.kldMean.uncertainty.toFixed(6)}`);
    expect(row('Same top p')).toBe(`Same top p${(100 * report.sameTop.value).toFixed(3)}%± ${(100 * report.sameTop.uncertainty).toFixed(3)}%`);
    expect(host.querySelectorAll('select[aria-label="KL report preset"] option')).toHaveLength(1); // Q2_K has no report
    expect(host.textContent).toContain('every position of the text (120 tokens, one chunk), against the F32 pass');
    root.unmount();
  });
});
