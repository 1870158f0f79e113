// NF4_DQ / FP4_DQ on the GPU: the codes and absmax from the base block codec (NF4 / FP4),
// then the absmax values double-quantized to 8 bits with a scale per group of 256 blocks
// (kernels/dq_absmax.wgsl). The CPU computes the one thing a GPU has no exact form for: the
// offset, the mean of the block absmax values summed in f64 as the CPU codec does.
import type { QuantType } from '../quant/types.ts';
import { DQ_GROUP_BLOCKS, DYNAMIC_MAP, dqLayout, NF4_BLOCK_BYTES } from '../quant/codecs/nf4.ts';
import { checkShape, dequantizeBlocks, quantizeBlocks, type GpuQuantizeReport } from './block-codecs.ts';
import { LAYOUT_LIBS } from './byte-layouts.ts';
import type { GpuContext } from './device.ts';
import { align4, buffer, chunkByteLimit, dispatchPass, kernelPipeline, kernelWgSize, readBack, storageIn, storageOut, withErrorScopes } from './dispatch.ts';

/** NF4_DQ / FP4_DQ's double-quantization pass: 'encode' fills codes and scales, 'decode' absmax. */
async function runDoubleQuant(gpu: GpuContext, t: QuantType, mode: 'encode' | 'decode', absmax: Uint32Array, offsetBits: number, codes: Uint8Array, scales: Uint32Array): Promise<void> {
  const { device, limits } = gpu;
  const blocks = absmax.length;
  const label = `${mode === 'encode' ? 'quantize' : 'dequantize'}.${t.id}.absmax`;
  const wgSize = kernelWgSize(limits);
  // Chunks of whole groups (one f32 scale each): their absmax words must fit a binding.
  const groupsPerChunk = Math.floor(chunkByteLimit(limits) / (DQ_GROUP_BLOCKS * 4));
  if (groupsPerChunk < 1) throw new RangeError(`${label}: ${DQ_GROUP_BLOCKS} absmax values do not fit the storage binding limit`);
  const chunkBlocks = groupsPerChunk * DQ_GROUP_BLOCKS;
  const pipeline = await kernelPipeline(device, `dq_absmax.${t.wgsl}`, [...LAYOUT_LIBS, `codecs/${t.wgsl}.wgsl`, 'kernels/dq_absmax.wgsl'], wgSize);
  // The signed dynamic map and the midpoints nf4.ts's quantizeDynamic compares with.
  const map = new Float32Array(2 * DYNAMIC_MAP.length - 1);
  map.set(DYNAMIC_MAP);
  for (let i = 0; i + 1 < DYNAMIC_MAP.length; i++) map[DYNAMIC_MAP.length + i] = Math.fround(Math.fround(DYNAMIC_MAP[i] + DYNAMIC_MAP[i + 1]) / 2);

  await withErrorScopes(gpu, label, async () => {
    const size = Math.min(chunkBlocks, Math.max(blocks, 1));
    const absBuf = buffer(device, `${label}.absmax`, size * 4, storageOut());
    const codeBuf = buffer(device, `${label}.codes`, size, storageOut());
    const scaleBuf = buffer(device, `${label}.scales`, Math.ceil(size / DQ_GROUP_BLOCKS) * 4, storageOut());
    const params = buffer(device, `${label}.params`, 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    const mapBuf = buffer(device, `${label}.map`, map.byteLength, storageIn());
    const readback = buffer(device, `${label}.readback`, size * 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    try {
      device.queue.writeBuffer(mapBuf, 0, map);
      for (let first = 0; first < blocks; first += chunkBlocks) {
        const count = Math.min(chunkBlocks, blocks - first);
        const groups = Math.ceil(count / DQ_GROUP_BLOCKS);
        const g0 = first / DQ_GROUP_BLOCKS;
        device.queue.writeBuffer(params, 0, new Uint32Array([count, mode === 'encode' ? 0 : 1, offsetBits, 0]));
        if (mode === 'encode') {
          device.queue.writeBuffer(absBuf, 0, absmax as Uint32Array<ArrayBuffer>, first, count);
          dispatchPass(gpu, `${label}.encode`, pipeline, [absBuf, codeBuf, scaleBuf, params, mapBuf], groups, wgSize);
          codes.set(await readBack(device, label, codeBuf, readback, count), first);
          scales.set(new Uint32Array((await readBack(device, label, scaleBuf, readback, groups * 4)).buffer), g0);
        } else {
          const staged = new Uint8Array(align4(count));
          staged.set(codes.subarray(first, first + count));
          device.queue.writeBuffer(codeBuf, 0, staged);
          device.queue.writeBuffer(scaleBuf, 0, scales as Uint32Array<ArrayBuffer>, g0, groups);
          dispatchPass(gpu, `${label}.decode`, pipeline, [absBuf, codeBuf, scaleBuf, params, mapBuf], count, wgSize);
          absmax.set(new Uint32Array((await readBack(device, label, absBuf, readback, count * 4)).buffer), first);
        }
      }
    } finally {
      for (const b of [absBuf, codeBuf, scaleBuf, params, mapBuf, readback]) b.destroy();
    }
  });
}

/** A staged NF4 / FP4 block (codecs/nf4.wgsl): f32 absmax, then the codes the _dq layout keeps. */
const DQ_STAGED_BYTES = NF4_BLOCK_BYTES;
const DQ_CODE_BYTES = NF4_BLOCK_BYTES - 4;

export async function quantizeDoubleQuant(gpu: GpuContext, t: QuantType, base: QuantType, data: Float32Array, rowLength: number): Promise<{ bytes: Uint8Array; report: GpuQuantizeReport }> {
  // Codes and absmax: the base block codec, on the GPU.
  const staged = await quantizeBlocks(gpu, base, data, rowLength, undefined);
  const blocks = data.length / base.blockSize;
  const layout = dqLayout(blocks);
  const out = new Uint8Array(layout.bytes);
  const view = new DataView(out.buffer);
  const sv = new DataView(staged.bytes.buffer, staged.bytes.byteOffset, staged.bytes.byteLength);
  const absmax = new Uint32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    absmax[b] = sv.getUint32(b * DQ_STAGED_BYTES, true);
    out.set(staged.bytes.subarray(b * DQ_STAGED_BYTES + 4, (b + 1) * DQ_STAGED_BYTES), b * DQ_CODE_BYTES);
  }
  // The offset: the mean absmax, summed in f64 in block order as nf4.ts does (on the CPU).
  const values = new Float32Array(absmax.buffer);
  let sum = 0;
  for (let b = 0; b < blocks; b++) sum += values[b];
  const offset = blocks === 0 ? 0 : Math.fround(sum / blocks);
  // The absmax values in 8 bits, with a scale per group of 256 blocks: on the GPU.
  const codes = new Uint8Array(blocks);
  const scales = new Uint32Array(layout.groups);
  await runDoubleQuant(gpu, t, 'encode', absmax, new Uint32Array(Float32Array.of(offset).buffer)[0], codes, scales);
  out.set(codes, layout.absmaxCodesAt);
  for (let g = 0; g < layout.groups; g++) view.setUint32(layout.groupScalesAt + 4 * g, scales[g], true);
  view.setFloat32(layout.offsetAt, offset, true);
  return { bytes: out, report: staged.report };
}

export async function dequantizeDoubleQuant(gpu: GpuContext, t: QuantType, base: QuantType, bytes: Uint8Array, rows: number, rowLength: number): Promise<Float32Array> {
  const blocks = checkShape(base, rows * rowLength, rowLength, 'dequantizeOnGpu');
  const layout = dqLayout(blocks);
  if (bytes.length !== layout.bytes) throw new RangeError(`dequantizeOnGpu ${t.id}: ${bytes.length} bytes, expected ${layout.bytes} for ${rows} x ${rowLength}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const scales = Uint32Array.from({ length: layout.groups }, (_, g) => view.getUint32(layout.groupScalesAt + 4 * g, true));
  const absmax = new Uint32Array(blocks);
  await runDoubleQuant(gpu, t, 'decode', absmax, view.getUint32(layout.offsetAt, true), bytes.subarray(layout.absmaxCodesAt, layout.absmaxCodesAt + blocks), scales);
  // Staged base blocks (absmax + codes), dequantized by the base block codec.
  const staged = new Uint8Array(blocks * DQ_STAGED_BYTES);
  const sv = new DataView(staged.buffer);
  for (let b = 0; b < blocks; b++) {
    sv.setUint32(b * DQ_STAGED_BYTES, absmax[b], true);
    staged.set(bytes.subarray(b * DQ_CODE_BYTES, (b + 1) * DQ_CODE_BYTES), b * DQ_STAGED_BYTES + 4);
  }
  return dequantizeBlocks(gpu, base, staged, rows, rowLength);
}
