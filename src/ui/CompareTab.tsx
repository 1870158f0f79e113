import { useEffect, useState } from 'react';
import { engine } from '../engine/client.ts';
import { useApp } from '../store/store.ts';
import { CompareView } from './CompareView.tsx';
import { formatShape } from './format.ts';
import { ErrorAlert, ProgressLine } from './Status.tsx';
import { TypeChips } from './TypeChips.tsx';

/** Pick a tensor and types; the engine quantizes it in each and the charts compare them. */
export function CompareTab() {
  const { model, tensor, types, compare, comparing, compareError, toggleType } = useApp();
  const [blockIndex, setBlockIndex] = useState(0);
  const info = model?.tensors.find((t) => t.name === tensor) ?? null;

  useEffect(() => {
    if (!info || types.length === 0) return;
    const s = useApp.getState();
    // Progress messages come on their own channel and may arrive after the result.
    let current = true;
    let finished = false;
    s.setComparing({ done: 0, total: types.length, label: `Quantizing ${info.name}…` });
    s.setCompareError(null);
    engine
      .compare({ tensor: info.name, types, blockIndex }, (p) => current && !finished && useApp.getState().setComparing(p))
      .then(
        (r) => current && s.setCompare(r),
        (e: unknown) => current && s.setCompareError(e instanceof Error ? e.message : String(e)),
      )
      .finally(() => {
        finished = true;
        if (current) s.setComparing(null);
      });
    return () => {
      current = false;
      engine.cancel();
    };
  }, [info, types, blockIndex]);

  return (
    <section className="panel" aria-label="Compare types">
      <div className="row" style={{ justifyContent: 'space-between', marginBottom: 8 }}>
        <div>
          {info ? (
            <>
              <b className="mono">{info.name}</b> <span className="muted">{formatShape(info.shape)} · {info.dtype}</span>
            </>
          ) : (
            <span className="muted">Pick a tensor in the table on the left.</span>
          )}
        </div>
      </div>
      <TypeChips selected={types} rowLength={info ? info.shape[info.shape.length - 1] : null} onToggle={toggleType} />
      <ProgressLine progress={comparing} />
      <ErrorAlert message={compareError} />
      {compare?.sampledRows && compare.tensor === info?.name && (
        <p className="muted" role="note" aria-label="Sampled rows">
          Compared on {compare.sampledRows.rows.toLocaleString()} of {compare.sampledRows.of.toLocaleString()} rows (evenly spaced
          runs): the whole tensor is more than a comparison holds in memory. Sizes are the whole tensor's.
        </p>
      )}
      {compare && compare.tensor === info?.name && <CompareView compare={compare} blockIndex={blockIndex} onBlockIndex={setBlockIndex} />}
    </section>
  );
}
