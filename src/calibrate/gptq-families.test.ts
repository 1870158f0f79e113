// GPTQ on phi3 (issue 17): its fused attn_qkv (q, k, v rows) and ffn_up (gate rows, then up
// rows) are each one GPTQ problem on their stage's input (attn_norm's / ffn_norm's output).
// On a small random phi3 GGUF: `quantlab quantize --gptq --type q4_0` writes a file whose
// fused tensors hold GPTQ's blocks (not RTN's), that llama.cpp loads and generates from; its
// KL to F32 in llama.cpp on held-out text (the eval text; calibrated on the built-in text) is
// below plain RTN's.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, readTensorBytes } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { klDivergence, logSoftmax, modelTokenizer } from '../model/eval.ts';
import { runInProcess } from '../cli/testing.ts';
import { EVAL_TEXT } from '../model/eval-text.ts';
import { writeFamilyGguf } from '../testing/family-gguf.ts';
import { runLlamaCpp } from '../testing/llama-cpp-peer.ts';

let dir: string;
const path = (name: string) => join(dir, name);
const open = async (p: string) => loadModel([await fileSource(p)]);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quantlab-gptq-families-'));
  await writeFamilyGguf(path('phi3.gguf'), { family: 'phi3', nLayer: 2, nEmbd: 64, nFf: 128, nHead: 4, nHeadKv: 4, headDim: 16, fusedQkv: true, longRope: { originalContext: 4096 }, seed: 44 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function meanKl(reference: number[][], quantized: number[][]): number {
  const V = reference[0].length;
  const [lp, lq] = [new Float64Array(V), new Float64Array(V)];
  let sum = 0;
  for (let i = 0; i < reference.length; i++) sum += klDivergence(logSoftmax(reference[i], 0, V, lp), logSoftmax(quantized[i], 0, V, lq));
  return sum / reference.length;
}

describe('GPTQ on phi3 (fused attn_qkv and gate|up ffn_up)', () => {
  it('quantlab quantize --gptq --type q4_0: the fused tensors hold GPTQ blocks; llama.cpp loads and generates; KL to F32 below RTN', async () => {
    for (const [out, extra] of [['rtn.gguf', []], ['gptq.gguf', ['--gptq', '--chunk', '64']]] as const) {
      const r = await runInProcess(['quantize', path('phi3.gguf'), '-o', path(out), '--type', 'q4_0', ...extra]);
      expect(r.code, r.stderr).toBe(0);
    }
    const [rtn, gptq] = [await open(path('rtn.gguf')), await open(path('gptq.gguf'))];
    for (const name of ['blk.0.attn_qkv.weight', 'blk.1.ffn_up.weight', 'blk.1.attn_output.weight', 'blk.0.ffn_down.weight']) {
      const [a, b] = [rtn.tensors.find((t) => t.name === name)!, gptq.tensors.find((t) => t.name === name)!];
      expect(b.dtype, name).toBe(a.dtype);
      expect(Buffer.from(await readTensorBytes(gptq, b)).equals(Buffer.from(await readTensorBytes(rtn, a))), name).toBe(false);
    }
    const held = (await modelTokenizer(await open(path('phi3.gguf')))).encode(EVAL_TEXT).slice(0, 64);
    expect(held).toHaveLength(64);
    const peer = (model: string) => runLlamaCpp({ model, logits: [held], greedy: [{ prompt: held.slice(0, 4), maxTokens: 6 }], contextSize: 128 });
    const [f32, r, g] = await Promise.all([path('phi3.gguf'), path('rtn.gguf'), path('gptq.gguf')].map(peer));
    expect(g.greedy[0].tokens).toHaveLength(6);
    const [klRtn, klGptq] = [meanKl(f32.logits[0], r.logits[0]), meanKl(f32.logits[0], g.logits[0])];
    console.log(`phi3 q4_0 in llama.cpp: KL to F32 RTN ${klRtn.toExponential(3)}, GPTQ ${klGptq.toExponential(3)}`);
    expect(klGptq).toBeGreaterThan(0);
    expect(klGptq).toBeLessThan(klRtn);
  }, 180_000);
});
