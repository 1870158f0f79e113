// Bytes read back per weight by a compare on WebGPU (docs/webgpu.md, "The compare chain"):
// the round trips the compare job made before the chain (quantize, read back, upload,
// dequantize, read back, error statistics; then the histogram pass on the kept values),
// replayed with the same GPU functions, against compareJob now (its "gpu" report).
//   npx tsx bench/compare-readback.ts FILE.gguf TENSOR [TYPES]
//   npx tsx bench/compare-readback.ts --synthetic ROWS COLS [TYPES]
// TYPES: comma-separated, default q8_0,q4_0,q4_K. Set VK_ICD_FILENAMES for SwiftShader.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { memorySource } from '../src/formats/bytes.ts';
import { GGML_TYPE } from '../src/formats/gguf/constants.ts';
import { planGguf, writeGguf } from '../src/formats/gguf/write.ts';
import { gpuCompute } from '../src/gpu/compute.ts';
import { gpuCounters, gpuCountersSince } from '../src/gpu/counters.ts';
import { createNodeGpu } from '../src/gpu/node-gpu.ts';
import { compareJob } from '../src/engine/jobs/compare.ts';
import { uncancelled } from '../src/engine/jobs/job.ts';
import { Session } from '../src/engine/session.ts';
import { sharedErrorRange } from '../src/quant/metrics.ts';
import { quantType } from '../src/quant/types.ts';

async function synthetic(rows: number, cols: number): Promise<Uint8Array> {
  const layout = planGguf({ metadata: [], tensors: [{ name: 'synthetic.weight', type: GGML_TYPE.F32, ne: [cols, rows] }] });
  let s = 1;
  const chunks: Uint8Array[] = [];
  const stream = writeGguf(layout, () => {
    const data = new Float32Array(rows * cols);
    for (let i = 0; i < data.length; i++) data[i] = (((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5) * 0.1;
    return new Uint8Array(data.buffer);
  });
  for await (const c of stream) chunks.push(c);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) out.set(c, (at += c.length) - c.length);
  return out;
}

const args = process.argv.slice(2);
const isSynthetic = args[0] === '--synthetic';
const [bytes, name, tensorName, typeList] = isSynthetic
  ? [await synthetic(Number(args[1]), Number(args[2])), 'synthetic.gguf', 'synthetic.weight', args[3]]
  : [new Uint8Array(await readFile(args[0])), basename(args[0]), args[1], args[2]];
const types = (typeList ?? 'q8_0,q4_0,q4_K').split(',').map((id) => quantType(id)!);
const gpu = await createNodeGpu();
const session = new Session(async () => gpu);
await session.load([memorySource(bytes, name)]);
await session.ready();
const tensor = session.tensor(tensorName);
const data = await session.readF32(tensor);
const rowLength = tensor.shape[tensor.shape.length - 1];
const c = gpuCompute(gpu);

// Before: the compare job's round trips (pass 1: quantize, dequantize, errors; pass 2: errors with the histogram).
const before = gpuCounters(gpu.device);
const maxErrors: number[] = [];
const kept = [];
for (const t of types) {
  const q = await c.quantize(t, data, rowLength);
  const deq = await c.dequantize(t, q, data.length / rowLength, rowLength);
  maxErrors.push((await c.errors(data, deq)).sums.maxAbsErr);
  kept.push(deq);
}
const [lo, hi] = sharedErrorRange(maxErrors);
for (const deq of kept) await c.errors(data, deq, { lo, hi, bins: 121 });
const old = gpuCountersSince(gpu.device, before);
const now = (await compareJob(session, { tensor: tensorName, types: types.map((t) => t.id) }, uncancelled())).gpu!;

const weights = data.length * types.length;
const line = (label: string, x: { submits: number; readbacks: number; bytesReadBack: number }) =>
  `${label.padEnd(28)} ${String(x.submits).padStart(6)} submits ${String(x.readbacks).padStart(6)} readbacks ${String(x.bytesReadBack).padStart(12)} bytes  ${(x.bytesReadBack / weights).toFixed(4)} bytes/weight`;
console.log(`${name} ${tensorName} [${tensor.shape.join(', ')}] = ${data.length} values, types ${types.map((t) => t.id).join(',')} (${gpu.description})`);
console.log(line('before (round trips)', old));
console.log(line('after (compare chain)', now));
gpu.destroy();
