import type { AppState } from '../store/store.ts';
import { useApp } from '../store/store.ts';
import type { Progress } from '../store/types.ts';
import { ProgressLine } from './Status.tsx';

/**
 * A job's progress line, subscribed to that progress alone: a progress tick re-renders this
 * line and nothing around it (the tab, its charts and tables read other parts of the job).
 */
export function JobProgress({ select, cancellable, label }: { select: (s: AppState) => Progress | null; cancellable?: boolean; label?: string }) {
  const progress = useApp(select);
  return <ProgressLine progress={progress} onCancel={cancellable ? useApp.getState().cancelJob : undefined} label={label} />;
}
