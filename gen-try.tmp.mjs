import { getLlama, LlamaCompletion } from 'node-llama-cpp';
const t0 = Date.now();
const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
const model = await llama.loadModel({ modelPath: process.argv[2] });
const context = await model.createContext({ contextSize: 256 });
const completion = new LlamaCompletion({ contextSequence: context.getSequence() });
const text = await completion.generateCompletion('Once upon a time', { maxTokens: 24, temperature: 0 });
console.log(JSON.stringify(text), Date.now() - t0);
await llama.dispose();
