import { useEffect, useState } from 'react';
import { useApp } from '../store/store.ts';
import { useHashState } from '../store/hash.ts';
import { ActivationsTab } from './ActivationsTab.tsx';
import { BudgetTab } from './BudgetTab.tsx';
import { CalibrationTab } from './CalibrationTab.tsx';
import { CompareTab } from './CompareTab.tsx';
import { DropZone } from './DropZone.tsx';
import { EngineNotice } from './EngineNotice.tsx';
import { MatmulTab } from './MatmulTab.tsx';
import { ModelOutputTab } from './ModelOutputTab.tsx';
import { ModelOverview } from './ModelOverview.tsx';
import { moveFocus } from './roving.ts';
import { TensorTable } from './TensorTable.tsx';
import { TrainingTab } from './TrainingTab.tsx';
import { WholeModelTab } from './WholeModelTab.tsx';

const TABS = ['Compare types', 'Quantized matmul', 'Whole model', 'Model output', 'Budget', 'Calibration', 'Activations', 'Training'] as const;
type Tab = (typeof TABS)[number];

export function App() {
  // Each part of the store on its own: a job's progress re-renders none of this.
  const model = useApp((s) => s.model);
  const loading = useApp((s) => s.loading);
  const loadErrors = useApp((s) => s.loadErrors);
  const gpu = useApp((s) => s.gpu);
  const tensor = useApp((s) => s.tensor);
  const [tab, setTab] = useState<Tab>('Compare types');
  useHashState();

  useEffect(() => {
    void useApp.getState().probeGpu();
  }, []);

  const { loadFiles, loadSample, selectTensor, dismissLoadErrors } = useApp.getState();

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
          <DropZone onFiles={(files) => void loadFiles(files)} onSample={() => void loadSample()} busy={loading !== null} compact={model !== null} />
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
              <button type="button" onClick={dismissLoadErrors}>
                Dismiss
              </button>
            </div>
          )}
          {model && <ModelOverview model={model} gpu={gpu} />}
          {model && <TensorTable tensors={model.tensors} selected={tensor} onSelect={selectTensor} />}
        </div>
        <div className="work">
          {model ? (
            <>
              {/* One tab stop; arrow keys, Home and End move between the tabs and show the one reached. */}
              <div
                className="tabs"
                role="tablist"
                aria-label="Views"
                onKeyDown={(e) => {
                  const to = moveFocus(e, '[role=tab]', 'horizontal');
                  if (to) setTab(to.textContent as Tab);
                }}
              >
                {TABS.map((t) => (
                  <button key={t} role="tab" type="button" aria-selected={tab === t} tabIndex={tab === t ? 0 : -1} onClick={() => setTab(t)}>
                    {t}
                  </button>
                ))}
              </div>
              {tab === 'Compare types' && <CompareTab />}
              {tab === 'Whole model' && <WholeModelTab />}
              {tab === 'Quantized matmul' && <MatmulTab />}
              {tab === 'Model output' && <ModelOutputTab refusal={model.forwardPassRefusal} />}
              {tab === 'Calibration' && <CalibrationTab refusal={model.forwardPassRefusal} />}
              {tab === 'Budget' && <BudgetTab />}
              {tab === 'Activations' && <ActivationsTab refusal={model.forwardPassRefusal} />}
              {tab === 'Training' && <TrainingTab refusal={model.forwardPassRefusal} />}
            </>
          ) : (
            <div className="panel empty">Load a model to see its tensors, then compare quantization types on any of them.</div>
          )}
        </div>
      </main>
    </>
  );
}
