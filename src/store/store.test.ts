// The store's job slices, with the engine stubbed: the selection keeps what the comparison it
// starts depends on, a comparison is not run twice for one request (a tab shown again keeps
// its result), progress that arrives after a job settled is dropped, and a new model drops
// the old model's results.
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { CompareResult, ModelSummary, Progress } from '../engine/types.ts';

const engine = vi.hoisted(() => ({
  compare: vi.fn(),
  evalModel: vi.fn(),
  budgetScan: vi.fn(),
  budgetPlan: vi.fn(),
  cancel: vi.fn(),
}));
vi.mock('../engine/client.ts', () => ({ engine, onEngineEvent: () => () => {} }));

const { useApp } = await import('./store.ts');

const A = 'blk.0.attn_q.weight';
const B = 'blk.1.ffn_up.weight';
const result = { tensor: A } as CompareResult;
const model = { tensors: [{ name: A, shape: [64, 64] }, { name: B, shape: [64, 64] }] } as ModelSummary;

/** A promise with its resolve, to settle an engine call when the test says. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

beforeEach(() => {
  vi.clearAllMocks();
  useApp.getState().setModel(model);
});

describe('selectTensor', () => {
  beforeEach(() => {
    const s = useApp.getState();
    useApp.setState({ tensor: A, compare: { ...s.compare, status: 'error', result, error: 'an old error' } });
  });

  it('the selected tensor again: its results and error stay', () => {
    useApp.getState().selectTensor(A);
    expect(useApp.getState().tensor).toBe(A);
    expect(useApp.getState().compare).toMatchObject({ result, error: 'an old error' });
  });

  it('another tensor: selected, the old results and error cleared', () => {
    useApp.getState().selectTensor(B);
    expect(useApp.getState().tensor).toBe(B);
    expect(useApp.getState().compare).toMatchObject({ status: 'idle', result: null, error: null, progress: null });
  });
});

describe('compare job', () => {
  it('runs once per request: asked again (the tab shown again) it keeps its result', async () => {
    engine.compare.mockResolvedValue(result);
    const request = { tensor: A, types: ['q8_0'], blockIndex: 0 };
    useApp.getState().ensureCompare(request);
    useApp.getState().ensureCompare(request);
    await vi.waitFor(() => expect(useApp.getState().compare.status).toBe('done'));
    useApp.getState().ensureCompare(request);
    expect(engine.compare).toHaveBeenCalledTimes(1);
    expect(useApp.getState().compare).toMatchObject({ status: 'done', result, progress: null, error: null });
    // Another request runs.
    useApp.getState().ensureCompare({ ...request, types: ['q4_0'] });
    expect(engine.compare).toHaveBeenCalledTimes(2);
  });

  it('progress after the result is dropped; a result for a tensor no longer selected is dropped', async () => {
    const first = deferred<CompareResult>();
    let report!: (p: Progress) => void;
    engine.compare.mockImplementation((_r, onProgress) => ((report = onProgress), first.promise));
    useApp.getState().ensureCompare({ tensor: A, types: ['q8_0'] });
    report({ done: 1, total: 2, label: 'q8_0' });
    expect(useApp.getState().compare.progress).toEqual({ done: 1, total: 2, label: 'q8_0' });
    first.resolve(result);
    await vi.waitFor(() => expect(useApp.getState().compare.status).toBe('done'));
    report({ done: 2, total: 2, label: 'late' });
    expect(useApp.getState().compare.progress).toBeNull();

    const second = deferred<CompareResult>();
    engine.compare.mockImplementation(() => second.promise);
    useApp.getState().ensureCompare({ tensor: A, types: ['q4_0'] });
    useApp.getState().selectTensor(B);
    second.resolve({ tensor: A } as CompareResult);
    await second.promise;
    await Promise.resolve();
    expect(useApp.getState().compare).toMatchObject({ status: 'idle', result: null });
  });

  it('an error is kept with its request; the same request runs again', async () => {
    engine.compare.mockRejectedValueOnce(new Error('cancelled'));
    const request = { tensor: A, types: ['q8_0'] };
    useApp.getState().ensureCompare(request);
    await vi.waitFor(() => expect(useApp.getState().compare.status).toBe('error'));
    expect(useApp.getState().compare.error).toBe('cancelled');
    engine.compare.mockResolvedValueOnce(result);
    useApp.getState().ensureCompare(request);
    await vi.waitFor(() => expect(useApp.getState().compare.status).toBe('done'));
    expect(useApp.getState().compare).toMatchObject({ result, error: null });
  });
});

describe('jobs and the model', () => {
  it('a new model drops every result, and a job of the old model that ends later writes nothing', async () => {
    const late = deferred<unknown>();
    engine.evalModel.mockImplementation(() => late.promise);
    const running = useApp.getState().evaluate();
    expect(useApp.getState().modelOutput.status).toBe('running');
    useApp.getState().setModel({ ...model });
    expect(useApp.getState().modelOutput).toMatchObject({ status: 'idle', result: null, progress: null });
    late.resolve({ results: [] });
    await running;
    expect(useApp.getState().modelOutput).toMatchObject({ status: 'idle', result: null });
    // The presets the user picked are settings, not results: they stay.
    expect(useApp.getState().modelOutput.presets).toEqual(['Q8_0', 'Q4_K_M', 'Q2_K']);
  });

  it('a budget plan that fails keeps the scan and drops the plan; the scan sets the target once', async () => {
    const scan = { presets: [{ preset: 'Q4_K_M', bytes: 123 }], smallestBytes: 50, kind: 'kl' };
    engine.budgetScan.mockResolvedValue(scan);
    await useApp.getState().scanBudget();
    expect(useApp.getState().budget).toMatchObject({ status: 'done', value: '123', result: { scan, plan: null } });
    engine.budgetPlan.mockResolvedValueOnce({ plan: 'p' });
    await useApp.getState().planBudget({ bytes: 123 });
    expect(useApp.getState().budget.result).toEqual({ scan, plan: { plan: 'p' } });
    engine.budgetPlan.mockRejectedValueOnce(new Error('a 1000-byte file is below the smallest possible, 50 bytes'));
    await useApp.getState().planBudget({ bytes: 1000 });
    expect(useApp.getState().budget).toMatchObject({ status: 'error', error: /below the smallest/, result: { scan, plan: null } });
  });
});
