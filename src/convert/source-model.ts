// A "GGUF source model": what a converter makes of a non-GGUF model (safetensors +
// config.json + tokenizer.model) before anything is quantized. Its metadata is the final
// GGUF key-value list, in order and typed; its tensors carry llama.cpp's names, their
// unquantized output type and a way to read their values on demand (with any layout
// change, such as llama.cpp's q/k permutation, already applied). The export job reads it
// tensor by tensor; writeSourceGguf writes it as is, which is the unquantized GGUF
// convert_hf_to_gguf.py would have written.

import { GGML_TYPE, GGML_TYPES } from '../formats/gguf/constants.ts';
import type { GgufMetadataEntry } from '../formats/gguf/metadata.ts';
import { type GgufLayout, planGguf, writeGguf } from '../formats/gguf/write.ts';
import { f32ToBf16Bits, f32ToF16Bits } from '../formats/float16.ts';
import { assertLittleEndianHost } from '../formats/bytes.ts';

/** The types an unquantized conversion writes (convert_hf_to_gguf.py --outtype). */
export type UnquantizedGgmlType = typeof GGML_TYPE.F32 | typeof GGML_TYPE.F16 | typeof GGML_TYPE.BF16;

export interface GgufSourceTensor {
  /** The GGUF name (llama.cpp's, e.g. 'blk.0.attn_q.weight'). */
  readonly name: string;
  /** The name in the source files (e.g. 'model.layers.0.self_attn.q_proj.weight'). */
  readonly sourceName: string;
  /** ggml type id of the unquantized output: F32, F16 or BF16. */
  readonly ggmlType: UnquantizedGgmlType;
  /** Row-major, outermost first (GGUF's ne reversed). */
  readonly shape: readonly number[];
  /** The values as f32, in GGUF order (permutations applied). */
  readF32(): Promise<Float32Array>;
  /** The data as the GGUF holds it: readF32() encoded as ggmlType. */
  readBytes(): Promise<Uint8Array>;
  /**
   * Rows [first, first + count) of readF32() (a row: the last dimension), read from the files
   * on their own, so that an export holds a slab at a time, never a whole tensor.
   */
  readRowsF32?(first: number, count: number): Promise<Float32Array>;
}

export interface GgufSourceModel {
  /** general.architecture. */
  readonly architecture: string;
  /** The GGUF key-value pairs, in the order they are written. */
  readonly metadata: readonly GgufMetadataEntry[];
  /** In the order they are written. */
  readonly tensors: readonly GgufSourceTensor[];
  /** False when llama.cpp will not run the file (weights only, no vocabulary...). */
  readonly runnable: boolean;
  /** What the user should know: unsupported architecture, missing tokenizer... */
  readonly warnings: readonly string[];
}

/** Encodes f32 values as one of the unquantized types (round to nearest even, as ggml). */
export function encodeUnquantized(values: Float32Array, ggmlType: UnquantizedGgmlType): Uint8Array {
  assertLittleEndianHost();
  if (ggmlType === GGML_TYPE.F32) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const toBits = ggmlType === GGML_TYPE.F16 ? f32ToF16Bits : f32ToBf16Bits;
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toBits(values[i]);
  return new Uint8Array(out.buffer);
}

/** Byte size of a tensor's unquantized data. */
export function unquantizedByteSize(shape: readonly number[], ggmlType: UnquantizedGgmlType): number {
  return shape.reduce((n, d) => n * d, 1) * GGML_TYPES.get(ggmlType)!.typeSize;
}

/** The GGUF layout (header bytes, offsets) of a source model written unquantized. */
export function planSourceGguf(model: GgufSourceModel): GgufLayout {
  return planGguf({
    metadata: model.metadata,
    tensors: model.tensors.map((t) => ({ name: t.name, type: t.ggmlType, ne: [...t.shape].reverse() })),
  });
}

/** The unquantized GGUF file as a stream of chunks, reading one tensor at a time. */
export function writeSourceGguf(model: GgufSourceModel, layout = planSourceGguf(model)): AsyncGenerator<Uint8Array> {
  return writeGguf(layout, (_, index) => model.tensors[index].readBytes());
}
