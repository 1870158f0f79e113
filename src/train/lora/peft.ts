// PEFT's LoRA files (huggingface/peft, LoraConfig + save_pretrained):
//   adapter_model.safetensors: base_model.model.model.layers.N.<self_attn|mlp>.<module>.lora_A.weight
//     (rank x in) and ...lora_B.weight (out x rank), F32 here, __metadata__ {"format": "pt"};
//   adapter_config.json: peft_type "LORA", r, lora_alpha, target_modules, lora_dropout, bias,
//     task_type "CAUSAL_LM", fan_in_fan_out, use_rslora, use_dora, ... (every field PEFT writes,
//     with its defaults).
// Rows: PEFT's B is in Hugging Face's row order. For a llama GGUF base the converter permuted
// q/k rows (convert_hf_to_gguf.py LlamaModel.permute, which convert_lora_to_gguf.py applies to
// lora_B), so B's q/k rows are permuted on the way to GGUF order and back on the way out.
import type { ByteSource } from '../../formats/bytes.ts';
import { F32_DECODERS } from '../../formats/decode.ts';
import { FormatError } from '../../formats/errors.ts';
import { readJsonFile, readSafetensors } from '../../formats/safetensors.ts';
import { permuteQkRows } from '../../convert/llama.ts';
import type { ModelConfig } from '../../model/families/index.ts';
import { isLoraModule, LORA_MODULE_NAMES, LORA_MODULES, loraTargetName, type LoraAdapter, type LoraModule, type LoraWeight } from './adapter.ts';

export const PEFT_WEIGHTS_FILE = 'adapter_model.safetensors';
export const PEFT_CONFIG_FILE = 'adapter_config.json';

/** What a PEFT file does not say about the base: its architecture and, for llama, the heads q/k rows are permuted by. */
export interface PeftBase {
  readonly architecture: string;
  readonly nHead: number;
  readonly nHeadKv: number;
  /** llama's converter permutes q/k rows, and the adapter keeps B in that order (the other families' converters do not). */
  readonly permuteQk: boolean;
}

export function peftBase(config: ModelConfig, architecture: string): PeftBase {
  return { architecture, nHead: config.nHead, nHeadKv: config.nHeadKv, permuteQk: config.family === 'llama' };
}

function qkHeads(module: LoraModule, base: PeftBase): number | undefined {
  if (!base.permuteQk) return undefined;
  if (module === 'q_proj') return base.nHead;
  if (module === 'k_proj') return base.nHeadKv;
  return undefined;
}

/** permuteQkRows undone: GGUF row h*2*half + 2*i + s goes back to HF row h*2*half + s*half + i. */
export function unpermuteQkRows(values: Float32Array, rows: number, nHead: number): Float32Array {
  const cols = values.length / rows;
  const half = rows / nHead / 2;
  if (!Number.isInteger(cols) || !Number.isInteger(half)) throw new Error(`cannot unpermute ${rows} rows for ${nHead} heads`);
  const out = new Float32Array(values.length);
  for (let h = 0; h < nHead; h++) {
    for (let i = 0; i < half; i++) {
      for (let s = 0; s < 2; s++) {
        const hf = h * 2 * half + s * half + i;
        const gguf = h * 2 * half + 2 * i + s;
        out.set(values.subarray(gguf * cols, (gguf + 1) * cols), hf * cols);
      }
    }
  }
  return out;
}

export function peftTensorPrefix(layer: number, module: LoraModule): string {
  return `base_model.model.model.layers.${layer}.${LORA_MODULES[module].hfParent}.${module}`;
}

/** adapter_config.json as PEFT's LoraConfig writes it (its defaults for what quantlab does not use). */
export function peftConfigJson(adapter: LoraAdapter, baseModel: string | null = null): Record<string, unknown> {
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: baseModel,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: adapter.alpha,
    lora_dropout: adapter.dropout,
    modules_to_save: null,
    peft_type: 'LORA',
    r: adapter.rank,
    rank_pattern: {},
    revision: null,
    target_modules: [...adapter.targetModules],
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: false,
  };
}

/** A safetensors file of F32 tensors: names sorted (as the safetensors library writes them), header padded with spaces to 8 bytes. */
export function encodeSafetensorsF32(tensors: ReadonlyMap<string, { shape: readonly number[]; values: Float32Array }>, metadata: Record<string, string>): Uint8Array {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.values.byteLength] };
    offset += t.values.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + new TextEncoder().encode(json).length) % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const name of names) {
    const v = tensors.get(name)!.values;
    out.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), at);
    at += v.byteLength;
  }
  return out;
}

/** The two PEFT files' contents. */
export function encodePeft(adapter: LoraAdapter, base: PeftBase, baseModel: string | null = null): { weights: Uint8Array; config: string } {
  const tensors = new Map<string, { shape: readonly number[]; values: Float32Array }>();
  for (const w of adapter.weights.values()) {
    const prefix = peftTensorPrefix(w.layer, w.module);
    const heads = qkHeads(w.module, base);
    tensors.set(`${prefix}.lora_A.weight`, { shape: [w.rank, w.cols], values: w.a });
    tensors.set(`${prefix}.lora_B.weight`, { shape: [w.rows, w.rank], values: heads ? unpermuteQkRows(w.b, w.rows, heads) : w.b });
  }
  return { weights: encodeSafetensorsF32(tensors, { format: 'pt' }), config: `${JSON.stringify(peftConfigJson(adapter, baseModel), null, 2)}\n` };
}

/** Reads adapter_config.json and adapter_model.safetensors into an adapter on GGUF names and rows. */
export async function readPeft(configSource: ByteSource, weightsSource: ByteSource, base: PeftBase): Promise<LoraAdapter> {
  const cfg = await readJsonFile(configSource, PEFT_CONFIG_FILE);
  const bad = (field: string, reason: string) => new FormatError(configSource.name, 0, `${field}: ${reason}`);
  if (cfg.peft_type !== undefined && cfg.peft_type !== 'LORA') throw bad('peft_type', `${JSON.stringify(cfg.peft_type)} is not "LORA"`);
  const rank = cfg.r;
  if (typeof rank !== 'number' || !Number.isInteger(rank) || rank < 1) throw bad('r', `${JSON.stringify(rank)} must be a whole number >= 1`);
  const alpha = cfg.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) throw bad('lora_alpha', `${JSON.stringify(alpha)} is not a number`);
  const dropout = cfg.lora_dropout ?? 0;
  if (typeof dropout !== 'number') throw bad('lora_dropout', `${JSON.stringify(dropout)} is not a number`);
  // What changes the product beyond W + alpha/r · B·A: refused rather than applied wrongly.
  if (cfg.use_rslora === true) throw bad('use_rslora', 'rsLoRA (scale alpha / sqrt(r)) is not supported: llama.cpp scales by alpha / r');
  if (cfg.use_dora === true) throw bad('use_dora', 'DoRA is not supported (llama.cpp has no magnitude vector)');
  if (cfg.fan_in_fan_out === true) throw bad('fan_in_fan_out', 'Conv1D-style (transposed) weights are not supported');
  if (cfg.bias !== undefined && cfg.bias !== 'none') throw bad('bias', `${JSON.stringify(cfg.bias)}: only "none" is supported`);
  for (const field of ['rank_pattern', 'alpha_pattern']) {
    const v = cfg[field];
    if (v && typeof v === 'object' && Object.keys(v).length > 0) throw bad(field, 'per-module ranks/alphas are not supported');
  }

  const header = await readSafetensors(weightsSource);
  const pieces = new Map<string, { layer: number; module: LoraModule; a?: Float32Array; b?: Float32Array; aShape?: readonly number[]; bShape?: readonly number[] }>();
  for (const t of header.tensors) {
    const m = /^base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.([a-z_]+)\.lora_([AB])\.weight$/.exec(t.name);
    const fail = (reason: string) => new FormatError(weightsSource.name, t.offset, `tensor '${t.name}': ${reason}`);
    if (!m) throw fail('not a PEFT LoRA tensor (base_model.model.model.layers.N.<self_attn|mlp>.<module>.lora_A|lora_B.weight)');
    const module = m[3];
    if (!isLoraModule(module) || LORA_MODULES[module].hfParent !== m[2]) throw fail(`module '${m[2]}.${module}' is not one of ${LORA_MODULE_NAMES.join(', ')}`);
    if (t.shape.length !== 2) throw fail(`shape [${t.shape.join(', ')}] is not 2-D`);
    const decode = F32_DECODERS.get(t.dtype);
    if (!decode || !['F32', 'F16', 'BF16'].includes(t.dtype)) throw fail(`dtype ${t.dtype}: expected F32, F16 or BF16`);
    const values = decode((await weightsSource.read(t.offset, t.nbytes)).slice(), t.shape[0] * t.shape[1]);
    const key = `${m[1]}.${module}`;
    const p = pieces.get(key) ?? { layer: Number(m[1]), module };
    if (m[4] === 'A') Object.assign(p, { a: values, aShape: t.shape });
    else Object.assign(p, { b: values, bShape: t.shape });
    pieces.set(key, p);
  }
  const weights: LoraWeight[] = [];
  for (const p of pieces.values()) {
    const prefix = peftTensorPrefix(p.layer, p.module);
    const fail = (reason: string) => new FormatError(weightsSource.name, 0, `${prefix}: ${reason}`);
    if (!p.a || !p.b || !p.aShape || !p.bShape) throw fail(`lora_${p.a ? 'B' : 'A'}.weight is missing`);
    const [r, cols] = p.aShape;
    const [rows, rb] = p.bShape;
    if (r !== rb) throw fail(`lora_A is ${r} x ${cols} and lora_B ${rows} x ${rb}: their ranks differ`);
    if (r !== rank) throw fail(`rank ${r}, adapter_config.json says r = ${rank}`);
    const heads = qkHeads(p.module, base);
    const b = heads ? permuteQkRows(p.b, rows, heads) : p.b;
    weights.push({ name: loraTargetName(p.layer, p.module), layer: p.layer, module: p.module, rank: r, rows, cols, a: p.a, b });
  }
  if (weights.length === 0) throw new FormatError(weightsSource.name, 0, 'no LoRA tensors in the file');
  weights.sort((x, y) => x.layer - y.layer || LORA_MODULE_NAMES.indexOf(x.module) - LORA_MODULE_NAMES.indexOf(y.module));
  const targetModules = LORA_MODULE_NAMES.filter((m) => weights.some((w) => w.module === m));
  const listed = Array.isArray(cfg.target_modules) ? cfg.target_modules.filter((m): m is string => typeof m === 'string') : null;
  const missing = listed?.find((m) => isLoraModule(m) && !targetModules.includes(m));
  if (missing) throw bad('target_modules', `lists '${missing}', which ${weightsSource.name} has no tensors for`);
  return { architecture: base.architecture, alpha, rank, targetModules, dropout, weights: new Map(weights.map((w) => [w.name, w])) };
}
