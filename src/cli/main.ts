// quantlab CLI entry: `quantlab COMMAND ARGS...`. Each command lives in its own module
// (inspect.ts, quantize.ts, compare.ts, eval.ts) and is listed in COMMANDS.
// Exit codes: 0 success, 1 bad input or failure, with one line on stderr naming the
// file, the byte offset and the reason (INTERFACES.md).

import { FormatError } from '../formats/errors.ts';
import { loadFastCodecs } from '../quant/fast/node.ts';
import { type CliIO, type Command, UsageError } from './command.ts';
import { compareCommand } from './compare.ts';
import { evalCommand } from './eval.ts';
import { inspectCommand } from './inspect.ts';
import { quantizeCommand } from './quantize.ts';
import { planCommand } from './plan.ts';
import { calibrateCommand } from './calibrate.ts';

export const COMMANDS: readonly Command[] = [inspectCommand, quantizeCommand, compareCommand, evalCommand, planCommand, calibrateCommand];

const processIO: CliIO = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

function helpText(): string {
  const lines = COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`);
  return `usage: quantlab COMMAND [ARGS...]\n\ncommands:\n${lines.join('\n')}\n  help       show a command's usage\n`;
}

export async function main(argv: readonly string[], io: CliIO = processIO): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const command = COMMANDS.find((c) => c.name === args[0]);
    io.stdout(command ? `usage: ${command.usage}\n` : helpText());
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.stderr(`quantlab: unknown command '${name}' (try 'quantlab help')\n`);
    return 1;
  }
  // The WebAssembly codecs (built from wasm/ on first use); without them the reference runs.
  await loadFastCodecs((message) => io.stderr(`quantlab: ${message}\n`));
  try {
    return await command.run(args, io);
  } catch (error) {
    io.stderr(`${errorLine(error, command)}\n`);
    return 1;
  }
}

/** One line: FormatErrors already name file and offset; others get the command's name. */
export function errorLine(error: unknown, command: Command): string {
  if (error instanceof FormatError) return error.message;
  if (error instanceof UsageError) return `quantlab ${command.name}: ${error.message} (usage: ${command.usage})`;
  const message = error instanceof Error ? error.message : String(error);
  return `quantlab ${command.name}: ${message.split('\n')[0]}`;
}
