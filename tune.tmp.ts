import { createNodeGpu } from './src/gpu/node-gpu.ts';
import { matmulDispatch, matmulParams, matmulPipeline, matmulWeightBufferBytes, type MatmulConfig } from './src/gpu/matmul.ts';
import { quantType } from './src/quant/types.ts';
import { createGpuTimer } from './bench/timing.ts';
const gpu = await createNodeGpu();
const timer = createGpuTimer(gpu);
const { device } = gpu;
const [rows, cols] = [2048, 1024];
const ids = process.argv[2].split(',');
const configs = JSON.parse(process.argv[3]) as [number, number, boolean][];
for (const id of ids) {
  const t = quantType(id)!;
  const w = new Float32Array(rows*cols).map(() => Math.random()-0.5);
  const packed = t.codec.encode(w, cols);
  const rowBytes = cols / t.blockSize * t.typeSize;
  const wBuf = device.createBuffer({ size: matmulWeightBufferBytes(rowBytes, rows), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const padded = new Uint8Array(Math.ceil(packed.length/4)*4); padded.set(packed);
  device.queue.writeBuffer(wBuf, 0, padded);
  const xBuf = device.createBuffer({ size: cols*4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const yBuf = device.createBuffer({ size: rows*4, usage: GPUBufferUsage.STORAGE });
  const pBuf = device.createBuffer({ size: 32, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(pBuf, 0, matmulParams(t, rows, cols, 1));
  for (const [wg, r, sg] of configs) {
    const config: MatmulConfig = { wgSize: wg, rowsPerWg: r, tokensPerWg: 1, subgroups: sg };
    const pipeline = await matmulPipeline(device, t, config);
    const bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [wBuf, xBuf, yBuf, pBuf].map((b, i) => ({ binding: i, resource: { buffer: b } })) });
    const [dx, dy] = matmulDispatch(config, rows, 1);
    const s = await timer.time('x', (enc, reps) => { const p = enc.beginComputePass(); p.setPipeline(pipeline); p.setBindGroup(0, bg); for (let i = 0; i < reps; i++) p.dispatchWorkgroups(dx, dy); p.end(); }, { runs: 3 });
    console.log(id, wg, r, sg ? 'sg' : 'wg', (s*1000).toFixed(1) + ' ms', (rows*cols/s/1e6).toFixed(1) + ' Melem/s');
  }
}
gpu.destroy();
