// @vitest-environment happy-dom
// The page mounted in a DOM with the engine stubbed, every component counting its renders:
// while a comparison runs, a progress tick re-renders the progress line and nothing else
// (not the app, not the tab, not the charts). A control shows the count would catch a
// component that reads the whole store: it re-renders on every tick.
import { act, createElement, type FunctionComponent } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CompareRequest, CompareResult, ModelSummary, Progress } from '../store/types.ts';

const renders = vi.hoisted(() => new Map<string, number>());
const engine = vi.hoisted(() => ({
  compare: vi.fn(),
  gpuStatus: vi.fn(async () => ({ backend: 'cpu', detail: 'test' })),
  cancel: vi.fn(),
}));
vi.mock('../engine/client.ts', () => ({ engine, onEngineEvent: () => () => {} }));

/** `module`'s components, each counting its renders under its name. */
async function counting(module: Promise<Record<string, unknown>>): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(await module)) {
    out[name] =
      typeof value === 'function' && /^[A-Z]/.test(name)
        ? (props: object) => {
            renders.set(name, (renders.get(name) ?? 0) + 1);
            return (value as FunctionComponent)(props);
          }
        : value;
  }
  return out;
}
vi.mock('./CompareTab.tsx', (original) => counting(original()));
vi.mock('./CompareView.tsx', () => ({
  CompareView: (props: { compare: CompareResult }) => {
    renders.set('CompareView', (renders.get('CompareView') ?? 0) + 1);
    return createElement('div', { 'data-testid': 'charts' }, props.compare.tensor);
  },
}));
vi.mock('./Status.tsx', (original) => counting(original()));
vi.mock('./TypeChips.tsx', (original) => counting(original()));
vi.mock('./TensorTable.tsx', (original) => counting(original()));
vi.mock('./ModelOverview.tsx', (original) => counting(original()));
vi.mock('./DropZone.tsx', (original) => counting(original()));
vi.mock('./EngineNotice.tsx', (original) => counting(original()));

const { App } = await import('./App.tsx');
const { CompareTab } = await import('./CompareTab.tsx');
const { useApp } = await import('../store/store.ts');

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const A = 'blk.0.attn_q.weight';
const model: ModelSummary = {
  format: 'gguf',
  version: 3,
  files: [{ name: 'm.gguf', size: 100 }],
  architecture: 'llama',
  forwardPassRefusal: null,
  metadata: {},
  tensors: [{ name: A, dtype: 'F32', shape: [64, 64], params: 4096, nbytes: 16384, file: 'm.gguf' }],
  parameterCount: 4096,
  totalBytes: 16384,
};

/** The comparisons the page asked for, each settled when the test says. */
const calls: { request: CompareRequest; report: (p: Progress) => void; resolve: (r: CompareResult) => void }[] = [];

let root: Root;
let container: HTMLElement;

beforeEach(() => {
  calls.length = 0;
  engine.compare.mockImplementation(
    (request: CompareRequest, report: (p: Progress) => void) => new Promise<CompareResult>((resolve) => calls.push({ request, report, resolve })),
  );
  useApp.getState().setTypes(['q8_0', 'q4_0']);
  useApp.getState().setModel(model);
  container = document.createElement('div');
  document.body.append(container);
  root = createRoot(container);
});

afterEach(() => {
  act(() => root.unmount());
  container.remove();
});

const count = (name: string) => renders.get(name) ?? 0;
const snapshot = (names: string[]) => Object.fromEntries(names.map((n) => [n, count(n)]));

/** Runs a comparison to its result, then starts another (one more type) and leaves it running. */
async function compareRunning() {
  await act(async () => {});
  expect(calls).toHaveLength(1);
  await act(async () => calls[0].resolve({ tensor: A, results: [] } as unknown as CompareResult));
  expect(container.querySelector('[data-testid="charts"]')?.textContent).toBe(A);
  await act(async () => useApp.getState().toggleType('q4_K'));
  expect(calls).toHaveLength(2);
  expect(calls[1].request.types).toEqual(['q8_0', 'q4_0', 'q4_K']);
}

async function tick(i: number) {
  await act(async () => calls[1].report({ done: i, total: 3, label: `step ${i}` }));
  expect(container.querySelector('progress')?.getAttribute('value')).toBe(String(i));
}

describe('a comparison in progress', () => {
  it('re-renders only the progress line on each tick', async () => {
    await act(async () => root.render(createElement(App)));
    await compareRunning();
    const others = ['CompareTab', 'CompareView', 'TypeChips', 'TensorTable', 'ModelOverview', 'DropZone', 'EngineNotice', 'ErrorAlert'];
    const before = snapshot([...others, 'ProgressLine']);
    // Every one of them rendered at least once: a count of 0 below is not a component never mounted.
    for (const name of others.filter((n) => n !== 'ErrorAlert')) expect(before[name], name).toBeGreaterThan(0);
    for (let i = 1; i <= 5; i++) await tick(i);
    const after = snapshot([...others, 'ProgressLine']);
    expect(after.ProgressLine - before.ProgressLine).toBe(5);
    for (const name of others) expect(after[name] - before[name], name).toBe(0);
    // The result then replaces the charts: the tab renders again, as it must.
    await act(async () => calls[1].resolve({ tensor: A, results: [] } as unknown as CompareResult));
    expect(count('CompareView')).toBeGreaterThan(after.CompareView);
    expect(container.querySelector('progress')).toBeNull();
  });

  it('control: a tab that reads the whole store re-renders on every tick (what the count above would catch)', async () => {
    function WholeStoreTab() {
      useApp(); // the whole store: every change re-renders
      renders.set('WholeStoreTab', count('WholeStoreTab') + 1);
      return createElement(CompareTab);
    }
    await act(async () => root.render(createElement(WholeStoreTab)));
    await compareRunning();
    const before = count('WholeStoreTab');
    for (let i = 1; i <= 5; i++) await tick(i);
    expect(count('WholeStoreTab') - before).toBe(5);
  });
});
