import { useState } from 'react';
import { CartesianGrid, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { PRESETS, pureFileTypes } from '../quant/presets.ts';
import { TYPE_INFOS } from '../quant/type-data.ts';
import { useApp } from '../store/store.ts';
import { LORA_MODULE_NAMES, trainCommand, type TrainingSettings, type TrainingSummary } from '../store/slices/training.ts';
import { downloadSink } from './ExportPanel.tsx';
import { formatBytes, formatMetric } from './format.ts';
import { GpuUsageLine } from './GpuUsageLine.tsx';
import { JobProgress } from './JobProgress.tsx';
import { colourOf } from './palette.ts';
import { ErrorAlert } from './Status.tsx';
import { ChartFigure, TableTakeaway } from './Takeaway.tsx';
import type { TableData } from './takeaway.ts';

/** QAT's choices, from the type table and llama.cpp's presets: `type:q4_0` or `preset:Q4_K_M`. */
const QAT_TYPES = pureFileTypes().filter((t) => t !== 'f32');
const QAT_PRESETS = PRESETS.map((p) => p.name);
/** QLoRA's base: any type of the table (a type whose blocks do not fit the rows says so). */
const BASE_TYPES = TYPE_INFOS.map((t) => t.id).filter((t) => t !== 'f32');

const qatValue = (q: TrainingSettings['qat']) => ('type' in q ? `type:${q.type}` : `preset:${q.preset}`);
const qatOf = (value: string): TrainingSettings['qat'] => (value.startsWith('type:') ? { type: value.slice(5) } : { preset: value.slice(7) });

/** The held-out comparison's rows: F32, the rounded model (or the quantized base alone), the trained one. */
export function trainingComparisonData(r: TrainingSummary): TableData {
  const trained = r.method === 'qat' ? `QAT ${r.target}` : `QLoRA: ${r.target} base + adapter`;
  const rounded = r.method === 'qat' ? `PTQ ${r.target} (round to nearest)` : `${r.target} base alone`;
  return {
    header: ['Model', 'KL vs F32', 'Perplexity'],
    rows: [
      ['F32', 0, r.f32Ppl],
      [rounded, r.before.kl, r.before.ppl],
      [trained, r.after.kl, r.after.ppl],
    ],
  };
}

/** A number input's text, parsed when it is one (the engine says what is wrong with a bad value). */
function NumberField({ label, value, onChange, placeholder, min, step }: { label: string; value: number | null; onChange: (v: number | null) => void; placeholder?: string; min?: number; step?: string }) {
  const [text, setText] = useState(value === null ? '' : String(value));
  return (
    <label>
      {label}{' '}
      <input
        type="number"
        aria-label={label}
        value={text}
        min={min}
        step={step}
        placeholder={placeholder}
        style={{ width: '7em' }}
        onChange={(e) => {
          setText(e.target.value);
          onChange(e.target.value.trim() === '' ? null : Number(e.target.value));
        }}
      />
    </label>
  );
}

/** One empty list (a selector must not return a new one each call). */
const NO_STEPS: number[] = [];

/** The loss per step, drawn as the steps arrive (the running job's progress) or from the result. */
function LossCurve() {
  // While a run goes, its own steps only (none yet while it scores the F32 and rounded models).
  const live = useApp((s) => (s.training.status === 'running' ? (s.training.progress?.losses ?? NO_STEPS) : undefined));
  const records = useApp((s) => s.training.result?.records);
  const loss = useApp((s) => s.training.result?.options.loss ?? s.training.settings.loss);
  const losses = live ?? records?.map((r) => r.loss) ?? [];
  if (losses.length === 0) return null;
  const data = losses.map((l, i) => ({ step: i + 1, loss: l }));
  const name = loss === 'kl' ? 'KL to the F32 model' : 'cross-entropy';
  return (
    <ChartFigure label="Training loss" caption={`Training loss per step (${name}, nats)${live ? ', live' : ''}`}>
      <ResponsiveContainer width="100%" height={240}>
        <LineChart data={data} margin={{ top: 8, right: 16, bottom: 8, left: 4 }}>
          <CartesianGrid strokeDasharray="3 3" stroke="#e5e7eb" />
          <XAxis dataKey="step" type="number" domain={[1, 'dataMax']} allowDecimals={false} tick={{ fontSize: 11 }} label={{ value: 'step', position: 'insideBottomRight', offset: -4, fontSize: 11 }} />
          <YAxis tickFormatter={(v: number) => formatMetric(v)} tick={{ fontSize: 11 }} width={64} domain={['auto', 'auto']} />
          <Tooltip formatter={(v) => formatMetric(Number(v))} labelFormatter={(s) => `step ${s}`} />
          <Line dataKey="loss" name={`loss (${name})`} type="linear" stroke={colourOf(0)} strokeWidth={1.5} dot={false} isAnimationActive={false} />
        </LineChart>
      </ResponsiveContainer>
    </ChartFigure>
  );
}

function Downloads({ files }: { files: TrainingSummary['files'] }) {
  const download = useApp((s) => s.training.download);
  const running = useApp((s) => s.training.status === 'running');
  const save = (name: string) => void useApp.getState().downloadTrainingFile(name, downloadSink(name));
  return (
    <div className="row" style={{ margin: '8px 0', gap: 8, flexWrap: 'wrap' }} role="group" aria-label="Training downloads">
      {files.map((f) => (
        <button key={f.name} type="button" onClick={() => save(f.name)} disabled={running || download.status === 'running'} title={f.name}>
          Download {f.label}
        </button>
      ))}
      {download.status === 'done' && (
        <span role="status">
          Wrote {download.file}: {formatBytes(download.bytes ?? 0)}.
        </span>
      )}
      {download.status === 'error' && <ErrorAlert message={`Download stopped: ${download.error}`} />}
    </div>
  );
}

function TrainingResult({ result }: { result: TrainingSummary }) {
  const data = trainingComparisonData(result);
  return (
    <>
      <p data-testid="training-backend" data-backend={result.backend} data-steps-per-second={result.stepsPerSecond}>
        {result.options.steps} steps on {result.backend === 'webgpu' ? 'WebGPU' : 'the CPU'}: {result.stepsPerSecond.toFixed(2)} steps/s ({result.trainSeconds.toFixed(1)} s with the
        held-out scoring), learning rate {result.options.lr}, {result.options.loss === 'kl' ? 'KL to F32' : 'cross-entropy'} loss, {result.options.seqLen} tokens a step
        {result.lora && `, rank ${result.lora.rank}, alpha ${result.lora.alpha} on ${result.lora.targets.join(', ')}`}. Held out: {result.evalTokens} tokens of the Model output
        tab&apos;s text, which training never sees.
      </p>
      <GpuUsageLine gpu={result.gpu} />
      <div className="toolbar">
        <TableTakeaway label="Training comparison" data={() => data} />
      </div>
      <div className="table-wrap" tabIndex={0} role="region" aria-label="Training comparison (scrolls sideways)">
        <table className="metrics" aria-label="Training comparison">
          <thead>
            <tr>
              {data.header.map((h, i) => (
                <th key={h} className={i > 0 ? 'num' : undefined}>
                  {h}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {data.rows.map((row, i) => (
              <tr key={String(row[0])} data-row={['f32', 'before', 'after'][i]}>
                <td style={{ whiteSpace: 'normal' }}>{row[0]}</td>
                <td className="num" data-metric="kl" data-value={row[1]}>
                  {i === 0 ? '–' : formatMetric(Number(row[1]))}
                </td>
                <td className="num" data-metric="ppl" data-value={row[2]}>
                  {Number(row[2]).toFixed(4)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <Downloads files={result.files} />
    </>
  );
}

/**
 * Quantization-aware training or QLoRA in the page (docs/training.md): the settings the CLI's
 * `quantlab train` takes, a live loss curve, then what training buys over rounding on the
 * held-out text, and the files the CLI writes for the same settings.
 */
export function TrainingTab({ refusal }: { refusal: string | null }) {
  const settings = useApp((s) => s.training.settings);
  const running = useApp((s) => s.training.status === 'running');
  const result = useApp((s) => s.training.result);
  const error = useApp((s) => s.training.error);
  const fileName = useApp((s) => s.model?.files[0]?.name ?? 'MODEL.gguf');
  const { setTrainingSettings: set, runTraining } = useApp.getState();
  const qat = settings.method === 'qat';
  const toggleTarget = (m: string) => set({ targets: settings.targets.includes(m) ? settings.targets.filter((t) => t !== m) : LORA_MODULE_NAMES.filter((t) => t === m || settings.targets.includes(t)) });

  return (
    <section className="panel" aria-label="Training">
      <p className="muted">
        Trains the model for its quantization on the built-in calibration stories, 64 tokens a step. QAT: every step each weight is rounded by its type&apos;s
        own codec and the gradient passes straight through to the f32 master weights; the download holds the last step&apos;s blocks. QLoRA: the base is held as
        the base type&apos;s blocks and frozen; LoRA adapters train on top, downloaded as llama.cpp&apos;s GGUF adapter and PEFT&apos;s files.
        {refusal && ` This model cannot run here: ${refusal}`}
      </p>
      <div className="row" style={{ margin: '8px 0', gap: 12, flexWrap: 'wrap' }} role="radiogroup" aria-label="Training method">
        <label>
          <input type="radio" name="training-method" checked={qat} onChange={() => set({ method: 'qat' })} disabled={running} /> QAT (quantization-aware training)
        </label>
        <label>
          <input type="radio" name="training-method" checked={!qat} onChange={() => set({ method: 'qlora' })} disabled={running} /> QLoRA (LoRA over a frozen quantized base)
        </label>
      </div>
      <div className="row" style={{ margin: '8px 0', gap: 12, flexWrap: 'wrap' }} aria-label="Training settings" role="group">
        {qat ? (
          <label>
            Type or preset{' '}
            <select aria-label="QAT type or preset" value={qatValue(settings.qat)} onChange={(e) => set({ qat: qatOf(e.target.value) })}>
              <optgroup label="Every weight in one type (--qat)">
                {QAT_TYPES.map((t) => (
                  <option key={t} value={`type:${t}`}>
                    {t}
                  </option>
                ))}
              </optgroup>
              <optgroup label="llama.cpp preset (--preset)">
                {QAT_PRESETS.map((p) => (
                  <option key={p} value={`preset:${p}`}>
                    {p}
                  </option>
                ))}
              </optgroup>
            </select>
          </label>
        ) : (
          <>
            <NumberField label="Rank" value={settings.rank} min={1} step="1" onChange={(v) => set({ rank: v ?? Number.NaN })} />
            <NumberField label="Alpha" value={settings.alpha} min={0} step="any" placeholder="= rank" onChange={(v) => set({ alpha: v })} />
            <label>
              Base type{' '}
              <select aria-label="QLoRA base type" value={settings.baseType} onChange={(e) => set({ baseType: e.target.value })}>
                {BASE_TYPES.map((t) => (
                  <option key={t} value={t}>
                    {t}
                  </option>
                ))}
              </select>
            </label>
            <fieldset className="row" style={{ gap: 8, flexWrap: 'wrap', border: 0, padding: 0, margin: 0 }}>
              <legend className="muted">Target modules</legend>
              {LORA_MODULE_NAMES.map((m) => (
                <label key={m}>
                  <input type="checkbox" checked={settings.targets.includes(m)} onChange={() => toggleTarget(m)} /> {m}
                </label>
              ))}
            </fieldset>
          </>
        )}
        <NumberField label="Steps" value={settings.steps} min={1} step="1" onChange={(v) => set({ steps: v ?? Number.NaN })} />
        <NumberField label="Learning rate" value={settings.lr} min={0} step="any" placeholder={qat ? '1e-4' : '1e-3'} onChange={(v) => set({ lr: v })} />
        <label>
          Loss{' '}
          <select aria-label="Loss" value={settings.loss} onChange={(e) => set({ loss: e.target.value as TrainingSettings['loss'] })}>
            <option value="kl">KL to the F32 model (distillation)</option>
            <option value="ce">cross-entropy on the text</option>
          </select>
        </label>
      </div>
      <p className="muted mono" data-testid="training-command">
        {trainCommand(settings, fileName)}
      </p>
      <div className="row" style={{ margin: '8px 0' }}>
        <button type="button" className="primary" onClick={() => void runTraining()} disabled={running}>
          Train
        </button>
        <JobProgress select={(s) => s.training.progress} cancellable label="Training progress" />
      </div>
      {error === 'cancelled' ? (
        <p role="status" data-testid="training-cancelled">
          Training cancelled: nothing was written{result ? '; the previous result is kept' : ''}.
        </p>
      ) : (
        <ErrorAlert message={error} />
      )}
      <LossCurve />
      {result && <TrainingResult result={result} />}
    </section>
  );
}
