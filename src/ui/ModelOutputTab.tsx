import { CartesianGrid, LabelList, ResponsiveContainer, Scatter, ScatterChart, Tooltip, XAxis, YAxis, ZAxis } from 'recharts';
import { PRESETS } from '../quant/presets.ts';
import { useApp } from '../store/store.ts';
import { EVAL_ACTIVATION_MODES } from '../store/slices/modelOutput.ts';
import { formatBytes, formatMetric } from './format.ts';
import { whereItRan } from './eval-summary.ts';
import { JobProgress } from './JobProgress.tsx';
import { ErrorAlert } from './Status.tsx';
import { ChartFigure, TableTakeaway } from './Takeaway.tsx';
import { KlReportView } from './KlReportView.tsx';
import { GpuUsageLine } from './GpuUsageLine.tsx';
import type { TableData } from './takeaway.ts';

type Evaluation = NonNullable<ReturnType<typeof useApp.getState>['modelOutput']['result']>;

/** The metrics table as data, at full precision: F32 first, then each preset (top-1 agreement as a fraction). */
export function evaluationTableData(result: Evaluation): TableData {
  const f32 = result.f32;
  return {
    header: ['Preset', 'Bytes', 'bits/weight', 'Perplexity', 'KL mean', 'KL median', 'KL p99', 'Top-1 agree'],
    rows: [
      ['F32', f32.bytes, f32.bpw, f32.ppl, 0, 0, 0, 1],
      ...result.results.map((r) => [r.preset, r.bytes, r.bpw, r.ppl, r.klMean, r.klMedian, r.klP99, r.top1Agree]),
    ],
  };
}

/** What each preset does to the model's predictions, against the F32 model, on a short text. */
export function ModelOutputTab({ refusal }: { refusal: string | null }) {
  const presets = useApp((s) => s.modelOutput.presets);
  const activations = useApp((s) => s.modelOutput.activations);
  const result = useApp((s) => s.modelOutput.result);
  const error = useApp((s) => s.modelOutput.error);
  const running = useApp((s) => s.modelOutput.status === 'running');
  const { toggleEvalPreset: toggle, evaluate: run, setEvalActivations } = useApp.getState();

  const points = result?.results.map((r) => ({ preset: r.preset, bytes: r.bytes, kl: r.klMean })) ?? [];
  return (
    <section className="panel" aria-label="Model output">
      <p className="muted">
        Runs the model (its family's forward pass, in this page) over a short built-in text, F32 and each preset's quantized weights,
        and compares their next-token predictions: KL divergence to F32, perplexity, top-1 agreement, and a greedy continuation.
        {refusal && ` This model cannot run here: ${refusal}`}
      </p>
      <div className="chips" role="group" aria-label="Presets">
        {PRESETS.map((p) => (
          <button key={p.name} type="button" className={`chip${presets.includes(p.name) ? ' on' : ''}`} aria-pressed={presets.includes(p.name)} title={p.description} onClick={() => toggle(p.name)}>
            {p.name}
          </button>
        ))}
      </div>
      <div className="row" style={{ margin: '8px 0' }}>
        <label title={EVAL_ACTIVATION_MODES.find((m) => m.mode === activations)?.title}>
          Activations{' '}
          <select aria-label="Activations" value={activations} onChange={(e) => setEvalActivations(e.target.value as typeof activations)} disabled={running}>
            {EVAL_ACTIVATION_MODES.map((m) => (
              <option key={m.mode} value={m.mode} title={m.title}>
                {m.label}
              </option>
            ))}
          </select>
        </label>
        <button type="button" className="primary" onClick={run} disabled={running || presets.length === 0}>
          Evaluate {presets.length} preset{presets.length === 1 ? '' : 's'}
        </button>
        <JobProgress select={(s) => s.modelOutput.progress} cancellable />
      </div>
      <ErrorAlert message={error} />
      {result && (
        <>
          <p className="muted">
            {result.textTokens} tokens of text ({result.positions} scored positions). F32 perplexity {formatMetric(result.f32.ppl)}.{' '}
            <span data-testid="eval-activations" data-activations={result.activations}>
              Activations: {result.activations}
              {result.activations === 'f32' ? '' : ' (the presets’ products; F32 runs in f32)'}.
            </span>{' '}
            <span data-testid="eval-backend" data-backend={result.backend}>
              {whereItRan(result)}
            </span>
          </p>
          <div className="toolbar">
            <TableTakeaway label="Model output metrics" data={() => evaluationTableData(result)} />
          </div>
          <table className="metrics" aria-label="Model output metrics">
            <thead>
              <tr>
                <th>Preset</th>
                <th className="num">Size</th>
                <th className="num">bits/weight</th>
                <th className="num">Perplexity</th>
                <th className="num">KL mean</th>
                <th className="num">KL median</th>
                <th className="num">KL p99</th>
                <th className="num">Top-1 agree</th>
              </tr>
            </thead>
            <tbody>
              <tr data-preset="F32">
                <td>F32</td>
                <td className="num">{formatBytes(result.f32.bytes)}</td>
                <td className="num">{result.f32.bpw.toFixed(2)}</td>
                <td className="num">{formatMetric(result.f32.ppl)}</td>
                <td className="num">0</td>
                <td className="num">0</td>
                <td className="num">0</td>
                <td className="num">100%</td>
              </tr>
              {result.results.map((r) => (
                <tr key={r.preset} data-preset={r.preset}>
                  <td>{r.preset}</td>
                  <td className="num">{formatBytes(r.bytes)}</td>
                  <td className="num">{r.bpw.toFixed(2)}</td>
                  <td className="num" data-metric="ppl" data-value={r.ppl}>
                    {formatMetric(r.ppl)}
                  </td>
                  <td className="num" data-metric="kl" data-value={r.klMean}>
                    {formatMetric(r.klMean)}
                  </td>
                  <td className="num">{formatMetric(r.klMedian)}</td>
                  <td className="num">{formatMetric(r.klP99)}</td>
                  <td className="num" data-metric="top1" data-value={r.top1Agree}>
                    {(r.top1Agree * 100).toFixed(1)}%
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <GpuUsageLine gpu={result.gpu} />
          <div className="grid2">
            <ChartFigure label="Quality vs size" caption="Mean KL divergence to F32 against file size">
              <ResponsiveContainer width="100%" height={240}>
                <ScatterChart margin={{ top: 16, right: 24, bottom: 4, left: 4 }}>
                  <CartesianGrid strokeDasharray="3 3" stroke="#e5e7eb" />
                  <XAxis dataKey="bytes" type="number" domain={['auto', 'auto']} tickFormatter={(v: number) => formatBytes(v)} tick={{ fontSize: 11 }} name="size" />
                  <YAxis dataKey="kl" type="number" tickFormatter={(v: number) => formatMetric(v)} tick={{ fontSize: 11 }} width={56} name="KL" />
                  <ZAxis range={[60, 60]} />
                  <Tooltip formatter={(v, n) => (n === 'size' ? formatBytes(Number(v)) : formatMetric(Number(v)))} />
                  <Scatter data={points} fill="#CC79A7" isAnimationActive={false}>
                    <LabelList dataKey="preset" position="top" style={{ fontSize: 11 }} />
                  </Scatter>
                </ScatterChart>
              </ResponsiveContainer>
            </ChartFigure>
            <div className="greedy" aria-label="Greedy continuations">
              <p className="muted">
                Greedy continuation of “<b>{result.prompt}</b>”
              </p>
              <dl>
                <dt>F32</dt>
                <dd>{result.f32.greedy.text}</dd>
                {result.results.map((r) => (
                  <div key={r.preset}>
                    <dt>{r.preset}</dt>
                    <dd data-preset={r.preset}>{r.greedy.text}</dd>
                  </div>
                ))}
              </dl>
            </div>
          </div>
          <KlReportView results={result.results} positions={result.positions} chunking={result.chunking} />
        </>
      )}
    </section>
  );
}
