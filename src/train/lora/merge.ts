// The adapter merged into the base, as llama-export-lora writes it
// (tools/export-lora/export-lora.cpp): every metadata key of the base, general.file_type
// removed and appended as MOSTLY_F16 (1), as its gguf_set_val_u32 does; each tensor in the
// base's order, copied as it is unless adapted; an adapted one dequantized to f32,
// W + scale·B·A added, and stored as F32 when the base's was F32, F16 otherwise.
// Quantizing that file (quantlab quantize / llama-quantize) is the merge-then-quantize path.
import { f32ToF16Bits } from '../../formats/float16.ts';
import { GGML_TYPE, GGUF_VALUE_TYPE } from '../../formats/gguf/constants.ts';
import { ggufEntry } from '../../formats/gguf/metadata.ts';
import { planGguf, type GgufLayout, type GgufTensorDataSource } from '../../formats/gguf/write.ts';
import { ggufDescriptor, readTensorBytes, readTensorF32, type ModelIndex } from '../../formats/model.ts';
import { dequantizeGgml } from '../../quant/types.ts';
import type { LoraAdapter } from './adapter.ts';
import { mergedWeight } from './apply.ts';

/** llama_ftype LLAMA_FTYPE_MOSTLY_F16: what llama-export-lora writes whatever the tensors are. */
const EXPORT_LORA_FILE_TYPE = 1;

export interface MergedGguf {
  readonly layout: GgufLayout;
  readonly data: GgufTensorDataSource;
}

export function mergedGguf(model: ModelIndex, adapter: LoraAdapter, userScale = 1): MergedGguf {
  if (model.format !== 'gguf' || !model.ggufMetadata) throw new Error('LoRA merge: the base must be a GGUF file');
  const metadata = [...model.ggufMetadata.filter((e) => e.key !== 'general.file_type'), ggufEntry('general.file_type', GGUF_VALUE_TYPE.UINT32, EXPORT_LORA_FILE_TYPE)];
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  for (const name of adapter.weights.keys()) if (!byName.has(name)) throw new Error(`LoRA tensor '${name}' is not in the model`);
  const tensors = model.tensors.map((t) => {
    const d = ggufDescriptor(t);
    if (!adapter.weights.has(t.name)) return d;
    return { ...d, type: t.ggmlType === GGML_TYPE.F32 ? GGML_TYPE.F32 : GGML_TYPE.F16 };
  });
  const data: GgufTensorDataSource = async (_t, i) => {
    const tensor = model.tensors[i];
    if (!adapter.weights.has(tensor.name)) return readTensorBytes(model, tensor);
    const merged = mergedWeight(await readTensorF32(model, tensor, { dequantize: dequantizeGgml }), adapter, tensor.name, userScale);
    if (tensors[i].type === GGML_TYPE.F32) return new Uint8Array(merged.buffer, merged.byteOffset, merged.byteLength);
    const half = Uint16Array.from(merged, f32ToF16Bits);
    return new Uint8Array(half.buffer);
  };
  return { layout: planGguf({ metadata, tensors, version: model.version ?? 3 }), data };
}
