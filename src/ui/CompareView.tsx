import { useMemo, useState } from 'react';
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ReferenceLine, ResponsiveContainer, Scatter, ScatterChart, Tooltip, XAxis, YAxis, ZAxis } from 'recharts';
import type { CompareResult, TypeResult } from '../store/types.ts';
import { formatBytes, formatMetric } from './format.ts';
import { colourOf } from './palette.ts';
import { ChartFigure, TableTakeaway } from './Takeaway.tsx';
import type { TableData } from './takeaway.ts';

const AXIS = { fontSize: 11 };

/** What a padded type's rows were, said once for the table's badge and the note under it. */
function paddedNote(r: TypeResult): string {
  const p = r.padded!;
  return `rows of ${p.rowLength} zero-padded to ${p.paddedRowLength} (${r.type}'s block); the size counts the padding; not storable in GGUF as is`;
}

/** The metrics table's data for CSV and Markdown: numbers at full precision, in the table's order. */
export function metricsTableData(results: TypeResult[], shown: boolean): TableData {
  const header = ['type', 'padded', 'bits_per_weight', 'bytes', 'rmse', 'max_abs', 'mean_abs', 'snr_db', 'cosine', 'ms', 'backend', 'error'];
  const rows = results.map((r) =>
    r.error
      ? [r.type, '', '', '', '', '', '', '', '', '', '', r.error]
      : shown
        ? [r.type, r.padded ? `to ${r.padded.paddedRowLength}` : '', r.bpw.toFixed(3), formatBytes(r.bytes), formatMetric(r.metrics.rmse), formatMetric(r.metrics.maxAbs), formatMetric(r.metrics.meanAbs), formatMetric(r.metrics.snrDb), r.metrics.cosine.toFixed(6), r.ms.toFixed(1), r.backend, '']
        : [r.type, r.padded ? r.padded.paddedRowLength : '', r.bpw, r.bytes, r.metrics.rmse, r.metrics.maxAbs, r.metrics.meanAbs, r.metrics.snrDb, r.metrics.cosine, r.ms, r.backend, ''],
  );
  return { header, rows };
}
const METRICS_NUMERIC = [false, false, true, true, true, true, true, true, true, true, false, false];

function MetricsTable({ results }: { results: TypeResult[] }) {
  return (
    <table className="metrics" aria-label="Error metrics">
      <thead>
        <tr>
          <th>Type</th>
          <th className="num">bits/weight</th>
          <th className="num">Size</th>
          <th className="num">RMSE</th>
          <th className="num">Max |err|</th>
          <th className="num">Mean |err|</th>
          <th className="num">SNR (dB)</th>
          <th className="num">Cosine</th>
          <th className="num">Time</th>
        </tr>
      </thead>
      <tbody>
        {results.map((r, i) => (
          <tr key={r.type} data-type={r.type} data-backend={r.error ? undefined : r.backend}>
            <td>
              <span className="swatch" style={{ background: colourOf(i) }} />
              {r.type}
              {r.padded && (
                <span className="badge" title={paddedNote(r)} data-padded={r.padded.paddedRowLength}>
                  padded
                </span>
              )}
              {r.imatrix && (
                <span className="badge" title="quantized with the importance matrix in use (Calibration tab or a dropped file), as an export with it" data-imatrix="">
                  imatrix
                </span>
              )}
            </td>
            {r.error ? (
              <td colSpan={8} className="muted">
                {r.error}
              </td>
            ) : (
              <>
                <td className="num" data-metric="bpw" data-value={r.bpw}>
                  {r.bpw.toFixed(3)}
                </td>
                <td className="num" data-metric="bytes" data-value={r.bytes} title={r.padded ? paddedNote(r) : undefined}>
                  {formatBytes(r.bytes)}
                  {r.padded ? '*' : ''}
                </td>
                <td className="num" data-metric="rmse" data-value={r.metrics.rmse}>
                  {formatMetric(r.metrics.rmse)}
                </td>
                <td className="num" data-metric="max_abs" data-value={r.metrics.maxAbs}>
                  {formatMetric(r.metrics.maxAbs)}
                </td>
                <td className="num" data-metric="mean_abs" data-value={r.metrics.meanAbs}>
                  {formatMetric(r.metrics.meanAbs)}
                </td>
                <td className="num" data-metric="snr_db" data-value={r.metrics.snrDb}>
                  {formatMetric(r.metrics.snrDb)}
                </td>
                <td className="num" data-metric="cosine" data-value={r.metrics.cosine}>
                  {r.metrics.cosine.toFixed(6)}
                </td>
                <td className="num">
                  {r.ms.toFixed(1)} ms <span className="muted">{r.backend === 'webgpu' ? 'GPU' : 'CPU'}</span>
                </td>
              </>
            )}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Five ticks on a symmetric axis, at round-ish values: ±h, ±h/2, 0. */
function symmetricTicks(h: number): number[] {
  const step = Number((h / 2).toPrecision(2));
  return [-2 * step, -step, 0, step, 2 * step];
}

/** Error histograms of all types on one shared axis. */
function ErrorHistograms({ results, log }: { results: TypeResult[]; log: boolean }) {
  const ok = results.filter((r) => !r.error);
  const data = useMemo(() => {
    if (!ok.length) return [];
    const h0 = ok[0].histogram;
    const width = (h0.max - h0.min) / h0.counts.length;
    return h0.counts.map((_, b) => {
      const row: Record<string, number> = { x: h0.min + (b + 0.5) * width };
      for (const r of ok) {
        const c = r.histogram.counts[b];
        row[r.type] = log ? (c > 0 ? c : NaN) : c;
      }
      return row;
    });
  }, [ok, log]);
  const range: [number, number] = ok.length ? [ok[0].histogram.min, ok[0].histogram.max] : [-1, 1];
  return (
    <ChartFigure label="Error histogram" caption="Error (dequantized − original), count per bin">
      <ResponsiveContainer width="100%" height={240}>
        <LineChart data={data} margin={{ top: 6, right: 12, bottom: 4, left: 4 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#e5e7eb" />
          <XAxis dataKey="x" type="number" domain={[range[0], range[1]]} ticks={symmetricTicks(range[1])} tickFormatter={(v: number) => formatMetric(v)} tick={AXIS} />
          <YAxis scale={log ? 'log' : 'linear'} domain={log ? [1, 'auto'] : [0, 'auto']} allowDataOverflow tick={AXIS} width={48} />
          <Tooltip formatter={(v) => String(v)} labelFormatter={(v) => `error ≈ ${formatMetric(Number(v))}`} />
          <Legend wrapperStyle={{ fontSize: 12 }} />
          {results.map((r, i) =>
            r.error ? null : <Line key={r.type} dataKey={r.type} stroke={colourOf(i)} dot={false} strokeWidth={1.5} isAnimationActive={false} connectNulls={false} />,
          )}
        </LineChart>
      </ResponsiveContainer>
    </ChartFigure>
  );
}

function SizeChart({ results }: { results: TypeResult[] }) {
  const data = results.filter((r) => !r.error).map((r) => ({ type: r.type, bytes: r.bytes, bpw: r.bpw, rmse: r.metrics.rmse }));
  return (
    <ChartFigure label="Size chart" caption="Size of this tensor per type (padded types with their padding)">
      <ResponsiveContainer width="100%" height={240}>
        <BarChart data={data} margin={{ top: 6, right: 12, bottom: 4, left: 4 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#e5e7eb" />
          <XAxis dataKey="type" tick={AXIS} interval={0} />
          <YAxis tickFormatter={(v: number) => formatBytes(v)} tick={AXIS} width={64} />
          <Tooltip formatter={(v) => formatBytes(Number(v))} />
          <Bar dataKey="bytes" fill="#0072B2" isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </ChartFigure>
  );
}

/** One block: original vs dequantized values, with the type's levels as reference lines. */
function BlockInspector({ result, index }: { result: TypeResult; index: number }) {
  const block = result.block;
  if (!block) return null;
  const points = block.original.map((v, i) => ({ i, original: v, dequantized: block.dequantized[i] }));
  return (
    <ChartFigure
      className="block"
      label={`Block inspector ${result.type}`}
      caption={
        <>
          <b>
            <span className="swatch" style={{ background: colourOf(index) }} />
            {result.type}
          </b>{' '}
          block {block.index}
          {result.padded ? ' (of the padded rows)' : ''}:{' '}
          {Object.entries(block.fields)
            .map(([k, v]) => `${k} = ${Number.isInteger(v) ? v : formatMetric(v)}`)
            .join(', ')}
        </>
      }
    >
      <ResponsiveContainer width="100%" height={200}>
        <ScatterChart margin={{ top: 6, right: 12, bottom: 4, left: 4 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#e5e7eb" />
          <XAxis dataKey="i" type="number" name="element" tick={AXIS} domain={[0, block.original.length - 1]} />
          <YAxis type="number" tickFormatter={(v: number) => formatMetric(v)} tick={AXIS} width={56} domain={['auto', 'auto']} />
          <ZAxis range={[18, 18]} />
          {block.levels.slice(0, 64).map((l) => (
            <ReferenceLine key={l} y={l} stroke="#cbd5e1" strokeDasharray="2 2" />
          ))}
          <Tooltip formatter={(v) => formatMetric(Number(v))} />
          <Legend wrapperStyle={{ fontSize: 12 }} />
          <Scatter name="original" className="original" data={points} dataKey="original" fill="#111827" isAnimationActive={false} />
          <Scatter name="dequantized" data={points.map((p) => ({ i: p.i, original: p.dequantized }))} dataKey="original" fill={colourOf(index)} shape="cross" isAnimationActive={false} />
        </ScatterChart>
      </ResponsiveContainer>
    </ChartFigure>
  );
}

function WeightDistribution({ compare }: { compare: CompareResult }) {
  const h = compare.weightHistogram;
  const width = (h.max - h.min) / h.counts.length;
  const data = h.counts.map((c, b) => ({ x: h.min + (b + 0.5) * width, count: c }));
  return (
    <ChartFigure label="Weight distribution" caption={`Weight distribution of ${compare.tensor}`}>
      <ResponsiveContainer width="100%" height={200}>
        <BarChart data={data} barCategoryGap={0} margin={{ top: 6, right: 12, bottom: 4, left: 4 }}>
          <XAxis dataKey="x" tickFormatter={(v: number) => formatMetric(v)} tick={AXIS} minTickGap={24} />
          <YAxis tick={AXIS} width={48} />
          <Tooltip labelFormatter={(v) => `w ≈ ${formatMetric(Number(v))}`} />
          <Bar dataKey="count" fill="#94a3b8" isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </ChartFigure>
  );
}

export function CompareView({ compare, blockIndex, onBlockIndex }: { compare: CompareResult; blockIndex: number; onBlockIndex: (i: number) => void }) {
  const [log, setLog] = useState(true);
  const withBlocks = compare.results.filter((r) => r.block);
  const padded = compare.results.filter((r) => r.padded && !r.error);
  return (
    <div className="compare">
      {/* The table scrolls sideways inside its panel, never the page; focusable so a keyboard can scroll it. */}
      <div className="table-wrap" tabIndex={0} role="region" aria-label="Error metrics (scrolls sideways)">
        <MetricsTable results={compare.results} />
      </div>
      {padded.length > 0 && (
        <p className="muted" role="note" aria-label="Padded types">
          * padded: {padded.map((r) => r.type).join(', ')} compared on rows of {padded[0].padded!.rowLength} zero-padded to their block; sizes count
          the padding, the error is the tensor's own weights only; not storable in GGUF as is (llama.cpp needs whole blocks per row).
        </p>
      )}
      <div className="toolbar">
        <TableTakeaway label={`Error metrics ${compare.tensor}`} data={() => metricsTableData(compare.results, false)} numeric={METRICS_NUMERIC} markdown={() => metricsTableData(compare.results, true)} />
        <label>
          <input type="checkbox" checked={log} onChange={(e) => setLog(e.target.checked)} /> Log scale
        </label>
        <label>
          Block{' '}
          <input type="number" min={0} value={blockIndex} aria-label="Block index" onChange={(e) => onBlockIndex(Math.max(0, Number(e.target.value) | 0))} />
        </label>
      </div>
      <div className="grid2">
        <ErrorHistograms results={compare.results} log={log} />
        <SizeChart results={compare.results} />
      </div>
      <WeightDistribution compare={compare} />
      <div className="grid2">
        {withBlocks.map((r) => (
          <BlockInspector key={r.type} result={r} index={compare.results.indexOf(r)} />
        ))}
      </div>
    </div>
  );
}
