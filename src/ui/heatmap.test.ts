// The heat map's data: a row per layer from the right linears, the weights' max over the
// linears that share an input, bins past MAX columns, the log colour scale's ends.
import { describe, expect, it } from 'vitest';
import type { ActivationStats } from '../store/slices/activations.ts';
import { heatmapOf, logColour, logPosition, rangeOf } from './heatmap.ts';

const linear = (name: string, act: number[], weight: number[], outliers: number[] = []) => ({
  name,
  layer: Number(name.split('.')[1]),
  cols: act.length,
  actMax: Float32Array.from(act),
  weightMax: Float32Array.from(weight),
  tokenMin: Float32Array.from([-1, -2]),
  tokenMax: Float32Array.from([3, 1]),
  outliers,
});

const stats: ActivationStats = {
  textTokens: 2,
  chunk: 16,
  chunks: 1,
  linears: [0, 1].flatMap((l) => [
    linear(`blk.${l}.attn_q.weight`, [1, 30, 1, 2], [0.1, 0.2, 0.3, 0.4], [1]),
    linear(`blk.${l}.attn_k.weight`, [1, 30, 1, 2], [0.5, 0.1, 0.1, 0.1], [1]),
    linear(`blk.${l}.attn_v.weight`, [1, 30, 1, 2], [0.1, 0.1, 0.1, 0.9], [1]),
    linear(`blk.${l}.attn_output.weight`, [2, 2, 2, 2], [1, 1, 1, 1]),
  ]),
};

describe('heatmapOf', () => {
  it('rows per layer; q/k/v share the activations, the weights are the max over the three', () => {
    const m = heatmapOf(stats, 'attn_q');
    expect(m.rows.map((r) => r.layer)).toEqual([0, 1]);
    expect(m.rows[0].act).toEqual([1, 30, 1, 2]);
    expect(m.rows[0].weight.map((v) => Math.fround(v))).toEqual([0.5, 0.2, 0.3, 0.9].map(Math.fround));
    expect(m.rows[0].outlier).toEqual([false, true, false, false]);
    expect([m.rows[0].tokenMin, m.rows[0].tokenMax]).toEqual([-2, 3]);
    expect(m.outliers).toEqual([[1], [1]]);
    expect(heatmapOf(stats, 'attn_output').rows[1].outlier).toEqual([false, false, false, false]);
    expect(heatmapOf(stats, 'ffn_down').rows).toEqual([]);
  });
  it('bins channels (max) past the column limit', () => {
    const m = heatmapOf(stats, 'attn_q', 2);
    expect([m.bin, m.columns]).toEqual([2, 2]);
    expect(m.rows[0].act).toEqual([30, 2]);
    expect(m.rows[0].outlier).toEqual([true, false]);
  });
});

describe('colour scale', () => {
  it('log position: min -> 0, max -> 1, the geometric middle -> 0.5', () => {
    expect(logPosition(1, 1, 100)).toBe(0);
    expect(logPosition(100, 1, 100)).toBe(1);
    expect(logPosition(10, 1, 100)).toBeCloseTo(0.5, 12);
    expect(logPosition(0, 1, 100)).toBe(0);
    expect(logColour(1, 1, 100)).toBe('rgb(68, 1, 84)');
    expect(logColour(100, 1, 100)).toBe('rgb(253, 231, 37)');
    expect(rangeOf(heatmapOf(stats, 'attn_q').rows, 'act')).toEqual({ min: 1, max: 30 });
  });
});
