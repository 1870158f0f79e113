import { useState } from 'react';
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { useApp } from '../store/store.ts';
import { ExportPanel } from './ExportPanel.tsx';
import { formatBytes, formatMetric } from './format.ts';
import { JobProgress } from './JobProgress.tsx';
import { ErrorAlert } from './Status.tsx';
import { ChartFigure, TableTakeaway } from './Takeaway.tsx';
import type { TableData } from './takeaway.ts';

type BudgetPlan = NonNullable<NonNullable<ReturnType<typeof useApp.getState>['budget']['result']>['plan']>;

/** The plan beside the presets, at full precision (empty cells where nothing was measured). */
export function budgetSummaryData({ plan: p, report: r }: BudgetPlan, damageName: string): TableData {
  return {
    header: ['Row', 'File size (bytes)', 'bits/weight', `Predicted ${damageName}`, 'Measured KL'],
    rows: [
      ['Budget plan', p.bytes, p.bpw, p.damage.predicted, r.measured?.kl_mean ?? ''],
      ...r.presets.map((x) => [x.preset, x.bytes, x.bpw, x.predicted ?? '', x.measured_kl ?? '']),
    ],
  };
}

/** The type of each tensor in the plan, with what it costs alone. */
export function budgetTensorsData({ plan: p }: BudgetPlan, damageName: string, withError: boolean): TableData {
  return {
    header: ['Tensor', 'Type', 'Bytes', `${damageName} alone`, ...(withError ? ['Tensor error (sum err^2)'] : [])],
    rows: p.tensors.map((t) => [t.name, t.type, t.bytes, t.damage, ...(withError ? [t.error ?? ''] : [])]),
  };
}

function download(name: string, text: string) {
  const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** Mixed precision by budget: a type per tensor that fits a file size with the least damage (src/budget). */
export function BudgetTab() {
  const scan = useApp((s) => s.budget.result?.scan ?? null);
  const plan = useApp((s) => s.budget.result?.plan ?? null);
  const error = useApp((s) => s.budget.error);
  const running = useApp((s) => s.budget.status === 'running');
  const unit = useApp((s) => s.budget.unit);
  const value = useApp((s) => s.budget.value);
  const [copied, setCopied] = useState(false);
  const { scanBudget: runScan, setBudgetTarget } = useApp.getState();
  const setUnit = (unit: 'bytes' | 'bpw') => setBudgetTarget({ unit });
  const setValue = (value: string) => setBudgetTarget({ value });

  const runPlan = (target: { bytes: number } | { bpw: number }) => {
    setCopied(false);
    return useApp.getState().planBudget(target);
  };

  const submit = () => {
    setCopied(false);
    void useApp.getState().planBudgetTarget();
  };

  const damageName = scan?.kind === 'kl' ? 'KL' : 'error';
  const p = plan?.plan;
  const r = plan?.report;
  return (
    <section className="panel" aria-label="Budget">
      <p className="muted">
        Pick a type for every tensor so that the GGUF file fits a size (or bits per weight) with the least damage. The scan
        quantizes each tensor alone in each type llama.cpp can write and measures what it costs: the KL divergence of the
        model's predictions on a short calibration text where this page can run the model (Llama), the tensor's error
        otherwise. The plan is then measured on a different text, beside llama.cpp's presets.
      </p>
      <div className="row" style={{ margin: '8px 0' }}>
        <button type="button" className="primary" onClick={runScan} disabled={running}>
          {scan ? 'Scan again' : 'Scan sensitivity'}
        </button>
        <JobProgress select={(s) => s.budget.progress} cancellable label="Budget progress" />
        {scan && (
          <span className="muted" data-testid="budget-scan" data-kind={scan.kind}>
            {scan.tensors} tensors scanned ({scan.kind === 'kl' ? 'KL of each tensor alone' : 'tensor error'}); smallest file{' '}
            {formatBytes(scan.smallestBytes)}.
          </span>
        )}
      </div>
      <ErrorAlert message={error} />
      {scan && (
        <div className="row" role="group" aria-label="Target">
          <label>
            Target{' '}
            <input aria-label="Target value" value={value} onChange={(e) => setValue(e.target.value)} size={12} />
          </label>
          <select aria-label="Target unit" value={unit} onChange={(e) => setUnit(e.target.value as 'bytes' | 'bpw')}>
            <option value="bytes">bytes (whole file; 300KB, 1.2GiB…)</option>
            <option value="bpw">bits per weight</option>
          </select>
          <button type="button" className="primary" onClick={submit} disabled={running}>
            Plan
          </button>
          {['Q4_K_M', 'Q3_K_M'].map((name) => {
            const preset = scan.presets.find((x) => x.preset === name);
            return preset ? (
              <button key={name} type="button" disabled={running} onClick={() => { setUnit('bytes'); setValue(String(preset.bytes)); void runPlan({ bytes: preset.bytes }); }}>
                Size of {name}
              </button>
            ) : null;
          })}
        </div>
      )}
      {p && r && plan && (
        <>
          <div className="toolbar">
            <TableTakeaway label="Plan and presets" data={() => budgetSummaryData(plan, damageName)} />
            <TableTakeaway label="Plan tensors" data={() => budgetTensorsData(plan, damageName, scan?.kind === 'kl')} />
          </div>
          <table className="metrics" aria-label="Plan and presets">
            <thead>
              <tr>
                <th></th>
                <th className="num">File size</th>
                <th className="num">bits/weight</th>
                <th className="num">Predicted {damageName}</th>
                <th className="num">Measured KL</th>
              </tr>
            </thead>
            <tbody>
              <tr data-row="plan">
                <td><b>Budget plan</b> (target {'bytes' in p.target ? formatBytes(p.target.bytes) : `${p.target.bpw} bpw`})</td>
                <td className="num" data-metric="bytes" data-value={p.bytes}>{formatBytes(p.bytes)}</td>
                <td className="num">{p.bpw.toFixed(3)}</td>
                <td className="num" data-metric="predicted" data-value={p.damage.predicted}>{formatMetric(p.damage.predicted)}</td>
                <td className="num" data-metric="kl" data-value={r.measured?.kl_mean ?? ''}>{r.measured ? formatMetric(r.measured.kl_mean) : '—'}</td>
              </tr>
              {r.presets.map((x) => (
                <tr key={x.preset} data-row={x.preset} className={x.nearest ? 'on' : undefined}>
                  <td>{x.preset}{x.nearest ? ' (nearest)' : ''}</td>
                  <td className="num" data-metric="bytes" data-value={x.bytes}>{formatBytes(x.bytes)}</td>
                  <td className="num">{x.bpw.toFixed(3)}</td>
                  <td className="num">{x.predicted === null ? '—' : formatMetric(x.predicted)}</td>
                  <td className="num" data-metric="kl" data-value={x.measured_kl ?? ''}>{x.measured_kl === null ? '' : formatMetric(x.measured_kl)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h3>Bits per weight by layer</h3>
          <ChartFigure label="Bits per layer" caption="Bits per weight of each layer: the budget plan and the nearest presets">
            <ResponsiveContainer width="100%" height={220}>
              <BarChart data={r.layers.map((l) => ({ group: l.group, plan: l.bpw, ...l.presets }))}>
                <CartesianGrid strokeDasharray="3 3" />
                <XAxis dataKey="group" />
                <YAxis />
                <Tooltip formatter={(v) => Number(v).toFixed(3)} />
                <Legend />
                <Bar dataKey="plan" name="Budget plan" fill="#4e79a7" isAnimationActive={false} />
                {r.presets.filter((x) => x.nearest).map((x, i) => (
                  <Bar key={x.preset} dataKey={x.preset} fill={['#f28e2b', '#bab0ac'][i % 2]} isAnimationActive={false} />
                ))}
              </BarChart>
            </ResponsiveContainer>
          </ChartFigure>
          <h3>Export</h3>
          <ExportPanel
            slot="budget"
            mode={{ preset: plan.base }}
            overrides={plan.overrides}
            plan={{ rows: [], totalBytes: p.bytes, bpw: p.bpw, params: 0 }}
            name={`${p.model.replace(/\.gguf$/i, '')}-budget.gguf`}
          />
          <div className="row">
            <button type="button" onClick={() => download('plan.json', `${JSON.stringify(p, null, 2)}\n`)}>
              Download plan JSON
            </button>
            <button
              type="button"
              onClick={() => navigator.clipboard?.writeText(plan.command).then(() => setCopied(true), () => setCopied(false))}
            >
              Copy llama-quantize command
            </button>
            {copied && <span role="status">Copied.</span>}
          </div>
          <pre className="command" aria-label="llama-quantize command" style={{ whiteSpace: 'pre-wrap', wordBreak: 'break-all' }}>
            {plan.command}
          </pre>
          <details>
            <summary>Type of each tensor</summary>
            <table className="metrics" aria-label="Plan tensors">
              <thead>
                <tr>
                  <th>Tensor</th>
                  <th>Type</th>
                  <th className="num">Bytes</th>
                  <th className="num">{damageName} alone</th>
                  {scan?.kind === 'kl' && <th className="num">Tensor error (Σ err²)</th>}
                </tr>
              </thead>
              <tbody>
                {p.tensors.map((t) => (
                  <tr key={t.name} data-tensor={t.name}>
                    <td>{t.name}</td>
                    <td data-type={t.type}>{t.type}</td>
                    <td className="num" data-value={t.bytes}>{t.bytes}</td>
                    <td className="num" data-value={t.damage}>{formatMetric(t.damage)}</td>
                    {scan?.kind === 'kl' && <td className="num" data-value={t.error ?? ''}>{t.error === undefined ? '' : formatMetric(t.error)}</td>}
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
        </>
      )}
    </section>
  );
}
