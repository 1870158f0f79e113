// One job's state, the same for every kind of job the page runs (a comparison, a model
// evaluation, a budget scan, an export…): where it is, how far it got, what it gave or why
// it failed. The store owns it, so it outlives the tab that started the job.
import type { Progress } from './types.ts';

export type JobStatus = 'idle' | 'running' | 'done' | 'error';

export interface Job<R> {
  status: JobStatus;
  /** Set while the job runs; progress that arrives after it settled is dropped. */
  progress: Progress | null;
  result: R | null;
  error: string | null;
}

export const idleJob = <R>(): Job<R> => ({ status: 'idle', progress: null, result: null, error: null });

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Each run of a job slot gets a ticket; a newer run (or a new model, or a reset) takes the
 * slot, and what the older run reports after that (progress, its result, its error) is
 * dropped. Progress comes on its own channel from the worker and may land after the job
 * settled: that is dropped too, so a finished job's progress line never comes back.
 */
export class Tickets {
  private readonly current = new Map<string, number>();
  private next = 0;

  take(slot: string): number {
    const ticket = ++this.next;
    this.current.set(slot, ticket);
    return ticket;
  }

  holds(slot: string, ticket: number): boolean {
    return this.current.get(slot) === ticket;
  }

  /** Every slot's running job is forgotten (a new model was loaded). */
  revokeAll(): void {
    this.current.clear();
  }

  revoke(slot: string): void {
    this.current.delete(slot);
  }
}

export interface RunHooks<R> {
  /** Writes the job's new state into its slice (the caller knows where the slice lives). */
  patch: (p: Partial<Job<R>>) => void;
  /** The job's work; it reports progress through `onProgress`. */
  work: (onProgress: (p: Progress) => void) => Promise<R>;
  first: Progress;
  /** Keep the previous result on screen while this run goes (a comparison does; a scan does too). */
  keepResult?: boolean;
  /** Called with the result when the run still holds its slot. */
  onResult?: (r: R) => void;
  /** Called with the error when the run still holds its slot. */
  onError?: (message: string) => void;
}

/** Runs a job in `slot`, writing status, progress, result and error through `patch`. */
export async function runJob<R>(tickets: Tickets, slot: string, hooks: RunHooks<R>): Promise<void> {
  const ticket = tickets.take(slot);
  let settled = false;
  const live = () => !settled && tickets.holds(slot, ticket);
  hooks.patch({ status: 'running', progress: hooks.first, error: null, ...(hooks.keepResult ? {} : { result: null }) });
  try {
    const result = await hooks.work((p) => {
      if (live()) hooks.patch({ progress: p });
    });
    if (!live()) return;
    settled = true;
    hooks.patch({ status: 'done', progress: null, result });
    hooks.onResult?.(result);
  } catch (e) {
    if (!live()) return;
    settled = true;
    const message = errorMessage(e);
    hooks.patch({ status: 'error', progress: null, error: message });
    hooks.onError?.(message);
  } finally {
    settled = true;
  }
}
