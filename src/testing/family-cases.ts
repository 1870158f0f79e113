// The random models the family tests run (families.test.ts on the CPU, families-gpu.test.ts
// through the WebGPU Linear) against llama.cpp, and the measure they are held to.
// Test support only: nothing under src/ outside tests imports this.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { modelConfig, type ModelConfig } from '../model/families/index.ts';
import { createModel } from '../model/families/index.ts';
import type { Linear, WeightProvider } from '../model/families/linear.ts';
import { mapProvider, readModelWeights } from '../model/weights.ts';
import { FAMILY_GGUF_VOCAB, writeFamilyGguf, type FamilyGgufOptions } from './family-gguf.ts';
import { runLlamaCpp } from './llama-cpp-peer.ts';
import { mulberry32Uint } from './random.ts';

export interface FamilyCase {
  label: string;
  gguf: FamilyGgufOptions;
  /** Tokens evaluated (BOS, then random ids). */
  tokens: number;
  /** llama.cpp's n_ctx, and our cache's capacity (phi3 picks its RoPE factors by it). */
  contextSize: number;
}

/**
 * The bar: logits within 1e-4 relative at every position.
 * Gemma's GeGLU runs through ggml's f16 GELU table (blocks.ts geglu), so an input that
 * our f64 sums and ggml's f32 sums put on either side of an f16 rounding boundary gives
 * outputs one f16 step apart: a noise floor no summation order removes. Measured on
 * these gemma models by jittering our own GELU inputs by ±2e-7 relative: 3e-6..6e-5 with
 * soft-caps 10 (the cases below), but up to 1.7e-4 with soft-caps 2/4, where llama.cpp
 * differed from us by the same 5e-5..1.7e-4. So the gemma cases use caps of 10.
 */
export const MAX_REL = 1e-4;

/** In the order the issue gives the families. */
export const FAMILY_CASES: FamilyCase[] = [
  {
    label: 'llama 3.2-style: rope_freqs divisors, tied embeddings, GQA 4/2, base 500000',
    gguf: { family: 'llama', nLayer: 3, nEmbd: 64, nFf: 160, nHead: 4, nHeadKv: 2, headDim: 16, tied: true, ropeFreqs: true, ropeFreqBase: 500000, seed: 31 },
    tokens: 48,
    contextSize: 256,
  },
  {
    label: 'mistral-style llama: untied, GQA 8/2, n_embd 128, attention.sliding_window 8 (which llama.cpp\'s llama graph ignores)',
    gguf: { family: 'llama', nLayer: 2, nEmbd: 128, nFf: 256, nHead: 8, nHeadKv: 2, headDim: 16, slidingWindow: 8, ropeFreqBase: 1000000, seed: 38 },
    tokens: 40,
    contextSize: 256,
  },
  {
    label: 'qwen2: q/k/v biases, NEOX RoPE, tied, GQA 4/1',
    gguf: { family: 'qwen2', nLayer: 3, nEmbd: 96, nFf: 224, nHead: 4, nHeadKv: 1, headDim: 24, tied: true, ropeFreqBase: 1000000, seed: 32 },
    tokens: 48,
    contextSize: 256,
  },
  {
    label: 'qwen3: per-head q/k RMSNorm, head_dim 32 with n_embd 64 / 4 heads, untied',
    gguf: { family: 'qwen3', nLayer: 3, nEmbd: 64, nFf: 192, nHead: 4, nHeadKv: 2, headDim: 32, ropeFreqBase: 1000000, seed: 33 },
    tokens: 48,
    contextSize: 256,
  },
  {
    label: 'gemma3: 5 local (window 8, base 10000) + 1 global layer (base 1e6, linear x8), q/k norms, GeGLU, tied',
    gguf: { family: 'gemma3', nLayer: 6, nEmbd: 64, nFf: 192, nHead: 4, nHeadKv: 1, headDim: 32, tied: true, slidingWindow: 8, ropeFreqBase: 1000000, ropeLinearFactor: 8, seed: 34 },
    tokens: 40,
    contextSize: 256,
  },
  {
    label: 'gemma2: alternating window 6, attention and final soft-caps 10 (Gemma 2: 50, 30), GeGLU, tied',
    gguf: { family: 'gemma2', nLayer: 4, nEmbd: 64, nFf: 160, nHead: 4, nHeadKv: 2, headDim: 16, tied: true, slidingWindow: 6, softcaps: { attn: 10, final: 10 }, seed: 35 },
    tokens: 40,
    contextSize: 256,
  },
  {
    label: 'phi3: fused attn_qkv and gate|up, LongRoPE short factors (n_ctx 256 <= original 4096), sliding_window 8 (off in llama.cpp)',
    gguf: { family: 'phi3', nLayer: 3, nEmbd: 96, nFf: 160, nHead: 4, nHeadKv: 4, headDim: 24, fusedQkv: true, longRope: { originalContext: 4096 }, slidingWindow: 8, seed: 36 },
    tokens: 48,
    contextSize: 256,
  },
  {
    label: 'phi3: LongRoPE long factors (n_ctx 512 > original 128), attn_factor 1.2, GQA 4/2',
    gguf: { family: 'phi3', nLayer: 2, nEmbd: 64, nFf: 128, nHead: 4, nHeadKv: 2, headDim: 16, fusedQkv: true, longRope: { originalContext: 128, attnFactor: 1.2 }, seed: 37 },
    tokens: 40,
    contextSize: 512,
  },
];

/** BOS then seeded random ids of the 512-token vocabulary. */
export function caseTokens(c: FamilyCase): number[] {
  const next = mulberry32Uint(c.gguf.seed);
  return [1, ...Array.from({ length: c.tokens - 1 }, () => 3 + (next() % (FAMILY_GGUF_VOCAB - 3)))];
}

export interface PreparedCase {
  path: string;
  config: ModelConfig;
  weights: WeightProvider;
  tokens: number[];
}

/** Writes the case's GGUF to a temporary folder and reads it back as quantlab does. */
export async function prepareCase(c: FamilyCase): Promise<PreparedCase> {
  const dir = await mkdtemp(join(tmpdir(), 'quantlab-family-'));
  const path = join(dir, `${c.gguf.family}-${c.gguf.seed}.gguf`);
  await writeFamilyGguf(path, c.gguf);
  const model = await loadModel([await fileSource(path)]);
  const config = modelConfig(model);
  return { path, config, weights: mapProvider(await readModelWeights(model, config)), tokens: caseTokens(c) };
}

/** Our logits at every position (one forward of all tokens, cache of contextSize). */
export async function ourLogits(c: FamilyCase, p: PreparedCase, linear?: Linear): Promise<Float32Array> {
  const m = createModel(p.config, p.weights, linear);
  return m.forward(p.tokens, m.newCache(c.contextSize), { logits: 'all' });
}

/** llama.cpp's logits at every position (node-llama-cpp, f32 KV cache, one batch). */
export async function llamaCppLogits(c: FamilyCase, p: PreparedCase): Promise<number[][]> {
  const peer = await runLlamaCpp({ model: p.path, logits: [p.tokens], contextSize: c.contextSize });
  return peer.logits[0];
}

/** Per position: max_j |ours - theirs| / max_j |theirs|; the largest over positions, and where. */
export function maxRelativeError(ours: Float32Array, theirs: number[][], vocab: number): { rel: number; position: number } {
  let worst = { rel: 0, position: -1 };
  theirs.forEach((row, i) => {
    if (row.length !== vocab) throw new Error(`llama.cpp gave ${row.length} logits at position ${i}, expected ${vocab}`);
    let diff = 0;
    let scale = 0;
    row.forEach((v, j) => {
      diff = Math.max(diff, Math.abs(ours[i * vocab + j] - v));
      scale = Math.max(scale, Math.abs(v));
    });
    const rel = diff / scale;
    if (!(rel <= worst.rel)) worst = { rel, position: i };
  });
  return worst;
}
