import { useEffect, useMemo } from 'react';
import { Bar, BarChart, CartesianGrid, Cell, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { PRESETS, type PlanMode } from '../quant/presets.ts';
import { TYPE_INFOS } from '../quant/type-data.ts';
import { useApp } from '../store/store.ts';
import { exactPattern as exact } from '../store/slices/wholeModel.ts';
import type { LayerError, PlanSummary, PresetSize } from '../store/types.ts';
import { ExportPanel } from './ExportPanel.tsx';
import { formatBytes, formatMetric, formatShape } from './format.ts';
import { JobProgress } from './JobProgress.tsx';
import { ErrorAlert } from './Status.tsx';
import { ChartFigure, TableTakeaway } from './Takeaway.tsx';
import type { TableData } from './takeaway.ts';

const AXIS = { fontSize: 11 };
const GGUF_TYPES = TYPE_INFOS.filter((t) => t.ggml && !t.activationOnly).map((t) => t.id);

/** 'Q4_K_M' is a preset; 'type:q4_0' is one type everywhere (llama-quantize --pure). */
export function modeOf(choice: string): PlanMode {
  return choice.startsWith('type:') ? { type: choice.slice(5) } : { preset: choice };
}

function PresetChart({ sizes, current }: { sizes: PresetSize[]; current: string }) {
  return (
    <ChartFigure label="Size per preset" caption="File size and bits per weight of this model under each preset">
      <ResponsiveContainer width="100%" height={220}>
        <BarChart data={sizes} margin={{ top: 6, right: 12, bottom: 30, left: 4 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#e5e7eb" />
          <XAxis dataKey="preset" tick={{ fontSize: 10 }} interval={0} angle={-40} textAnchor="end" />
          <YAxis tickFormatter={(v: number) => formatBytes(v)} tick={AXIS} width={64} />
          <Tooltip formatter={(v, _n, item) => [`${formatBytes(Number(v))} · ${(item.payload as PresetSize).bpw.toFixed(2)} bpw`, 'size']} />
          <Bar dataKey="bytes" isAnimationActive={false}>
            {sizes.map((s) => (
              <Cell key={s.preset} fill={s.preset === current ? '#0f62fe' : '#94a3b8'} />
            ))}
          </Bar>
        </BarChart>
      </ResponsiveContainer>
    </ChartFigure>
  );
}

function LayerChart({ layers }: { layers: LayerError[] }) {
  const data = layers.map((l) => ({ group: l.group, rel: l.metrics.relFrobenius, snr: l.metrics.snrDb }));
  return (
    <ChartFigure label="Error per layer" caption="Relative error ‖Ŵ − W‖ / ‖W‖ per layer under this plan">
      <ResponsiveContainer width="100%" height={220}>
        <LineChart data={data} margin={{ top: 6, right: 12, bottom: 30, left: 4 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#e5e7eb" />
          <XAxis dataKey="group" tick={{ fontSize: 10 }} interval={0} angle={-40} textAnchor="end" />
          <YAxis tickFormatter={(v: number) => formatMetric(v)} tick={AXIS} width={56} />
          <Tooltip formatter={(v) => formatMetric(Number(v))} />
          <Line dataKey="rel" stroke="#D55E00" isAnimationActive={false} />
        </LineChart>
      </ResponsiveContainer>
    </ChartFigure>
  );
}

/** The plan table as data: bytes and the relative error at full precision, the type each tensor gets. */
export function planTableData(rows: PlanSummary['rows'], perTensor: ReadonlyMap<string, number> | null): TableData {
  return {
    header: ['Tensor', 'Shape', 'From', 'To', 'Bytes', ...(perTensor ? ['Rel. error'] : []), 'Rule'],
    rows: rows.map((r) => [r.name, r.shape.join('x'), r.sourceType, r.type, r.bytes, ...(perTensor ? [perTensor.get(r.name) ?? ''] : []), r.reason]),
  };
}

/** The sizes per preset as data (what the preset chart draws). */
export function presetSizesData(sizes: PresetSize[]): TableData {
  return { header: ['Preset', 'Bytes', 'bits/weight'], rows: sizes.map((s) => [s.preset, s.bytes, s.bpw]) };
}

/** The error per layer as data (what the layer chart draws). */
export function layerErrorsData(layers: LayerError[]): TableData {
  return { header: ['Layer', 'Rel. error', 'SNR (dB)'], rows: layers.map((l) => [l.group, l.metrics.relFrobenius, l.metrics.snrDb]) };
}

export function WholeModelTab() {
  const model = useApp((s) => s.model);
  const preset = useApp((s) => s.preset);
  const hasImatrix = useApp((s) => s.imatrix !== null);
  const overrides = useApp((s) => s.wholeModel.overrides);
  const plan = useApp((s) => s.wholeModel.plan);
  const sizes = useApp((s) => s.wholeModel.sizes);
  const error = useApp((s) => s.wholeModel.planError ?? s.layerErrors.error);
  const errors = useApp((s) => s.layerErrors.result);
  const measuring = useApp((s) => s.layerErrors.status === 'running');
  const { setPreset, setOverride, clearOverrides } = useApp.getState();
  const mode = useMemo(() => modeOf(preset), [preset]);

  // The store plans again only when what the plan depends on changed (shown again, the tab keeps its plan and errors).
  useEffect(() => {
    useApp.getState().refreshPlan(mode, hasImatrix);
  }, [model, mode, overrides, hasImatrix]);

  useEffect(() => {
    useApp.getState().loadPresetSizes();
  }, [model]);

  const measure = () => void useApp.getState().measureLayers(mode);
  const override = setOverride;
  const overrideOf = (name: string) => overrides.find((o) => o.pattern === exact(name))?.type ?? '';

  return (
    <section className="panel" aria-label="Whole model">
      <div className="row" style={{ marginBottom: 8 }}>
        <label>
          Preset{' '}
          <select aria-label="Preset" value={preset} onChange={(e) => setPreset(e.target.value)}>
            <optgroup label="llama.cpp presets">
              {PRESETS.map((p) => (
                <option key={p.name} value={p.name} title={p.description}>
                  {p.name}
                </option>
              ))}
            </optgroup>
            <optgroup label="One type everywhere (--pure)">
              {GGUF_TYPES.map((t) => (
                <option key={t} value={`type:${t}`}>
                  {t}
                </option>
              ))}
            </optgroup>
          </select>
        </label>
        {plan && (
          <span data-testid="plan-size">
            <b>{formatBytes(plan.totalBytes)}</b> · {plan.bpw.toFixed(2)} bits/weight · {plan.rows.filter((r) => r.converted).length} of {plan.rows.length} tensors converted
          </span>
        )}
        <button type="button" onClick={measure} disabled={!plan || measuring}>
          Measure error per layer
        </button>
        {overrides.length > 0 && (
          <button type="button" onClick={clearOverrides}>
            Clear {overrides.length} override{overrides.length > 1 ? 's' : ''}
          </button>
        )}
      </div>
      <ErrorAlert message={error} />
      <JobProgress select={(s) => s.layerErrors.progress} cancellable />
      <div className="grid2">
        <PresetChart sizes={sizes} current={preset} />
        {errors ? <LayerChart layers={errors.layers} /> : <div className="chart empty">Measure the error to see it per layer.</div>}
      </div>
      {plan && <ExportPanel slot="wholeModel" mode={mode} overrides={overrides} plan={plan} />}
      {plan && (
        <div className="toolbar">
          <TableTakeaway label="Plan" data={() => planTableData(plan.rows, errors?.perTensor ?? null)} />
          {sizes.length > 0 && <TableTakeaway label="Size per preset" data={() => presetSizesData(sizes)} />}
          {errors && <TableTakeaway label="Error per layer" data={() => layerErrorsData(errors.layers)} />}
        </div>
      )}
      {plan && (
        <div className="scroll plan">
          <table aria-label="Plan">
            <thead>
              <tr>
                <th>Tensor</th>
                <th>Shape</th>
                <th>From</th>
                <th>To</th>
                <th className="num">Bytes</th>
                {errors && <th className="num">Rel. error</th>}
                <th>Rule</th>
              </tr>
            </thead>
            <tbody>
              {plan.rows.map((r) => (
                <tr key={r.name} data-tensor={r.name}>
                  <td className="name">{r.name}</td>
                  <td>{formatShape(r.shape)}</td>
                  <td>{r.sourceType}</td>
                  <td>
                    {r.quantized ? (
                      <select aria-label={`Type of ${r.name}`} value={overrideOf(r.name)} onChange={(e) => override(r.name, e.target.value)}>
                        <option value="">{overrideOf(r.name) ? 'rule' : r.type}</option>
                        {GGUF_TYPES.map((t) => (
                          <option key={t} value={t}>
                            {t}
                          </option>
                        ))}
                      </select>
                    ) : (
                      r.type
                    )}
                  </td>
                  <td className="num" data-value={r.bytes}>{formatBytes(r.bytes)}</td>
                  {errors && <td className="num" data-value={errors.perTensor.get(r.name) ?? ''}>{errors.perTensor.has(r.name) ? formatMetric(errors.perTensor.get(r.name)!) : '—'}</td>}
                  <td className="muted reason" title={r.reason}>
                    {r.reason}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
