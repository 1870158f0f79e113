// What every CLI command module provides; main.ts dispatches on the name.

export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
}

export interface Command {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** Usage line(s) for `quantlab help NAME`. */
  readonly usage: string;
  /** Runs with the arguments after the command name; returns the exit code. */
  run(args: readonly string[], io: CliIO): Promise<number>;
}

/** A bad command line (unknown option, missing file): reported as one line, exit 1. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
