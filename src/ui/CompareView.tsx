import { useMemo, useState } from 'react';
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ReferenceLine, ResponsiveContainer, Scatter, ScatterChart, Tooltip, XAxis, YAxis, ZAxis } from 'recharts';
import type { CompareResult, TypeResult } from '../store/types.ts';
import { formatBytes, formatMetric } from './format.ts';
import { colourOf } from './palette.ts';

const AXIS = { fontSize: 11 };

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
            </td>
            {r.error ? (
              <td colSpan={8} className="muted">
                {r.error}
              </td>
            ) : (
              <>
                <td className="num">{r.bpw.toFixed(3)}</td>
                <td className="num">{formatBytes(r.bytes)}</td>
                <td className="num" data-metric="rmse" data-value={r.metrics.rmse}>
                  {formatMetric(r.metrics.rmse)}
                </td>
                <td className="num">{formatMetric(r.metrics.maxAbs)}</td>
                <td className="num">{formatMetric(r.metrics.meanAbs)}</td>
                <td className="num">{formatMetric(r.metrics.snrDb)}</td>
                <td className="num">{r.metrics.cosine.toFixed(6)}</td>
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
    <figure className="chart" aria-label="Error histogram">
      <figcaption>Error (dequantized − original), count per bin</figcaption>
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
    </figure>
  );
}

function SizeChart({ results }: { results: TypeResult[] }) {
  const data = results.filter((r) => !r.error).map((r) => ({ type: r.type, bytes: r.bytes, bpw: r.bpw, rmse: r.metrics.rmse }));
  return (
    <figure className="chart" aria-label="Size chart">
      <figcaption>Size of this tensor per type</figcaption>
      <ResponsiveContainer width="100%" height={240}>
        <BarChart data={data} margin={{ top: 6, right: 12, bottom: 4, left: 4 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#e5e7eb" />
          <XAxis dataKey="type" tick={AXIS} interval={0} />
          <YAxis tickFormatter={(v: number) => formatBytes(v)} tick={AXIS} width={64} />
          <Tooltip formatter={(v) => formatBytes(Number(v))} />
          <Bar dataKey="bytes" fill="#0072B2" isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </figure>
  );
}

/** One block: original vs dequantized values, with the type's levels as reference lines. */
function BlockInspector({ result, index }: { result: TypeResult; index: number }) {
  const block = result.block;
  if (!block) return null;
  const points = block.original.map((v, i) => ({ i, original: v, dequantized: block.dequantized[i] }));
  return (
    <figure className="chart block" aria-label={`Block inspector ${result.type}`}>
      <figcaption>
        <b style={{ color: colourOf(index) }}>{result.type}</b> block {block.index}:{' '}
        {Object.entries(block.fields)
          .map(([k, v]) => `${k} = ${Number.isInteger(v) ? v : formatMetric(v)}`)
          .join(', ')}
      </figcaption>
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
          <Scatter name="original" data={points} dataKey="original" fill="#111827" isAnimationActive={false} />
          <Scatter name="dequantized" data={points.map((p) => ({ i: p.i, original: p.dequantized }))} dataKey="original" fill={colourOf(index)} shape="cross" isAnimationActive={false} />
        </ScatterChart>
      </ResponsiveContainer>
    </figure>
  );
}

function WeightDistribution({ compare }: { compare: CompareResult }) {
  const h = compare.weightHistogram;
  const width = (h.max - h.min) / h.counts.length;
  const data = h.counts.map((c, b) => ({ x: h.min + (b + 0.5) * width, count: c }));
  return (
    <figure className="chart" aria-label="Weight distribution">
      <figcaption>Weight distribution of {compare.tensor}</figcaption>
      <ResponsiveContainer width="100%" height={200}>
        <BarChart data={data} barCategoryGap={0} margin={{ top: 6, right: 12, bottom: 4, left: 4 }}>
          <XAxis dataKey="x" tickFormatter={(v: number) => formatMetric(v)} tick={AXIS} minTickGap={24} />
          <YAxis tick={AXIS} width={48} />
          <Tooltip labelFormatter={(v) => `w ≈ ${formatMetric(Number(v))}`} />
          <Bar dataKey="count" fill="#94a3b8" isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </figure>
  );
}

export function CompareView({ compare, blockIndex, onBlockIndex }: { compare: CompareResult; blockIndex: number; onBlockIndex: (i: number) => void }) {
  const [log, setLog] = useState(true);
  const withBlocks = compare.results.filter((r) => r.block);
  return (
    <div className="compare">
      <MetricsTable results={compare.results} />
      <div className="toolbar">
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
