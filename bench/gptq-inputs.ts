// npx tsx bench/gptq-inputs.ts [MODEL.gguf] [--type q4_0|q4_K] [--text FILE]
//
// Which inputs GPTQ should be calibrated on, measured: each blk.* linear weight the type can
// hold quantized by GPTQ into that grid (gptqQ4_0 / gptqQ4_K) with the Hessian of
//  - its inputs in the F32 model (collectInputs: what quantlab's export and comparison use), or
//  - its inputs in the model quantized so far (calibrateSequentially: GPTQ's reference order,
//    layer by layer and stage by stage, as AutoGPTQ's true_sequential),
// next to round-to-nearest of the same tensors; every other tensor stays F32. Score: mean
// KL(F32 || quantized) over the eval text (held out: not the calibration text), in quantlab's
// forward pass, and its ratio to round-to-nearest's from the same run.
// Default model: ../shared/fixtures/models/stories260K.gguf (Q4_0: its rows of 64 hold no Q4_K).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  calibrateSequentially, chunkTokens, collectInputs, defaultChunk, linearWeightNames, openCalibrationModel, type LayerInputs,
} from '../src/calibrate/activations.ts';
import { CALIBRATION_STORY_TEXT } from '../src/calibrate/calibration-text.ts';
import { gptqQ4_0, gptqQ4_K, hessian } from '../src/calibrate/gptq.ts';
import { loadModel } from '../src/formats/model.ts';
import { fileSource } from '../src/formats/node-source.ts';
import { EVAL_TEXT } from '../src/model/eval-text.ts';
import { klDivergence, logSoftmax } from '../src/model/eval.ts';
import { LlamaModel } from '../src/model/llama.ts';
import { mapProvider } from '../src/model/weights.ts';
import { quantType } from '../src/quant/types.ts';

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: { type: { type: 'string', default: 'q4_0' }, text: { type: 'string' } },
});
const GPTQ = { q4_0: gptqQ4_0, q4_K: gptqQ4_K } as const;
const type = args.type as keyof typeof GPTQ;
if (!Object.hasOwn(GPTQ, type)) throw new Error(`--type q4_0 or q4_K, not ${args.type}`);
const path = positionals[0] ?? join(import.meta.dirname, '../../shared/fixtures/models/stories260K.gguf');
const text = args.text === undefined ? CALIBRATION_STORY_TEXT : readFileSync(args.text, 'utf8');

const cm = await openCalibrationModel(await loadModel([await fileSource(path)]));
const f32 = new Map(cm.weights);
const { codec, blockSize } = quantType(type)!;
const tokens = cm.tokenize(text);
const chunk = defaultChunk(tokens.length, cm.config.contextLength);
const { chunks } = chunkTokens(tokens, chunk, cm.bosId, cm.addBos);

// The F32 model's inputs fix each weight's row length; the type must divide it.
const f32Inputs = await collectInputs(cm, text, chunk);
const names = linearWeightNames(cm.config).filter((n) => (f32Inputs.get(n)?.cols ?? 1) % blockSize === 0);
if (names.length === 0) throw new Error(`no blk.* weight of ${path} has rows that ${type} blocks divide`);

/** GPTQ of one weight (its F32 values) for inputs x, decoded. */
function gptq(name: string, x: LayerInputs): Float32Array {
  const w = f32.get(cm.fileName(name))!;
  const rows = w.length / x.cols;
  return codec.decode(GPTQ[type](w, rows, x.cols, hessian(x.x, x.n, x.cols)).bytes, rows, x.cols);
}

const evalIds = cm.tokenize(EVAL_TEXT);
const logits = (weights: Map<string, Float32Array>) => {
  const m = new LlamaModel(cm.config, mapProvider(weights));
  return m.forward(evalIds.slice(0, -1), m.newCache(evalIds.length), { logits: 'all' });
};
const reference = await logits(f32);
async function meanKl(weights: Map<string, Float32Array>): Promise<number> {
  const out = await logits(weights);
  const V = cm.config.nVocab;
  const [p, q] = [new Float64Array(V), new Float64Array(V)];
  const positions = evalIds.length - 1;
  let kl = 0;
  for (let i = 0; i < positions; i++) kl += klDivergence(logSoftmax(reference, i * V, V, p), logSoftmax(out, i * V, V, q));
  return kl / positions;
}

const rtn = new Map(f32);
for (const n of names) {
  const w = f32.get(cm.fileName(n))!;
  const cols = f32Inputs.get(n)!.cols;
  rtn.set(cm.fileName(n), codec.decode(codec.encode(w, cols), w.length / cols, cols));
}
const fromF32 = new Map(f32);
for (const n of names) fromF32.set(cm.fileName(n), gptq(n, f32Inputs.get(n)!));
// calibrateSequentially runs on cm.weights: the stage's GPTQ values replace its weights there.
await calibrateSequentially(cm, chunks, (stage, inputs) => {
  for (const n of stage) if (names.includes(n)) cm.weights.set(cm.fileName(n), gptq(n, inputs.get(n)!));
});
const sequential = cm.weights;

console.log(`${path}: ${names.length} blk.* weights in ${type}; calibration ${tokens.length} tokens (${chunks.length} chunks of ${chunk}); eval text ${evalIds.length - 1} positions`);
const base = await meanKl(rtn);
for (const [label, weights] of [['round-to-nearest', rtn], ['GPTQ, F32 inputs', fromF32], ['GPTQ, sequential inputs', sequential]] as const) {
  const kl = weights === rtn ? base : await meanKl(weights);
  console.log(`${label.padEnd(26)} mean KL ${kl.toFixed(5)}   x${(kl / base).toFixed(3)} of round-to-nearest`);
}
