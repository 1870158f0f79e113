// Importance-matrix files for tests, in the two layouts llama-quantize reads
// (llama.cpp tools/imatrix/imatrix.cpp writes the GGUF one; common/imatrix-loader.cpp
// reads both), and the map llama-quantize hands llama_model_quantize for them (its
// load_imatrix: sums / count per matrix), so the peer gets what the tool would pass.
// Test support only: nothing under src/ outside tests imports this.
import { concatBytes } from '../formats/bytes.ts';
import { GGML_TYPE, GGUF_VALUE_TYPE } from '../formats/gguf/constants.ts';
import { ggufArray, ggufEntry } from '../formats/gguf/metadata.ts';
import { planGguf, writeGguf } from '../formats/gguf/write.ts';
import { collect } from '../formats/testing.ts';

export interface ImatrixTestEntry {
  /** Weight name ('blk.0.attn_q.weight'). */
  name: string;
  /** Sums of squared activations: ne0 per matrix. */
  sums: Float32Array;
  /** Tokens counted per matrix (one per expert). */
  counts: number[];
}

/** A GGUF imatrix as llama-imatrix writes it: NAME.in_sum2 [ne0, n_mat], NAME.counts [1, n_mat]. */
export async function buildGgufImatrix(
  entries: readonly ImatrixTestEntry[],
  datasets: readonly string[],
  chunkCount: number,
  { chunkSize = 512, withMetadata = true } = {},
): Promise<Uint8Array> {
  const metadata = [ggufEntry('general.type', GGUF_VALUE_TYPE.STRING, 'imatrix')];
  if (withMetadata) {
    metadata.push(
      ggufEntry('imatrix.datasets', GGUF_VALUE_TYPE.ARRAY, ggufArray(GGUF_VALUE_TYPE.STRING, [...datasets])),
      ggufEntry('imatrix.chunk_count', GGUF_VALUE_TYPE.UINT32, chunkCount),
      ggufEntry('imatrix.chunk_size', GGUF_VALUE_TYPE.UINT32, chunkSize),
    );
  }
  const layout = planGguf({
    metadata,
    tensors: entries.flatMap((e) => [
      { name: `${e.name}.in_sum2`, type: GGML_TYPE.F32, ne: [e.sums.length / e.counts.length, e.counts.length] },
      { name: `${e.name}.counts`, type: GGML_TYPE.F32, ne: [1, e.counts.length] },
    ]),
  });
  const data = entries.flatMap((e) => [e.sums, Float32Array.from(e.counts)]);
  return collect(writeGguf(layout, (_, i) => new Uint8Array(data[i].buffer, data[i].byteOffset, data[i].byteLength)));
}

/** The legacy .dat layout: i32 count; per entry name, ncall, nval, values; then chunk count and dataset. */
export function buildLegacyImatrix(entries: readonly { name: string; values: Float32Array; ncall: number }[], chunkCount: number, dataset: string): Uint8Array {
  const text = new TextEncoder();
  const parts: Uint8Array[] = [];
  const i32 = (v: number) => new Uint8Array(Int32Array.of(v).buffer);
  parts.push(i32(entries.length));
  for (const e of entries) {
    const name = text.encode(e.name);
    parts.push(i32(name.length), name, i32(e.ncall), i32(e.values.length), new Uint8Array(e.values.slice().buffer));
  }
  const ds = text.encode(dataset);
  parts.push(i32(chunkCount), i32(ds.length), ds);
  return concatBytes(parts);
}

/** What quantize.cpp's load_imatrix passes on for a GGUF imatrix: sums / count in f32 (count 0: ones). */
export function toolImatrixValues(entry: ImatrixTestEntry): Float32Array {
  const ne0 = entry.sums.length / entry.counts.length;
  return entry.sums.map((s, k) => {
    const count = entry.counts[Math.floor(k / ne0)];
    return count > 0 ? Math.fround(s / Math.fround(count)) : 1;
  });
}

/**
 * What llama-quantize --imatrix FILE hands llama_model_quantize (tools/quantize/quantize.cpp):
 * the matrix as load_imatrix reads it, and the quantize.imatrix.* keys it adds to the output
 * (the file as given, its first dataset, the entry and chunk counts).
 */
export function toolImatrixOptions(file: string, entries: readonly ImatrixTestEntry[], dataset: string, chunkCount: number) {
  return {
    imatrix: new Map(entries.map((e) => [e.name, toolImatrixValues(e)])),
    kvOverrides: [
      { key: 'quantize.imatrix.file', value: file },
      { key: 'quantize.imatrix.dataset', value: dataset },
      { key: 'quantize.imatrix.entries_count', value: { int: entries.length } },
      { key: 'quantize.imatrix.chunks_count', value: { int: chunkCount } },
    ],
  };
}
