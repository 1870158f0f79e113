// What every job gets besides its session and request: its cancellation token and where
// its progress goes. A job is a function (session, request, ctx) run alike by the worker's
// Engine (engine.ts) and the CLI (src/cli); it rejects with CancelledError (cancelled.ts)
// once ctx.signal is aborted.
import type { Progress } from '../types.ts';

export interface JobContext<P = Progress> {
  readonly signal: AbortSignal;
  readonly onProgress?: (p: P) => void;
}

/** A context for a caller that never cancels (a CLI command ends with its process). */
export function uncancelled<P = Progress>(onProgress?: (p: P) => void): JobContext<P> {
  return { signal: new AbortController().signal, onProgress };
}
