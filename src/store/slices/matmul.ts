// The Quantized matmul tab's job: y = W x with W packed in each GGUF type, on the kernels.
import { engine } from '../../engine/client.ts';
import type { MatmulRequest } from '../../engine/matmul-job.ts';
import { idleJob, runJob, type Job } from '../job.ts';
import type { MatmulResult } from '../types.ts';
import { patcher, tickets, type Slice } from './shared.ts';

export interface MatmulSlice {
  matmul: Job<MatmulResult>;
  runMatmul: (request: MatmulRequest) => Promise<void>;
}

export const MATMUL_SLOTS = ['matmul'];
export const matmulReset = (): Pick<MatmulSlice, 'matmul'> => ({ matmul: idleJob() });

export const matmulSlice: Slice<MatmulSlice> = (set) => ({
  ...matmulReset(),
  runMatmul: (request) =>
    runJob(tickets, 'matmul', {
      patch: patcher(set, 'matmul'),
      first: { done: 0, total: request.types.length, label: 'Quantizing W…' },
      keepResult: true,
      work: (onProgress) => engine.matmulCheck(request, onProgress),
    }),
});
