// Byte layouts on the GPU: one byte per value with a per-row or per-tensor value, not a plain
// sequence of blocks: INT8 and INT8_OUTLIER (one scale per row, data-dependent outlier
// columns) and FP8 (one scale per tensor). Each is a few passes; the arithmetic runs on the
// GPU, the CPU only sequences the passes, moves section bytes and computes the one thing a
// GPU has no exact form for: the list of outlier columns from the GPU's per-column flags (a
// compaction of rowLength flags).
import type { ByteLayout, QuantType } from '../quant/types.ts';
import { fp8Bytes } from '../quant/codecs/float.ts';
import { int8Bytes, outlierRecordBytes } from '../quant/codecs/intn.ts';
import type { GpuContext, GpuLimits } from './device.ts';
import {
  align4,
  buffer,
  chunkByteLimit,
  dispatchPass,
  kernelPipeline,
  kernelWgSize,
  readBack,
  requireBinding,
  storageIn,
  storageOut,
  withErrorScopes,
} from './dispatch.ts';

/** Libraries of the layout kernels (no block staging, so no lib/bytes.wgsl). */
export const LAYOUT_LIBS = ['lib/rounding.wgsl', 'lib/f16.wgsl', 'lib/softfloat.wgsl'];
/** Values per invocation of kernels/absmax.wgsl and kernels/outlier_columns.wgsl (their ELEMS). */
const SCAN_VALUES_PER_INVOCATION = 64;
/** Tensor indices are u32 on the GPU: larger tensors (16 GiB of f32) are not split by index. */
const MAX_LAYOUT_VALUES = 2 ** 32 - 4;
/** kernels/absmax.wgsl's seg_len for a per-tensor scale: one segment. */
const WHOLE_TENSOR = 0xffffffff;


/** Values per chunk of a byte layout: a multiple of 4 (whole words of codes) whose f32s fit a binding. */
function byteLayoutChunk(limits: GpuLimits, wgSize: number): number {
  const maxX = limits.maxComputeWorkgroupsPerDimension;
  const values = Math.min(Math.floor(chunkByteLimit(limits) / 16) * 4, maxX * maxX * wgSize * 4);
  if (values < 4) throw new RangeError('byte layouts: four f32 values do not fit the storage binding limit');
  return values;
}

export async function quantizeBytes(gpu: GpuContext, t: QuantType, layout: ByteLayout, data: Float32Array, rowLength: number): Promise<Uint8Array> {
  const { device, limits } = gpu;
  const n = data.length;
  if (n > MAX_LAYOUT_VALUES) throw new RangeError(`quantizeOnGpu ${t.id}: ${n} values exceed ${MAX_LAYOUT_VALUES}`);
  const rows = n / rowLength;
  const segments = layout.perTensor ? 1 : rows;
  const segLen = layout.perTensor ? WHOLE_TENSOR : rowLength;
  const label = `quantize.${t.id}`;
  requireBinding(segments * 4, limits, label);
  if (layout.outliers) requireBinding(rowLength * 4, limits, label);
  const wgSize = kernelWgSize(limits);
  const chunk = byteLayoutChunk(limits, wgSize);
  const codecFiles = [...LAYOUT_LIBS, layout.lib, `codecs/${t.wgsl}.wgsl`];
  const [absmaxPipe, paramsPipe, encodePipe, columnsPipe] = await Promise.all([
    kernelPipeline(device, 'absmax', ['kernels/absmax.wgsl'], wgSize),
    kernelPipeline(device, `segment_params.${t.wgsl}`, [...codecFiles, 'kernels/segment_params.wgsl'], wgSize),
    kernelPipeline(device, `bytes_quantize.${t.wgsl}`, [...codecFiles, 'kernels/bytes_quantize.wgsl'], wgSize),
    layout.outliers ? kernelPipeline(device, 'outlier_columns', ['kernels/outlier_columns.wgsl'], wgSize) : undefined,
  ]);

  return withErrorScopes(gpu, label, async () => {
    const src = buffer(device, `${label}.src`, Math.min(chunk, n) * 4, storageIn());
    const segMax = buffer(device, `${label}.segment-absmax`, segments * 4, storageOut());
    const segParam = buffer(device, `${label}.segment-params`, segments * 4, storageOut());
    const mask = buffer(device, `${label}.columns`, layout.outliers ? rowLength * 4 : 4, storageOut());
    const dst = buffer(device, `${label}.codes`, Math.min(chunk, n), storageOut());
    const params = buffer(device, `${label}.params`, 32, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    let records = buffer(device, `${label}.records`, 4, storageOut());
    const readback = buffer(device, `${label}.readback`, Math.max(Math.min(chunk, n), segments * 4, layout.outliers ? rowLength * 4 : 0), GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    const owned = [src, segMax, segParam, mask, dst, params, readback];
    try {
      let resident = -1; // first value of the chunk now in `src`
      const upload = (first: number, count: number) => {
        if (resident === first) return;
        device.queue.writeBuffer(src, 0, data as Float32Array<ArrayBuffer>, first, count);
        resident = first;
      };
      const setParams = (...words: number[]) => device.queue.writeBuffer(params, 0, new Uint32Array([...words, 0, 0, 0, 0, 0, 0, 0, 0].slice(0, 8)));
      const chunks = (fn: (first: number, count: number) => void | Promise<void>) =>
        (async () => {
          for (let first = 0; first < n; first += chunk) await fn(first, Math.min(chunk, n - first));
        })();

      // 1. int8_outlier: the columns with any |x| >= 6, flagged on the GPU; their list here.
      let columns: number[] = [];
      const recordBytes = outlierRecordBytes(rows);
      if (layout.outliers) {
        await chunks((first, count) => {
          upload(first, count);
          setParams(count, first, rowLength, 0);
          dispatchPass(gpu, `${label}.outlier-columns`, columnsPipe!, [src, mask, params], Math.ceil(count / SCAN_VALUES_PER_INVOCATION), wgSize);
        });
        const flags = new Uint32Array((await readBack(device, label, mask, readback, rowLength * 4)).buffer);
        columns = [...flags.keys()].filter((c) => flags[c] !== 0);
        // mask[c] = k + 1 for the k-th outlier column; each record starts with its column.
        const recordIndex = new Uint32Array(rowLength);
        columns.forEach((c, k) => (recordIndex[c] = k + 1));
        device.queue.writeBuffer(mask, 0, recordIndex);
        requireBinding(columns.length * recordBytes, limits, label);
        records.destroy();
        records = buffer(device, `${label}.records`, columns.length * recordBytes, storageOut());
        const heads = new Uint32Array(Math.max(1, (columns.length * recordBytes) / 4));
        columns.forEach((c, k) => (heads[(k * recordBytes) / 4] = c));
        device.queue.writeBuffer(records, 0, heads);
      }

      // 2. Absmax per segment, 3. the segments' parameters (127 / absmax, or the scale).
      const flags = (layout.finiteOnly ? 1 : 0) | (layout.outliers ? 2 : 0);
      await chunks((first, count) => {
        upload(first, count);
        setParams(count, first, segLen, flags);
        dispatchPass(gpu, `${label}.absmax`, absmaxPipe, [src, segMax, params, mask], Math.ceil(count / SCAN_VALUES_PER_INVOCATION), wgSize);
      });
      setParams(segments, 0, 0, 0);
      dispatchPass(gpu, `${label}.segment-params`, paramsPipe, [segMax, segParam, params], segments, wgSize);

      // 4. Codes, chunk by chunk (and the outlier values into their records).
      const codes = new Uint8Array(n);
      const recWords = recordBytes / 4;
      await chunks(async (first, count) => {
        upload(first, count);
        setParams(count, first, segLen, layout.outliers ? 1 : 0, recWords, 0);
        dispatchPass(gpu, `${label}.encode`, encodePipe, [src, dst, params, segParam, mask, records], Math.ceil(count / 4), wgSize);
        codes.set(await readBack(device, label, dst, readback, count), first);
      });

      if (layout.perTensor) {
        // FP8: [f32 scale | codes].
        const out = new Uint8Array(4 + n);
        out.set(await readBack(device, label, segParam, readback, 4));
        out.set(codes, 4);
        return out;
      }
      // INT8: [codes, zero-padded to 4 | f32 absmax per row | outlier records].
      const base = int8Bytes(rows, rowLength);
      const out = new Uint8Array(base + columns.length * recordBytes);
      out.set(codes);
      out.set(await readBack(device, label, segMax, readback, rows * 4), base - rows * 4);
      if (columns.length) {
        const recBuf = buffer(device, `${label}.records-readback`, columns.length * recordBytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
        owned.push(recBuf);
        out.set(await readBack(device, label, records, recBuf, columns.length * recordBytes), base);
      }
      return out;
    } finally {
      for (const b of owned) b.destroy();
      records.destroy();
    }
  });
}

export async function dequantizeBytes(gpu: GpuContext, t: QuantType, layout: ByteLayout, bytes: Uint8Array, rows: number, rowLength: number): Promise<Float32Array> {
  const { device, limits } = gpu;
  const n = rows * rowLength;
  const label = `dequantize.${t.id}`;
  if (n > MAX_LAYOUT_VALUES) throw new RangeError(`dequantizeOnGpu ${t.id}: ${n} values exceed ${MAX_LAYOUT_VALUES}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The sections, checked as the CPU codec checks them.
  let codesAt = 0;
  let segValues: Uint32Array;
  let recordIndex = new Uint32Array(1);
  let recordWords = new Uint32Array(1);
  const recordBytes = outlierRecordBytes(rows);
  if (layout.perTensor) {
    if (bytes.length !== fp8Bytes(rows, rowLength)) throw new RangeError(`${t.id}: expected ${fp8Bytes(rows, rowLength)} bytes, got ${bytes.length}`);
    codesAt = 4;
    segValues = Uint32Array.of(view.getUint32(0, true));
  } else {
    const base = int8Bytes(rows, rowLength);
    const extra = bytes.length - base;
    const ok = layout.outliers ? extra >= 0 && extra % recordBytes === 0 : extra === 0;
    if (!ok) throw new RangeError(`${t.id}: ${bytes.length} bytes do not hold ${rows} rows of ${rowLength}`);
    segValues = Uint32Array.from({ length: rows }, (_, r) => view.getUint32(base - 4 * rows + 4 * r, true));
    if (layout.outliers && extra > 0) {
      recordIndex = new Uint32Array(rowLength);
      for (let k = 0, at = base; at < bytes.length; k++, at += recordBytes) {
        const column = view.getUint32(at, true);
        if (column >= rowLength) throw new RangeError(`${t.id}: outlier column ${column} at byte ${at} is past the row length ${rowLength}`);
        recordIndex[column] = k + 1; // a repeated column: the later record wins, as on the CPU
      }
      recordWords = new Uint32Array(bytes.slice(base).buffer);
    }
  }
  const segments = segValues.length;
  requireBinding(segments * 4, limits, label);
  requireBinding(recordIndex.byteLength, limits, label);
  requireBinding(recordWords.byteLength, limits, label);
  const wgSize = kernelWgSize(limits);
  const chunk = byteLayoutChunk(limits, wgSize);
  const pipeline = await kernelPipeline(device, `bytes_dequantize.${t.wgsl}`, [...LAYOUT_LIBS, layout.lib, `codecs/${t.wgsl}.wgsl`, 'kernels/bytes_dequantize.wgsl'], wgSize);
  const out = new Float32Array(n);
  const outBytes = new Uint8Array(out.buffer);

  await withErrorScopes(gpu, label, async () => {
    const src = buffer(device, `${label}.codes`, Math.min(chunk, n), storageIn());
    const dst = buffer(device, `${label}.dst`, Math.min(chunk, n) * 4, storageOut());
    const params = buffer(device, `${label}.params`, 32, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    const segBuf = buffer(device, `${label}.segment-values`, segments * 4, storageIn());
    const mask = buffer(device, `${label}.columns`, recordIndex.byteLength, storageIn());
    const records = buffer(device, `${label}.records`, recordWords.byteLength, storageIn());
    const readback = buffer(device, `${label}.readback`, Math.min(chunk, n) * 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    try {
      device.queue.writeBuffer(segBuf, 0, segValues as Uint32Array<ArrayBuffer>);
      device.queue.writeBuffer(mask, 0, recordIndex as Uint32Array<ArrayBuffer>);
      device.queue.writeBuffer(records, 0, recordWords as Uint32Array<ArrayBuffer>);
      const staging = new Uint8Array(align4(Math.min(chunk, n)));
      for (let first = 0; first < n; first += chunk) {
        const count = Math.min(chunk, n - first);
        staging.fill(0);
        staging.set(bytes.subarray(codesAt + first, codesAt + first + count));
        device.queue.writeBuffer(src, 0, staging, 0, align4(count));
        device.queue.writeBuffer(params, 0, new Uint32Array([count, first, layout.perTensor ? WHOLE_TENSOR : rowLength, layout.outliers ? 1 : 0, recordBytes / 4, 0, 0, 0]));
        dispatchPass(gpu, `${label}.decode`, pipeline, [src, dst, params, segBuf, mask, records], Math.ceil(count / 4), wgSize);
        outBytes.set(await readBack(device, label, dst, readback, count * 4), first * 4);
      }
    } finally {
      for (const b of [src, dst, params, segBuf, mask, records, readback]) b.destroy();
    }
  });
  return out;
}
