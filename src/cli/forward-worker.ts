// A worker of the CLI's forward pool (forward-pool.ts): holds views of the weights the
// parent shares (SharedArrayBuffers: f32 tensors, or a preset's packed blocks) and computes
// rows [r0, r1) of a product with the WebAssembly SIMD kernel (model/fast-linear.ts), the
// same numbers the parent's own thread would give.
import { parentPort } from 'node:worker_threads';
import { f32Rows, matmulRows, packedRows, type Accumulate, type RowSource } from '../model/fast-linear.ts';
import { loadBuiltFastCodecs } from '../quant/fast/node.ts';
import { quantType } from '../quant/types.ts';

export type ForwardRequest =
  | { kind: 'tensor'; id: number; type: string; buffer: SharedArrayBuffer; byteOffset: number; length: number; rows: number; cols: number }
  | { kind: 'product'; job: number; id: number; x: Float32Array; n: number; r0: number; r1: number; cols: number; accumulate: Accumulate };

export type ForwardReply = { job: number; y: Float32Array } | { job: number; error: string };

const port = parentPort;
if (!port) throw new Error('forward-worker.ts runs as a worker thread');
// The parent built the module already (forward-pool.ts loads it first).
loadBuiltFastCodecs();
const tensors = new Map<number, RowSource>();

port.on('message', (m: ForwardRequest) => {
  if (m.kind === 'tensor') {
    if (m.type === 'f32') tensors.set(m.id, f32Rows(new Float32Array(m.buffer, m.byteOffset, m.length), m.cols));
    else {
      const type = quantType(m.type);
      if (!type) throw new Error(`forward worker: unknown type ${m.type}`);
      tensors.set(m.id, packedRows({ type, bytes: new Uint8Array(m.buffer, m.byteOffset, m.length), rows: m.rows, cols: m.cols }));
    }
    return;
  }
  try {
    const rows = tensors.get(m.id);
    if (!rows) throw new Error(`forward worker: tensor ${m.id} was never shared`);
    const y = matmulRows(rows, m.r0, m.r1, m.cols, m.x, m.n, m.accumulate);
    port.postMessage({ job: m.job, y } satisfies ForwardReply, [y.buffer as ArrayBuffer]);
  } catch (e) {
    port.postMessage({ job: m.job, error: e instanceof Error ? e.message : String(e) } satisfies ForwardReply);
  }
});
