// A child process around node-llama-cpp (the llama.cpp peer of docs/contracts.md): loads ONE
// model (a second load in the same process was seen to fail), runs the requests it is
// given and prints one JSON line. Run by llama-cpp-peer.ts, compiled (child-script.ts), as
//   node build/test-children/llama-cpp-child-HASH.mjs REQUEST.json
// Test support only: nothing under src/ outside tests imports this.
import { readFileSync } from 'node:fs';
import { pinLlamaCpuKernels } from './llama-cpu-pin.ts';
import type { LlamaCppRequest, LlamaCppResponse } from './llama-cpp-peer.ts';

async function main(): Promise<void> {
  const request = JSON.parse(readFileSync(process.argv[2], 'utf8')) as LlamaCppRequest;
  pinLlamaCpuKernels();
  const { getLlama } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  const model = await llama.loadModel({ modelPath: request.model });
  const out: LlamaCppResponse = { tokenize: [], detokenize: [], greedy: [], logits: [] };

  for (const text of request.tokenize ?? []) {
    // specialTokens=false: llama_tokenize(add_special=true, parse_special=false), as llama.cpp's tools do for plain text.
    out.tokenize.push(Array.from(model.tokenize(text, false), Number));
  }
  for (const tokens of request.detokenize ?? []) out.detokenize.push(model.detokenize(tokens as never[], false));

  const needsContext = (request.greedy?.length ?? 0) > 0 || (request.logits?.length ?? 0) > 0;
  if (needsContext) {
    const context = await model.createContext({
      contextSize: request.contextSize ?? 512,
      batchSize: request.batchSize ?? request.contextSize ?? 512,
      threads: 1,
      flashAttention: false,
      // f32 KV cache unless told otherwise: llama.cpp's default (f16) rounds K and V.
      experimentalKvCacheKeyType: (request.kvCacheType ?? 'F32') as never,
      experimentalKvCacheValueType: (request.kvCacheType ?? 'F32') as never,
      ...(request.lora?.length ? { lora: { adapters: request.lora.map((l) => ({ filePath: l.path, scale: l.scale ?? 1 })) } } : {}),
    });
    const sequence = context.getSequence();
    for (const g of request.greedy ?? []) {
      await sequence.clearHistory();
      const generated: number[] = [];
      // Greedy: the argmax of the raw logits at every step (no sampler state involved).
      let input = g.prompt;
      for (let i = 0; i < g.maxTokens; i++) {
        const items = input.map((t, j) => (j === input.length - 1 ? ([t, { generateNext: { token: true, options: { temperature: 0 } } }] as const) : t));
        const res = await sequence.controlledEvaluate(items as never);
        const next = res[input.length - 1]?.next?.token;
        if (next === undefined || next === null) throw new Error('llama-cpp-child: no next token');
        generated.push(Number(next));
        if (model.isSpecialToken(next as never) && Number(next) === Number(model.tokens.eos)) break;
        input = [Number(next)];
      }
      out.greedy.push({ tokens: generated, text: model.detokenize(generated as never[], false) });
    }
    for (const tokens of request.logits ?? []) {
      await sequence.clearHistory();
      // Teacher forcing: the logits after every position, all in one batch.
      const items = tokens.map((t) => [t, { generateNext: { logits: true } }] as const);
      const res = await sequence.controlledEvaluate(items as never);
      out.logits.push(res.map((r) => Array.from((r?.next as { logits?: Map<number, number> } | undefined)?.logits ?? new Map(), ([k, v]) => [Number(k), v] as [number, number]).sort((a, b) => a[0] - b[0]).map(([, v]) => v)));
    }
    await context.dispose();
  }
  await model.dispose();
  await llama.dispose();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
