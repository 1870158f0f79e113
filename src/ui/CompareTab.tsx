import { useEffect } from 'react';
import { useShallow } from 'zustand/react/shallow';
import { useApp } from '../store/store.ts';
import { CompareView } from './CompareView.tsx';
import { formatShape } from './format.ts';
import { GpuUsageLine } from './GpuUsageLine.tsx';
import { JobProgress } from './JobProgress.tsx';
import { ErrorAlert } from './Status.tsx';
import { TypeChips } from './TypeChips.tsx';

/** Pick a tensor and types; the engine quantizes it in each and the charts compare them. */
export function CompareTab() {
  const { model, tensor, types, toggleType } = useApp(useShallow((s) => ({ model: s.model, tensor: s.tensor, types: s.types, toggleType: s.toggleType })));
  // The job's parts this panel shows; its progress is JobProgress's alone.
  const { compare, compareError, blockIndex } = useApp(
    useShallow((s) => ({ compare: s.compare.result, compareError: s.compare.error, blockIndex: s.compare.blockIndex })),
  );
  const info = model?.tensors.find((t) => t.name === tensor) ?? null;

  // The store runs the comparison unless it has this very one (shown again, the tab keeps its result).
  useEffect(() => {
    if (!info || types.length === 0) return;
    // pad: a type whose block does not divide the rows is shown on zero-padded rows (labelled so), not struck out.
    useApp.getState().ensureCompare({ tensor: info.name, types, blockIndex, pad: true });
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
      <JobProgress select={(s) => s.compare.progress} />
      <ErrorAlert message={compareError} />
      {compare?.sampledRows && compare.tensor === info?.name && (
        <p className="muted" role="note" aria-label="Sampled rows">
          Compared on {compare.sampledRows.rows.toLocaleString()} of {compare.sampledRows.of.toLocaleString()} rows (evenly spaced
          runs): the whole tensor is more than a comparison holds in memory. Sizes are the whole tensor's.
        </p>
      )}
      {compare && compare.tensor === info?.name && <CompareView compare={compare} blockIndex={blockIndex} onBlockIndex={useApp.getState().setBlockIndex} />}
      {compare && compare.tensor === info?.name && <GpuUsageLine gpu={compare.gpu} />}
    </section>
  );
}
