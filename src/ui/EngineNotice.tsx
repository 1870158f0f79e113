import { useEffect } from 'react';
import { useApp } from '../store/store.ts';

/**
 * Says when the engine changed under the user: the WebGPU device was lost (jobs finish on
 * the CPU), or the engine worker stopped and was restarted on the CPU (the model is loaded
 * again and an interrupted job runs again). The store hears the engine and updates the
 * backend badge too.
 */
export function EngineNotice() {
  const notices = useApp((s) => s.notices);
  useEffect(() => useApp.getState().watchEngine(), []);
  if (notices.length === 0) return null;
  return (
    <div className="panel notice" role="status" aria-label="Engine notice">
      <ul>
        {notices.map((n, i) => (
          <li key={i}>{n}</li>
        ))}
      </ul>
      <button type="button" onClick={useApp.getState().dismissNotices}>
        Dismiss
      </button>
    </div>
  );
}
