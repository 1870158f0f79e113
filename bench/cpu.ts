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
  do best = Math.min(best, secondsPerCall(fn, roundSeconds));
  while ((performance.now() - start) / 1000 < minSeconds);
  return best;
}

/** One round: seconds per call of fn, called until `roundSeconds` have passed. */
export function secondsPerCall(fn: () => void, roundSeconds: number): number {
  let calls = 0;
  const t0 = performance.now();
  let t: number;
  do {
    fn();
    calls++;
    t = performance.now();
  } while ((t - t0) / 1000 < roundSeconds);
  return (t - t0) / 1000 / calls;
}

/**
 * Seconds per call of each of fns, timed as timeCpu does but in alternating rounds (one
 * round of each in turn), so that both see the same state of the machine: the allocator
 * above all. Each call allocates its output, and a fresh allocation costs a page fault per
 * 4 KiB until glibc keeps the freed memory instead of returning it (after some 0.3 s of
 * such calls): timed one after the other, the first column paid for that warm-up alone
 * (f32, a copy, 300 MB/s against ggml's 2000+ from the same copy run later).
 */
function timeCpuAlternating(fns: (() => void)[], minSeconds = 0.1, roundSeconds = 0.01): number[] {
  const best = fns.map(() => Infinity);
  const start = performance.now();
  do {
    fns.forEach((fn, k) => {
      best[k] = Math.min(best[k], secondsPerCall(fn, roundSeconds));
    });
  } while ((performance.now() - start) / 1000 < minSeconds * fns.length);
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
  const encodeOnce = () => {
    packed = type.codec.encode(values, cols);
  };
  // ggml_quantize_chunk has no Q8_K (activations only): it aborts the process.
  const ggmlId = ggml && type.ggml && type.id !== 'q8_K' ? type.ggml.id : undefined;
  let encode: number;
  let ggmlEncodeMBs: number | undefined;
  if (ggml && ggmlId !== undefined) {
    // Ours and ggml's in alternating rounds: the same machine state for both.
    ggml(ggmlId, values.subarray(0, warmRows * cols), cols);
    const [ours, theirs] = timeCpuAlternating([encodeOnce, () => ggml(ggmlId, values, cols)]);
    encode = ours;
    ggmlEncodeMBs = mb / theirs;
  } else {
    encode = timeCpu(encodeOnce);
  }
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
  return { encodeMBs: mb / encode, decodeMBs: mb / decode, copyMBs: mb / copy, referenceEncodeMBs, ggmlEncodeMBs };
}
