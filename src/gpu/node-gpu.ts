// Node only (tests, CLI): WebGPU through Dawn, the npm `webgpu` package. The browser
// bundle must never import this file (it pulls in a native addon and node:fs).
//
// Dawn needs a Vulkan driver; on GPU-less machines that is Chromium's SwiftShader:
// VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json (docs/webgpu.md). The
// Vulkan loader reads it when Dawn creates its instance, so it must be set before
// createNodeGpu() (the test setup and scripts/test-all.sh do).
import { create, globals } from 'webgpu';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createGpu, WebGpuUnavailableError, type CreateGpuOptions, type GpuContext } from './device.ts';
import { hasShaderSources, registerShaderSources } from './shaders.ts';
import { SWIFTSHADER_ICD } from './swiftshader.ts';

const SHADER_ROOT = fileURLToPath(new URL('../../shaders/', import.meta.url));

/** Every .wgsl file under shaders/, keyed 'lib/f16.wgsl'. */
export function readShaderFiles(root = SHADER_ROOT): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.wgsl')) out[relative(root, p).split(sep).join('/')] = readFileSync(p, 'utf8');
    }
  };
  walk(root);
  return out;
}

let gpuEntry: GPU | undefined;

/** Dawn's GPU object, created once per process (Dawn's globals installed on first use). */
export function nodeGpuEntry(): GPU {
  if (!gpuEntry) {
    Object.assign(globalThis, globals);
    gpuEntry = create([]);
  }
  return gpuEntry;
}

/** Chromium's SwiftShader Vulkan driver, the software GPU of GPU-less Debian machines. */

/**
 * createGpu() on Dawn, with the WGSL read from disk when Vite's glob is not there (tsx).
 * With no hardware adapter and no VK_ICD_FILENAMES chosen, it tries SwiftShader once
 * (the adapter then says 'swiftshader (fallback)', so nobody mistakes it for a GPU).
 */
export async function createNodeGpu(options: Omit<CreateGpuOptions, 'gpu'> = {}): Promise<GpuContext> {
  if (!hasShaderSources()) registerShaderSources(readShaderFiles());
  try {
    return await createGpu({ ...options, gpu: nodeGpuEntry() });
  } catch (error) {
    if (!(error instanceof WebGpuUnavailableError) || process.env.VK_ICD_FILENAMES || !existsSync(SWIFTSHADER_ICD)) throw error;
    // The Vulkan loader reads VK_ICD_FILENAMES when Dawn makes an instance: make a new one.
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    gpuEntry = create([]);
    return createGpu({ ...options, gpu: gpuEntry });
  }
}
