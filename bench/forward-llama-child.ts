// llama.cpp's CPU forward pass timed on a GGUF (node-llama-cpp, the peer of
// docs/contracts.md), in a process of its own: loads the model, evaluates a prompt of
// token ids once to warm up and then `repeat` times, each in a fresh sequence, with the
// given threads and the whole prompt in one batch (F32 KV cache, as quantlab's). Prints one
// JSON line: seconds per evaluation and the process's peak RSS (KiB). Bench support only.
//   node --import tsx bench/forward-llama-child.ts MODEL.gguf THREADS REPEAT TOKEN,TOKEN,...
import { getLlama } from 'node-llama-cpp';

const [model, threadsArg, repeatArg, tokensArg] = process.argv.slice(2);
const threads = Number(threadsArg);
const tokens = tokensArg.split(',').map(Number);
const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
const m = await llama.loadModel({ modelPath: model });
const context = await m.createContext({
  contextSize: tokens.length + 16,
  batchSize: tokens.length,
  threads,
  flashAttention: false,
  experimentalKvCacheKeyType: 'F32' as never,
  experimentalKvCacheValueType: 'F32' as never,
});
const seconds: number[] = [];
for (let i = 0; i <= Number(repeatArg); i++) {
  const sequence = context.getSequence();
  const t0 = performance.now();
  await sequence.evaluateWithoutGeneratingNewTokens(tokens as never[]);
  if (i > 0) seconds.push((performance.now() - t0) / 1000);
  sequence.dispose();
}
await context.dispose();
await m.dispose();
await llama.dispose();
process.stdout.write(`${JSON.stringify({ seconds, maxRssKiB: process.resourceUsage().maxRSS })}\n`);
