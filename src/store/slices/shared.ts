// What every slice shares: the store's type for its creators, and the tickets that decide
// which run of a job may still write into its slice.
import type { StateCreator } from 'zustand';
import { Tickets, type Job } from '../job.ts';
import type { AppState } from '../store.ts';

export type Slice<T> = StateCreator<AppState, [], [], T>;
export type SetState = Parameters<Slice<unknown>>[0];
export type GetState = Parameters<Slice<unknown>>[1];

export const tickets = new Tickets();

/** The state keys that hold a job (status, progress, result, error). */
export type JobKey = { [K in keyof AppState]: AppState[K] extends Job<unknown> ? K : never }[keyof AppState];

/** Merges `patch` into the job at `key`, leaving the rest of the state as it is. */
export function patcher<K extends JobKey>(set: SetState, key: K) {
  return (patch: Partial<AppState[K]>) => set((s) => ({ [key]: { ...s[key], ...patch } }) as Partial<AppState>);
}

/** A patcher for a job that lives inside another object (an export slot). */
export function patcherOf<J>(set: SetState, read: (s: AppState) => J, write: (s: AppState, job: J) => Partial<AppState>) {
  return (patch: Partial<J>) => set((s) => write(s, { ...read(s), ...patch }));
}
