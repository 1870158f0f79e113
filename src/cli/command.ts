// What every CLI command module provides; main.ts dispatches on the name.

import { parseArgs, type ParseArgsConfig } from 'node:util';

export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Whether stderr is a terminal (progress.ts); default: the process's. */
  readonly stderrIsTTY?: boolean;
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

export type BackendChoice = 'cpu' | 'webgpu';

export function parseBackend(value: string | undefined): BackendChoice {
  const b = value ?? 'cpu';
  if (b !== 'cpu' && b !== 'webgpu') throw new UsageError(`--backend must be cpu or webgpu, not '${b}'`);
  return b;
}

/** A bad command line (unknown option, missing file): reported as one line, exit 1. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * `COMMAND --help` (or -h): thrown by parseCommandLine before anything runs, carrying the
 * command's options as it parses them, so its help lists exactly those (help.ts).
 */
export class HelpRequested extends Error {
  override readonly name = 'HelpRequested';
  constructor(readonly options: NonNullable<ParseArgsConfig['options']>) {
    super('help requested');
  }
}

/** Whether a command line asks for help instead of running. */
export function asksForHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/**
 * A command line as `FILE... --option value`: node's parseArgs, with its errors and a
 * missing FILE reported as UsageError (one line, exit 1). `--help` throws HelpRequested.
 */
export function parseCommandLine<const T extends NonNullable<ParseArgsConfig['options']>>(args: readonly string[], options: T) {
  if (asksForHelp(args)) throw new HelpRequested(options);
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (parsed.positionals.length === 0) throw new UsageError('no FILE given');
  return parsed;
}
