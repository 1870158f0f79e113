// An adapter in the forward pass. Every weight product already goes through one Linear
// (model/families/linear.ts), so the hook is a Linear around the base's:
//   y = W·x + scale · B·(A·x)
// in the order llama.cpp's build_lora_mm computes it (A·x, then B·that, scaled, added).
// The base may be a QLoRA one: quantized blocks, decoded per product, never kept as f32.
import { matmulF32, type Linear, type WeightProvider } from '../../model/families/index.ts';
import type { PackedTensor } from '../../model/weights.ts';
import { quantType } from '../../quant/types.ts';
import { checkAdapterFits, loraScale, type LoraAdapter, type LoraBase, type LoraWeight } from './adapter.ts';
import { unpermuteQkRows } from './peft.ts';

/** `base` with the adapter added to each weight it targets; `userScale` is llama.cpp's per-adapter scale (--lora-scaled). */
export function loraLinear(base: Linear, adapter: LoraAdapter, userScale = 1): Linear {
  return (name, x, n, rows, cols) => {
    const w = adapter.weights.get(name);
    const y = base(name, x, n, rows, cols);
    if (!w) return y;
    if (w.rows !== rows || w.cols !== cols) throw new Error(`LoRA tensor '${name}' is ${w.rows} x ${w.cols}, the product asks for ${rows} x ${cols}`);
    const scale = loraScale(adapter.alpha, w.rank, userScale);
    const add = (base: Float32Array) => {
      const ax = matmulF32(w.a, w.rank, cols, x, n);
      const bax = matmulF32(w.b, rows, w.rank, ax, n);
      for (let i = 0; i < base.length; i++) base[i] += Math.fround(scale * bax[i]);
      return base;
    };
    return y instanceof Promise ? y.then(add) : add(y);
  };
}

/**
 * The adapter as the model's products ask for it: checked against the base, and on a
 * safetensors checkpoint keyed by its file names with llama's q/k B rows back in HF order
 * (the adapter keeps a GGUF's permuted order; the checkpoint's forward pass runs HF's).
 */
export function adapterForModel(adapter: LoraAdapter, base: LoraBase): LoraAdapter {
  checkAdapterFits(adapter, base);
  if (!base.fileNames) return adapter;
  const weights = new Map<string, LoraWeight>();
  for (const w of adapter.weights.values()) {
    const heads = w.module === 'q_proj' ? base.hfQkHeads?.q : w.module === 'k_proj' ? base.hfQkHeads?.k : undefined;
    const name = base.fileNames.get(w.name) ?? w.name;
    weights.set(name, { ...w, name, b: heads ? unpermuteQkRows(w.b, w.rows, heads) : w.b });
  }
  return { ...adapter, weights };
}

/**
 * The weights held as their quantized blocks (QLoRA's frozen base): each tensor in
 * `names` is encoded once by the type's codec and dropped as f32; a product decodes it,
 * multiplies, and lets the f32 copy go. Other tensors (embeddings, norms) stay as given.
 */
export interface QuantizedBase {
  readonly packed: ReadonlyMap<string, PackedTensor>;
  /** The tensors left as f32 (the packed ones are not here). */
  readonly values: ReadonlyMap<string, Float32Array>;
  readonly weights: WeightProvider;
  readonly linear: Linear;
}

export function quantizedBase(base: ReadonlyMap<string, Float32Array>, names: readonly string[], typeId: string, shapes: ReadonlyMap<string, readonly [number, number]>): QuantizedBase {
  const type = quantType(typeId);
  if (!type) throw new Error(`QLoRA base type '${typeId}' has no codec in quantlab`);
  const packed = new Map<string, PackedTensor>();
  const values = new Map(base);
  for (const name of names) {
    const shape = shapes.get(name);
    const w = base.get(name);
    if (!shape || !w) throw new Error(`QLoRA: no weights for tensor '${name}'`);
    const [rows, cols] = shape;
    // bitsandbytes blocks the flattened tensor (one "row" of rows·cols); ggml types block each row.
    const flat = type.family === 'bitsandbytes';
    const run = flat ? rows * cols : cols;
    if (type.blockSize > 1 && run % type.blockSize !== 0) {
      throw new Error(`QLoRA base type ${typeId}: '${name}' has ${flat ? `${run} values` : `rows of ${cols}`}, not a multiple of its blocks of ${type.blockSize}`);
    }
    packed.set(name, { type, bytes: type.codec.encode(w, run), rows: flat ? 1 : rows, cols: run });
    values.delete(name);
  }
  const decode = (name: string) => {
    const p = packed.get(name);
    if (p) return p.type.codec.decode(p.bytes, p.rows, p.cols);
    const w = values.get(name);
    if (!w) throw new Error(`no weights for tensor '${name}'`);
    return w;
  };
  const linear: Linear = (name, x, n, rows, cols) => {
    const w = decode(name);
    if (w.length !== rows * cols) throw new Error(`tensor '${name}' has ${w.length} values, expected ${rows} x ${cols}`);
    return matmulF32(w, rows, cols, x, n);
  };
  return { packed, values, weights: decode, linear };
}

/** W + scale · B·A for one target, in f32 (what llama-export-lora writes before quantizing). */
export function mergedWeight(w: Float32Array, adapter: LoraAdapter, name: string, userScale = 1): Float32Array {
  const lw = adapter.weights.get(name);
  if (!lw) return w;
  if (w.length !== lw.rows * lw.cols) throw new Error(`LoRA tensor '${name}' is ${lw.rows} x ${lw.cols}, the weight has ${w.length} values`);
  const scale = loraScale(adapter.alpha, lw.rank, userScale);
  const out = new Float32Array(w.length);
  for (let r = 0; r < lw.rows; r++) {
    for (let c = 0; c < lw.cols; c++) {
      let s = 0;
      for (let k = 0; k < lw.rank; k++) s += lw.b[r * lw.rank + k] * lw.a[k * lw.cols + c];
      out[r * lw.cols + c] = w[r * lw.cols + c] + Math.fround(scale * s);
    }
  }
  return out;
}
