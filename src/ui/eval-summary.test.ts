// The Model output tab's line saying where the eval ran (whereItRan): the resident forward
// pass, the per-product path, or the CPU — read from the eval's own ForwardNote and counts.
import { describe, expect, it } from 'vitest';
import { whereItRan } from './eval-summary.ts';

const note = (resident: string[], perProduct: Record<string, string> = {}) => ({ mode: resident.length && !Object.keys(perProduct).length ? ('resident' as const) : ('products' as const), resident, perProduct });

describe('whereItRan', () => {
  it('every model resident: the whole forward pass, no product count (none ran alone)', () => {
    expect(whereItRan({ forward: note(['F32', 'Q4_K_M']), products: { gpu: 0, cpu: 0 } })).toBe('The whole forward pass on WebGPU for every model.');
  });
  it('some models per product: both, with the products on each side', () => {
    expect(whereItRan({ forward: note(['F32'], { IQ2_XXS: 'no WGSL matmul' }), products: { gpu: 36, cpu: 7 } })).toBe(
      'The whole forward pass on WebGPU for 1 of 2 models. 36 matrix products on WebGPU, 7 on the CPU (no GPU matmul for their type).',
    );
  });
  it('per product only, and the CPU', () => {
    expect(whereItRan({ forward: note([], { F32: 'ggml' }), products: { gpu: 72, cpu: 0 } })).toBe('72 matrix products on WebGPU.');
    expect(whereItRan({ forward: note([], { F32: 'no GPU' }), products: null })).toBe('Computed on the CPU.');
  });
});
