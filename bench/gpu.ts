// GPU side of the bench: quantize, dequantize and matvec kernels on resident buffers, next
// to a copyBufferToBuffer of the tensor's f32 bytes timed the same way on the same device
// (the memory bound). Throughput counts the bytes a kernel must move: read + written.
//   copy:       f32 read + f32 written (2 x 4 bytes per weight)
//   quantize:   f32 read + packed written
//   dequantize: packed read + f32 written
//   matvec:     packed W read + x read + y written
import type { GpuContext } from '../src/gpu/device.ts';
import { gpuMatmulSupportsType, matmulConfig, matmulDispatch, matmulParams, matmulPipeline, matmulWeightBufferBytes, MATMUL_PARAMS_BYTES, type MatmulOptions } from '../src/gpu/matmul.ts';
import { codecPipeline } from '../src/gpu/pipelines.ts';
import { dispatchSize, groupBlocks, gpuSupportsType, quantizeOnGpu } from '../src/gpu/quantize.ts';
import type { QuantType } from '../src/quant/types.ts';
import type { GpuTimer } from './timing.ts';

/** Workgroup size of the codec kernels, as src/gpu/quantize.ts dispatches them. */
const CODEC_WG_SIZE = 64;

export interface Rate {
  /** GB/s (1e9 bytes) of bytes moved. */
  gbs: number;
  /** This rate over the copy's, same device, same run. */
  ofCopy: number;
}

export interface GpuResult {
  copyGBs: number;
  quantize?: Rate;
  dequantize?: Rate;
  matvec?: Rate & { gflops: number; config: string };
  /** Why GPU columns are empty. */
  skipped?: string;
}

export async function benchGpu(gpu: GpuContext, timer: GpuTimer, type: QuantType, values: Float32Array, cols: number, options: MatmulOptions = {}): Promise<GpuResult> {
  const { device, limits } = gpu;
  const rows = values.length / cols;
  const f32Bytes = values.length * 4;
  const limit = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const buffers: GPUBuffer[] = [];
  const buffer = (label: string, size: number, usage: number) => {
    const b = device.createBuffer({ label: `bench.${type.id}.${label}`, size: Math.ceil(size / 4) * 4, usage });
    buffers.push(b);
    return b;
  };
  const S = GPUBufferUsage.STORAGE;
  try {
    const f32Buf = buffer('f32', f32Bytes, S | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
    device.queue.writeBuffer(f32Buf, 0, values as Float32Array<ArrayBuffer>);
    const copyDst = buffer('copy', f32Bytes, GPUBufferUsage.COPY_DST);
    const copySeconds = await timer.time(`${type.id}.copy`, (enc, reps) => {
      for (let i = 0; i < reps; i++) enc.copyBufferToBuffer(f32Buf, 0, copyDst, 0, f32Bytes);
    });
    const copyGBs = (2 * f32Bytes) / copySeconds / 1e9;
    if (!gpuSupportsType(type)) return { copyGBs, skipped: `no WGSL codec (shaders/codecs/${type.wgsl}.wgsl)` };
    if (f32Bytes > limit) return { copyGBs, skipped: `${f32Bytes} bytes exceed one binding (${limit}): use a smaller --size` };

    const rate = (bytes: number, seconds: number): Rate => {
      const gbs = bytes / seconds / 1e9;
      return { gbs, ofCopy: gbs / copyGBs };
    };
    const nBlocks = values.length / type.blockSize;
    const g = groupBlocks(type.typeSize);
    const groups = Math.ceil(nBlocks / g);
    const packedBytes = nBlocks * type.typeSize;
    const packedBuf = buffer('packed', groups * g * type.typeSize, S);
    const deqBuf = buffer('dequantized', groups * g * type.blockSize * 4, S);
    const codecParams = buffer('codec.params', 16, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    device.queue.writeBuffer(codecParams, 0, new Uint32Array([nBlocks, 0, 0, 0]));
    const [gx, gy] = dispatchSize(Math.ceil(groups / CODEC_WG_SIZE), limits);
    // The f32 source must be whole groups: pad when the tensor is not.
    const srcBuf = groups * g === nBlocks ? f32Buf : buffer('f32.padded', groups * g * type.blockSize * 4, S | GPUBufferUsage.COPY_DST);
    if (srcBuf !== f32Buf) device.queue.writeBuffer(srcBuf, 0, values as Float32Array<ArrayBuffer>);

    const codec = async (kernel: 'quantize' | 'dequantize', src: GPUBuffer, dst: GPUBuffer) => {
      const pipeline = await codecPipeline(device, kernel, type.wgsl, CODEC_WG_SIZE);
      const bindGroup = device.createBindGroup({
        label: `bench.${type.id}.${kernel}.bindgroup`,
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: src } },
          { binding: 1, resource: { buffer: dst } },
          { binding: 2, resource: { buffer: codecParams } },
        ],
      });
      return timer.time(`${type.id}.${kernel}`, (enc, reps) => {
        const pass = enc.beginComputePass({ label: `bench.${type.id}.${kernel}.pass` });
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        for (let i = 0; i < reps; i++) pass.dispatchWorkgroups(gx, gy);
        pass.end();
      });
    };
    const quantize = rate(f32Bytes + packedBytes, await codec('quantize', srcBuf, packedBuf));
    const dequantize = rate(packedBytes + f32Bytes, await codec('dequantize', packedBuf, deqBuf));
    if (!gpuMatmulSupportsType(type)) return { copyGBs, quantize, dequantize };

    // matvec: W resident in its packed bytes (quantized on the GPU), one token.
    const rowBytes = (cols / type.blockSize) * type.typeSize;
    const config = matmulConfig(gpu, type, cols, 1, options);
    const [mx, my] = matmulDispatch(config, rows, 1);
    if (mx > limits.maxComputeWorkgroupsPerDimension) return { copyGBs, quantize, dequantize };
    const packed = await quantizeOnGpu(gpu, type, values, cols);
    const wBuf = buffer('matvec.w', matmulWeightBufferBytes(rowBytes, rows), S | GPUBufferUsage.COPY_DST);
    const padded = new Uint8Array(Math.ceil(packed.length / 4) * 4);
    padded.set(packed);
    device.queue.writeBuffer(wBuf, 0, padded);
    const xBuf = buffer('matvec.x', cols * 4, S | GPUBufferUsage.COPY_DST);
    device.queue.writeBuffer(xBuf, 0, values as Float32Array<ArrayBuffer>, 0, cols);
    const yBuf = buffer('matvec.y', rows * 4, S);
    const mParams = buffer('matvec.params', MATMUL_PARAMS_BYTES, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    device.queue.writeBuffer(mParams, 0, matmulParams(type, rows, cols, 1));
    const pipeline = await matmulPipeline(device, type, config);
    const bindGroup = device.createBindGroup({
      label: `bench.${type.id}.matvec.bindgroup`,
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: wBuf } },
        { binding: 1, resource: { buffer: xBuf } },
        { binding: 2, resource: { buffer: yBuf } },
        { binding: 3, resource: { buffer: mParams } },
      ],
    });
    const seconds = await timer.time(`${type.id}.matvec`, (enc, reps) => {
      const pass = enc.beginComputePass({ label: `bench.${type.id}.matvec.pass` });
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      for (let i = 0; i < reps; i++) pass.dispatchWorkgroups(mx, my);
      pass.end();
    });
    const matvec = {
      ...rate(packedBytes + cols * 4 + rows * 4, seconds),
      gflops: (2 * rows * cols) / seconds / 1e9,
      config: `wg ${config.wgSize} x ${config.rowsPerWg} rows${config.subgroups ? ', subgroups' : ''}`,
    };
    return { copyGBs, quantize, dequantize, matvec };
  } finally {
    for (const b of buffers) b.destroy();
  }
}
