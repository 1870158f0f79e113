// Runs real llama.cpp (node-llama-cpp, docs/contracts.md) on a GGUF in a child process:
// tokenize, detokenize, greedy continuation, teacher-forced logits. One model per
// process is the safe pattern, so every call is one `node` child running llama-cpp-child.ts
// (compiled by child-script.ts). Test support only: nothing under src/ outside tests imports this.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { childScript } from './child-script.ts';

export interface LlamaCppRequest {
  /** Path of the GGUF. */
  model: string;
  /** Texts to tokenize (add_special = true: BOS first; parse_special = false). */
  tokenize?: string[];
  /** Token lists to detokenize (remove_special = false, unparse_special = false). */
  detokenize?: number[][];
  /** Greedy continuations (argmax of the logits) of these prompts (token ids, BOS included). */
  greedy?: { prompt: number[]; maxTokens: number }[];
  /** Teacher-forced logits after every position of these token lists. */
  logits?: number[][];
  /** KV cache type, default 'F32' (llama.cpp's own default is F16). */
  kvCacheType?: 'F32' | 'F16';
  contextSize?: number;
  /** Tokens per llama_decode call (default: contextSize, one batch). */
  batchSize?: number;
  /** GGUF LoRA adapters loaded onto the context (llama_adapter_lora_init + llama_set_adapter_lora, scale 1 unless given). */
  lora?: { path: string; scale?: number }[];
}

export interface LlamaCppResponse {
  tokenize: number[][];
  detokenize: string[];
  greedy: { tokens: number[]; text: string }[];
  /** logits[i][pos] = the vocabulary's logits after tokens[0..pos]. */
  logits: number[][][];
}

const run = promisify(execFile);
const CHILD = join(import.meta.dirname, 'llama-cpp-child.ts');
const ROOT = join(import.meta.dirname, '../..');

export async function runLlamaCpp(request: LlamaCppRequest): Promise<LlamaCppResponse> {
  const dir = await mkdtemp(join(tmpdir(), 'quantlab-llama-cpp-'));
  try {
    const file = join(dir, 'request.json');
    await writeFile(file, JSON.stringify(request));
    const { stdout } = await run(process.execPath, [childScript(CHILD), file], { cwd: ROOT, maxBuffer: 256 << 20 });
    const line = stdout.trim().split('\n').pop() ?? '';
    return JSON.parse(line) as LlamaCppResponse;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
