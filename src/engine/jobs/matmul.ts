// The quantized-matmul check as a job: y = W x for one matrix of the loaded model packed in
// each type (matmul-job.ts), on the GPU's kernels while the device lives; a device lost
// mid-check reruns the whole check on the CPU, which then says so per type.
import { elementCount } from '../../formats/model.ts';
import type { GpuContext } from '../../gpu/device.ts';
import { throwIfCancelled } from '../cancelled.ts';
import { randomVector, runMatmulCheck, type MatmulRequest, type MatmulResult } from '../matmul-job.ts';
import type { Session } from '../session.ts';
import type { JobContext } from './job.ts';

export async function matmulJob(session: Session, request: MatmulRequest, ctx: JobContext): Promise<MatmulResult> {
  const tensor = session.tensor(request.tensor);
  if (tensor.shape.length !== 2) throw new Error(`${tensor.name} is not a matrix (shape ${tensor.shape.join(' x ')})`);
  const [rows, cols] = tensor.shape;
  const w = await session.readF32(tensor);
  let x: Float32Array, input: string;
  if (request.input.kind === 'random') {
    x = randomVector(cols, request.input.seed);
    input = `random normal x (seed ${request.input.seed})`;
  } else {
    const source = session.tensor(request.input.tensor);
    const n = source.shape[source.shape.length - 1];
    if (n !== cols) throw new Error(`rows of ${source.name} have ${n} values; ${tensor.name} needs ${cols}`);
    const row = Math.min(request.input.row, elementCount(source) / n - 1);
    x = await session.readF32(source, { elementOffset: row * n, elementCount: n });
    input = `row ${row} of ${source.name}`;
  }
  const check = (gpu: GpuContext | null) => {
    let done = 0;
    return runMatmulCheck(w, rows, cols, x, request.types, gpu, (type) => {
      throwIfCancelled(ctx.signal);
      ctx.onProgress?.({ done: ++done, total: request.types.length, label: `${type}: y = W x` });
    });
  };
  const { value: results } = await session.withFallback((gpu) => check(gpu), () => check(null));
  return { tensor: tensor.name, rows, cols, input, results };
}
