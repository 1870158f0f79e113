// The Budget tab's job: a sensitivity scan of every tensor, then plans that fit a target
// size (or bits per weight) with the least damage. Both run in one slot: one progress line,
// one error, and a plan is only made on a scan.
import type { BudgetTarget } from '../../budget/budget.ts';
import { parseSize } from '../../budget/size.ts';
import { engine } from '../../engine/client.ts';
import { errorMessage, idleJob, runJob, type Job } from '../job.ts';
import { patcher, tickets, type Slice } from './shared.ts';

export type BudgetScan = Awaited<ReturnType<typeof engine.budgetScan>>;
export type BudgetPlan = Awaited<ReturnType<typeof engine.budgetPlan>>;

export interface BudgetResult {
  scan: BudgetScan;
  /** The last plan made on this scan; null before one, or after one failed. */
  plan: BudgetPlan | null;
}

export interface BudgetJob extends Job<BudgetResult> {
  /** The target as typed, and its unit. */
  value: string;
  unit: 'bytes' | 'bpw';
}

export interface BudgetSlice {
  budget: BudgetJob;
  setBudgetTarget: (t: Partial<Pick<BudgetJob, 'value' | 'unit'>>) => void;
  scanBudget: () => Promise<void>;
  planBudget: (target: BudgetTarget) => Promise<void>;
  /** Plans for the target as typed; one that is not a size (or a positive number of bits) is refused with why. */
  planBudgetTarget: () => Promise<void>;
}

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`'${value}' is not a positive number`);
  return n;
}

export const BUDGET_SLOTS = ['budget'];
export const budgetReset = (): Pick<BudgetSlice, 'budget'> => ({ budget: { ...idleJob<BudgetResult>(), value: '', unit: 'bytes' } });

export const budgetSlice: Slice<BudgetSlice> = (set, get) => {
  const patch = patcher(set, 'budget');
  const withoutPlan = () => {
    const r = get().budget.result;
    return r && { scan: r.scan, plan: null };
  };
  return {
    ...budgetReset(),
    setBudgetTarget: (t) => patch(t),
    scanBudget: () => {
      // The old scan stays until a new one is in (a failed or cancelled scan keeps it); its plan goes.
      patch({ result: withoutPlan() });
      return runJob(tickets, 'budget', {
        patch,
        first: { done: 0, total: 1, label: 'Reading the weights…' },
        keepResult: true,
        work: async (onProgress) => ({ scan: await engine.budgetScan(onProgress), plan: null }),
        onResult: ({ scan }) => {
          if (!get().budget.value) patch({ value: String(scan.presets.find((p) => p.preset === 'Q4_K_M')?.bytes ?? scan.smallestBytes) });
        },
      });
    },
    planBudget: (target) => {
      const scan = get().budget.result?.scan;
      if (!scan) return Promise.resolve();
      return runJob(tickets, 'budget', {
        patch,
        first: { done: 0, total: 1, label: 'Planning and measuring…' },
        keepResult: true,
        work: async () => ({ scan, plan: await engine.budgetPlan(target) }),
        onError: () => patch({ result: withoutPlan() }),
      });
    },
    planBudgetTarget: () => {
      const { unit, value } = get().budget;
      let target: BudgetTarget;
      try {
        target = unit === 'bytes' ? { bytes: parseSize(value) } : { bpw: positive(value) };
      } catch (e) {
        patch({ error: errorMessage(e) });
        return Promise.resolve();
      }
      return get().planBudget(target);
    },
  };
};
