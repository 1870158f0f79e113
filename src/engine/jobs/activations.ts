// The activation statistics and SmoothQuant jobs (calibrate/smoothquant.ts): every blk.*
// linear's per-channel max |x|, per-token range and its weights' per-channel max over the
// calibration text (`quantlab calibrate --activation-stats`, the Activations view); the
// W8A8 KL sweep of SmoothQuant's α (`quantlab calibrate --smoothquant-sweep`); and the
// smoothed model's export source (`quantlab quantize --smoothquant ALPHA`). All on the CPU.
import type { CalibrationProgress } from '../../calibrate/activations.ts';
import type { ActivationStats, SmoothGroup, SmoothQuantSweep, StatsOptions, SweepOptions } from '../../calibrate/smoothquant.ts';
import type { ExportSource } from '../../export/source.ts';
import type { PrecomputedTensors } from '../../export/plan.ts';
import { BUILTIN_CALIBRATION_DATASET } from '../../calibrate/calibration-text.ts';
import type { Session } from '../session.ts';
import type { JobContext } from './job.ts';
import { calibrationModel } from './calibrate.ts';

export type ActivationStatsRequest = Omit<StatsOptions, 'signal' | 'onProgress'>;
export type SmoothQuantSweepRequest = Omit<SweepOptions, 'signal' | 'onProgress'>;

export async function activationStatsJob(session: Session, request: ActivationStatsRequest, ctx: JobContext<CalibrationProgress>): Promise<ActivationStats> {
  const [{ activationStats }, cm] = await Promise.all([import('../../calibrate/smoothquant.ts'), calibrationModel(session)]);
  return activationStats(cm, { ...request, signal: ctx.signal, onProgress: ctx.onProgress });
}

export async function smoothQuantSweepJob(session: Session, request: SmoothQuantSweepRequest, ctx: JobContext<CalibrationProgress>): Promise<SmoothQuantSweep> {
  const [{ smoothQuantSweep }, cm] = await Promise.all([import('../../calibrate/smoothquant.ts'), calibrationModel(session)]);
  return smoothQuantSweep(session.loadedModel(), cm, { ...request, signal: ctx.signal, onProgress: ctx.onProgress });
}

export interface SmoothQuantModel {
  source: ExportSource;
  /** No tensors: the quantize.smoothquant.* header keys. */
  precomputed: PrecomputedTensors;
  alpha: number;
  groups: SmoothGroup[];
  stats: ActivationStats;
}

/** The loaded model smoothed at α (1/s in the norms, s in the linears' columns): the source an export then quantizes as usual. */
export async function smoothQuantModelJob(
  session: Session,
  request: ActivationStatsRequest & { alpha: number; source: ExportSource; dataset?: string },
  ctx: JobContext<CalibrationProgress>,
): Promise<SmoothQuantModel> {
  const { alpha, source, dataset, ...options } = request;
  const [sq, cm] = await Promise.all([import('../../calibrate/smoothquant.ts'), calibrationModel(session)]);
  sq.checkAlpha(alpha);
  const stats = await sq.activationStats(cm, { ...options, signal: ctx.signal, onProgress: ctx.onProgress });
  const groups = sq.smoothGroups(cm, stats, alpha);
  const precomputed = sq.smoothQuantHeader(alpha, dataset ?? BUILTIN_CALIBRATION_DATASET, groups, stats);
  return { source: await sq.smoothQuantSource(source, groups), precomputed, alpha, groups, stats };
}
