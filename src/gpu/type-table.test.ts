// The type table's GPU facts (quant/types.ts: gpuImportance, layout, gpuLayout) against the
// WGSL files they describe, so that the table, not the shader text, can drive the GPU code.
import { describe, expect, it } from 'vitest';
import { QUANT_TYPES, quantType } from '../quant/types.ts';
import { gpuSupportsImportance, gpuSupportsType } from './quantize.ts';
import { hasCodecShader, shaderSource } from './shaders.ts';

const WITH_SHADER = QUANT_TYPES.filter((t) => hasCodecShader(t.wgsl));

describe('the type table and the WGSL codecs', () => {
  it('has WGSL codecs to check', () => expect(WITH_SHADER.length).toBeGreaterThan(30));

  it.each(WITH_SHADER.map((t) => t.id))('%s: gpuImportance is whether its codec reads has_qw (lib/bytes.wgsl)', (id) => {
    const t = quantType(id)!;
    expect(t.gpuImportance).toBe(/\bhas_qw\b/.test(shaderSource(`codecs/${t.wgsl}.wgsl`)));
  });

  it('gpuImportance only on types whose quantizer takes importance weights', () => {
    expect(QUANT_TYPES.filter((t) => t.gpuImportance && !t.usesImportance).map((t) => t.id)).toEqual([]);
  });

  it('the GPU refuses importance weights only where it has no importance path (iq4_nl, iq4_xs)', () => {
    expect(WITH_SHADER.filter((t) => !gpuSupportsImportance(t)).map((t) => t.id)).toEqual(['iq4_nl', 'iq4_xs']);
  });

  it.each(WITH_SHADER.map((t) => t.id))('%s: a layout other than blocks has a GPU layout of that kind', (id) => {
    const t = quantType(id)!;
    if (t.layout === 'blocks') {
      expect(t.gpuLayout).toBeUndefined();
      return;
    }
    expect(t.gpuLayout?.kind).toBe(t.layout);
    const layout = t.gpuLayout!;
    if (layout.kind === 'bytes') expect(shaderSource(layout.lib).length).toBeGreaterThan(0);
    else expect(quantType(layout.base)?.layout).toBe('blocks');
    expect(gpuSupportsType(t)).toBe(true);
  });
});
