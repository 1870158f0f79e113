// The engine in a Web Worker: the page stays responsive while tensors are read and
// quantized. Files (Blobs) are structured-cloned in; only summaries and results come out.
import { expose, transfer, type ProxyMarked } from 'comlink';
import { blobSource } from '../formats/bytes.ts';
import { createGpu } from '../gpu/device.ts';
import { Engine } from './engine.ts';
import type { OverrideSpec } from './plan.ts';
import type { PlanMode } from '../quant/presets.ts';
import type { MatmulRequest } from './matmul-job.ts';
import type { CompareRequest, Progress } from './types.ts';
import { installFastCodecs } from '../quant/fast/wasm-codecs.ts';
// Built from wasm/ by the Vite plugin (vite.config.ts) before Vite resolves this import.
import fastCodecsUrl from '../../wasm/build/quant.wasm?url';

const engine = new Engine(() => createGpu());

// The WebAssembly fast codecs (same bytes as the reference, faster); the reference codecs
// run until they are installed, or if they cannot be.
fetch(fastCodecsUrl)
  .then((response) => response.arrayBuffer())
  .then((bytes) => installFastCodecs(bytes))
  .catch((error) => console.warn('quantlab: fast codecs unavailable, using the reference codecs', error));

const api = {
  gpuStatus: () => engine.gpuStatus(),
  load: (files: File[]) => engine.load(files.map((f) => blobSource(f, f.name))),
  compare: (request: CompareRequest, onProgress?: ((p: Progress) => void) & ProxyMarked) => engine.compare(request, onProgress),
  plan: (mode: PlanMode, overrides: OverrideSpec[]) => engine.plan(mode, overrides),
  presetSizes: () => engine.presetSizes(),
  planErrors: (mode: PlanMode, overrides: OverrideSpec[], onProgress?: ((p: Progress) => void) & ProxyMarked) =>
    engine.planErrors(mode, overrides, onProgress),
  matmulCheck: (request: MatmulRequest, onProgress?: ((p: Progress) => void) & ProxyMarked) => engine.matmulCheck(request, onProgress),
  /** Streams the GGUF to `sink` on the page, chunk by chunk (each transferred, not copied). */
  exportGguf: (
    mode: PlanMode,
    overrides: OverrideSpec[],
    sink: ((chunk: Uint8Array) => Promise<void>) & ProxyMarked,
    onProgress?: ((p: Progress) => void) & ProxyMarked,
  ) =>
    engine.exportGguf(
      mode,
      overrides,
      (chunk) => sink(transfer(chunk, [chunk.buffer as ArrayBuffer])),
      onProgress && ((p) => onProgress({ done: p.done, total: p.total, label: p.label })),
    ),
  evalModel: (presets: string[], onProgress?: ((p: Progress) => void) & ProxyMarked) => engine.evalModel(presets, onProgress),
  cancel: () => engine.cancel(),
};

export type WorkerApi = typeof api;

expose(api);
