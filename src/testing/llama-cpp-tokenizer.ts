// The npm llama.cpp's tokenizer on a GGUF, in a child process (one model per process, as
// llama-cpp-peer.ts does): llama_tokenize with parse_special off and on, llama_detokenize
// with unparse_special off and on. node-llama-cpp's model.tokenize(text, special) is
// llama_tokenize(add_special = false, parse_special = special); model.detokenize(ids,
// special) is llama_detokenize(remove_special = false, unparse_special = special).
// Run as a module (runLlamaCppTokenizer) or, by that function, compiled (child-script.ts) as
//   node build/test-children/llama-cpp-tokenizer-HASH.mjs REQUEST.json
// Test support only.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { childScript } from './child-script.ts';

export interface LlamaCppTokenizerRequest {
  model: string;
  texts: string[];
  /** Token lists to detokenize. */
  detokenize: number[][];
}

export interface LlamaCppTokenizerResponse {
  /** add_special = false, parse_special = false. */
  tokens: number[][];
  /** add_special = false, parse_special = true. */
  tokensSpecial: number[][];
  /** unparse_special = false. */
  text: string[];
  /** unparse_special = true. */
  textSpecial: string[];
  /** llama_vocab_bos / eos when they are control tokens (node-llama-cpp hides others). */
  bos: number | null;
  eos: number | null;
  /** llama_vocab_get_add_bos / add_eos. */
  addBos: boolean;
  addEos: boolean;
}

const ROOT = join(import.meta.dirname, '../..');

export async function runLlamaCppTokenizer(request: LlamaCppTokenizerRequest): Promise<LlamaCppTokenizerResponse> {
  const dir = await mkdtemp(join(tmpdir(), 'quantlab-tokenizer-'));
  try {
    const file = join(dir, 'request.json');
    await writeFile(file, JSON.stringify(request));
    const { stdout } = await promisify(execFile)(process.execPath, [childScript(import.meta.filename), file], { cwd: ROOT, maxBuffer: 256 << 20 });
    return JSON.parse(stdout.trim().split('\n').pop() ?? '') as LlamaCppTokenizerResponse;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function child(requestFile: string): Promise<void> {
  const request = JSON.parse(await readFile(requestFile, 'utf8')) as LlamaCppTokenizerRequest;
  const { getLlama } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  const model = await llama.loadModel({ modelPath: request.model });
  const raw = (model as unknown as { _model: { shouldPrependBosToken(): boolean; shouldAppendEosToken(): boolean } })._model;
  const out: LlamaCppTokenizerResponse = {
    tokens: request.texts.map((t) => Array.from(model.tokenize(t, false), Number)),
    tokensSpecial: request.texts.map((t) => Array.from(model.tokenize(t, true), Number)),
    text: request.detokenize.map((ids) => model.detokenize(ids as never[], false)),
    textSpecial: request.detokenize.map((ids) => model.detokenize(ids as never[], true)),
    bos: model.tokens.bos === null ? null : Number(model.tokens.bos),
    eos: model.tokens.eos === null ? null : Number(model.tokens.eos),
    addBos: raw.shouldPrependBosToken(),
    addEos: raw.shouldAppendEosToken(),
  };
  await model.dispose();
  await llama.dispose();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

if (process.argv[1] === import.meta.filename && process.argv[2]) {
  child(process.argv[2]).catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
