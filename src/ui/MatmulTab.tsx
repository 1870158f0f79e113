import { useState } from 'react';
import { Bar, BarChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { typeInfo } from '../quant/type-data.ts';
import { useApp } from '../store/store.ts';
import type { MatmulInput } from '../store/types.ts';
import { formatBytes, formatMetric, formatShape } from './format.ts';
import { JobProgress } from './JobProgress.tsx';
import { ErrorAlert } from './Status.tsx';
import { ChartFigure, TableTakeaway } from './Takeaway.tsx';
import type { TableData } from './takeaway.ts';

type MatmulResult = NonNullable<ReturnType<typeof useApp.getState>['matmul']['result']>;

/** The matmul table at full precision; a skipped type keeps its reason in the Backend column. */
export function matmulTableData(result: MatmulResult): TableData {
  return {
    header: ['Type', 'W bytes', 'Rel. error', 'SNR (dB)', 'Cosine', 'Kernel vs CPU', 'Time (ms)', 'W read (GB/s)', 'Backend'],
    rows: result.results.map((r) =>
      r.skipped || !r.error
        ? [r.type, '', '', '', '', '', '', '', r.skipped ?? '']
        : [r.type, r.bytes, r.error.relError, r.error.snrDb, r.error.cosine, r.kernelRelError ?? '', r.ms, r.gbps, r.backend],
    ),
  };
}

function formatRate(gbps: number): string {
  return gbps >= 1 ? `${gbps.toFixed(1)} GB/s` : `${(gbps * 1000).toFixed(gbps >= 0.01 ? 0 : 1)} MB/s`;
}

/** A log axis that shows every bar: from below the smallest decade to above the largest. */
function logDomain(values: number[]): [number, number] {
  const positive = values.filter((v) => v > 0);
  if (!positive.length) return [1e-8, 1];
  return [10 ** Math.floor(Math.log10(Math.min(...positive))), 10 ** Math.ceil(Math.log10(Math.max(...positive)))];
}

/** The kernel is right when it matches the CPU product of the decoded blocks to f32 rounding. */
const KERNEL_TOLERANCE = 1e-5;

export function MatmulTab() {
  const model = useApp((s) => s.model);
  const tensor = useApp((s) => s.tensor);
  const types = useApp((s) => s.types);
  const info = model?.tensors.find((t) => t.name === tensor) ?? null;
  const [inputKind, setInputKind] = useState<'random' | 'tensor'>('random');
  const [seed, setSeed] = useState(1);
  const [source, setSource] = useState('');
  const [row, setRow] = useState(0);
  const result = useApp((s) => s.matmul.result);
  const error = useApp((s) => s.matmul.error);
  const running = useApp((s) => s.matmul.status === 'running');
  const ggufTypes = types.filter((t) => typeInfo(t)?.ggml);
  const cols = info?.shape.length === 2 ? info.shape[1] : null;
  const sources = model?.tensors.filter((t) => cols !== null && t.shape[t.shape.length - 1] === cols) ?? [];

  const run = async () => {
    if (!info) return;
    const input: MatmulInput = inputKind === 'random' ? { kind: 'random', seed } : { kind: 'tensor', tensor: source || sources[0]?.name, row };
    await useApp.getState().runMatmul({ tensor: info.name, types: ggufTypes, input });
  };

  const chart = result?.results.filter((r) => r.error).map((r) => ({ type: r.type, rel: Math.max(r.error!.relError, 1e-12) })) ?? [];
  return (
    <section className="panel" aria-label="Quantized matmul">
      {!info || cols === null ? (
        <p className="muted">Pick a matrix (a 2-D tensor) in the table on the left.</p>
      ) : (
        <>
          <p>
            <b className="mono">{info.name}</b> <span className="muted">W: {formatShape(info.shape)}</span> — y = W x with W packed in each GGUF type of the
            comparison ({ggufTypes.join(', ') || 'none selected'}), on the quantized kernels.
          </p>
          <div className="row">
            <label>
              <input type="radio" name="x" checked={inputKind === 'random'} onChange={() => setInputKind('random')} /> random x, seed{' '}
              <input type="number" aria-label="Seed" value={seed} onChange={(e) => setSeed(Number(e.target.value) | 0)} />
            </label>
            <label>
              <input type="radio" name="x" checked={inputKind === 'tensor'} onChange={() => setInputKind('tensor')} disabled={sources.length === 0} /> x = row{' '}
              <input type="number" aria-label="Row" min={0} value={row} onChange={(e) => setRow(Math.max(0, Number(e.target.value) | 0))} /> of{' '}
              <select aria-label="Input tensor" value={source} onChange={(e) => setSource(e.target.value)}>
                {sources.map((t) => (
                  <option key={t.name} value={t.name}>
                    {t.name}
                  </option>
                ))}
              </select>
            </label>
            <button type="button" className="primary" onClick={run} disabled={running || ggufTypes.length === 0}>
              Run y = W x
            </button>
          </div>
        </>
      )}
      <JobProgress select={(s) => s.matmul.progress} />
      <ErrorAlert message={error} />
      {result && (
        <>
          <p className="muted">
            {result.rows} × {result.cols} times {result.input}.
          </p>
          <div className="toolbar">
            <TableTakeaway label="Matmul results" data={() => matmulTableData(result)} />
          </div>
          <table className="metrics" aria-label="Matmul results">
            <thead>
              <tr>
                <th>Type</th>
                <th className="num">W bytes</th>
                <th className="num">‖y_q − y‖ / ‖y‖</th>
                <th className="num">SNR (dB)</th>
                <th className="num">Cosine</th>
                <th className="num">Kernel vs CPU</th>
                <th className="num">Time</th>
                <th className="num">W read</th>
                <th>Backend</th>
              </tr>
            </thead>
            <tbody>
              {result.results.map((r) => (
                <tr key={r.type} data-type={r.type}>
                  <td>{r.type}</td>
                  {r.skipped || !r.error ? (
                    <td colSpan={8} className="muted">
                      {r.skipped}
                    </td>
                  ) : (
                    <>
                      <td className="num">{formatBytes(r.bytes)}</td>
                      <td className="num" data-metric="rel" data-value={r.error.relError}>
                        {formatMetric(r.error.relError)}
                      </td>
                      <td className="num">{formatMetric(r.error.snrDb)}</td>
                      <td className="num">{r.error.cosine.toFixed(6)}</td>
                      <td className="num" data-metric="kernel" data-value={r.kernelRelError ?? ''} title="‖y_kernel − y_cpu‖ / ‖y_cpu‖ with the same decoded weights">
                        {r.kernelRelError !== null && r.kernelRelError < KERNEL_TOLERANCE ? '✓ ' : '✗ '}
                        {formatMetric(r.kernelRelError ?? NaN)}
                      </td>
                      <td className="num">{r.ms.toFixed(2)} ms</td>
                      <td className="num">{formatRate(r.gbps)}</td>
                      <td data-backend={r.backend}>{r.backend === 'webgpu' ? 'WebGPU' : 'CPU'}</td>
                    </>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
          <ChartFigure label="Product error per type" caption="Error the quantization puts into y = W x (log scale)">
            <ResponsiveContainer width="100%" height={220}>
              <BarChart data={chart} margin={{ top: 6, right: 12, bottom: 4, left: 4 }}>
                <CartesianGrid strokeDasharray="3 3" stroke="#e5e7eb" />
                <XAxis dataKey="type" tick={{ fontSize: 11 }} interval={0} />
                <YAxis scale="log" domain={logDomain(chart.map((c) => c.rel))} tickFormatter={(v: number) => formatMetric(v)} tick={{ fontSize: 11 }} width={56} allowDataOverflow />
                <Tooltip formatter={(v) => formatMetric(Number(v))} />
                <Bar dataKey="rel" fill="#009E73" isAnimationActive={false} />
              </BarChart>
            </ResponsiveContainer>
          </ChartFigure>
        </>
      )}
    </section>
  );
}
