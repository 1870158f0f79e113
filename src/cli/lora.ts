// `quantlab lora merge FILE ADAPTER -o OUT.gguf [--type T | --preset P] [--lora-scale S]`:
//   the adapter merged into the base as llama-export-lora does (src/train/lora/merge.ts),
//   then, with --type/--preset, quantized as llama-quantize does (quantlab quantize).
// `quantlab lora convert ADAPTER.gguf --base FILE --peft DIR`: the GGUF adapter as PEFT files.
// `quantlab lora convert PEFT_DIR --base FILE -o OUT.gguf`: PEFT files as a GGUF adapter.
// ADAPTER is a GGUF LoRA adapter or a PEFT directory (adapter_config.json +
// adapter_model.safetensors). Outputs go to OUT.part and are renamed when complete.
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelIndex } from '../formats/model.ts';
import { loadModel } from '../formats/model.ts';
import { fileSource } from '../formats/node-source.ts';
import { FormatError } from '../formats/errors.ts';
import { writeGguf } from '../formats/gguf/write.ts';
import { modelConfig } from '../model/families/index.ts';
import { checkAdapterFits, loraBase, type LoraAdapter } from '../train/lora/adapter.ts';
import { adapterForModel } from '../train/lora/apply.ts';
import { loraGgufChunks, readLoraGguf } from '../train/lora/gguf.ts';
import { mergedGguf } from '../train/lora/merge.ts';
import { encodePeft, PEFT_CONFIG_FILE, PEFT_WEIGHTS_FILE, peftBase, readPeft } from '../train/lora/peft.ts';
import { type CliIO, type Command, parseCommandLine, UsageError } from './command.ts';
import { openFiles } from './inspect.ts';

const USAGE =
  'quantlab lora merge FILE ADAPTER -o OUT.gguf [--type T | --preset P] [--lora-scale S]\n' +
  '       quantlab lora convert ADAPTER.gguf --base FILE --peft DIR\n' +
  '       quantlab lora convert PEFT_DIR --base FILE -o OUT.gguf';

export const loraCommand: Command = {
  name: 'lora',
  summary: 'LoRA adapters: merge one into a model (then quantize), convert between GGUF and PEFT files',
  usage: USAGE,
  async run(args, io) {
    const { positionals, values } = parseCommandLine(args, {
      output: { type: 'string', short: 'o' },
      type: { type: 'string' },
      preset: { type: 'string' },
      'lora-scale': { type: 'string' },
      base: { type: 'string' },
      peft: { type: 'string' },
    });
    const [sub, ...rest] = positionals;
    if (sub === 'merge') return merge(rest, values, io);
    if (sub === 'convert') return convert(rest, values, io);
    throw new UsageError(`unknown subcommand '${sub}' (merge or convert)`);
  },
};

/** --lora-scale S: a finite number (llama.cpp's --lora-scaled scale). */
export function parseLoraScale(value: string | undefined): number {
  if (value === undefined) return 1;
  const s = Number(value);
  if (value.trim() === '' || !Number.isFinite(s)) throw new UsageError(`--lora-scale must be a number, not '${value}'`);
  return s;
}

/** A GGUF adapter file or a PEFT directory, read and checked against the base model (one-line errors). */
export async function loadAdapter(path: string, model: ModelIndex): Promise<LoraAdapter> {
  const config = modelConfig(model);
  const base = loraBase(model, config);
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw new FormatError(path, 0, `cannot open the adapter (${error.code ?? error.message})`);
  });
  const adapter = info.isDirectory()
    ? await readPeft(await openIn(path, PEFT_CONFIG_FILE), await openIn(path, PEFT_WEIGHTS_FILE), peftBase(config, base.architecture))
    : await readLoraGguf(await fileSource(path));
  checkAdapterFits(adapter, base);
  return adapter;
}

/** loadAdapter's adapter as the model's products ask for it (a safetensors checkpoint: its names, q/k rows in HF order). */
export async function loadAdapterForProducts(path: string, model: ModelIndex): Promise<LoraAdapter> {
  return adapterForModel(await loadAdapter(path, model), loraBase(model, modelConfig(model)));
}

async function openIn(dir: string, name: string) {
  return fileSource(join(dir, name)).catch((error: NodeJS.ErrnoException) => {
    throw new FormatError(join(dir, name), 0, `cannot open the PEFT file (${error.code ?? error.message})`);
  });
}

async function openBase(path: string | undefined): Promise<ModelIndex> {
  if (path === undefined) throw new UsageError('--base FILE is required');
  return loadModel(await openFiles([path]));
}

type Values = { output?: string; type?: string; preset?: string; 'lora-scale'?: string; base?: string; peft?: string };

async function merge(rest: string[], values: Values, io: CliIO): Promise<number> {
  if (rest.length !== 2) throw new UsageError('lora merge takes FILE ADAPTER');
  const out = values.output;
  if (!out) throw new UsageError('-o OUT.gguf is required');
  if (values.type && values.preset) throw new UsageError('give --type or --preset, not both');
  const [file, adapterPath] = rest;
  const model = await loadModel(await openFiles([file]));
  const adapter = await loadAdapter(adapterPath, model);
  const merged = mergedGguf(model, adapter, parseLoraScale(values['lora-scale']));
  const quantizeTo = values.type ? ['--type', values.type] : values.preset ? ['--preset', values.preset] : null;
  // Quantized output: the merged F32/F16 model goes to a side file that quantize reads, then is removed.
  const mergedPath = quantizeTo ? `${out}.merged.part` : out;
  await writePart(mergedPath, writeGguf(merged.layout, merged.data));
  io.stderr(`lora merge: ${adapter.weights.size} tensors merged (rank ${adapter.rank}, alpha ${adapter.alpha})${quantizeTo ? `, quantizing ${quantizeTo.join(' ')}` : ''}\n`);
  if (!quantizeTo) return 0;
  try {
    const { quantizeCommand } = await import('./quantize.ts');
    return await quantizeCommand.run([mergedPath, '-o', out, ...quantizeTo], io);
  } finally {
    await rm(mergedPath, { force: true });
  }
}


async function convert(rest: string[], values: Values, io: CliIO): Promise<number> {
  if (rest.length !== 1) throw new UsageError('lora convert takes one ADAPTER (a .gguf file or a PEFT directory)');
  const model = await openBase(values.base);
  const adapter = await loadAdapter(rest[0], model);
  const config = modelConfig(model);
  if (values.peft) {
    const { weights, config: json } = encodePeft(adapter, peftBase(config, adapter.architecture), typeof model.metadata['general.name'] === 'string' ? model.metadata['general.name'] : null);
    await mkdir(values.peft, { recursive: true });
    await writePart(join(values.peft, PEFT_WEIGHTS_FILE), [weights]);
    await writePart(join(values.peft, PEFT_CONFIG_FILE), [new TextEncoder().encode(json)]);
    io.stderr(`lora convert: ${adapter.weights.size} tensors -> ${values.peft}/{${PEFT_WEIGHTS_FILE},${PEFT_CONFIG_FILE}}\n`);
    return 0;
  }
  if (!values.output) throw new UsageError('give --peft DIR (GGUF -> PEFT) or -o OUT.gguf (PEFT -> GGUF)');
  await writePart(values.output, loraGgufChunks(adapter));
  io.stderr(`lora convert: ${adapter.weights.size} tensors -> ${values.output}\n`);
  return 0;
}

/** Writes the chunks to PATH.part and renames it to PATH once complete; a failure leaves neither. */
async function writePart(path: string, chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<void> {
  const part = `${path}.part`;
  const handle = await open(part, 'w');
  try {
    for await (const chunk of chunks) {
      for (let done = 0; done < chunk.length; ) done += (await handle.write(chunk, done, chunk.length - done)).bytesWritten;
    }
    await handle.close();
    await rename(part, path);
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(part, { force: true });
    throw error;
  }
}
