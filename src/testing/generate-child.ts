// Greedy text from a GGUF with real llama.cpp (node-llama-cpp), in a child process of its
// own (one model per process: a second load in one process was seen to fail):
//   node build/test-children/generate-child-HASH.mjs MODEL.gguf PROMPT MAX_TOKENS
// (compiled by child-script.ts)
// prints {"text": ...} as one JSON line. Test support only (export tests).
import { pinLlamaCpuKernels } from './llama-cpu-pin.ts';

async function main(): Promise<void> {
  const [modelPath, prompt, maxTokens] = process.argv.slice(2);
  pinLlamaCpuKernels();
  const { getLlama, LlamaCompletion } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize: 256, threads: 1 });
  const completion = new LlamaCompletion({ contextSequence: context.getSequence() });
  const text = await completion.generateCompletion(prompt, { maxTokens: Number(maxTokens), temperature: 0 });
  completion.dispose();
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  process.stdout.write(`${JSON.stringify({ text })}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
