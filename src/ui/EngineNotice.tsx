import { useEffect, useState } from 'react';
import { onEngineEvent } from '../engine/client.ts';
import { useApp } from '../store/store.ts';

/**
 * Says when the engine changed under the user: the WebGPU device was lost (jobs finish on
 * the CPU), or the engine worker stopped and was restarted on the CPU (the model is loaded
 * again and an interrupted job runs again). Updates the backend badge too.
 */
export function EngineNotice() {
  const [notices, setNotices] = useState<string[]>([]);
  useEffect(
    () =>
      onEngineEvent((e) => {
        const s = useApp.getState();
        if (e.kind === 'gpu') {
          s.setGpu(e.status);
          if (e.status.backend === 'cpu') {
            setNotices((n) => [...n, `WebGPU stopped: ${e.status.detail}. The running job finishes on the CPU, later jobs run there too; nothing was lost.`]);
          }
        } else {
          s.setGpu({ backend: 'cpu', detail: `engine restarted after a crash (${e.reason})` });
          setNotices((n) => [...n, `The engine stopped (${e.reason}). It was restarted on the CPU with your model loaded again, and the interrupted job runs again there; your results were kept.`]);
        }
      }),
    [],
  );
  if (notices.length === 0) return null;
  return (
    <div className="panel notice" role="status" aria-label="Engine notice">
      <ul>
        {notices.map((n, i) => (
          <li key={i}>{n}</li>
        ))}
      </ul>
      <button type="button" onClick={() => setNotices([])}>
        Dismiss
      </button>
    </div>
  );
}
