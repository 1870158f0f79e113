import { useState, type KeyboardEvent } from 'react';
import { CartesianGrid, Line, LineChart, ReferenceLine, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { ACTIVATION_INPUTS, type ActivationInput, type SmoothQuantSweep } from '../store/slices/activations.ts';
import { useApp } from '../store/store.ts';
import { formatMetric } from './format.ts';
import { heatmapOf, LEGEND_GRADIENT, logColour, rangeOf, type Heatmap } from './heatmap.ts';
import { JobProgress } from './JobProgress.tsx';
import { ErrorAlert } from './Status.tsx';
import { ChartFigure, TableTakeaway } from './Takeaway.tsx';
import type { TableData } from './takeaway.ts';

/** Pixels per heat map row, and the strip above the rows where outlier channels are marked. */
const ROW = 16;
const STRIP = 8;
const OUTLIER = '#D55E00';

/** The sweep at full precision: α (blank: without SmoothQuant), W8A8 KL, top-1 agreement. */
export function sweepData(r: SmoothQuantSweep): TableData {
  return {
    header: ['alpha', 'W8A8 KL', 'Top-1 agree'],
    rows: [['without SmoothQuant', r.without.klMean, r.without.top1Agree], ...r.points.map((p) => [p.alpha ?? '', p.klMean, p.top1Agree])],
  };
}

/** One heat map: layers x channels of `field`, log colours, outlier channels marked above; arrow keys move a cursor cell. */
function HeatmapFigure({ map, field, label, cursor, onCursor }: { map: Heatmap; field: 'act' | 'weight'; label: string; cursor: [number, number]; onCursor: (c: [number, number]) => void }) {
  const [focused, setFocused] = useState(false);
  const { min, max } = rangeOf(map.rows, field);
  const height = STRIP + map.rows.length * ROW;
  const [row, col] = cursor;
  const move = (e: KeyboardEvent) => {
    const steps: Record<string, [number, number]> = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1], PageUp: [0, -16], PageDown: [0, 16] };
    let next: [number, number] | null = null;
    if (steps[e.key]) next = [row + steps[e.key][0], col + steps[e.key][1]];
    else if (e.key === 'Home') next = [row, 0];
    else if (e.key === 'End') next = [row, map.columns - 1];
    if (!next) return;
    e.preventDefault();
    onCursor([Math.max(0, Math.min(map.rows.length - 1, next[0])), Math.max(0, Math.min(map.columns - 1, next[1]))]);
  };
  const unit = map.bin > 1 ? `channels binned by ${map.bin} (the bin's max)` : 'one cell per channel';
  return (
    <figure className="chart" aria-label={label} style={{ flex: '1 1 320px', minWidth: 0 }}>
      <figcaption>
        <span className="caption">
          {label}: layers (rows) x {map.channels} input channels, {unit}; log colour scale
        </span>
      </figcaption>
      <div style={{ display: 'grid', gridTemplateColumns: 'auto minmax(0, 1fr)', columnGap: 4, alignItems: 'start' }}>
        <div style={{ paddingTop: STRIP, fontSize: 10, lineHeight: `${ROW}px` }} aria-hidden="true">
          {map.rows.map((r) => (
            <div key={r.layer}>{r.layer}</div>
          ))}
        </div>
        <div
          tabIndex={0}
          role="group"
          aria-label={`${label} heat map: arrow keys move between cells`}
          aria-describedby="act-readout"
          onKeyDown={move}
          onFocus={() => setFocused(true)}
          onBlur={() => setFocused(false)}
          style={{ outlineOffset: 2 }}
        >
          <svg
            className="heatmap"
            data-field={field}
            role="img"
            aria-label={`${label}: ${map.rows.length} layers by ${map.columns} columns`}
            width="100%"
            height={height}
            viewBox={`0 0 ${map.columns} ${height}`}
            preserveAspectRatio="none"
            style={{ display: 'block' }}
          >
            {map.rows[0]?.outlier.map((o, c) => (o ? <rect key={c} data-outlier-marker={c} x={c} y={0} width={1} height={STRIP - 2} fill={OUTLIER} /> : null))}
            {map.rows.map((r, i) =>
              r[field].map((v, c) => (
                <rect
                  key={`${i}-${c}`}
                  data-cell=""
                  data-layer={r.layer}
                  data-column={c}
                  data-value={v}
                  data-outlier={r.outlier[c] ? '' : undefined}
                  x={c}
                  y={STRIP + i * ROW}
                  width={1}
                  height={ROW - 1}
                  fill={logColour(v, min, max)}
                  onClick={() => onCursor([i, c])}
                />
              )),
            )}
            {focused && <rect x={col} y={STRIP + row * ROW - 1} width={1} height={ROW + 1} fill="none" stroke="#ffffff" strokeWidth={2} vectorEffect="non-scaling-stroke" />}
          </svg>
        </div>
      </div>
      <div style={{ display: 'flex', gap: 8, alignItems: 'center', fontSize: 11, marginTop: 4, flexWrap: 'wrap' }}>
        <span>{formatMetric(min)}</span>
        <span aria-hidden="true" style={{ flex: '1 1 60px', height: 8, background: LEGEND_GRADIENT, borderRadius: 2 }} />
        <span>{formatMetric(max)}</span>
        <span>
          <span aria-hidden="true" style={{ display: 'inline-block', width: 8, height: 8, background: OUTLIER, marginRight: 4 }} />
          outlier channel (max |x| ≥ 10x the median)
        </span>
      </div>
    </figure>
  );
}

/** The SmoothQuant paper's picture for this model: max |x| per input channel next to max |W|, and W8A8 KL against α. */
export function ActivationsTab({ refusal }: { refusal: string | null }) {
  const stats = useApp((s) => s.activations.result);
  const input = useApp((s) => s.activations.input);
  const statsRunning = useApp((s) => s.activations.status === 'running');
  const sweep = useApp((s) => s.smoothQuant.result);
  const sweepRunning = useApp((s) => s.smoothQuant.status === 'running');
  const error = useApp((s) => s.activations.error ?? s.smoothQuant.error);
  const textName = useApp((s) => s.calibration.text?.name ?? null);
  const [cursor, setCursor] = useState<[number, number]>([0, 0]);
  const { setActivationInput, runActivationStats, runSmoothQuantSweep } = useApp.getState();
  const map = stats ? heatmapOf(stats, input) : null;
  const [row, col] = map ? [Math.min(cursor[0], map.rows.length - 1), Math.min(cursor[1], map.columns - 1)] : [0, 0];
  const at = map?.rows[row];
  const channels = map && (map.bin > 1 ? `channels ${col * map.bin}–${Math.min(map.channels, (col + 1) * map.bin) - 1}` : `channel ${col}`);
  const sweepPoints = sweep?.points.map((p) => ({ alpha: p.alpha, kl: p.klMean })) ?? [];

  return (
    <section className="panel" aria-label="Activations">
      <p className="muted">
        What each layer&apos;s linear weights see: over the calibration text ({textName ?? 'built-in stories'}; the Calibration tab picks it), the
        largest |x| of every input channel, next to the weights&apos; largest |W| in that column. A few channels far above the rest make per-token
        INT8 activations (W8A8) coarse for all the others; SmoothQuant divides channel j by s_j = max|X_j|^α / max|W_j|^(1−α) (folded into the
        RMSNorm weight before q/k/v and gate/up) and multiplies the weights&apos; column j by it, moving the difficulty into the weights.
        attn_output and ffn_down are left unsmoothed (no norm before them).
        {refusal && ` This model cannot run here: ${refusal}`}
      </p>
      <div className="row" style={{ margin: '8px 0', gap: 12, flexWrap: 'wrap' }}>
        <button type="button" className="primary" onClick={() => void runActivationStats()} disabled={statsRunning || refusal !== null}>
          Collect activation statistics
        </button>
        <JobProgress select={(s) => s.activations.progress} cancellable label="Activation statistics progress" />
        <label>
          Input of{' '}
          <select aria-label="Heat map input" value={input} onChange={(e) => setActivationInput(e.target.value as ActivationInput)}>
            {ACTIVATION_INPUTS.map((i) => (
              <option key={i.id} value={i.id}>
                {i.label}
              </option>
            ))}
          </select>
        </label>
      </div>
      <ErrorAlert message={error} />
      {map && stats && (
        <>
          <p className="muted">
            {stats.textTokens} tokens, {stats.chunks} chunks of {stats.chunk}. Outlier channels of this input:{' '}
            <span data-testid="outlier-channels">
              {map.outliers.some((o) => o.length > 0) ? map.outliers.map((o, i) => `layer ${map.rows[i].layer}: ${o.length > 0 ? o.join(' ') : 'none'}`).join('; ') : 'none'}
            </span>
          </p>
          <div style={{ display: 'flex', gap: 12, flexWrap: 'wrap' }}>
            <HeatmapFigure map={map} field="act" label="Activation max |x| per channel" cursor={[row, col]} onCursor={setCursor} />
            <HeatmapFigure map={map} field="weight" label="Weight max |W| per channel" cursor={[row, col]} onCursor={setCursor} />
          </div>
          {at && (
            <p role="status" aria-live="polite" id="act-readout" data-testid="heatmap-readout">
              Layer {at.layer}, {channels}: max |x| {formatMetric(at.act[col])}, max |W| {formatMetric(at.weight[col])}
              {at.outlier[col] ? ' (outlier)' : ''}; the layer&apos;s tokens range from {formatMetric(at.tokenMin)} to {formatMetric(at.tokenMax)}.
            </p>
          )}
        </>
      )}
      <div className="row" style={{ margin: '8px 0', gap: 12, flexWrap: 'wrap' }}>
        <button type="button" onClick={() => void runSmoothQuantSweep()} disabled={sweepRunning || refusal !== null}>
          Sweep SmoothQuant α (W8A8)
        </button>
        <JobProgress select={(s) => s.smoothQuant.progress} cancellable label="SmoothQuant sweep progress" />
        <span className="muted">Q8_0 weights × per-token INT8 inputs (the Model output tab&apos;s int8 mode), KL to F32 on the eval text, at α = 0, 0.1, …, 1.</span>
      </div>
      {sweep && (
        <>
          <p data-testid="smoothquant-best">
            Best α {sweep.best.alpha?.toFixed(1)}: W8A8 KL {formatMetric(sweep.best.klMean)}, without SmoothQuant {formatMetric(sweep.without.klMean)} (
            {sweep.positions} positions).
          </p>
          <ChartFigure label="W8A8 KL against alpha" caption="W8A8 KL to F32 against SmoothQuant's α (dashed: without SmoothQuant)">
            <ResponsiveContainer width="100%" height={260}>
              <LineChart data={sweepPoints} margin={{ top: 8, right: 16, bottom: 8, left: 4 }}>
                <CartesianGrid strokeDasharray="3 3" stroke="#e5e7eb" />
                <XAxis dataKey="alpha" type="number" domain={[0, 1]} ticks={[0, 0.2, 0.4, 0.6, 0.8, 1]} tick={{ fontSize: 11 }} />
                <YAxis tickFormatter={(v: number) => formatMetric(v)} tick={{ fontSize: 11 }} width={64} domain={['auto', 'auto']} />
                <Tooltip formatter={(v) => formatMetric(Number(v))} labelFormatter={(a) => `α = ${a}`} />
                <ReferenceLine y={sweep.without.klMean} stroke={OUTLIER} strokeDasharray="6 4" ifOverflow="extendDomain" />
                <Line dataKey="kl" name="W8A8 KL with SmoothQuant" stroke="#0072B2" isAnimationActive={false} dot={{ r: 3 }} />
              </LineChart>
            </ResponsiveContainer>
          </ChartFigure>
          <div className="toolbar">
            <TableTakeaway label="SmoothQuant sweep" data={() => sweepData(sweep)} />
          </div>
          <table className="metrics" aria-label="SmoothQuant sweep">
            <thead>
              <tr>
                <th>α</th>
                <th className="num">W8A8 KL</th>
                <th className="num">Top-1 agree</th>
              </tr>
            </thead>
            <tbody>
              {[sweep.without, ...sweep.points].map((p) => (
                <tr key={String(p.alpha)} data-alpha={p.alpha ?? 'none'}>
                  <td>{p.alpha === null ? 'without SmoothQuant' : p.alpha.toFixed(1)}</td>
                  <td className="num" data-value={p.klMean}>
                    {formatMetric(p.klMean)}
                  </td>
                  <td className="num">{(p.top1Agree * 100).toFixed(1)}%</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
