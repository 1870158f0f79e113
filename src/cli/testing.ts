// Test support for the CLI: run main() in this process and capture what it prints.
import { main } from './main.ts';

/** `stderrIsTTY`: run as on a terminal (live progress lines; default: as off one). */
export async function runInProcess(args: readonly string[], { stderrIsTTY = false } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), stderrIsTTY });
  return { code, stdout, stderr };
}
