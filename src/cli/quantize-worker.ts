// A worker thread of the quantize pool (quantize-pool.ts): quantizes the row ranges it is
// sent with the CPU reference codecs and sends the bytes (and error sums) back.
import { parentPort } from 'node:worker_threads';
import { quantizeRows, type QuantizeJob } from '../quant/quantize-rows.ts';
import { loadBuiltFastCodecs } from '../quant/fast/node.ts';

// The parent process built the module (cli/main.ts); this thread only instantiates it.
loadBuiltFastCodecs();

export interface WorkerRequest {
  readonly id: number;
  readonly job: QuantizeJob;
}

export type WorkerReply =
  | { readonly id: number; readonly bytes: Uint8Array; readonly sums: ReturnType<typeof quantizeRows>['sums'] }
  | { readonly id: number; readonly error: string };

parentPort!.on('message', ({ id, job }: WorkerRequest) => {
  try {
    const { bytes, sums } = quantizeRows(job);
    parentPort!.postMessage({ id, bytes, sums } satisfies WorkerReply, [bytes.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ id, error: e instanceof Error ? e.message : String(e) } satisfies WorkerReply);
  }
});
