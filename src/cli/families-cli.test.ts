// Issue 17's "calibrate and plan --damage kl run on every family", through the CLI: one
// seeded random GGUF per family (src/testing/family-cases.ts, the forward-pass tests' models).
import { existsSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAMILY_CASES, prepareCase } from '../testing/family-cases.ts';
import { runInProcess } from './testing.ts';

const FAMILIES = [...new Map(FAMILY_CASES.map((c) => [c.gguf.family, c])).values()];

describe.each(FAMILIES.map((c) => [c.gguf.family, c] as const))('the CLI on a %s GGUF', (_family, c) => {
  it('calibrate writes an importance matrix; plan --damage kl measures KL on the forward pass', async () => {
    const { path } = await prepareCase(c);
    try {
      await calibrateAndPlan(path);
    } finally {
      await rm(dirname(path), { recursive: true, force: true });
    }
  }, 120_000);
});

async function calibrateAndPlan(path: string): Promise<void> {
  const imatrix = join(dirname(path), 'imatrix.gguf');
  const cal = await runInProcess(['calibrate', path, '--chunk', '16', '-o', imatrix]);
  expect(cal.code, cal.stderr).toBe(0);
  expect(existsSync(imatrix) && statSync(imatrix).size > 0).toBe(true);
  const plan = await runInProcess(['plan', path, '--target-bpw', '6', '--damage', 'kl', '--json']);
  expect(plan.code, plan.stderr).toBe(0);
  const json = JSON.parse(plan.stdout) as { damage: { kind: string }; measured: { kl_mean: number }; bytes: number };
  expect(json.damage.kind).toBe('kl');
  expect(json.measured.kl_mean).toBeGreaterThan(0);
}
