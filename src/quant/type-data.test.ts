// The type table's facts that code used to keep in lists of its own (issue 20): layout kind,
// activation-only, vec_dot types, GPTQ targets; and the codec registry covering the table.
import { describe, expect, it } from 'vitest';
import { gptqPresets, gptqTargetTypes } from './presets.ts';
import { TYPE_INFOS, typeInfo } from './type-data.ts';
import { QUANT_TYPES, quantType } from './types.ts';

/** Bytes of rows x rowLength values if a tensor is its blocks and nothing else. */
const blockBytes = (t: { blockSize: number; typeSize: number }, rows: number, rowLength: number) => (rows * rowLength * t.typeSize) / t.blockSize;

describe('the type table', () => {
  it.each(TYPE_INFOS.map((t) => t.id))("%s: layout 'blocks' exactly when its size is whole blocks", (id) => {
    const t = typeInfo(id)!;
    const shapes: [number, number][] = [[1, t.blockSize], [3, 2 * t.blockSize], [7, 5 * t.blockSize]];
    const plain = shapes.every(([rows, cols]) => t.bytesFor(rows, cols) === blockBytes(t, rows, cols));
    expect(t.layout === 'blocks').toBe(plain);
  });

  it('q8_K is the only activation-only type', () => {
    expect(TYPE_INFOS.filter((t) => t.activationOnly).map((t) => t.id)).toEqual(['q8_K']);
  });

  it("vec_dot types: the weight types llama.cpp's CPU backend rounds activations for", () => {
    const byVecDot: Record<string, string[]> = {};
    for (const t of TYPE_INFOS) if (t.vecDot) (byVecDot[t.vecDot] ??= []).push(t.id);
    expect(byVecDot).toEqual({
      f32: ['f32'],
      f16: ['f16'],
      bf16: ['bf16'],
      q8_0: ['q8_0', 'q5_1', 'q5_0', 'q4_1', 'q4_0', 'iq4_nl', 'mxfp4', 'nvfp4', 'q2_0', 'q1_0'],
      q8_K: ['q6_K', 'q5_K', 'q4_K', 'q3_K', 'q2_K', 'iq4_xs', 'iq3_s', 'iq3_xxs', 'iq2_s', 'iq2_xs', 'iq2_xxs', 'iq1_m', 'iq1_s', 'tq2_0', 'tq1_0'],
    });
    // A vec_dot type is itself a GGUF type of the table.
    for (const v of Object.keys(byVecDot)) expect(typeInfo(v)?.ggml, v).toBeDefined();
  });

  it('GPTQ targets: q4_0 and q4_K, written by the Q4_0, Q4_K_S and Q4_K_M presets', () => {
    expect(gptqTargetTypes()).toEqual(['q4_0', 'q4_K']);
    expect(gptqPresets()).toEqual(['Q4_0', 'Q4_K_S', 'Q4_K_M']);
  });

  it('GPU layouts only for the layouts that are not blocks', () => {
    expect(TYPE_INFOS.filter((t) => t.gpuLayout).map((t) => `${t.id}:${t.gpuLayout!.kind}`)).toEqual([
      'fp8_e4m3:bytes',
      'fp8_e5m2:bytes',
      'int8:bytes',
      'int8_outlier:bytes',
      'nf4_dq:double-quant',
      'fp4_dq:double-quant',
    ]);
  });
});

describe('the codec registry', () => {
  it('has a codec for every type of the table, and the same facts', () => {
    expect(QUANT_TYPES.map((t) => t.id)).toEqual(TYPE_INFOS.map((t) => t.id));
    for (const info of TYPE_INFOS) {
      const t = quantType(info.id)!;
      expect(typeof t.codec.encode, info.id).toBe('function');
      expect(t.reference, info.id).toBeDefined();
      const { codec: _codec, reference: _reference, ...data } = t;
      expect(data, info.id).toEqual(info);
    }
  });
});
