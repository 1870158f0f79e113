import type { Progress } from '../store/types.ts';

/** A running job: its progress, its label, and a way to stop it where the job can be stopped. */
export function ProgressLine({ progress, onCancel, label }: { progress: Progress | null; onCancel?: () => void; label?: string }) {
  if (!progress) return null;
  return (
    <div className="progress" role="status" aria-label={label}>
      <progress value={progress.done} max={progress.total} /> {progress.label}
      {onCancel && (
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      )}
    </div>
  );
}

/** What went wrong, as the engine said it (file, byte offset and reason for a bad file). */
export function ErrorAlert({ message }: { message: string | null }) {
  return message ? (
    <div className="errors" role="alert">
      {message}
    </div>
  ) : null;
}
