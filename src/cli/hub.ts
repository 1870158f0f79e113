// FILE arguments of the form hf://org/name[@revision][/path]: the model's files on the
// Hugging Face Hub (HF_ENDPOINT, as Hugging Face's libraries read it), opened for ranged
// reads. HF_TOKEN is sent only if the Hub answers 401/403, and only to the Hub (docs/hub.md).
import type { ByteSource } from '../formats/bytes.ts';
import { FormatError } from '../formats/errors.ts';
import type { CliIO } from './command.ts';
import { progressLine } from './progress.ts';

export { isHubArgument } from '../hub/ref.ts';

/** The Hub model an argument names, as one ByteSource per file (a progress line on stderr every 10 s of transfer when `io` is given). */
export async function openHubArgument(arg: string, io?: CliIO, env: NodeJS.ProcessEnv = process.env): Promise<ByteSource[]> {
  const [{ openHubModel }, { HubRefError }] = await Promise.all([import('../hub/repo.ts'), import('../hub/ref.ts')]);
  // Plain lines (one every LINE_INTERVAL_MS), never a live line: the reads go on after this
  // returns, and a live line would be left under the command's output.
  const progress = io && progressLine(io, false, (p: { read: number; needed: number; file: string }) => `hub: ${mib(p.read)} of ${mib(p.needed)} MiB read (${p.file})`);
  try {
    const model = await openHubModel(arg, { endpoint: env.HF_ENDPOINT || undefined, token: env.HF_TOKEN || undefined, onProgress: progress?.update });
    return [...model.sources];
  } catch (e) {
    if (e instanceof HubRefError) throw new FormatError(arg, 0, e.message);
    throw e;
  }
}

const mib = (bytes: number) => (bytes / (1 << 20)).toFixed(1);
