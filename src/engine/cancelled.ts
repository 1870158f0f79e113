// The error a cancelled job rejects with. Every job has a token (an AbortSignal, jobs/job.ts);
// Engine.cancel() and the CLI's Ctrl-C abort it with a CancelledError as the reason.
export class CancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'CancelledError';
  }
}

/** Throws CancelledError once `signal` is aborted. */
export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason instanceof CancelledError ? signal.reason : new CancelledError();
}
