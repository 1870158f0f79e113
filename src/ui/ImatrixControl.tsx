import { useApp } from '../store/store.ts';
import { ErrorAlert } from './Status.tsx';

/**
 * The importance matrix the exports quantize with, as llama-quantize's --imatrix: an
 * imatrix file (llama-imatrix's GGUF or legacy .dat, or `quantlab calibrate`'s), checked
 * against the model as it is picked, or the one the Calibration tab computed.
 */
export function ImatrixControl() {
  const imatrix = useApp((s) => s.imatrix);
  const checking = useApp((s) => s.imatrixCheck.status === 'running');
  const error = useApp((s) => s.imatrixCheck.error);
  const { checkImatrix, setImatrix } = useApp.getState();

  return (
    <div className="row" aria-label="Importance matrix" style={{ gap: 12, flexWrap: 'wrap', margin: '8px 0' }}>
      <span>Importance matrix:</span>
      <span data-testid="imatrix-status">
        {imatrix
          ? `${imatrix.summary.name}: ${imatrix.summary.entries} weights, ${imatrix.summary.chunkCount} chunks of ${imatrix.summary.datasets.join(', ') || 'unnamed text'}${imatrix.computed ? ' (computed here)' : ''}`
          : 'none (round-to-nearest as llama-quantize without --imatrix)'}
      </span>
      <label>
        {imatrix ? 'Use another file' : 'Load an imatrix file'}{' '}
        <input
          type="file"
          accept=".gguf,.dat"
          aria-label="Importance matrix file"
          disabled={checking}
          onChange={(e) => {
            const file = e.target.files?.[0];
            if (file) void checkImatrix(file);
          }}
        />
      </label>
      {imatrix && (
        <button type="button" onClick={() => setImatrix(null)}>
          Export without it
        </button>
      )}
      <ErrorAlert message={error} />
    </div>
  );
}
