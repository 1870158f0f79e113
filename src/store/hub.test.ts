// The store's Hub load (slices/model.ts loadHub), with the engine stubbed: a 401/403 asks for
// a token instead of adding a load error, other failures are load errors naming the
// reference, a cancel is neither, and transfer progress from an older load is dropped.
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { ModelSummary } from '../engine/types.ts';
import type { HubProgress } from '../hub/client.ts';

const engine = vi.hoisted(() => ({ loadHub: vi.fn(), cancelHubLoad: vi.fn(), compare: vi.fn(), cancel: vi.fn() }));
vi.mock('../engine/client.ts', () => ({ engine, onEngineEvent: () => () => {} }));

const { useApp } = await import('./store.ts');

const model = { tensors: [{ name: 'blk.0.attn_q.weight', shape: [64, 64] }] } as ModelSummary;
const named = (name: string, message: string) => Object.assign(new Error(message), { name });

beforeEach(() => {
  vi.clearAllMocks();
  engine.compare.mockReturnValue(new Promise(() => {}));
  useApp.setState({ model: null, loadErrors: [], hubTransfer: null, loading: null });
});

describe('loadHub', () => {
  it('loads the model, with bytes read against bytes needed while it loads and after', async () => {
    let transfer: ((p: HubProgress) => void) | undefined;
    engine.loadHub.mockImplementation(async (_request, onTransfer) => {
      transfer = onTransfer;
      onTransfer({ read: 100, needed: 400, file: 'hf://org/name/model.gguf' });
      expect(useApp.getState().loading).toEqual({ done: 100, total: 400, label: 'Reading hf://org/name/model.gguf from the Hub…' });
      return model;
    });
    expect(await useApp.getState().loadHub({ ref: 'org/name', endpoint: 'https://huggingface.co' })).toEqual({ outcome: 'loaded' });
    expect(engine.loadHub.mock.calls[0][0]).toEqual({ ref: 'org/name', endpoint: 'https://huggingface.co' });
    const s = useApp.getState();
    expect(s.model).toBe(model);
    expect(s.loading).toBeNull();
    expect(s.hubTransfer).toEqual({ read: 100, needed: 400, file: 'hf://org/name/model.gguf', model });
    transfer!({ read: 500, needed: 600, file: 'hf://org/name/model.gguf' });
    expect(useApp.getState().hubTransfer).toEqual({ read: 500, needed: 600, file: 'hf://org/name/model.gguf', model });
    expect(useApp.getState().loading).toBeNull();
  });

  it('asks for a token on a 401/403, adds no load error, and keeps the model loaded', async () => {
    useApp.getState().setModel(model);
    engine.loadHub.mockRejectedValue(named('HubAuthError', 'hf://org/gated/m.gguf: at byte 0: the Hub answered 401: ...'));
    expect(await useApp.getState().loadHub({ ref: 'org/gated' })).toEqual({ outcome: 'needs-token', message: 'hf://org/gated/m.gguf: at byte 0: the Hub answered 401: ...' });
    expect(useApp.getState().loadErrors).toEqual([]);
    expect(useApp.getState().model).toBe(model);
    expect(useApp.getState().loading).toBeNull();
  });

  it('adds other failures as load errors naming the reference; a cancel is not one', async () => {
    engine.loadHub.mockRejectedValueOnce(named('FormatError', 'hf://org/none: at byte 0: not found on the Hub (404)'));
    expect((await useApp.getState().loadHub({ ref: 'org/none' })).outcome).toBe('failed');
    expect(useApp.getState().loadErrors).toEqual([{ file: 'org/none', message: 'hf://org/none: at byte 0: not found on the Hub (404)' }]);
    engine.loadHub.mockRejectedValueOnce(named('CancelledError', 'cancelled'));
    expect((await useApp.getState().loadHub({ ref: 'org/name' })).outcome).toBe('cancelled');
    expect(useApp.getState().loadErrors).toHaveLength(1);
    useApp.getState().cancelHubLoad();
    expect(engine.cancelHubLoad).toHaveBeenCalledOnce();
  });

  it('drops transfer progress from an older load', async () => {
    let first: ((p: HubProgress) => void) | undefined;
    engine.loadHub.mockImplementationOnce(async (_r, onTransfer) => {
      first = onTransfer;
      return model;
    });
    await useApp.getState().loadHub({ ref: 'org/a' });
    engine.loadHub.mockImplementationOnce(async () => model);
    await useApp.getState().loadHub({ ref: 'org/b' });
    first!({ read: 1, needed: 2, file: 'hf://org/a/m.gguf' });
    expect(useApp.getState().hubTransfer).toBeNull();
  });
});
