// One cancellation scheme: every engine call is a job with a token of its own (an
// AbortSignal); cancel() aborts the running ones, which reject with CancelledError, and a
// compare supersedes the compare still running (the page asks again as the selection changes).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileSource } from '../formats/node-source.ts';
import { FIXTURE_MODELS } from '../formats/testing.ts';
import { createTestGpu } from '../gpu/gpu-test-setup.ts';
import type { TensorReport } from '../export/write.ts';
import { CancelledError, Engine } from './engine.ts';

const STORIES = join(FIXTURE_MODELS, 'stories260K.gguf');
const REQUEST = { tensor: 'blk.1.ffn_up.weight', types: ['q8_0', 'q4_0', 'q5_1'] };

async function cpuEngine(): Promise<Engine> {
  const engine = new Engine(null);
  await engine.load([await fileSource(STORIES)]);
  return engine;
}

describe('engine jobs: a token per job', () => {
  it('cancel() stops every running job with CancelledError; a job started after it runs', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const engine = await cpuEngine();
      const jobs = [
        engine.compare(REQUEST),
        engine.evalModel(['Q8_0'], undefined, { text: 'Once upon a time, there was a little girl.', greedyTokens: 2 }),
        engine.budgetScan(),
      ];
      engine.cancel();
      // All three awaited at once: the page does not await one job before the others settle.
      const settled = await Promise.allSettled(jobs);
      expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected', 'rejected']);
      for (const s of settled) expect((s as PromiseRejectedResult).reason).toBeInstanceOf(CancelledError);
      const after = await engine.compare(REQUEST);
      expect(after.results.map((r) => r.type)).toEqual(REQUEST.types);
      await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    // No job leaves a promise of its own rejected with nobody to hear it.
    expect(unhandled).toEqual([]);
  });

  it('a compare supersedes the one still running; the second completes', async () => {
    const engine = await cpuEngine();
    const first = engine.compare(REQUEST);
    const second = engine.compare({ ...REQUEST, types: ['q4_0'] });
    await expect(first).rejects.toBeInstanceOf(CancelledError);
    expect((await second).results.map((r) => r.type)).toEqual(['q4_0']);
  });
});

describe('the export job on a GPU', () => {
  it('opens the GPU before its first read: a fresh engine quantizes on WebGPU from the first tensor, the bytes the CPU writes', async () => {
    const exported = async (engine: Engine) => {
      await engine.load([await fileSource(STORIES)]);
      const chunks: Uint8Array[] = [];
      const reports: TensorReport[] = [];
      await engine.exportGguf({ preset: 'Q8_0' }, [], (c) => void chunks.push(c.slice()), undefined, { onTensor: (r) => reports.push(r) });
      return { bytes: Buffer.concat(chunks), reports };
    };
    const gpu = await exported(new Engine(() => createTestGpu()));
    const cpu = await exported(new Engine(null));
    expect(gpu.bytes.equals(cpu.bytes)).toBe(true);
    const converted = gpu.reports.filter((r) => r.backend !== 'copy');
    expect(converted.length).toBeGreaterThan(0);
    expect(converted.map((r) => r.backend)).toEqual(converted.map(() => 'webgpu'));
  }, 120_000);
});
