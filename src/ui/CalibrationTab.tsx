import { useState } from 'react';
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { gptqPresets, type PresetName } from '../quant/presets.ts';
import { CALIBRATION_METHODS, METHOD_LABELS } from '../store/labels.ts';
import type { CalibrationComparison as Comparison } from '../store/slices/calibration.ts';
import { useApp } from '../store/store.ts';
import { downloadSink, ExportProgress, exportMessage } from './ExportPanel.tsx';
import { formatMetric } from './format.ts';
import { JobProgress } from './JobProgress.tsx';
import { ErrorAlert } from './Status.tsx';
import { ChartFigure, TableTakeaway } from './Takeaway.tsx';
import type { TableData } from './takeaway.ts';

/** What a calibrated export can write: the presets whose weights' type is a GPTQ target (quant/presets.ts gptqPresets). */
const EXPORT_TARGETS = gptqPresets();

// Okabe-Ito, one per method.
const COLORS = ['#999999', '#56B4E9', '#0072B2', '#E69F00', '#D55E00', '#009E73'];

/** Short tensor labels for the chart's axis: blk.3.ffn_down.weight -> 3.ffn_down. */
const shortName = (name: string) => name.replace(/^blk\./, '').replace(/\.weight$/, '');

/** Where GPTQ ran: WebGPU (f32, as PyTorch's GPTQ) or the CPU reference (f64). */
function gptqBackendText(g: Comparison['gptq']): string {
  if (g.actOrder) return "GPTQ in act-order (static groups) on the CPU (f64 reference): the GPU's walk keeps GPTQ's column order.";
  if (g.backend === 'webgpu') return `GPTQ on WebGPU (f32, ${g.device ?? 'GPU'}): all ${g.layers} layers.`;
  if (g.gpuLayers > 0) return `GPTQ on WebGPU for ${g.gpuLayers} of ${g.layers} layers, then on the CPU (f64) after the GPU was lost.`;
  return 'GPTQ on the CPU (f64 reference): no WebGPU device.';
}

/** The totals per method at full precision ("vs RTN" and top-1 agreement as fractions). */
export function calibrationTotalsData(result: Comparison): TableData {
  return {
    header: ['Method', 'bits/weight', 'Total output MSE', 'vs RTN', 'Model KL', 'Perplexity', 'Top-1 agree'],
    rows: CALIBRATION_METHODS.map((m) => {
      const model = result.model.methods[m];
      return [METHOD_LABELS[m], result.bpw[m], result.totals[m], result.totals[m] / result.totals.rtn, model.klMean, model.ppl, model.top1Agree];
    }),
  };
}

/** The held-out output MSE of each layer weight under each method, and AWQ's alpha. */
export function calibrationLayersData(result: Comparison): TableData {
  return {
    header: ['Weight', ...CALIBRATION_METHODS.map((m) => METHOD_LABELS[m]), 'AWQ alpha'],
    rows: result.layers.map((l) => [l.name, ...CALIBRATION_METHODS.map((m) => l.mse[m]), l.awqAlpha]),
  };
}

/**
 * What calibration buys: per layer, the held-out output MSE of RTN, Q4_K without and with an
 * imatrix, AWQ and GPTQ at ~4 bits, computed from a calibration text (built-in or a dropped .txt).
 */
export function CalibrationTab({ refusal }: { refusal: string | null }) {
  const text = useApp((s) => s.calibration.text);
  const group = useApp((s) => s.calibration.group);
  const actOrder = useApp((s) => s.calibration.actOrder);
  const result = useApp((s) => s.calibration.result);
  const running = useApp((s) => s.calibration.status === 'running');
  // One error line for the tab: the comparison's (or the text's), else the importance matrix's.
  const error = useApp((s) => s.calibration.error ?? s.imatrixCompute.error);
  const computing = useApp((s) => s.imatrixCompute.status === 'running');
  const exporting = useApp((s) => s.exports.calibration.status === 'running');
  const exportText = useApp((s) => exportMessage(s.exports.calibration));
  const imatrix = useApp((s) => s.imatrix);
  const [exportMethod, setExportMethod] = useState<'GPTQ' | 'AWQ'>('GPTQ');
  const [exportTarget, setExportTarget] = useState<PresetName>(EXPORT_TARGETS[0]);
  const { setCalibrationOptions, pickCalibrationText, runCalibration: run } = useApp.getState();
  const setText = (t: null) => setCalibrationOptions({ text: t });
  const setGroup = (g: number) => setCalibrationOptions({ group: g });
  const setActOrder = (a: boolean) => setCalibrationOptions({ actOrder: a });
  const pickText = async (file: File | undefined) => {
    if (file) await pickCalibrationText(file);
  };

  /**
   * llama-imatrix's matrix over the calibration text (the file `quantlab calibrate -o` writes),
   * kept for the exports (the Whole model tab's export uses it) and offered as a download.
   */
  const computeImatrix = () => void useApp.getState().computeImatrix(text);

  const downloadImatrix = async () => {
    if (!imatrix) return;
    const sink = downloadSink(imatrix.file.name);
    await sink.write(new Uint8Array(await imatrix.file.arrayBuffer()));
    await sink.close();
  };

  /**
   * The model exported with GPTQ's blocks in its Q4_0/Q4_K layer weights, or with AWQ's
   * folded scales (quantlab quantize --type q4_0 / --preset P, --gptq or --awq), as a download.
   */
  const exportCalibrated = async () => {
    const fileName = `model-${exportMethod}-${exportTarget}.gguf`;
    const calibration = text ? { text: text.content, dataset: text.name } : {};
    await useApp.getState().startExport('calibration', {
      mode: exportTarget === 'Q4_0' ? { type: 'q4_0' } : { preset: exportTarget },
      overrides: [],
      fileName,
      sink: downloadSink(fileName),
      total: 1,
      firstLabel: `${exportMethod}: reading the weights…`,
      options: exportMethod === 'GPTQ' ? { gptq: { ...calibration, actOrder } } : { awq: calibration },
    });
  };

  const data = result?.layers.map((l) => ({ name: shortName(l.name), ...l.mse })) ?? [];
  return (
    <section className="panel" aria-label="Calibration">
      <p className="muted">
        Runs the model over a calibration text and quantizes every layer's weight at about 4 bits six ways: round-to-nearest
        (INT4, groups of {group}), Q4_K without and with the text's importance matrix (as llama-imatrix computes it), AWQ and
        GPTQ (same INT4 grid as RTN), and GPTQ into Q4_K's grid (what the GPTQ export writes for a Q4_K tensor). Each is scored by its layer output error ‖XWᵀ − XŴᵀ‖² / (rows · tokens) on held-out text
        (the Model output tab's story), so the calibration text is never what the score is measured on. Here AWQ's inverse
        per-channel scale is kept explicit; its export below folds it into the previous operation (the RMSNorm weight, or the
        rows of the linear before), so the GGUF is a plain one.
        {refusal && ` This model cannot run here: ${refusal}`}
      </p>
      <div className="row" style={{ margin: '8px 0', gap: 12, flexWrap: 'wrap' }}>
        <label>
          Calibration text:{' '}
          <input type="file" accept=".txt,text/plain" aria-label="Calibration text file" onChange={(e) => void pickText(e.target.files?.[0])} />
        </label>
        <span data-testid="calibration-text-name">{text ? `${text.name} (${text.content.length} characters)` : 'built-in stories'}</span>
        {text && (
          <button type="button" onClick={() => setText(null)}>
            Use the built-in text
          </button>
        )}
        <label>
          INT4 group{' '}
          <select aria-label="INT4 group" value={group} onChange={(e) => setGroup(Number(e.target.value))}>
            {[32, 64, 128].map((g) => (
              <option key={g} value={g}>
                {g}
              </option>
            ))}
          </select>
        </label>
        <label title="GPTQ's columns by decreasing Hessian diagonal (AutoGPTQ desc_act), each group's scale found before the walk (static groups) so it stays a Q4_0/Q4_K block; on the CPU">
          <input type="checkbox" checked={actOrder} onChange={(e) => setActOrder(e.target.checked)} /> GPTQ act-order
        </label>
      </div>
      <div className="row" style={{ margin: '8px 0' }}>
        <button type="button" className="primary" onClick={run} disabled={running}>
          Calibrate and compare
        </button>
        <JobProgress select={(s) => s.calibration.progress} cancellable />
      </div>
      <div className="row" style={{ margin: '8px 0', gap: 12, flexWrap: 'wrap' }} aria-label="Importance matrix from the text">
        <button type="button" onClick={computeImatrix} disabled={computing || running}>
          Compute importance matrix
        </button>
        {imatrix?.computed ? (
          <>
            <span data-testid="computed-imatrix">
              {imatrix.summary.name}: {imatrix.summary.entries} weights, {imatrix.summary.chunkCount} chunks of {imatrix.summary.datasets.join(', ')}. The
              Whole model tab's export quantizes with it.
            </span>
            <button type="button" onClick={() => void downloadImatrix()}>
              Download imatrix GGUF
            </button>
          </>
        ) : (
          <span className="muted">As llama-imatrix computes it; for llama-quantize --imatrix and this page's exports.</span>
        )}
        <JobProgress select={(s) => s.imatrixCompute.progress} cancellable label="Importance matrix progress" />
      </div>
      <div className="row" style={{ margin: '8px 0', gap: 12, flexWrap: 'wrap' }} aria-label="Calibrated export">
        <label>
          Export with{' '}
          <select aria-label="Calibration method" value={exportMethod} onChange={(e) => setExportMethod(e.target.value as 'GPTQ' | 'AWQ')}>
            <option value="GPTQ">GPTQ</option>
            <option value="AWQ">AWQ</option>
          </select>
        </label>
        <label>
          as{' '}
          <select aria-label="Export type" value={exportTarget} onChange={(e) => setExportTarget(e.target.value as PresetName)}>
            {EXPORT_TARGETS.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={exportCalibrated} disabled={exporting || running}>
          Download {exportMethod} {exportTarget} GGUF
        </button>
        <span className="muted">
          {exportMethod === 'GPTQ'
            ? `GPTQ's blocks (from the calibration text above, ${actOrder ? 'in act-order, on the CPU' : 'computed on WebGPU when the page has it'}) in every Q4_0/Q4_K layer weight, the rest as llama-quantize's`
            : "AWQ's per-channel scales (from the calibration text above) folded into the norms and the previous linears, then llama-quantize's quantization"}
          ; runs in llama.cpp.
        </span>
        <ExportProgress slot="calibration" label="Calibrated export progress" />
        {exportText && <span role="status">{exportText}</span>}
      </div>
      <ErrorAlert message={error} />
      {result && (
        <>
          <p className="muted">
            Calibration: {result.calibration.tokens} tokens, {result.calibration.chunks} chunks of {result.calibration.chunk}. Held out:{' '}
            {result.heldOut.tokens} tokens ({result.heldOut.rows} input rows per layer). Model columns: the whole model on the held-out
            text with every layer weight quantized by the method (embedding, norms and output stay F32); F32 perplexity{' '}
            {result.model.f32Ppl.toFixed(4)}.
          </p>
          <p className="muted" data-testid="gptq-backend" data-backend={result.gptq.backend}>
            {gptqBackendText(result.gptq)}
          </p>
          <div className="toolbar">
            <TableTakeaway label="Calibration totals" data={() => calibrationTotalsData(result)} />
            <TableTakeaway label="Calibration per layer" data={() => calibrationLayersData(result)} />
          </div>
          <table className="metrics" aria-label="Calibration totals">
            <thead>
              <tr>
                <th>Method</th>
                <th className="num">bits/weight</th>
                <th className="num">Total output MSE</th>
                <th className="num">vs RTN</th>
                <th className="num">Model KL</th>
                <th className="num">Perplexity</th>
                <th className="num">Top-1 agree</th>
              </tr>
            </thead>
            <tbody>
              {CALIBRATION_METHODS.map((m) => (
                <tr key={m} data-method={m}>
                  <td>{METHOD_LABELS[m]}</td>
                  <td className="num">{result.bpw[m].toFixed(3)}</td>
                  <td className="num" data-metric="total" data-value={result.totals[m]}>
                    {formatMetric(result.totals[m])}
                  </td>
                  <td className="num">{((result.totals[m] / result.totals.rtn) * 100).toFixed(1)}%</td>
                  <td className="num" data-metric="kl" data-value={result.model.methods[m].klMean}>
                    {formatMetric(result.model.methods[m].klMean)}
                  </td>
                  <td className="num" data-metric="ppl" data-value={result.model.methods[m].ppl}>
                    {result.model.methods[m].ppl.toFixed(4)}
                  </td>
                  <td className="num">{(result.model.methods[m].top1Agree * 100).toFixed(1)}%</td>
                </tr>
              ))}
            </tbody>
          </table>
          <ChartFigure label="Output MSE per layer" caption="Held-out layer output MSE per weight (lower is better)">
            <ResponsiveContainer width="100%" height={320}>
              <BarChart data={data} margin={{ top: 8, right: 16, bottom: 48, left: 4 }}>
                <CartesianGrid strokeDasharray="3 3" stroke="#e5e7eb" />
                <XAxis dataKey="name" angle={-60} textAnchor="end" interval={0} tick={{ fontSize: 9 }} height={60} />
                <YAxis tickFormatter={(v: number) => formatMetric(v)} tick={{ fontSize: 11 }} width={56} />
                <Tooltip formatter={(v) => formatMetric(Number(v))} />
                <Legend verticalAlign="top" />
                {CALIBRATION_METHODS.map((m, i) => (
                  <Bar key={m} dataKey={m} name={METHOD_LABELS[m]} fill={COLORS[i]} isAnimationActive={false} />
                ))}
              </BarChart>
            </ResponsiveContainer>
          </ChartFigure>
          <div className="table-wrap">
            <table className="metrics" aria-label="Calibration per layer">
              <thead>
                <tr>
                  <th>Weight</th>
                  {CALIBRATION_METHODS.map((m) => (
                    <th key={m} className="num">
                      {METHOD_LABELS[m]}
                    </th>
                  ))}
                  <th className="num">AWQ α</th>
                </tr>
              </thead>
              <tbody>
                {result.layers.map((l) => (
                  <tr key={l.name} data-layer={l.name}>
                    <td title={l.name}>{l.name.replace(/\.weight$/, '')}</td>
                    {CALIBRATION_METHODS.map((m) => (
                      <td key={m} className="num" data-method={m} data-value={l.mse[m]}>
                        {formatMetric(l.mse[m])}
                      </td>
                    ))}
                    <td className="num">{l.awqAlpha.toFixed(2)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
