// Test support for the CLI: run main() in this process and capture what it prints.
import { existsSync } from 'node:fs';
import { expect } from 'vitest';
import { main } from './main.ts';

/** `stderrIsTTY`: run as on a terminal (live progress lines; default: as off one). */
export async function runInProcess(args: readonly string[], { stderrIsTTY = false } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), stderrIsTTY });
  return { code, stdout, stderr };
}

/**
 * `quantlab ARGS...` in this process, as on a terminal, with Ctrl-C (SIGINT) pressed at its
 * first `train: step` progress line (a terminal redraws every 100 ms).
 */
export async function runTrainInterrupted(args: readonly string[]): Promise<{ code: number; stderr: string; signalled: boolean }> {
  let stderr = '';
  let signalled = false;
  const code = await main(args, {
    stdout: () => {},
    stderr: (t) => {
      stderr += t;
      if (!signalled && t.includes('train: step')) {
        signalled = true;
        process.emit('SIGINT');
      }
    },
    stderrIsTTY: true,
  });
  return { code, stderr, signalled };
}

/**
 * `quantlab quantize INPUT -o OUT ARGS...` must be refused: exit 1, one stderr line matching
 * `message`, and neither OUT nor OUT.part left behind.
 */
export async function expectQuantizeRefused(input: string, out: string, args: readonly string[], message: RegExp): Promise<void> {
  const { code, stderr } = await runInProcess(['quantize', input, '-o', out, ...args]);
  expect(code).toBe(1);
  expect(stderr).toMatch(message);
  expect(stderr.trim().split('\n')).toHaveLength(1);
  expect(existsSync(out) || existsSync(`${out}.part`)).toBe(false);
}

/**
 * `quantlab train MODEL -o OUT ARGS...` must be refused: exit 1, nothing on stdout, one stderr
 * line matching `message`, and neither OUT nor OUT.part left behind.
 */
export async function expectTrainRefused(model: string, out: string, args: readonly string[], message: RegExp): Promise<void> {
  const { code, stdout, stderr } = await runInProcess(['train', model, '-o', out, ...args]);
  expect(code).toBe(1);
  expect(stdout).toBe('');
  expect(stderr).toMatch(message);
  expect(stderr.trim().split('\n')).toHaveLength(1);
  expect(existsSync(out) || existsSync(`${out}.part`)).toBe(false);
}

/**
 * A successful run off a terminal prints nothing on stderr but its progress lines (one every
 * 10 s, so a slow machine may print some): no warning, no error.
 */
export function expectOnlyProgress(stderr: string): void {
  const lines = stderr.split('\n').filter((l) => l !== '');
  expect(lines.filter((l) => !/^train: step \d+\/\d+, loss /.test(l))).toEqual([]);
}
