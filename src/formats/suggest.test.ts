import { describe, expect, it } from 'vitest';
import { didYouMean, editDistance, nearestNames } from './suggest.ts';

describe('nearest names', () => {
  it('counts insertions, deletions, substitutions and neighbour swaps as one edit', () => {
    expect(editDistance('weight', 'weigth')).toBe(1);
    expect(editDistance('q4_k', 'q4_0')).toBe(1);
    expect(editDistance('abc', 'abcd')).toBe(1);
    expect(editDistance('abc', 'xyz')).toBe(3);
    expect(editDistance('', 'ab')).toBe(2);
  });

  it('finds a one-letter typo, closest first, case ignored; nothing for an unrelated word', () => {
    const names = ['blk.0.attn_q.weight', 'blk.0.attn_k.weight', 'blk.1.attn_q.weight', 'output.weight'];
    expect(nearestNames('blk.0.attn_q.weigth', names)).toEqual(['blk.0.attn_q.weight']);
    expect(nearestNames('BLK.0.ATTN_Q.WEIGHT', names)[0]).toBe('blk.0.attn_q.weight');
    expect(nearestNames('blk.0.attn_x.weight', names)).toEqual(['blk.0.attn_k.weight', 'blk.0.attn_q.weight']);
    expect(nearestNames('frobnicate', names)).toEqual([]);
  });

  it('says it in one phrase', () => {
    expect(didYouMean('Q4_K_N', ['Q4_K_M', 'Q4_K_S', 'Q8_0'])).toBe(" (did you mean 'Q4_K_M' or 'Q4_K_S'?)");
    expect(didYouMean('zzz', ['Q8_0'])).toBe('');
  });
});
