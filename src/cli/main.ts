// quantlab CLI entry: `quantlab COMMAND ARGS...`. Each command lives in its own module
// (inspect.ts, quantize.ts, compare.ts, eval.ts, ...), listed in COMMANDS and imported only
// when it runs (or for help): a command loads only the modules it uses.
// Exit codes: 0 success, 1 bad input or failure, with one line on stderr naming the
// file, the byte offset and the reason (docs/contracts.md).

import { FormatError } from '../formats/errors.ts';
import { didYouMean } from '../formats/suggest.ts';
import { loadFastCodecs } from '../quant/fast/node.ts';
import { asksForHelp, type CliIO, type Command, UsageError } from './command.ts';
import { commandHelp } from './help.ts';
/** Each command's module, by name, in the order help lists them. */
export const COMMANDS: ReadonlyMap<string, () => Promise<Command>> = new Map([
  ['inspect', async () => (await import('./inspect.ts')).inspectCommand],
  ['quantize', async () => (await import('./quantize.ts')).quantizeCommand],
  ['compare', async () => (await import('./compare.ts')).compareCommand],
  ['eval', async () => (await import('./eval.ts')).evalCommand],
  ['plan', async () => (await import('./plan.ts')).planCommand],
  ['calibrate', async () => (await import('./calibrate.ts')).calibrateCommand],
  ['lora', async () => (await import('./lora.ts')).loraCommand],
  ['train', async () => (await import('./train.ts')).trainCommand],
]);

const processIO: CliIO = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

function helpText(commands: readonly Command[]): string {
  const lines = commands.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`);
  return `usage: quantlab COMMAND [ARGS...]\n\ncommands:\n${lines.join('\n')}\n  help       show a command's options, defaults and examples: quantlab help COMMAND (or quantlab COMMAND --help)\n`;
}

export async function main(argv: readonly string[], io: CliIO = processIO): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const load = args[0] === undefined ? undefined : COMMANDS.get(args[0]);
    if (args[0] !== undefined && !load) return unknownCommand(args[0], io);
    io.stdout(load ? await commandHelp(await load()) : helpText(await Promise.all([...COMMANDS.values()].map((l) => l()))));
    return 0;
  }
  const load = COMMANDS.get(name);
  if (!load) return unknownCommand(name, io);
  const command = await load();
  if (asksForHelp(args)) {
    io.stdout(await commandHelp(command));
    return 0;
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

function unknownCommand(name: string, io: CliIO): number {
  io.stderr(`quantlab: unknown command '${name}'${didYouMean(name, [...COMMANDS.keys(), 'help'])} (try 'quantlab help')\n`);
  return 1;
}

/** One line: FormatErrors already name file and offset; others get the command's name. */
export function errorLine(error: unknown, command: Command): string {
  if (error instanceof FormatError) return error.message;
  if (error instanceof UsageError) return `quantlab ${command.name}: ${error.message} (usage: ${command.usage})`;
  const message = error instanceof Error ? error.message : String(error);
  return `quantlab ${command.name}: ${message.split('\n')[0]}`;
}
