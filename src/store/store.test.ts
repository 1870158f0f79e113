// The selection keeps what the comparison it starts depends on: picking another tensor clears
// the old results (a new comparison replaces them), picking the selected one again keeps them
// (nothing would recompute them: the Compare tab reruns only when the tensor changes).
import { beforeEach, describe, expect, it } from 'vitest';
import type { CompareResult } from '../engine/types.ts';
import { useApp } from './store.ts';

const result = { tensor: 'blk.0.attn_q.weight' } as CompareResult;

describe('selectTensor', () => {
  beforeEach(() => useApp.setState({ tensor: 'blk.0.attn_q.weight', compare: result, compareError: 'an old error' }));

  it('the selected tensor again: its results and error stay', () => {
    useApp.getState().selectTensor('blk.0.attn_q.weight');
    expect(useApp.getState()).toMatchObject({ tensor: 'blk.0.attn_q.weight', compare: result, compareError: 'an old error' });
  });

  it('another tensor: selected, the old results and error cleared', () => {
    useApp.getState().selectTensor('blk.1.ffn_up.weight');
    expect(useApp.getState()).toMatchObject({ tensor: 'blk.1.ffn_up.weight', compare: null, compareError: null });
  });
});
