// Eval on the GPU, both ways, same device, same run, same model and tokens: the resident
// forward pass (src/model/gpu-forward.ts as eval-resident.ts drives it: the whole decoder in
// WGSL, one submit and one readback per chunk, argmax and NLL computed on the GPU) against
// the per-product path it replaced and keeps as its fallback (src/model/gpu-linear.ts: each
// matrix product its own submit and readback, the rest of the layer and the scoring on the
// CPU, as eval.ts's scorePass does). Two figures each: scoring (`tokens` positions, chunks of
// `chunk`, as the eval job runs, EVAL_GPU_CHUNK) and decode (one position per pass, as the
// greedy continuation runs). Tokens/s over the median of `reps` timed runs, after one warm-up
// run of each that is not counted; the counters (src/gpu/counters.ts) per pass.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { loadModel } from '../src/formats/model.ts';
import { fileSource } from '../src/formats/node-source.ts';
import { FIXTURE_MODELS } from '../src/formats/testing.ts';
import { gpuCounters, gpuCountersSince, type GpuCounters } from '../src/gpu/counters.ts';
import type { GpuContext } from '../src/gpu/device.ts';
import { logSoftmax, resolveEvalPreset } from '../src/model/eval.ts';
import { createModel, modelConfig, type ModelConfig } from '../src/model/families/index.ts';
import { argmax } from '../src/model/families/decoder.ts';
import { GpuForward } from '../src/model/gpu-forward.ts';
import { gpuLinear } from '../src/model/gpu-linear.ts';
import { planForModel, quantizedProvider, quantizeWeights, readModelWeights, type QuantizedWeights } from '../src/model/weights.ts';
import type { WeightProvider } from '../src/model/families/linear.ts';
import { mulberry32Uint } from '../src/testing/random.ts';
import { writeSyntheticLlama } from '../src/testing/synthetic-llama.ts';

export const DEFAULT_EVAL_MODEL = join(FIXTURE_MODELS, 'stories260K.gguf');
/** `--gpu-eval-model synthetic`: a seeded Llama whose rows are whole K-quant blocks (256 wide). */
export const SYNTHETIC = 'synthetic';

export interface GpuEvalOptions {
  /** A GGUF/safetensors file, or SYNTHETIC. */
  model: string;
  preset: string;
  /** Scored positions (teacher forcing). */
  tokens: number;
  /** Positions per pass of the scoring run. */
  chunk: number;
  /** Positions of the decode run (one per pass). */
  decodeTokens: number;
  reps: number;
}

export interface PathRate {
  tokensPerSecond: number;
  /** Counters of one timed run divided by its passes. */
  perPass: GpuCounters;
  passes: number;
}

export interface GpuEvalRow {
  mode: 'scoring' | 'decode';
  positions: number;
  chunk: number;
  resident: PathRate;
  perProduct: PathRate;
}

export interface GpuEvalResult {
  model: string;
  shape: string;
  preset: string;
  rows: GpuEvalRow[];
}

interface Variant {
  config: ModelConfig;
  provider: WeightProvider;
  quantized: QuantizedWeights;
}

async function loadVariant(file: string, preset: string): Promise<{ variant: Variant; name: string; cleanup: () => void }> {
  let path = file;
  let cleanup = () => {};
  if (file === SYNTHETIC) {
    path = join(tmpdir(), `quantlab-bench-gpu-eval-${process.pid}.gguf`);
    writeSyntheticLlama(path, { nLayer: 2, nEmbd: 256, nFf: 512, nHead: 4, nHeadKv: 4, nVocab: 2048, seed: 24 });
    cleanup = () => rmSync(path, { force: true });
  }
  try {
    const model = await loadModel([await fileSource(path)]);
    const config = modelConfig(model);
    const base = await readModelWeights(model, config);
    const quantized = quantizeWeights(base, config, planForModel(model, config, resolveEvalPreset(preset).mode));
    const name = file === SYNTHETIC ? 'synthetic Llama (seed 24)' : file.split('/').pop()!;
    return { variant: { config, provider: quantizedProvider(quantized), quantized }, name, cleanup };
  } catch (e) {
    cleanup();
    throw e;
  }
}

function seededTokens(n: number, vocab: number): number[] {
  const next = mulberry32Uint(2024);
  return [1, ...Array.from({ length: n - 1 }, () => 3 + (next() % (vocab - 3)))];
}

/** One run: `tokens` scored `chunk` positions a pass; returns the passes run. */
type Run = (tokens: readonly number[], chunk: number) => Promise<number>;

/** The resident pass as eval-resident.ts runs it (argmax and NLL on the GPU). */
async function residentRun(gpu: GpuContext, v: Variant, capacity: number, maxChunk: number): Promise<{ run: Run; dispose: () => void }> {
  const f = await GpuForward.create(gpu, v.config, v.provider, v.quantized, { maxTokens: maxChunk, capacity });
  const run: Run = async (tokens, chunk) => {
    const positions = tokens.length - 1;
    let passes = 0;
    f.reset();
    for (let s = 0; s < positions; s += chunk, passes++) {
      const n = Math.min(chunk, positions - s);
      await f.forward(tokens.slice(s, s + n), { targets: tokens.slice(s + 1, s + 1 + n) });
    }
    return passes;
  };
  return { run, dispose: () => f.dispose() };
}

/** The per-product path as eval.ts's scorePass runs it: GPU products, the rest and the scoring on the CPU. */
function perProductRun(gpu: GpuContext, v: Variant): { run: Run; dispose: () => void } {
  const linear = gpuLinear(gpu, v.provider, v.quantized);
  const model = createModel(v.config, v.provider, linear);
  const V = v.config.nVocab;
  const lp = new Float64Array(V);
  let sink = 0;
  const run: Run = async (tokens, chunk) => {
    const positions = tokens.length - 1;
    const cache = model.newCache(tokens.length);
    let passes = 0;
    for (let s = 0; s < positions; s += chunk, passes++) {
      const n = Math.min(chunk, positions - s);
      const logits = await model.forward(tokens.slice(s, s + n), cache, { logits: 'all' });
      for (let i = 0; i < n; i++) {
        logSoftmax(logits, i * V, V, lp);
        sink += argmax(logits, i * V, V) - lp[tokens[s + i + 1]];
      }
    }
    if (Number.isNaN(sink)) throw new Error('per-product pass gave NaN scores');
    return passes;
  };
  return { run, dispose: () => linear.dispose() };
}

async function timeRun(gpu: GpuContext, run: Run, tokens: readonly number[], chunk: number, reps: number): Promise<PathRate> {
  await run(tokens, chunk); // warm-up: pipelines, uploads, first-use costs
  const seconds: number[] = [];
  let perPass: GpuCounters | undefined;
  let passes = 0;
  for (let r = 0; r < reps; r++) {
    const before = gpuCounters(gpu.device);
    const t0 = performance.now();
    passes = await run(tokens, chunk);
    seconds.push((performance.now() - t0) / 1000);
    const c = gpuCountersSince(gpu.device, before);
    perPass = { submits: c.submits / passes, readbacks: c.readbacks / passes, bytesReadBack: c.bytesReadBack / passes, forwardPasses: c.forwardPasses / passes };
  }
  seconds.sort((a, b) => a - b);
  return { tokensPerSecond: (tokens.length - 1) / seconds[Math.floor(reps / 2)], perPass: perPass!, passes };
}

export async function benchGpuEval(gpu: GpuContext, o: GpuEvalOptions): Promise<GpuEvalResult> {
  const { variant: v, name, cleanup } = await loadVariant(o.model, o.preset);
  try {
    const c = v.config;
    const scoring = seededTokens(o.tokens + 1, c.nVocab);
    const decode = scoring.slice(0, o.decodeTokens + 1);
    const capacity = scoring.length;
    const resident = await residentRun(gpu, v, capacity, o.chunk);
    const perProduct = perProductRun(gpu, v);
    const rows: GpuEvalRow[] = [];
    try {
      for (const [mode, tokens, chunk] of [['scoring', scoring, o.chunk], ['decode', decode, 1]] as const) {
        const r = await timeRun(gpu, resident.run, tokens, chunk, o.reps);
        const p = await timeRun(gpu, perProduct.run, tokens, chunk, o.reps);
        rows.push({ mode, positions: tokens.length - 1, chunk, resident: r, perProduct: p });
      }
    } finally {
      resident.dispose();
      perProduct.dispose();
    }
    const types = [...new Set([...v.quantized.packed.values()].map((p) => p.type.id))].join('/');
    const shape = `${c.family}, ${c.names.layers.length} layers, n_embd ${c.nEmbd}, n_ff ${c.nFf}, vocab ${c.nVocab}; ${types}`;
    return { model: name, shape, preset: o.preset, rows };
  } finally {
    cleanup();
  }
}
