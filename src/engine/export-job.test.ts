// Engine.exportGguf, what the UI calls: the file equals llama-quantize's, progress is in
// file bytes, cancel() stops it.
import { readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { llamaQuantize } from '../testing/llama-peer.ts';
import { CancelledError, Engine } from './engine.ts';

const STORIES = join(FIXTURE_MODELS, 'stories260K.gguf');
const dir = mkdtempSync(join(tmpdir(), 'quantlab-export-job-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** llama-quantize's file for stories260K under a preset with --tensor-type overrides. */
function theirs(preset: string, overrides: { pattern: string; type: string }[]): Buffer {
  const out = join(dir, `llama-${preset}.gguf`);
  llamaQuantize(STORIES, out, preset, { overrides });
  return readFileSync(out);
}

describe('Engine.exportGguf (what the UI calls)', () => {
  it('writes the file to a sink with progress in bytes; cancel() stops it with CancelledError', async () => {
    const engine = new Engine(null);
    await engine.load([await fileSource(STORIES)]);
    const chunks: Uint8Array[] = [];
    const progress: number[] = [];
    const written = await engine.exportGguf({ preset: 'Q5_K_M' }, [{ pattern: 'ffn_down', type: 'q8_0' }], (c) => void chunks.push(c.slice()), (p) => progress.push(p.done / p.total));
    const bytes = Buffer.concat(chunks);
    expect(written).toBe(bytes.length);
    expect(bytes.equals(theirs('Q5_K_M', [{ pattern: 'ffn_down', type: 'q8_0' }]))).toBe(true);
    expect(progress.at(-1)).toBe(1);

    let calls = 0;
    const cancelled = engine.exportGguf({ preset: 'Q8_0' }, [], () => {
      if (++calls === 4) engine.cancel();
    });
    await expect(cancelled).rejects.toBeInstanceOf(CancelledError);
  });
});
