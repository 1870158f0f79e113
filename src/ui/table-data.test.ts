// The tabs' CSV builders: the store's numbers unrounded, one line per table row, columns as the table's.
import { describe, expect, it, vi } from 'vitest';
import { matmulTableData } from './MatmulTab.tsx';
import { evaluationTableData } from './ModelOutputTab.tsx';
import { planTableData } from './WholeModelTab.tsx';
import { toCsv } from './takeaway.ts';

// The tabs import the store, which starts the engine's worker: no worker in a test, and none needed.
vi.mock('../engine/client.ts', () => ({ engine: {}, onEngineEvent: () => () => {} }));

describe('table CSV builders', () => {
  it('the plan: full-precision relative error where measured, empty where not', () => {
    const rows = [
      { name: 'blk.0.attn_q.weight', shape: [64, 64], sourceType: 'f32', type: 'q8_0', bytes: 4352, reason: 'preset' },
      { name: 'output_norm.weight', shape: [64], sourceType: 'f32', type: 'f32', bytes: 256, reason: '1-D: kept' },
    ] as unknown as Parameters<typeof planTableData>[0];
    const measured = planTableData(rows, new Map([['blk.0.attn_q.weight', 0.0012345678912345]]));
    expect(measured.header).toEqual(['Tensor', 'Shape', 'From', 'To', 'Bytes', 'Rel. error', 'Rule']);
    expect(toCsv(measured)).toBe(
      'Tensor,Shape,From,To,Bytes,Rel. error,Rule\r\nblk.0.attn_q.weight,64x64,f32,q8_0,4352,0.0012345678912345,preset\r\noutput_norm.weight,64,f32,f32,256,,1-D: kept\r\n',
    );
    expect(planTableData(rows, null).header).not.toContain('Rel. error');
  });

  it('model output: F32 first with zero divergence, then each preset unrounded', () => {
    const result = {
      f32: { bytes: 1000, bpw: 32, ppl: 12.3456789 },
      results: [{ preset: 'Q8_0', bytes: 300, bpw: 8.5, ppl: 12.3500001, klMean: 1.23456789e-5, klMedian: 1e-6, klP99: 2e-4, top1Agree: 0.987654 }],
    } as unknown as Parameters<typeof evaluationTableData>[0];
    expect(evaluationTableData(result).rows).toEqual([
      ['F32', 1000, 32, 12.3456789, 0, 0, 0, 1],
      ['Q8_0', 300, 8.5, 12.3500001, 1.23456789e-5, 1e-6, 2e-4, 0.987654],
    ]);
  });

  it('matmul: a skipped type keeps its reason, a measured one every figure', () => {
    const result = {
      results: [
        { type: 'q4_0', bytes: 2304, error: { relError: 0.0712345, snrDb: 22.9, cosine: 0.99745 }, kernelRelError: 3.1e-8, ms: 0.25, gbps: 9.2, backend: 'webgpu', skipped: null },
        { type: 'iq2_xxs', bytes: 0, error: null, kernelRelError: null, ms: 0, gbps: 0, backend: 'cpu', skipped: 'needs an imatrix, as llama.cpp' },
      ],
    } as unknown as Parameters<typeof matmulTableData>[0];
    const csv = toCsv(matmulTableData(result)).split('\r\n');
    expect(csv[1]).toBe('q4_0,2304,0.0712345,22.9,0.99745,3.1e-8,0.25,9.2,webgpu');
    expect(csv[2]).toBe('iq2_xxs,,,,,,,,"needs an imatrix, as llama.cpp"');
  });
});
