// The layer rule catches an upward import: planted files linted with the repository's own
// ESLint config (as `npm test` lints), each beside real modules of its layer.
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const eslint = new ESLint({ cwd: ROOT });

/** The layer rule's messages for `code` as if it were the file at `path` (repository-relative). */
async function layerErrors(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(ROOT, path) });
  return result.messages.filter((m) => m.ruleId === 'quantlab/layers').map((m) => m.message);
}

describe('the layer rule (scripts/eslint-layers.js)', () => {
  it('fails a lower layer importing a higher one', async () => {
    const errors = await layerErrors('src/formats/planted.ts', "import { Engine } from '../engine/engine.ts';\nexport const e = Engine;\n");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/src\/formats\/planted\.ts \(layer formats 0\) must not import \.\.\/engine\/engine\.ts \(layer engine 6\)/);
  });

  it('fails the cycles that were there: export code in the engine imported from budget, plan from model', async () => {
    expect(await layerErrors('src/budget/planted.ts', "export { planExport } from '../engine/engine.ts';\n")).toHaveLength(1);
    expect(await layerErrors('src/model/planted.ts', "import { planExport } from '../export/plan.ts';\nexport const p = planExport;\n")).toHaveLength(1);
    expect(await layerErrors('src/formats/gguf/planted.ts', "export const m = await import('../../quant/types.ts');\n")).toHaveLength(1);
  });

  it('passes imports within a layer and downward', async () => {
    expect(await layerErrors('src/export/planted.ts', "import { quantType } from '../quant/types.ts';\nimport { rowCount } from './source.ts';\nexport const x = [quantType, rowCount];\n")).toEqual([]);
    expect(await layerErrors('src/ui/planted.tsx', "import { useStore } from '../store/store.ts';\nexport const s = useStore;\n")).toEqual([]);
  });

  it('keeps test support out of shipped code, and lets tests drive any layer', async () => {
    expect(await layerErrors('src/quant/planted.ts', "import { rng } from '../testing/random.ts';\nexport const r = rng;\n")).toHaveLength(1);
    expect(await layerErrors('src/quant/planted.test.ts', "import { main } from '../cli/main.ts';\nexport const m = main;\n")).toEqual([]);
  });
});
