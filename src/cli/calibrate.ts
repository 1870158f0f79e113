// `quantlab calibrate FILE... [--text FILE] [--chunk N] -o IMATRIX.gguf [--json]`: the
// model run over a calibration text (built-in, or a UTF-8 file), the input activations of
// every blk.* weight accumulated as llama.cpp's llama-imatrix does, written as its GGUF
// imatrix (src/calibrate/imatrix.ts), which `quantlab quantize --imatrix` and
// llama-quantize read.
import { readFile, rename, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { FormatError } from '../formats/errors.ts';
import { loadModel } from '../formats/model.ts';
import { CALIBRATION_STORY_TEXT as CALIBRATION_TEXT } from '../calibrate/calibration-text.ts';
import { defaultChunk, openCalibrationModel } from '../calibrate/activations.ts';
import { computeImatrix, imatrixGgufBytes } from '../calibrate/imatrix.ts';
import { type Command, parseCommandLine, UsageError } from './command.ts';
import { openFiles } from './inspect.ts';
import { toJson } from './json.ts';

/** imatrix.datasets for the built-in text (llama-imatrix writes the -f file name). */
export const BUILTIN_DATASET = 'quantlab built-in calibration text';

/** A UTF-8 text file, with one-line errors. */
export async function readTextFile(path: string): Promise<string> {
  const bytes = await readFile(path).catch((e: NodeJS.ErrnoException) => {
    throw new FormatError(path, 0, `cannot read the text (${e.code ?? e.message})`);
  });
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new FormatError(path, 0, 'the text is not valid UTF-8');
  }
}

export function parseChunk(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 16) throw new UsageError(`--chunk must be a whole number of at least 16 tokens, not '${value}'`);
  return n;
}

export const calibrateCommand: Command = {
  name: 'calibrate',
  summary: "run a calibration text through the model and write llama-imatrix's importance matrix (GGUF)",
  usage: 'quantlab calibrate FILE... [--text FILE] [--chunk N] -o IMATRIX.gguf [--json]',
  async run(args, io) {
    const { positionals, values } = parseCommandLine(args, {
      text: { type: 'string' },
      chunk: { type: 'string' },
      output: { type: 'string', short: 'o' },
      json: { type: 'boolean' },
    });
    if (values.output === undefined) throw new UsageError('-o IMATRIX.gguf is required');
    if (positionals.some((p) => resolve(p) === resolve(values.output!))) throw new UsageError('the output file is one of the inputs');
    const chunkArg = parseChunk(values.chunk);
    const text = values.text === undefined ? CALIBRATION_TEXT : await readTextFile(values.text);
    const model = await loadModel(await openFiles(positionals));
    const cm = await openCalibrationModel(model);
    const tokens = cm.tokenize(text).length;
    const chunk = chunkArg ?? defaultChunk(tokens, cm.config.contextLength);
    const t0 = performance.now();
    const stats = await computeImatrix(cm, { text, chunk, dataset: values.text ?? BUILTIN_DATASET });
    const bytes = await imatrixGgufBytes(stats);
    const part = `${values.output}.part`;
    await writeFile(part, bytes);
    await rename(part, values.output);
    const seconds = (performance.now() - t0) / 1000;
    if (values.json) {
      io.stdout(`${toJson({
        output: values.output,
        bytes: bytes.length,
        dataset: stats.datasets[0],
        text_tokens: stats.textTokens,
        chunk_size: stats.chunkSize,
        chunk_count: stats.chunkCount,
        entries: [...stats.sums.keys()].sort().map((name) => ({ name, columns: stats.sums.get(name)!.length, count: stats.counts.get(name)! })),
      })}\n`);
    } else {
      io.stdout(
        `${stats.datasets[0]}: ${stats.textTokens} tokens, ${stats.chunkCount} chunks of ${stats.chunkSize} (${seconds.toFixed(1)} s)\n` +
          `${values.output}: ${bytes.length} bytes, ${stats.sums.size} entries\n`,
      );
    }
    return 0;
  },
};
