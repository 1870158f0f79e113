import { useCallback, useRef, useState, type DragEvent } from 'react';
import { HubForm } from './HubForm.tsx';

interface Props {
  onFiles: (files: File[]) => void;
  onSample: () => void;
  busy: boolean;
  compact: boolean;
}

/** Drag model files here, pick them, or try the built-in sample. Nothing is uploaded. */
export function DropZone({ onFiles, onSample, busy, compact }: Props) {
  const input = useRef<HTMLInputElement>(null);
  const [over, setOver] = useState(false);
  const onDrop = useCallback(
    (e: DragEvent) => {
      e.preventDefault();
      setOver(false);
      const files = [...e.dataTransfer.files];
      if (files.length) onFiles(files);
    },
    [onFiles],
  );
  return (
    <section
      className={`dropzone${over ? ' over' : ''}${compact ? ' compact' : ''}`}
      aria-label="Load a model"
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={onDrop}
    >
      {!compact && (
        <>
          <h2>Drop a model here</h2>
          <p className="muted">
            GGUF, or safetensors (one file, or shards with model.safetensors.index.json), with config.json and
            tokenizer.model alongside. Files are read in this page, on demand: nothing is uploaded.
          </p>
        </>
      )}
      <div className="row">
        <button type="button" onClick={() => input.current?.click()} disabled={busy}>
          {compact ? 'Open other files…' : 'Choose files…'}
        </button>
        <button type="button" className="primary" onClick={onSample} disabled={busy}>
          Try the sample (stories260K)
        </button>
      </div>
      <HubForm busy={busy} />
      <input
        ref={input}
        type="file"
        multiple
        hidden
        aria-label="Model files"
        accept=".gguf,.safetensors,.json,.model"
        onChange={(e) => {
          const files = [...(e.target.files ?? [])];
          e.target.value = '';
          if (files.length) onFiles(files);
        }}
      />
    </section>
  );
}
