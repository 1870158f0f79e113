import { useRef, useState } from 'react';
import { engine } from '../engine/client.ts';
import type { OverrideSpec, PlanSummary } from '../quant/plan.ts';
import type { Progress } from '../engine/types.ts';
import type { PlanMode } from '../quant/presets.ts';
import { formatBytes } from './format.ts';
import { ImatrixControl } from './ImatrixControl.tsx';
import { ProgressLine } from './Status.tsx';
import { useApp } from '../store/store.ts';

/** Where the export's bytes go: a file on disk (File System Access API) or a download. */
interface Sink {
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<void>;
  abort(): Promise<void>;
}

type SaveFilePicker = (options: { suggestedName: string }) => Promise<{ createWritable(): Promise<FileSystemWritableFileStream> }>;

/** Tests supply their own picker through window.__quantlabTest (e2e/), to exercise this path headless. */
function savePicker(): SaveFilePicker | undefined {
  const w = window as unknown as { showSaveFilePicker?: SaveFilePicker; __quantlabTest?: { showSaveFilePicker?: SaveFilePicker } };
  return w.__quantlabTest?.showSaveFilePicker ?? w.showSaveFilePicker;
}

async function fileSink(name: string): Promise<Sink | null> {
  const pick = savePicker();
  if (!pick) return null;
  const writable = await (await pick({ suggestedName: name })).createWritable();
  return {
    write: (chunk) => writable.write(chunk as Uint8Array<ArrayBuffer>),
    close: () => writable.close(),
    abort: () => writable.abort(),
  };
}

/** Fallback without the File System Access API: the chunks become a Blob, then a download. */
export function downloadSink(name: string): Sink {
  const parts: BlobPart[] = [];
  return {
    write: async (chunk) => void parts.push(chunk as Uint8Array<ArrayBuffer>),
    close: async () => {
      const url = URL.createObjectURL(new Blob(parts, { type: 'application/octet-stream' }));
      const a = document.createElement('a');
      a.href = url;
      a.download = name;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    },
    abort: async () => void (parts.length = 0),
  };
}

function eta(p: Progress, startedAt: number): string {
  if (p.done <= 0) return '';
  const s = ((performance.now() - startedAt) / 1000) * ((p.total - p.done) / p.done);
  return s < 1 ? '' : ` · about ${s < 90 ? `${Math.round(s)} s` : `${Math.round(s / 60)} min`} left`;
}

export function ExportPanel({ mode, overrides, plan, name }: { mode: PlanMode; overrides: OverrideSpec[]; plan: PlanSummary; name?: string }) {
  const imatrix = useApp((s) => s.imatrix);
  const [progress, setProgress] = useState<Progress | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const started = useRef(0);
  const label = 'preset' in mode ? mode.preset : mode.type;
  const fileName = name ?? `model-${label}.gguf`;

  const run = async (toFile: boolean) => {
    setMessage(null);
    const sink = toFile ? await fileSink(fileName).catch(() => null) : downloadSink(fileName);
    if (!sink) return;
    started.current = performance.now();
    setProgress({ done: 0, total: plan.totalBytes, label: 'Starting…' });
    try {
      const written = await engine.exportGguf(mode, overrides, (chunk) => sink.write(chunk), (p) => setProgress(p), { imatrix: imatrix?.file });
      await sink.close();
      setMessage(`Wrote ${fileName}: ${formatBytes(written)}.`);
    } catch (e) {
      await sink.abort();
      setMessage(`Export stopped: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      setProgress(null);
    }
  };

  return (
    <>
      <ImatrixControl />
      <div className="export row" aria-label="Export">
        <button type="button" className="primary" onClick={() => run(false)} disabled={progress !== null}>
          Download GGUF
        </button>
        {savePicker() && (
          <button type="button" onClick={() => run(true)} disabled={progress !== null}>
            Save GGUF to disk…
          </button>
        )}
        <ProgressLine
          progress={progress && { ...progress, label: progress.label + eta(progress, started.current) }}
          onCancel={() => engine.cancel()}
          label="Export progress"
        />
        {message && <span role="status">{message}</span>}
      </div>
    </>
  );
}
