// A budget session on a loaded model: its costs (budget.ts), the damage table from a
// sensitivity scan (sensitivity.ts: KL for a Llama the forward pass runs, the tensor
// error otherwise), plans for targets, and the presets beside them (size, predicted and
// measured KL). Shared by the CLI (`quantlab plan`) and the engine (the Budget tab).
import type { GpuContext } from '../gpu/device.ts';
import type { ModelIndex } from '../formats/model.ts';
import { type ExportSource, exportSourceFor } from '../export/source.ts';
import { planExport } from '../export/plan.ts';
import type { Imatrix } from '../formats/imatrix.ts';
import { EVAL_TEXT } from '../model/eval-text.ts';
import { llamaConfig } from '../model/llama.ts';
import { PRESETS } from '../quant/presets.ts';
import { quantType } from '../quant/types.ts';
import {
  type BudgetModel, type BudgetPlan, type BudgetTarget, type DamageKind, type DamageTable,
  budgetModel, finishPlan, layerBits, planBudget,
} from './budget.ts';
import { SCAN_TEXT } from './scan-text.ts';
import { errorDamage, KlProbe, SCAN_MAX_TOKENS, type KlMeasure, type ScanOptions } from './sensitivity.ts';

export interface BudgetSession {
  readonly model: ModelIndex;
  readonly source: ExportSource;
  readonly budget: BudgetModel;
  readonly kind: DamageKind;
  readonly damage: DamageTable;
  /** The tensor error of every tensor in every type (imatrix-weighted when given): the damage itself when kind is 'error'. */
  readonly errors: DamageTable;
  /** Measures plans on the held-out text (EVAL_TEXT); null where the forward pass cannot run the model. */
  readonly heldOut: KlProbe | null;
  readonly imatrix?: { readonly matrix: Imatrix; readonly fileArgument: string };
}

export interface SessionOptions extends ScanOptions {
  readonly imatrix?: { readonly matrix: Imatrix; readonly fileArgument: string };
  /**
   * 'kl' or 'error'; by default KL where the forward pass runs the model and it has at most
   * klMaxParams parameters, the tensor error otherwise.
   */
  readonly damage?: DamageKind;
  /** Largest model (parameters) scanned by KL unless `damage` says 'kl' (default KL_SCAN_MAX_PARAMS). */
  readonly klMaxParams?: number;
  /** The scan's text (default SCAN_TEXT). */
  readonly calibrationText?: string;
  /** The text plans are measured on (default EVAL_TEXT). */
  readonly evalText?: string;
  /** Runs the KL scan's forward passes on this GPU (the resident pass, sensitivity.ts) where the model runs there. */
  readonly gpu?: GpuContext;
}

/**
 * The KL scan is one forward pass per (tensor, type) on the CPU reference: about a minute
 * at this size on one core (the sample, 0.3M parameters, takes seconds). Larger models get
 * the tensor error unless KL is asked for.
 */
export const KL_SCAN_MAX_PARAMS = 4_000_000;

/** Why the forward pass (model/llama.ts: every family of model/families/) does not run this model. */
function forwardRefusal(model: ModelIndex): string {
  try {
    llamaConfig(model);
    return 'no reason given';
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** Whether the forward pass (model/llama.ts) runs this model. */
function runsForward(model: ModelIndex): boolean {
  try {
    llamaConfig(model);
    return true;
  } catch {
    return false;
  }
}

/** Reads the model's costs and scans every tensor in every candidate type. */
export async function openBudgetSession(model: ModelIndex, options: SessionOptions = {}): Promise<BudgetSession> {
  const source = await exportSourceFor(model);
  const budget = budgetModel(source, options.imatrix);
  const imatrix = options.imatrix?.matrix;
  if (options.damage === 'kl' && !runsForward(model)) throw new Error(`the forward pass cannot run this model (${forwardRefusal(model)}): use --damage error`);
  const small = budget.params <= (options.klMaxParams ?? KL_SCAN_MAX_PARAMS);
  const useKl = options.damage === 'kl' || (options.damage === undefined && small && runsForward(model));
  if (!useKl) {
    const damage = await errorDamage(source, budget, imatrix, options);
    return { model, source, budget, kind: 'error', damage, errors: damage, heldOut: null, imatrix: options.imatrix };
  }
  const probe = await KlProbe.open(model, options.calibrationText ?? SCAN_TEXT, imatrix, SCAN_MAX_TOKENS, options.gpu);
  let scanned;
  try {
    scanned = await probe.scan(budget, options);
  } finally {
    probe.dispose();
  }
  const { kl, error } = scanned;
  const heldOut = await KlProbe.open(model, options.evalText ?? EVAL_TEXT, imatrix);
  return { model, source, budget, kind: 'kl', damage: kl, errors: error, heldOut, imatrix: options.imatrix };
}

export function planForTarget(s: BudgetSession, target: BudgetTarget): BudgetPlan {
  return planBudget(s.budget, s.damage, target);
}

export interface PresetPoint {
  preset: string;
  /** The whole file's bytes, as the exporter writes it. */
  bytes: number;
  bpw: number;
  /** Sum of the damage of the preset's types. */
  predicted: number;
  /** The preset's types per quantizable tensor. */
  types: Record<string, string>;
}

/** Every preset the model can be quantized to (those needing an imatrix only with one), with its size and predicted damage. */
export function presetPoints(s: BudgetSession): PresetPoint[] {
  const out: PresetPoint[] = [];
  for (const p of PRESETS) {
    let plan;
    try {
      plan = planExport(s.source, { mode: { preset: p.name }, imatrix: s.imatrix });
    } catch {
      continue; // a preset llama.cpp refuses for this model (Q2_K_S without an imatrix)
    }
    const types: Record<string, string> = {};
    const tensors = s.budget.tensors.map((t) => {
      const type = plan.tensors.find((x) => x.name === t.name)!.type;
      types[t.name] = type;
      return { name: t.name, type, bytes: plan.tensors.find((x) => x.name === t.name)!.nbytes, damage: s.damage.get(t.name)?.get(type) ?? NaN };
    });
    const f = finishPlan(s.budget, { bytes: plan.layout.totalBytes }, tensors);
    if (f.bytes !== plan.layout.totalBytes) throw new Error(`preset ${p.name}: size ${f.bytes} != ${plan.layout.totalBytes}`);
    out.push({ preset: p.name, bytes: plan.layout.totalBytes, bpw: f.bpw, predicted: f.damage, types });
  }
  return out;
}

/** The presets nearest the plan's size: the largest at or below it and the smallest above it. */
export function nearestPresets(points: readonly PresetPoint[], bytes: number): PresetPoint[] {
  const below = points.filter((p) => p.bytes <= bytes).sort((a, b) => b.bytes - a.bytes)[0];
  const above = points.filter((p) => p.bytes > bytes).sort((a, b) => a.bytes - b.bytes)[0];
  return [below, above].filter((p): p is PresetPoint => p !== undefined);
}

/** Measured KL on the held-out text of a set of types (GGUF name -> type); null where the forward cannot run. */
export async function measureTypes(s: BudgetSession, types: Readonly<Record<string, string>>): Promise<KlMeasure | null> {
  if (!s.heldOut) return null;
  return s.heldOut.measure(new Map(Object.entries(types)));
}

export function planTypes(plan: BudgetPlan): Record<string, string> {
  return Object.fromEntries(plan.tensors.map((t) => [t.name, t.type]));
}

export interface PlanReport {
  /** The plan's measured KL on the held-out text (null when the forward pass cannot run the model). */
  measured: { kl_mean: number; kl_max: number; top1_agree: number; positions: number } | null;
  presets: { preset: string; bytes: number; bpw: number; predicted: number | null; measured_kl: number | null; nearest: boolean }[];
  /** Bits per weight by layer of the plan, and (by preset name) of the nearest presets. */
  layers: { group: string; bpw: number; presets: Record<string, number> }[];
}

export async function planReport(s: BudgetSession, plan: BudgetPlan): Promise<PlanReport> {
  const m = await measureTypes(s, planTypes(plan));
  const points = presetPoints(s);
  const nearest = new Set(nearestPresets(points, plan.bytes).map((p) => p.preset));
  const presets: PlanReport['presets'] = [];
  const layers = layerBits(s.budget, plan.tensors).map(({ group, bpw }) => ({ group, bpw, presets: {} as Record<string, number> }));
  for (const p of points) {
    const near = nearest.has(p.preset);
    if (near) {
      const tensors = s.budget.tensors.map((t) => {
        const q = quantType(p.types[t.name])!;
        return { name: t.name, bytes: q.bytesFor(t.params / (t.ne[0] ?? 1), t.ne[0] ?? 1) };
      });
      for (const l of layerBits(s.budget, tensors)) {
        const row = layers.find((x) => x.group === l.group);
        if (row) row.presets[p.preset] = l.bpw;
      }
    }
    const measured = near ? await measureTypes(s, p.types) : null;
    presets.push({ preset: p.preset, bytes: p.bytes, bpw: p.bpw, predicted: Number.isFinite(p.predicted) ? p.predicted : null, measured_kl: measured?.klMean ?? null, nearest: near });
  }
  return {
    measured: m && { kl_mean: m.klMean, kl_max: m.klMax, top1_agree: m.top1Agree, positions: m.positions },
    presets,
    layers,
  };
}
