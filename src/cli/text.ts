// A text file a command reads (a calibration or eval text): UTF-8, with one-line errors.
import { readFile } from 'node:fs/promises';
import { FormatError } from '../formats/errors.ts';

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
