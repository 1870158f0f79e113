// The weights a forward pass runs on: the model's own (read as f32), or "the model under
// preset P" = every tensor llama-quantize would convert, quantized with the plan's type
// and dequantized back by the CPU reference codecs (quant/types.ts); tensors the plan
// keeps stay as they are. The plan is quant/plan.ts planModel = quant/presets.ts
// planQuantization, the port of llama.cpp's llama-quant.cpp, so each tensor gets exactly
// the type llama-quantize gives it (fallbacks for rows that blocks do not divide included).
import { readTensorF32, type ModelIndex, type ModelTensor } from '../formats/model.ts';
import { planModel, type PlanSummary } from '../quant/plan.ts';
import type { PlanMode } from '../quant/presets.ts';
import { dequantizeGgml, quantType, type QuantType } from '../quant/types.ts';
import type { RowReader } from './families/linear.ts';
import { llamaWeightNames, type LlamaConfig, type WeightProvider } from './llama.ts';

export type WeightMap = ReadonlyMap<string, Float32Array>;

/** A provider over a map; an unknown name is an error, not undefined. */
export function mapProvider(map: WeightMap): WeightProvider {
  return (name) => {
    const w = map.get(name);
    if (!w) throw new Error(`no weights for tensor '${name}'`);
    return w;
  };
}

/** Every tensor the forward pass reads, as f32 (quantized GGUF tensors dequantized); any family. */
export async function readModelWeights(
  model: ModelIndex,
  config: LlamaConfig,
  onProgress?: (done: number, total: number, name: string) => void,
): Promise<Map<string, Float32Array>> {
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  const names = llamaWeightNames(config);
  const out = new Map<string, Float32Array>();
  for (const [i, name] of names.entries()) {
    const t = byName.get(name);
    if (!t) throw new Error(`tensor '${name}' is missing`);
    out.set(name, await readTensorF32(model, t, { dequantize: dequantizeGgml }));
    onProgress?.(i + 1, names.length, name);
  }
  return out;
}

/** readModelWeights under its name from when only Llama ran. */
export const readLlamaWeights = readModelWeights;

/**
 * The model as llama.cpp's quantizer sees it: a GGUF as it is; a safetensors checkpoint
 * under llama.cpp's tensor names and metadata keys (what convert_hf_to_gguf.py would
 * write; q/k row order does not matter to a plan, whose blocks run along rows).
 */
export function ggufView(model: ModelIndex, config: LlamaConfig): ModelIndex {
  if (model.format === 'gguf') return model;
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  const tensors: ModelTensor[] = [];
  for (const [gguf, source] of config.ggufNames) {
    const t = byName.get(source)!;
    tensors.push({ ...t, name: gguf, dtype: t.dtype.toLowerCase() });
  }
  return {
    ...model,
    format: 'gguf',
    version: 3,
    metadata: {
      'general.architecture': 'llama',
      'llama.block_count': config.nLayer,
      'llama.attention.head_count': config.nHead,
      'llama.attention.head_count_kv': config.nHeadKv,
    },
    tensors,
  };
}

/** llama-quantize's plan for the model (GGUF names), with sizes: planModel on ggufView. */
export function planForModel(model: ModelIndex, config: LlamaConfig, mode: PlanMode): PlanSummary {
  return planModel(ggufView(model, config), mode);
}

export interface PackedTensor {
  readonly type: QuantType;
  readonly bytes: Uint8Array;
  readonly rows: number;
  readonly cols: number;
}

export interface QuantizedWeights {
  /**
   * f32 values of every tensor: dequantized where the plan converts it, the original
   * otherwise; with `dequantize: false`, the tensors it keeps only (quantizedProvider
   * decodes a converted one when it is asked for it).
   */
  readonly values: Map<string, Float32Array>;
  /** The packed blocks of each converted tensor (by name in the files): what a GPU kernel reads. */
  readonly packed: Map<string, PackedTensor>;
  /** The type of every tensor the forward pass reads (by name in the files). */
  readonly types: Map<string, string>;
}

/**
 * Quantizes each tensor the plan converts with the CPU reference codec of its planned
 * type and decodes it back. `base` holds the f32 weights by name in the files.
 */
export function quantizeWeights(
  base: WeightMap,
  config: LlamaConfig,
  plan: PlanSummary,
  onTensor?: (done: number, total: number, name: string) => void,
  options: { dequantize?: boolean } = {},
): QuantizedWeights {
  const dequantize = options.dequantize ?? true;
  const values = new Map(base);
  const packed = new Map<string, PackedTensor>();
  const types = new Map<string, string>();
  const rows = plan.rows.filter((r) => config.ggufNames.has(r.name));
  for (const [i, row] of rows.entries()) {
    const name = config.ggufNames.get(row.name)!;
    types.set(name, row.type);
    if (row.converted) {
      const type = quantType(row.type);
      if (!type) throw new Error(`${row.name}: type ${row.type} has no codec in quantlab`);
      const w = base.get(name);
      if (!w) throw new Error(`no weights for tensor '${name}'`);
      const cols = row.shape[row.shape.length - 1] ?? 1;
      const bytes = type.codec.encode(w, cols);
      // Without `dequantize`, the packed blocks are the tensor (a model of 500M weights would hold 2 GB more as f32).
      if (dequantize) values.set(name, type.codec.decode(bytes, w.length / cols, cols));
      else values.delete(name);
      packed.set(name, { type, bytes, rows: w.length / cols, cols });
    }
    onTensor?.(i + 1, rows.length, name);
  }
  return { values, packed, types };
}

/**
 * A provider over quantizeWeights' result: the values it holds, and a converted tensor
 * decoded from its packed blocks the first time it is asked for whole (its products go
 * through a Linear over the packed blocks). Its `row` decodes one row of a packed tensor
 * alone (the forward pass's embedding rows: a 151,936-token embedding is 0.54 GB as f32).
 */
export function quantizedProvider(q: QuantizedWeights): WeightProvider & RowReader {
  const decoded = new Map<string, Float32Array>();
  const row = (name: string, r: number, cols: number): Float32Array => {
    const w = q.values.get(name) ?? decoded.get(name);
    if (w) return w.subarray(r * cols, (r + 1) * cols);
    const p = q.packed.get(name);
    if (!p) throw new Error(`no weights for tensor '${name}'`);
    if (p.cols !== cols) throw new Error(`tensor '${name}' has rows of ${p.cols}, expected ${cols}`);
    if (!(r >= 0 && r < p.rows)) throw new RangeError(`row ${r} of tensor '${name}' is outside its ${p.rows} rows`);
    const rowBytes = p.type.bytesFor(1, p.cols);
    return p.type.codec.decode(p.bytes.subarray(r * rowBytes, (r + 1) * rowBytes), 1, p.cols);
  };
  return Object.assign((name: string) => {
    const w = q.values.get(name) ?? decoded.get(name);
    if (w) return w;
    const p = q.packed.get(name);
    if (!p) throw new Error(`no weights for tensor '${name}'`);
    const values = p.type.codec.decode(p.bytes, p.rows, p.cols);
    decoded.set(name, values);
    return values;
  }, { row });
}
