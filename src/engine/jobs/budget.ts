// The budget jobs (src/budget): the sensitivity scan (every quantizable tensor in every
// candidate type, its cost and damage: KL of that tensor alone where the forward pass runs
// the model), and the plan for a target size or bpw from a scan, with the presets beside
// it (predicted and measured), bits per layer and the plan as JSON.
import { type BudgetPlan, type BudgetTarget, planToJson, type PlanJson, smallestPlanBytes } from '../../budget/budget.ts';
import { type BudgetSession, openBudgetSession, planForTarget, planReport, type PlanReport, presetPoints, type SessionOptions } from '../../budget/session.ts';
import type { GpuContext } from '../../gpu/device.ts';
import type { Session } from '../session.ts';
import type { JobContext } from './job.ts';

export type BudgetScanRequest = Pick<SessionOptions, 'imatrix' | 'damage'>;

/**
 * The scan's forward passes on the session's GPU (the resident pass, one readback per
 * variant) where it is a hardware adapter; on the CPU otherwise, or once the GPU is lost. A
 * software adapter is slower than the CPU here (SwiftShader, stories260K, 16 positions: about
 * 1 s a variant against 0.16 s on the CPU reference, which also reuses the products before
 * the changed tensor; src/budget/sensitivity-gpu.test.ts).
 */
export async function budgetScanJob(session: Session, request: BudgetScanRequest, ctx: JobContext): Promise<BudgetSession> {
  const scan = (gpu?: GpuContext) => openBudgetSession(session.loadedModel(), { ...request, onProgress: ctx.onProgress, signal: ctx.signal, gpu });
  return (await session.withFallback((gpu) => scan(gpu.isFallbackAdapter ? undefined : gpu), () => scan())).value;
}

/** What the Budget tab shows of a scan: its kind, the smallest file and the presets' points. */
export function scanSummary(scan: BudgetSession) {
  return {
    kind: scan.kind,
    tensors: scan.budget.tensors.length,
    smallestBytes: smallestPlanBytes(scan.budget).fileBytes,
    presets: presetPoints(scan).map(({ types: _types, ...p }) => p),
  };
}

export interface BudgetPlanRequest {
  target: BudgetTarget;
  /** The model's name in the plan's JSON (its first file). */
  model: string;
}

/** The plan for the target after a scan, as JSON (quantlab plan -o), with its report. */
export async function budgetPlanJob(scan: BudgetSession, request: BudgetPlanRequest): Promise<{ plan: BudgetPlan; json: PlanJson; report: PlanReport }> {
  const plan = planForTarget(scan, request.target);
  const json = planToJson(request.model, plan, scan.kind, scan.imatrix?.fileArgument ?? null, scan.errors);
  return { plan, json, report: await planReport(scan, plan) };
}
