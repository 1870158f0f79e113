// Block codecs on the GPU: a tensor that is a plain sequence of its type's blocks, quantized
// or dequantized by shaders/codecs/<wgsl>.wgsl through kernels/quantize.wgsl and
// kernels/dequantize.wgsl, bit-exact with the CPU reference codecs (house rule 3).
//
// Large tensors go through in chunks: each chunk is a whole number of block groups
// (groupBlocks blocks, a whole number of u32 words: shaders/lib/bytes.wgsl) whose input and
// output fit the device's storage binding and buffer limits (and MAX_CHUNK_BYTES), so a
// tensor is streamed through a few fixed buffers and never held whole on the GPU. Blocks
// are independent, so the chunked bytes equal the unchunked ones.
import type { QuantType } from '../quant/types.ts';
import type { GpuContext, GpuLimits } from './device.ts';
import { chunkByteLimit, dispatchSize, kernelWgSize, withErrorScopes } from './dispatch.ts';
import { codecPipeline } from './pipelines.ts';
import { mapRead, submit } from './counters.ts';

/** Blocks per invocation so that a group is whole u32 words (shaders/lib/bytes.wgsl). */
export function groupBlocks(typeSize: number): number {
  return typeSize % 4 === 0 ? 1 : typeSize % 4 === 2 ? 2 : 4;
}

/** The number of blocks in `values` values of rows of `rowLength`, or a RangeError naming `what`. */
export function checkShape(t: QuantType, values: number, rowLength: number, what: string): number {
  if (!Number.isInteger(rowLength) || rowLength <= 0 || rowLength % t.blockSize !== 0) {
    throw new RangeError(`${what} ${t.id}: row length ${rowLength} is not a multiple of the block size ${t.blockSize}`);
  }
  if (values % rowLength !== 0) throw new RangeError(`${what} ${t.id}: ${values} values are not whole rows of ${rowLength}`);
  return values / t.blockSize;
}

/** Groups per chunk: both sides fit the byte limit, and the dispatch fits maxX^2 workgroups. */
function groupsPerChunk(inBytesPerGroup: number, outBytesPerGroup: number, wgSize: number, limits: GpuLimits, what: string): number {
  const bytes = Math.floor(chunkByteLimit(limits) / Math.max(inBytesPerGroup, outBytesPerGroup));
  if (bytes < 1) throw new RangeError(`${what}: one block group does not fit the storage binding limit`);
  const maxX = limits.maxComputeWorkgroupsPerDimension;
  return Math.min(bytes, maxX * maxX * wgSize);
}

interface CodecRun {
  kernel: 'quantize' | 'dequantize';
  type: QuantType;
  nBlocks: number;
  /** Bytes of input per group / of output per group, as the kernel reads / writes them. */
  inPerGroup: number;
  outPerGroup: number;
  /** The input bytes of blocks [firstBlock, firstBlock + blocks). */
  source: (firstBlock: number, blocks: number) => Uint8Array;
  /** Take chunk output (padded to whole groups) for blocks [firstBlock, +blocks). */
  take: (out: Uint8Array, firstBlock: number, blocks: number) => void;
  /** Quantize only: blocks the kernel left to the CPU (block_to_cpu in shaders/lib/bytes.wgsl). */
  toCpu?: (block: number) => void;
  /** Quantize only: importance weights (one per column) and rows of `rowBlocks` blocks. */
  importance?: { weights: Float32Array; rowBlocks: number; rowSigma2: (row: number) => number };
}

async function runCodec(gpu: GpuContext, run: CodecRun): Promise<void> {
  const { device, limits } = gpu;
  const { type, kernel } = run;
  const label = `${kernel}.${type.id}`;
  const g = groupBlocks(type.typeSize);
  const wgSize = kernelWgSize(limits);
  const nGroups = Math.ceil(run.nBlocks / g);
  const chunkGroups = Math.min(groupsPerChunk(run.inPerGroup, run.outPerGroup, wgSize, limits, label), nGroups);
  if (run.nBlocks === 0) return;
  const pipeline = await codecPipeline(device, kernel, type.wgsl, wgSize, run.importance !== undefined);

  await withErrorScopes(gpu, label, async () => {
    const inBytes = chunkGroups * run.inPerGroup;
    const outBytes = chunkGroups * run.outPerGroup;
    const src = device.createBuffer({ label: `${label}.src`, size: inBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    const dst = device.createBuffer({ label: `${label}.dst`, size: outBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    // The quantize kernel also writes one word per group: which of its blocks need the CPU.
    const maskBytes = kernel === 'quantize' ? chunkGroups * 4 : 0;
    const maskAt = Math.ceil(outBytes / 8) * 8; // getMappedRange offsets are multiples of 8
    const readback = device.createBuffer({ label: `${label}.readback`, size: maskAt + maskBytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const params = device.createBuffer({ label: `${label}.params`, size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    const masks = maskBytes
      ? device.createBuffer({ label: `${label}.to-cpu`, size: maskBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC })
      : undefined;
    // Importance (quantize kernel): the row's weights, then sigma2 of each row in the chunk.
    const imp = run.importance;
    const chunkRows = imp ? Math.ceil((chunkGroups * g) / imp.rowBlocks) + 1 : 0;
    const aux = maskBytes
      ? device.createBuffer({ label: `${label}.importance`, size: imp ? (imp.weights.length + chunkRows) * 4 : 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST })
      : undefined;
    if (aux && imp) device.queue.writeBuffer(aux, 0, imp.weights as Float32Array<ArrayBuffer>);
    const sigma2 = new Float32Array(chunkRows);
    const bindGroup = device.createBindGroup({
      label: `${label}.bindgroup`,
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: src } },
        { binding: 1, resource: { buffer: dst } },
        { binding: 2, resource: { buffer: params } },
        ...(masks && aux ? [{ binding: 3, resource: { buffer: masks } }, { binding: 4, resource: { buffer: aux } }] : []),
      ],
    });
    const staging = new Uint8Array(inBytes);
    try {
      for (let first = 0, chunk = 0; first < run.nBlocks; first += chunkGroups * g, chunk++) {
        const blocks = Math.min(chunkGroups * g, run.nBlocks - first);
        const groups = Math.ceil(blocks / g);
        const used = groups * run.inPerGroup;
        const input = run.source(first, blocks);
        if (input.length === used && input.buffer instanceof ArrayBuffer) {
          device.queue.writeBuffer(src, 0, input as Uint8Array<ArrayBuffer>);
        } else {
          // A partial last group (or a shared buffer): pad with zeros to whole words.
          staging.set(input);
          staging.fill(0, input.length, used);
          device.queue.writeBuffer(src, 0, staging, 0, used);
        }
        if (aux && imp) {
          const row0 = Math.floor(first / imp.rowBlocks);
          const rows = Math.floor((first + blocks - 1) / imp.rowBlocks) - row0 + 1;
          for (let r = 0; r < rows; r++) sigma2[r] = imp.rowSigma2(row0 + r);
          device.queue.writeBuffer(aux, imp.weights.length * 4, sigma2, 0, rows);
        }
        const rowBlocks = imp?.rowBlocks ?? 0;
        device.queue.writeBuffer(params, 0, new Uint32Array([blocks, 0, rowBlocks, imp ? first % rowBlocks : 0]));
        const [x, y] = dispatchSize(Math.ceil(groups / wgSize), limits);
        const enc = device.createCommandEncoder({ label: `${label}.encoder.${chunk}` });
        const pass = enc.beginComputePass({ label: `${label}.pass.${chunk}` });
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(x, y);
        pass.end();
        const size = groups * run.outPerGroup;
        enc.copyBufferToBuffer(dst, 0, readback, 0, size);
        if (masks) enc.copyBufferToBuffer(masks, 0, readback, maskAt, groups * 4);
        submit(device, [enc.finish()]);
        await mapRead(device, readback, 0, maskAt + maskBytes);
        run.take(new Uint8Array(readback.getMappedRange(0, size)), first, blocks);
        if (masks) {
          const m = new Uint32Array(readback.getMappedRange(maskAt, groups * 4));
          for (let i = 0; i < groups; i++) {
            for (let b = 0; m[i] !== 0 && b < g; b++) if (m[i] & (1 << b)) run.toCpu?.(first + i * g + b);
          }
        }
        readback.unmap();
      }
    } finally {
      src.destroy();
      dst.destroy();
      readback.destroy();
      params.destroy();
      masks?.destroy();
      aux?.destroy();
    }
  });
}

/** What quantizeOnGpuDetailed (quantize.ts) did besides the bytes. */
export interface GpuQuantizeReport {
  /**
   * Blocks the GPU handed back and the CPU codec encoded (shaders/lib/bytes.wgsl's
   * block_to_cpu): K-quant blocks whose scale search reaches f32 subnormals, which the
   * device may flush. Empty for every other type.
   */
  readonly cpuBlocks: readonly number[];
}

/** C's sum(x^2) / n over x in float, in order (the legacy *_impl functions' sigma2). */
function meanSquareF32(x: Float32Array): number {
  const f = Math.fround;
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum = f(sum + f(x[i] * x[i]));
  return f(sum / x.length);
}

/**
 * Quantize rows of a block-sequence type (its shape checked here): the blocks, with those the
 * kernel left to the CPU encoded by the type's CPU codec. `weights`: importance weights the
 * codec takes (already checked by the caller), else undefined.
 */
export async function quantizeBlocks(
  gpu: GpuContext,
  t: QuantType,
  data: Float32Array,
  rowLength: number,
  weights: Float32Array | undefined,
): Promise<{ bytes: Uint8Array; report: GpuQuantizeReport }> {
  const nBlocks = checkShape(t, data.length, rowLength, 'quantizeOnGpu');
  const g = groupBlocks(t.typeSize);
  const input = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(nBlocks * t.typeSize);
  const valueBytes = t.blockSize * 4;
  const cpuBlocks: number[] = [];
  await runCodec(gpu, {
    kernel: 'quantize',
    type: t,
    nBlocks,
    inPerGroup: g * valueBytes,
    outPerGroup: g * t.typeSize,
    source: (first, blocks) => input.subarray(first * valueBytes, (first + blocks) * valueBytes),
    take: (chunk, first, blocks) => out.set(chunk.subarray(0, blocks * t.typeSize), first * t.typeSize),
    toCpu: (block) => cpuBlocks.push(block),
    importance: weights && {
      weights,
      rowBlocks: rowLength / t.blockSize,
      rowSigma2: (row) => meanSquareF32(data.subarray(row * rowLength, (row + 1) * rowLength)),
    },
  });
  // The CPU encodes the rows holding such blocks (importance weights make a block depend on
  // its row), and their bytes replace the GPU's.
  const blocksPerRow = rowLength / t.blockSize;
  let encodedRow = -1;
  let rowBytes: Uint8Array = new Uint8Array(0);
  for (const b of cpuBlocks) {
    const row = Math.floor(b / blocksPerRow);
    if (row !== encodedRow) {
      rowBytes = t.codec.encode(data.subarray(row * rowLength, (row + 1) * rowLength), rowLength, weights);
      encodedRow = row;
    }
    const at = (b % blocksPerRow) * t.typeSize;
    out.set(rowBytes.subarray(at, at + t.typeSize), b * t.typeSize);
  }
  return { bytes: out, report: { cpuBlocks } };
}

/** Dequantize `rows` rows of a block-sequence type (its shape and byte count checked here). */
export async function dequantizeBlocks(gpu: GpuContext, t: QuantType, bytes: Uint8Array, rows: number, rowLength: number): Promise<Float32Array> {
  const nBlocks = checkShape(t, rows * rowLength, rowLength, 'dequantizeOnGpu');
  if (bytes.length !== nBlocks * t.typeSize) {
    throw new RangeError(`dequantizeOnGpu ${t.id}: ${bytes.length} bytes, expected ${nBlocks * t.typeSize} for ${rows} x ${rowLength}`);
  }
  const g = groupBlocks(t.typeSize);
  const out = new Float32Array(rows * rowLength);
  const outBytes = new Uint8Array(out.buffer);
  const valueBytes = t.blockSize * 4;
  await runCodec(gpu, {
    kernel: 'dequantize',
    type: t,
    nBlocks,
    inPerGroup: g * t.typeSize,
    outPerGroup: g * valueBytes,
    source: (first, blocks) => bytes.subarray(first * t.typeSize, (first + blocks) * t.typeSize),
    take: (chunk, first, blocks) => outBytes.set(chunk.subarray(0, blocks * valueBytes), first * valueBytes),
  });
  return out;
}

