// What an export reads: a model described as GGUF metadata and tensors, with readers of
// row ranges. A GGUF ModelIndex gives one as it is (exportSourceFromModel); safetensors give
// one through the converter (src/convert), so the planner and the writer never see which.
import type { GgufMetadataEntry } from '../formats/gguf/metadata.ts';
import { type ModelIndex, type ModelTensor, readTensorBytes, readTensorF32 } from '../formats/model.ts';
import { convertHf } from '../convert/hf.ts';
import { hfTokenizerToGguf } from '../model/tokenizer-hf.ts';
import { type GgufSourceModel, encodeUnquantized } from '../convert/source-model.ts';
import { dequantizeGgml } from '../quant/types.ts';

export interface ExportSourceTensor {
  readonly name: string;
  /** ggml type id of the data as the reader returns it. */
  readonly type: number;
  /** ggml's ne: the row length first. */
  readonly ne: readonly number[];
}

/** Rows [first, first + count) of a tensor, counted over all its matrices (ne1 x ne2 x ne3 rows of ne0). */
export interface RowRange {
  readonly first: number;
  readonly count: number;
}

/** What the export reads: a model described as GGUF metadata and tensors, with readers. */
export interface ExportSource {
  readonly metadata: readonly GgufMetadataEntry[];
  readonly tensors: readonly ExportSourceTensor[];
  /** Rows of the tensor's bytes in its own type (copied as they are when the type stays). */
  readBytes(tensor: ExportSourceTensor, rows: RowRange): Promise<Uint8Array>;
  /**
   * Rows of the tensor's values as f32 (dequantized if need be); the bytes may be read into
   * `scratch` and the values be a view of it (ReadF32Options.scratch).
   */
  readF32(tensor: ExportSourceTensor, rows: RowRange, scratch?: Uint8Array): Promise<Float32Array>;
  /** Largest slab read at once, in elements (default SLAB_ELEMENTS); Infinity: whole tensors. */
  readonly slabElements?: number;
}

/** The export source of any loaded model: a GGUF as it is, safetensors converted as convert_hf_to_gguf.py would. */
export async function exportSourceFor(model: ModelIndex): Promise<ExportSource> {
  if (model.format === 'gguf') return exportSourceFromModel(model);
  if (!model.metadata.config) {
    const first = model.files.find((f) => f.role === 'safetensors')!.source.name;
    throw new Error(`${first}: converting safetensors to GGUF needs the model's config.json (give it with the weights, and tokenizer.model or tokenizer.json for a model that runs)`);
  }
  // tokenizer.json's conversion is the BPE pipeline of src/model, passed down to src/convert.
  return exportSourceFromConverted(await convertHf(model, { hfTokenizer: hfTokenizerToGguf }));
}

/** The export source of a loaded GGUF model (exportSourceFor converts a safetensors one first). */
export function exportSourceFromModel(model: ModelIndex): ExportSource {
  if (model.format !== 'gguf' || !model.ggufMetadata) {
    throw new Error(`${model.format} is not GGUF: convert it first (exportSourceFor)`);
  }
  const byName = new Map<string, ModelTensor>(model.tensors.map((t) => [t.name, t]));
  const tensorOf = (t: ExportSourceTensor) => byName.get(t.name)!;
  // Rows hold whole blocks, so a row range is a block-aligned element range (old files whose
  // blocks run across rows are read whole and cut).
  const elements = (t: ExportSourceTensor, rows: RowRange) => ({ elementOffset: rows.first * t.ne[0], elementCount: rows.count * t.ne[0] });
  return {
    metadata: model.ggufMetadata,
    tensors: model.tensors.map((t) => ({ name: t.name, type: t.ggmlType!, ne: [...t.shape].reverse() })),
    readBytes: (t, rows) => readTensorBytes(model, tensorOf(t), elements(t, rows)),
    readF32: async (t, rows, scratch) => {
      const tensor = tensorOf(t);
      if (!tensor.flat) return readTensorF32(model, tensor, { ...elements(t, rows), dequantize: dequantizeGgml, scratch });
      const whole = await readTensorF32(model, tensor, { dequantize: dequantizeGgml });
      return whole.subarray(rows.first * t.ne[0], (rows.first + rows.count) * t.ne[0]);
    },
  };
}

/**
 * The export source of a converted model (src/convert: safetensors + config -> GGUF): read a
 * slab of rows at a time where the converter can (readRowsF32), else whole tensors.
 */
export function exportSourceFromConverted(model: GgufSourceModel): ExportSource {
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  const cut = <T extends Uint8Array | Float32Array>(whole: T, rows: RowRange, perRow: number): T =>
    whole.subarray(rows.first * perRow, (rows.first + rows.count) * perRow) as T;
  const bySlab = model.tensors.every((t) => t.readRowsF32);
  return {
    metadata: model.metadata,
    tensors: model.tensors.map((t) => ({ name: t.name, type: t.ggmlType, ne: [...t.shape].reverse() })),
    readBytes: async (t, rows) => {
      const tensor = byName.get(t.name)!;
      if (bySlab) return encodeUnquantized(await tensor.readRowsF32!(rows.first, rows.count), tensor.ggmlType);
      const whole = await tensor.readBytes();
      return cut(whole, rows, whole.length / rowCount(t.ne));
    },
    readF32: async (t, rows) => {
      const tensor = byName.get(t.name)!;
      return bySlab ? tensor.readRowsF32!(rows.first, rows.count) : cut(await tensor.readF32(), rows, t.ne[0]);
    },
    ...(bySlab ? {} : { slabElements: Infinity }),
  };
}

/** Rows of a tensor: every dimension but the first. */
export function rowCount(ne: readonly number[]): number {
  return ne.slice(1).reduce((n, d) => n * d, 1);
}

