// An export is never half-true: `quantlab quantize` writes OUT.part and renames it only when
// the whole file is written. Interrupted (Ctrl-C) or failing mid-way (the input changed on
// disk), it removes OUT.part, leaves a file the user already had at OUT untouched, and says
// why on one line (the file, the byte offset, the reason). The input is a sparse 2.1 GB GGUF
// (Llama 3.1 8B's shape, 2 layers, Q8_0), so there is time to interrupt it.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GGML_TYPE } from '../formats/gguf/constants.ts';
import type { GgufLayout } from '../formats/gguf/write.ts';
import { writeSparseLlamaGguf } from '../testing/sparse-model.ts';

const BIN = join(import.meta.dirname, '../../bin/quantlab.js');
const PREVIOUS = 'a file the user already had\n';

let dir: string;
let layout: GgufLayout;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quantlab-export-safety-'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs quantize; once OUT.part holds `partBytes`, calls `interrupt(child)`. */
async function quantizeInterrupted(input: string, out: string, partBytes: number, interrupt: (child: ReturnType<typeof spawn>) => void) {
  const child = spawn(process.execPath, [BIN, 'quantize', input, '-o', out, '--type', 'q8_0', '--threads', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let interrupted = false;
  const poll = setInterval(() => {
    if (!interrupted && existsSync(`${out}.part`) && statSync(`${out}.part`).size >= partBytes) {
      interrupted = true;
      interrupt(child);
    }
  }, 20);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearInterval(poll);
  return { code, stderr, interrupted };
}

describe('quantize interrupted or failing mid-export', () => {
  it('Ctrl-C: stops, removes OUT.part, keeps the OUT the user had, says it was cancelled', async () => {
    const input = join(dir, 'in.gguf');
    layout = await writeSparseLlamaGguf(input, [], 4, { layers: 2, outputType: GGML_TYPE.Q8_0 });
    const out = join(dir, 'out.gguf');
    writeFileSync(out, PREVIOUS);
    const r = await quantizeInterrupted(input, out, 64 << 20, (child) => child.kill('SIGINT'));
    expect(r.interrupted).toBe(true);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual(['quantlab quantize: cancelled']);
    expect(existsSync(`${out}.part`)).toBe(false);
    expect(readFileSync(out, 'utf8')).toBe(PREVIOUS);
  }, 120_000);

  it('the input shrinks on disk mid-export: fails naming the file and byte, removes OUT.part, keeps OUT', async () => {
    const input = join(dir, 'in.gguf');
    const out = join(dir, 'out2.gguf');
    writeFileSync(out, PREVIOUS);
    const cut = Math.floor(layout.totalBytes / 2);
    const r = await quantizeInterrupted(input, out, 64 << 20, () => truncateSync(input, cut));
    expect(r.interrupted).toBe(true);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    const m = /^in\.gguf: at byte (\d+): cannot read here: the file is now (\d+) bytes, it was (\d+) when opened/.exec(lines[0]);
    expect(m, lines[0]).not.toBeNull();
    // The first read past the new end (tensors are written in llama-quantize's order, not the file's).
    expect(Number(m![1])).toBeGreaterThanOrEqual(cut);
    expect(Number(m![2])).toBe(cut);
    expect(Number(m![3])).toBe(layout.totalBytes);
    expect(existsSync(`${out}.part`)).toBe(false);
    expect(readFileSync(out, 'utf8')).toBe(PREVIOUS);
  }, 120_000);
});
