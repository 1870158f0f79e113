// Test helper: a WebGPU device in Node (Dawn). No adapter is a test failure, never a skip:
// the GPU path is what these tests are for.
import { createNodeGpu } from './node-gpu.ts';
import type { CreateGpuOptions, GpuContext } from './device.ts';
import { SWIFTSHADER_ICD } from './swiftshader.ts';

export { SWIFTSHADER_ICD };

/** A device for tests; VK_ICD_FILENAMES defaults to SwiftShader (scripts/test-all.sh sets it too). */
export async function createTestGpu(options: Omit<CreateGpuOptions, 'gpu'> = {}): Promise<GpuContext> {
  process.env.VK_ICD_FILENAMES ??= SWIFTSHADER_ICD;
  // Throws WebGpuUnavailableError when there is no adapter: the calling test fails.
  return createNodeGpu({ label: 'test', ...options });
}
