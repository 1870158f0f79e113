import { useApp } from '../store/store.ts';
import type { ExportSlot, Sink } from '../store/slices/export.ts';
import type { OverrideSpec, PlanMode, PlanSummary, Progress } from '../store/types.ts';
import { formatBytes } from './format.ts';
import { ImatrixControl } from './ImatrixControl.tsx';
import { ProgressLine } from './Status.tsx';

// Where the export's bytes go: a file on disk (File System Access API) or a download.

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

/** What an export's line says once it has ended. */
export function exportMessage(job: { status: string; fileName: string | null; result: number | null; error: string | null }): string | null {
  if (job.status === 'done' && job.result !== null) return `Wrote ${job.fileName}: ${formatBytes(job.result)}.`;
  if (job.status === 'error') return `Export stopped: ${job.error}`;
  return null;
}

/** An export's progress (with the time left) and a Cancel, subscribed to that export alone. */
export function ExportProgress({ slot, label }: { slot: ExportSlot; label: string }) {
  const progress = useApp((s) => s.exports[slot].progress);
  const startedAt = useApp((s) => s.exports[slot].startedAt);
  return (
    <ProgressLine progress={progress && { ...progress, label: progress.label + eta(progress, startedAt) }} onCancel={useApp.getState().cancelJob} label={label} />
  );
}

export function ExportPanel({ slot, mode, overrides, plan, name }: { slot: ExportSlot; mode: PlanMode; overrides: OverrideSpec[]; plan: PlanSummary; name?: string }) {
  const running = useApp((s) => s.exports[slot].status === 'running');
  const message = useApp((s) => exportMessage(s.exports[slot]));
  const label = 'preset' in mode ? mode.preset : mode.type;
  const fileName = name ?? `model-${label}.gguf`;

  const run = async (toFile: boolean) => {
    const sink = toFile ? await fileSink(fileName).catch(() => null) : downloadSink(fileName);
    if (!sink) return;
    await useApp.getState().startExport(slot, { mode, overrides, fileName, sink, total: plan.totalBytes, withImatrix: true });
  };

  return (
    <>
      <ImatrixControl />
      <div className="export row" aria-label="Export">
        <button type="button" className="primary" onClick={() => run(false)} disabled={running}>
          Download GGUF
        </button>
        {savePicker() && (
          <button type="button" onClick={() => run(true)} disabled={running}>
            Save GGUF to disk…
          </button>
        )}
        <ExportProgress slot={slot} label="Export progress" />
        {message && <span role="status">{message}</span>}
      </div>
    </>
  );
}
