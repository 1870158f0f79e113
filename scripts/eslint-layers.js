// The layer rule, as an ESLint plugin of one rule: every module under src/ belongs to a
// layer (its first folder), and may import only from its own layer or a lower one. The
// order is the architecture (docs/architecture.md):
//   formats, hub < quant < gpu < convert < model < calibrate, budget, export < train < engine < cli, store < ui
// Test code (*.test.ts, the test-support modules testing.ts and src/testing/) may drive
// any layer (a calibration test may run the CLI end to end); code that ships may not
// import test support.
import { dirname, relative, resolve, sep } from 'node:path';

/** Layer of each top folder of src/: a module may import from a layer of lower or equal rank. */
export const LAYER_RANK = {
  formats: 0,
  // The Hugging Face Hub client: HTTP ranges as ByteSources (docs/hub.md); uses formats' types only.
  hub: 0,
  quant: 1,
  gpu: 2,
  convert: 3,
  model: 4,
  calibrate: 5,
  budget: 5,
  export: 5,
  // Training (QAT, LoRA): runs the model, its calibration texts and the export under it.
  train: 5.5,
  engine: 6,
  cli: 7,
  store: 7,
  ui: 8,
  'main.tsx': 8,
};

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..');
const SRC = resolve(ROOT, 'src');

/** The top folder of src/ that a path lies in, or null outside src/. */
function layerOf(path) {
  const rel = relative(SRC, path);
  if (rel.startsWith('..') || rel === '') return null;
  return rel.split(sep)[0];
}

/** Tests and test support: not part of the layered program. */
const isTestCode = (path) => /\.test\.tsx?$/.test(path) || /(^|[\\/])testing\.ts$/.test(path) || layerOf(path) === 'testing';

const rule = {
  meta: {
    type: 'problem',
    docs: { description: 'a module imports only from its own layer or a lower one (docs/architecture.md)' },
    schema: [],
    messages: {
      upward: "{{from}} (layer {{fromRank}}) must not import {{to}} (layer {{toRank}}): layers import only downward (docs/architecture.md)",
      testing: '{{from}} is not a test: it must not import test support ({{to}})',
      unknown: '{{from}}: src/{{layer}} is not a layer; add it to LAYER_RANK in scripts/eslint-layers.js',
    },
  },
  create(context) {
    const file = context.filename;
    const from = layerOf(file);
    if (from === null || isTestCode(file)) return {};
    const check = (node, spec) => {
      if (typeof spec !== 'string' || !spec.startsWith('.')) return;
      const target = resolve(dirname(file), spec);
      const to = layerOf(target);
      const name = relative(ROOT, file);
      if (isTestCode(target)) {
        context.report({ node, messageId: 'testing', data: { from: name, to: spec } });
        return;
      }
      if (to === null || to === from) return;
      for (const layer of [from, to]) {
        if (!(layer in LAYER_RANK)) {
          context.report({ node, messageId: 'unknown', data: { from: name, layer } });
          return;
        }
      }
      if (LAYER_RANK[to] > LAYER_RANK[from]) {
        context.report({ node, messageId: 'upward', data: { from: name, fromRank: `${from} ${LAYER_RANK[from]}`, to: spec, toRank: `${to} ${LAYER_RANK[to]}` } });
      }
    };
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) => node.source.type === 'Literal' && check(node, node.source.value),
    };
  },
};

export default { rules: { layers: rule } };
