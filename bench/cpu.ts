// CPU side of the bench: the codecs the engine runs (the WebAssembly fast path where a
// type has one, quant/fast/), and the TypeScript reference beside them, single thread, next
// to a plain Float32Array copy of the same values measured in the same run; each the fastest
// of 10 ms rounds (timeCpu).
import type { QuantType } from '../src/quant/types.ts';

export interface CpuResult {
  /** MB/s of f32 input encoded (4 bytes per weight). */
  encodeMBs: number;
  /** MB/s of f32 output decoded. */
  decodeMBs: number;
  /** MB/s of a Float32Array copy (TypedArray.set) of the same values. */
  copyMBs: number;
  /** The reference codec's encode MB/s, when the engine runs another (the fast path). */
  referenceEncodeMBs?: number;
  /** llama.cpp's own ggml_quantize_chunk (the peer's libggml-base, single thread), MB/s. */
  ggmlEncodeMBs?: number;
}

/** ggml_quantize_chunk(type, values, rowLength) of the llama.cpp peer. */
export type GgmlQuantize = (ggmlType: number, values: Float32Array, rowLength: number) => Uint8Array;

/**
 * Seconds per call of fn: the fastest of rounds of at least roundSeconds each (at least one
 * call a round), over at least minSeconds in all; warm up first. The fastest round is the one
 * least disturbed by other work on the machine; every column is timed by the same rule.
 */
function timeCpu(fn: () => void, minSeconds = 0.1, roundSeconds = 0.01): number {
  let best = Infinity;
  const start = performance.now();
  do {
    let calls = 0;
    const t0 = performance.now();
    let t = t0;
    do {
      fn();
      calls++;
      t = performance.now();
    } while ((t - t0) / 1000 < roundSeconds);
    best = Math.min(best, (t - t0) / 1000 / calls);
  } while ((performance.now() - start) / 1000 < minSeconds);
  return best;
}

export function benchCpu(type: QuantType, values: Float32Array, cols: number, ggml?: GgmlQuantize): CpuResult {
  const rows = values.length / cols;
  const mb = (values.length * 4) / 1e6;
  // Warm-up (JIT) on a few rows, not counted.
  const warmRows = Math.min(rows, 8);
  const warm = type.codec.encode(values.subarray(0, warmRows * cols), cols);
  type.codec.decode(warm, warmRows, cols);
  let packed = warm;
  const encode = timeCpu(() => {
    packed = type.codec.encode(values, cols);
  });
  const decode = timeCpu(() => {
    type.codec.decode(packed, rows, cols);
  });
  const dst = new Float32Array(values.length);
  dst.set(values);
  const copy = timeCpu(() => dst.set(values));
  let referenceEncodeMBs: number | undefined;
  if (type.reference.encode !== type.codec.encode) {
    type.reference.encode(values.subarray(0, warmRows * cols), cols);
    referenceEncodeMBs = mb / timeCpu(() => type.reference.encode(values, cols));
  }
  let ggmlEncodeMBs: number | undefined;
  // ggml_quantize_chunk has no Q8_K (activations only): it aborts the process.
  if (ggml && type.ggml && type.id !== 'q8_K') {
    const id = type.ggml.id;
    ggml(id, values.subarray(0, warmRows * cols), cols);
    ggmlEncodeMBs = mb / timeCpu(() => ggml(id, values, cols));
  }
  return { encodeMBs: mb / encode, decodeMBs: mb / decode, copyMBs: mb / copy, referenceEncodeMBs, ggmlEncodeMBs };
}
