import { useCallback, useEffect, useState } from 'react';
import { engine } from '../engine/client.ts';
import { useApp } from '../store/store.ts';
import { useHashState } from '../store/hash.ts';
import { BudgetTab } from './BudgetTab.tsx';
import { CalibrationTab } from './CalibrationTab.tsx';
import { CompareTab } from './CompareTab.tsx';
import { DropZone } from './DropZone.tsx';
import { EngineNotice } from './EngineNotice.tsx';
import { MatmulTab } from './MatmulTab.tsx';
import { ModelOutputTab } from './ModelOutputTab.tsx';
import { ModelOverview } from './ModelOverview.tsx';
import { TensorTable } from './TensorTable.tsx';
import { WholeModelTab } from './WholeModelTab.tsx';

const TABS = ['Compare types', 'Quantized matmul', 'Whole model', 'Model output', 'Budget', 'Calibration'] as const;
type Tab = (typeof TABS)[number];

const SAMPLE_URL = './samples/stories260K.gguf';

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function App() {
  const { model, loading, loadErrors, gpu, tensor } = useApp();
  const [tab, setTab] = useState<Tab>('Compare types');
  useHashState();

  useEffect(() => {
    engine.gpuStatus().then(useApp.getState().setGpu, (e) => useApp.getState().setGpu({ backend: 'cpu', detail: errorMessage(e) }));
  }, []);

  const load = useCallback(async (files: File[]) => {
    const s = useApp.getState();
    s.setLoading({ done: 0, total: files.length, label: `Reading ${files.length === 1 ? files[0].name : `${files.length} files`}…` });
    try {
      s.setModel(await engine.load(files));
    } catch (e) {
      // The model already loaded stays: only the error is added.
      s.addLoadError({ file: files.map((f) => f.name).join(', '), message: errorMessage(e) });
    } finally {
      s.setLoading(null);
    }
  }, []);

  const loadSample = useCallback(async () => {
    const response = await fetch(SAMPLE_URL);
    const blob = await response.blob();
    await load([new File([blob], 'stories260K.gguf')]);
  }, [load]);

  return (
    <>
      <header className="top">
        <h1>quantlab</h1>
        <span className="tag">what quantization does to your model, computed on your own GPU</span>
        <span className={`gpu ${gpu?.backend ?? ''}`} aria-label="Compute backend">
          {gpu ? (gpu.backend === 'webgpu' ? `WebGPU: ${gpu.detail}` : `CPU fallback: ${gpu.detail}`) : 'probing WebGPU…'}
        </span>
      </header>
      <main className="layout">
        <div className="side">
          <EngineNotice />
          <DropZone onFiles={load} onSample={loadSample} busy={loading !== null} compact={model !== null} />
          {loading && (
            <div className="progress panel" role="status">
              <progress /> {loading.label}
            </div>
          )}
          {loadErrors.length > 0 && (
            <div className="errors" role="alert">
              <b>Could not load:</b>
              <ul>
                {loadErrors.map((e, i) => (
                  <li key={i}>{e.message}</li>
                ))}
              </ul>
              <button type="button" onClick={() => useApp.getState().dismissLoadErrors()}>
                Dismiss
              </button>
            </div>
          )}
          {model && <ModelOverview model={model} gpu={gpu} />}
          {model && <TensorTable tensors={model.tensors} selected={tensor} onSelect={useApp.getState().selectTensor} />}
        </div>
        <div className="work">
          {model ? (
            <>
              <nav className="tabs" role="tablist">
                {TABS.map((t) => (
                  <button key={t} role="tab" type="button" aria-selected={tab === t} onClick={() => setTab(t)}>
                    {t}
                  </button>
                ))}
              </nav>
              {tab === 'Compare types' && <CompareTab />}
              {tab === 'Whole model' && <WholeModelTab />}
              {tab === 'Quantized matmul' && <MatmulTab />}
              {tab === 'Model output' && <ModelOutputTab architecture={model.architecture} />}
              {tab === 'Calibration' && <CalibrationTab architecture={model.architecture} />}
              {tab === 'Budget' && <BudgetTab key={model.files.map((f) => `${f.name}:${f.size}`).join(',')} />}
            </>
          ) : (
            <div className="panel empty">Load a model to see its tensors, then compare quantization types on any of them.</div>
          )}
        </div>
      </main>
    </>
  );
}
