// The GGUF LoRA adapter llama.cpp loads (llama_adapter_lora_init), as
// convert_lora_to_gguf.py --outtype f32 writes it:
//   metadata, in its order: general.architecture (the base's), general.type = "adapter",
//     adapter.type = "lora", general.name (when given), adapter.lora.alpha (f32),
//     general.quantization_version = 2. No general.file_type (the LoRA model's
//     set_gguf_parameters writes only the alpha).
//   tensors: for each adapted base tensor X, X.lora_a then X.lora_b, F32:
//     lora_a = PEFT's lora_A (rank x in)  -> ggml ne [in, rank]
//     lora_b = PEFT's lora_B (out x rank) -> ggml ne [rank, out]
//   llama.cpp checks base.ne[0] == a.ne[0], base.ne[1] == b.ne[1], a.ne[1] == b.ne[0], and
//   scales by alpha / b.ne[0] (times the user's scale).
// Reading accepts any float or block type llama.cpp does (f16, bf16, q8_0: dequantized).
import { collectBytes, type ByteSource } from '../../formats/bytes.ts';
import { FormatError } from '../../formats/errors.ts';
import { GGML_TYPE, GGUF_VALUE_TYPE } from '../../formats/gguf/constants.ts';
import { ggufEntry, type GgufMetadataEntry } from '../../formats/gguf/metadata.ts';
import { planGguf, writeGguf, type GgufLayout } from '../../formats/gguf/write.ts';
import { loadModel, readTensorF32, type ModelTensor } from '../../formats/model.ts';
import { dequantizeGgml } from '../../quant/types.ts';
import { LORA_MODULE_NAMES, parseLoraTargetName, type LoraAdapter, type LoraModule, type LoraWeight } from './adapter.ts';

/** GGML_QUANT_VERSION, as gguf-py's writer records it. */
const GGML_QUANT_VERSION = 2;

function f32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** The file's layout and its tensors' data, for a stream to disk or a download. */
export function loraGgufLayout(adapter: LoraAdapter, name?: string): { layout: GgufLayout; data: Uint8Array[] } {
  const { STRING, FLOAT32, UINT32 } = GGUF_VALUE_TYPE;
  const metadata: GgufMetadataEntry[] = [
    ggufEntry('general.architecture', STRING, adapter.architecture),
    ggufEntry('general.type', STRING, 'adapter'),
    ggufEntry('adapter.type', STRING, 'lora'),
    ...(name ? [ggufEntry('general.name', STRING, name)] : []),
    ggufEntry('adapter.lora.alpha', FLOAT32, adapter.alpha),
    ggufEntry('general.quantization_version', UINT32, GGML_QUANT_VERSION),
  ];
  const tensors = [];
  const data: Uint8Array[] = [];
  for (const w of adapter.weights.values()) {
    tensors.push({ name: `${w.name}.lora_a`, type: GGML_TYPE.F32, ne: [w.cols, w.rank] });
    tensors.push({ name: `${w.name}.lora_b`, type: GGML_TYPE.F32, ne: [w.rank, w.rows] });
    data.push(f32Bytes(w.a), f32Bytes(w.b));
  }
  return { layout: planGguf({ metadata, tensors }), data };
}

/** The adapter as GGUF chunks (header, then each tensor and its padding). */
export function loraGgufChunks(adapter: LoraAdapter, name?: string): AsyncGenerator<Uint8Array> {
  const { layout, data } = loraGgufLayout(adapter, name);
  return writeGguf(layout, (_t, i) => data[i]);
}

export async function encodeLoraGguf(adapter: LoraAdapter, name?: string): Promise<Uint8Array> {
  return collectBytes(loraGgufChunks(adapter, name));
}

/** Reads a GGUF LoRA adapter; FormatError naming the file, offset and field for anything llama.cpp would refuse. */
export async function readLoraGguf(source: ByteSource): Promise<LoraAdapter> {
  const model = await loadModel([source]);
  if (model.format !== 'gguf') throw new FormatError(source.name, 0, 'not a GGUF file (a LoRA adapter is a GGUF with general.type = adapter)');
  const md = model.metadata;
  const fail = (reason: string, offset = 0) => new FormatError(source.name, offset, reason);
  if (md['general.type'] !== 'adapter') throw fail(`general.type is ${JSON.stringify(md['general.type'])}, expected "adapter" (is this a model rather than an adapter?)`);
  if (md['adapter.type'] !== 'lora') throw fail(`adapter.type is ${JSON.stringify(md['adapter.type'])}, expected "lora"`);
  const arch = md['general.architecture'];
  if (typeof arch !== 'string') throw fail('general.architecture is missing');
  const alpha = md['adapter.lora.alpha'] ?? 0;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) throw fail(`adapter.lora.alpha is ${String(alpha)}, expected a number`);

  const pairs = new Map<string, { a?: ModelTensor; b?: ModelTensor }>();
  for (const t of model.tensors) {
    const m = /^(.*)\.lora_([ab])$/.exec(t.name);
    if (!m) throw fail(`tensor '${t.name}' is neither a .lora_a nor a .lora_b tensor`, t.offset);
    const pair = pairs.get(m[1]) ?? {};
    pair[m[2] as 'a' | 'b'] = t;
    pairs.set(m[1], pair);
  }
  const weights: LoraWeight[] = [];
  let rank = 0;
  for (const [name, { a, b }] of pairs) {
    if (!a || !b) throw fail(`LoRA tensor pair for '${name}' is missing its ${a ? 'lora_b' : 'lora_a'}`);
    const target = parseLoraTargetName(name);
    if (!target) throw fail(`tensor '${a.name}' adapts '${name}', which is not one of the linear weights quantlab applies LoRA to (${LORA_MODULE_NAMES.join(', ')})`, a.offset);
    if (a.shape.length !== 2 || b.shape.length !== 2) throw fail(`'${name}': lora_a and lora_b must be 2-D`, a.offset);
    const [r, cols] = a.shape;
    const [rows, rb] = b.shape;
    if (r !== rb) throw fail(`'${name}': lora_a ne [${cols}, ${r}] and lora_b ne [${rb}, ${rows}] disagree on the rank (lora_a must be stored transposed, as convert_lora_to_gguf.py writes it)`, b.offset);
    if (r < 1) throw fail(`'${name}': rank 0`, a.offset);
    rank = Math.max(rank, r);
    const read = (t: ModelTensor) => readTensorF32(model, t, { dequantize: dequantizeGgml });
    weights.push({ name, ...target, rank: r, rows, cols, a: await read(a), b: await read(b) });
  }
  if (weights.length === 0) throw fail('no LoRA tensors in the file');
  weights.sort((x, y) => x.layer - y.layer || LORA_MODULE_NAMES.indexOf(x.module) - LORA_MODULE_NAMES.indexOf(y.module));
  const targetModules: LoraModule[] = LORA_MODULE_NAMES.filter((m) => weights.some((w) => w.module === m));
  return { architecture: arch, alpha, rank, targetModules, dropout: 0, weights: new Map(weights.map((w) => [w.name, w])) };
}
