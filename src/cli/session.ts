// The CLI's session (engine/session.ts), in which its commands run the engine's jobs
// (engine/jobs/*.ts) as the page's worker does: on the CPU, or with --backend webgpu on
// Dawn's GPU (loaded only then), with the session's CPU fallback if the device is lost.
import { Session } from '../engine/session.ts';
import type { BackendChoice } from './command.ts';

/** A session on the chosen backend; --backend webgpu fails here if there is no GPU. */
export async function openSession(backend: BackendChoice): Promise<Session> {
  const session = new Session(backend === 'webgpu' ? async () => (await import('../gpu/node-gpu.ts')).createNodeGpu() : null);
  const status = await session.status();
  if (backend === 'webgpu' && status.backend !== 'webgpu') throw new Error(`--backend webgpu: ${status.detail}`);
  return session;
}
