// stderr progress of long CLI runs. On a terminal, one live line redrawn in place (at most
// every REDRAW_MS) and erased at the end; elsewhere (a log file, a pipe, CI), a plain line
// every LINE_INTERVAL_MS, so a run shorter than that prints nothing at all.
import type { CliIO } from './command.ts';

export const LINE_INTERVAL_MS = 10_000;
export const REDRAW_MS = 100;

export interface ProgressLine<P> {
  update(progress: P): void;
  /** Erases the live line (call before printing the result). */
  clear(): void;
}

export function progressLine<P>(io: CliIO, isTTY: boolean, text: (progress: P) => string, now: () => number = () => performance.now()): ProgressLine<P> {
  let last = isTTY ? -Infinity : now();
  let shown = false;
  return {
    update(progress) {
      const t = now();
      if (t - last < (isTTY ? REDRAW_MS : LINE_INTERVAL_MS)) return;
      last = t;
      shown = true;
      io.stderr(isTTY ? `\r\x1b[K${text(progress)}` : `${text(progress)}\n`);
    },
    clear() {
      if (isTTY && shown) io.stderr('\r\x1b[K');
    },
  };
}

/** Whether the process's stderr is a terminal (a test's CliIO may say otherwise). */
export function stderrIsTTY(io: CliIO): boolean {
  return io.stderrIsTTY ?? process.stderr.isTTY === true;
}
