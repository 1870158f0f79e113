// Mixed precision by budget: which type each tensor gets so that the GGUF file fits a
// target size (or bits per weight) with the least total damage (sensitivity.ts), as
// EXL2's per-layer bitrates and llama.cpp's target-bpw work do. Built on the exporter's
// own plan (export/plan.ts planExport): the header, the alignment padding and so the
// file size come out exactly as the writer makes them. The result is written as
// llama-quantize `--tensor-type` overrides over a base preset (llama.cpp src/llama-quant.cpp
// llama_tensor_get_type: a pattern that regex_searches a quantizable tensor's name gives
// it that type, before the preset's mixture rules; tools/quantize/quantize.cpp
// parse_tensor_type lower-cases the pattern), so llama.cpp makes the same file.
import { alignUp } from '../formats/gguf/read.ts';
import { type ExportPlan, type ExportRequest, planExport } from '../export/plan.ts';
import { type ExportSource, rowCount } from '../export/source.ts';
import { PRESETS, type TensorTypeOverride } from '../quant/presets.ts';
import { quantType } from '../quant/types.ts';
import { allocate, type Option } from './allocate.ts';
export { parseSize } from './size.ts';

/**
 * The types a tensor may get: those llama.cpp quantizes to and writes in a GGUF that its
 * CPU backend runs, with a codec here. A type applies only where its blocks divide the
 * row (ggml's rule; tensor_type_fallback would change it otherwise). Below q2_K: q2_0 and
 * q1_0 (plain absmax/sign blocks: cheap to scan, no imatrix needed). The grid i-quants
 * (iq3_s...iq1_s) are not candidates: their encoders run at 0.5-2.5 MB/s, so each would add
 * minutes to a scan that quantizes every tensor in every type, most need an imatrix, and
 * iq3_s costs q3_K's bits; the IQ presets are still listed beside the plan.
 */
export const CANDIDATE_TYPES: readonly string[] = [
  'f32', 'f16', 'q8_0', 'q6_K', 'q5_K', 'q5_1', 'q5_0', 'iq4_nl', 'q4_K', 'q4_1', 'q4_0', 'iq4_xs', 'q3_K', 'q2_K', 'q2_0', 'q1_0',
];

export interface BudgetCandidate {
  readonly type: string;
  /** Bytes of the tensor's data in this type. */
  readonly bytes: number;
  /** The same, padded to the file's alignment: what it adds to the file. */
  readonly fileBytes: number;
}

export interface BudgetTensor {
  readonly name: string;
  /** ggml ne (row length first). */
  readonly ne: readonly number[];
  readonly params: number;
  readonly sourceType: string;
  /** The types that apply, in CANDIDATE_TYPES order. */
  readonly candidates: readonly BudgetCandidate[];
}

/** What a budget plan is made of: the tensors it chooses for and everything else that is fixed. */
export interface BudgetModel {
  /** Header bytes (padded): the same whatever the types. */
  readonly headerBytes: number;
  /** Padded bytes of the tensors kept as they are (norms, 1-D tensors). */
  readonly fixedFileBytes: number;
  /** Their data bytes unpadded. */
  readonly fixedBytes: number;
  /** Parameters of every tensor of the file (for bits per weight). */
  readonly params: number;
  /** The quantizable tensors, in the file's order. */
  readonly tensors: readonly BudgetTensor[];
  readonly alignment: number;
  /** The export request extras that the plan keeps (an importance matrix). */
  readonly imatrix?: ExportRequest['imatrix'];
}

/** A target: the whole GGUF file's bytes, or bits per weight (tensor data bits / parameters, as presets' bpw). */
export type BudgetTarget = { readonly bytes: number } | { readonly bpw: number };

/** Damage of each tensor in each candidate type (by name, then type). */
export type DamageTable = ReadonlyMap<string, ReadonlyMap<string, number>>;

export interface BudgetTensorPlan {
  readonly name: string;
  readonly type: string;
  /** Data bytes (unpadded). */
  readonly bytes: number;
  readonly damage: number;
}

export interface BudgetPlan {
  readonly target: BudgetTarget;
  /** The whole file, exactly as written. */
  readonly bytes: number;
  /** Bits per weight: tensor data bits / parameters. */
  readonly bpw: number;
  /** Sum of the tensors' damage: the predicted damage of the plan. */
  readonly damage: number;
  /** The llama-quantize file type the overrides sit on (written as general.file_type). */
  readonly base: string;
  readonly tensors: readonly BudgetTensorPlan[];
}

/** The budget model of an export source: costs from the exporter's own plan. */
export function budgetModel(source: ExportSource, imatrix?: ExportRequest['imatrix']): BudgetModel {
  const plan = planExport(source, { mode: { preset: 'Q8_0', pure: true }, imatrix });
  const alignment = plan.layout.alignment;
  let fixedFileBytes = 0;
  let fixedBytes = 0;
  let params = 0;
  const tensors: BudgetTensor[] = [];
  for (const t of plan.tensors) {
    const ne = t.source.ne;
    const n = ne.reduce((a, b) => a * b, 1);
    params += n;
    if (!t.quantized) {
      fixedFileBytes += alignUp(t.nbytes, alignment);
      fixedBytes += t.nbytes;
      continue;
    }
    const rows = rowCount(ne);
    const candidates = CANDIDATE_TYPES.flatMap((id): BudgetCandidate[] => {
      const q = quantType(id)!;
      if ((ne[0] ?? 1) % q.blockSize !== 0) return [];
      const bytes = q.bytesFor(rows, ne[0] ?? 1);
      return [{ type: q.id, bytes, fileBytes: alignUp(bytes, alignment) }];
    });
    tensors.push({ name: t.name, ne: [...ne], params: n, sourceType: t.sourceType, candidates });
  }
  return { headerBytes: plan.layout.dataOffset, fixedFileBytes, fixedBytes, params, tensors, alignment, imatrix };
}

/** The smallest file (and data bytes) any choice of types can make. */
export function smallestPlanBytes(m: BudgetModel): { fileBytes: number; dataBytes: number } {
  let fileBytes = m.headerBytes + m.fixedFileBytes;
  let dataBytes = m.fixedBytes;
  for (const t of m.tensors) {
    fileBytes += Math.min(...t.candidates.map((c) => c.fileBytes));
    dataBytes += Math.min(...t.candidates.map((c) => c.bytes));
  }
  return { fileBytes, dataBytes };
}

/** Thrown when no choice of types fits the target. */
export class BudgetTooSmallError extends Error {
  constructor(
    readonly target: BudgetTarget,
    readonly smallest: { fileBytes: number; bpw: number },
  ) {
    super(
      'bytes' in target
        ? `a ${target.bytes}-byte file is below the smallest possible, ${smallest.fileBytes} bytes (every tensor in its smallest type)`
        : `${target.bpw} bits per weight is below the smallest possible, ${smallest.bpw.toFixed(4)} bpw (${smallest.fileBytes} bytes: every tensor in its smallest type)`,
    );
    this.name = 'BudgetTooSmallError';
  }
}

/**
 * The types that meet the target with the least total damage. `damage` must hold every
 * tensor's candidate types. Throws BudgetTooSmallError when even the smallest types exceed it.
 */
export function planBudget(m: BudgetModel, damage: DamageTable, target: BudgetTarget): BudgetPlan {
  const byFile = 'bytes' in target;
  const items = m.tensors.map((t) =>
    t.candidates.map((c): Option => {
      const d = damage.get(t.name)?.get(c.type);
      if (d === undefined || !Number.isFinite(d)) throw new Error(`no damage figure for ${t.name} in ${c.type}`);
      return { cost: byFile ? c.fileBytes : c.bytes, damage: d };
    }),
  );
  const fixed = byFile ? m.headerBytes + m.fixedFileBytes : m.fixedBytes;
  const capacity = byFile ? target.bytes - fixed : Math.floor((target.bpw * m.params) / 8) - fixed;
  const result = allocate(items, capacity, byFile ? m.alignment : 1);
  if (!result) {
    const s = smallestPlanBytes(m);
    throw new BudgetTooSmallError(target, { fileBytes: s.fileBytes, bpw: (s.dataBytes * 8) / m.params });
  }
  const tensors = m.tensors.map((t, i): BudgetTensorPlan => {
    const c = t.candidates[result.picks[i]];
    return { name: t.name, type: c.type, bytes: c.bytes, damage: items[i][result.picks[i]].damage };
  });
  return finishPlan(m, target, tensors);
}

/** A plan from given types (a preset's, or one read back from JSON), with its figures. */
export function finishPlan(m: BudgetModel, target: BudgetTarget, tensors: readonly BudgetTensorPlan[]): BudgetPlan {
  let fileBytes = m.headerBytes + m.fixedFileBytes;
  let dataBytes = m.fixedBytes;
  for (const t of tensors) {
    fileBytes += alignUp(t.bytes, m.alignment);
    dataBytes += t.bytes;
  }
  return {
    target,
    bytes: fileBytes,
    bpw: (dataBytes * 8) / m.params,
    damage: tensors.reduce((s, t) => s + t.damage, 0),
    base: basePreset(tensors),
    tensors,
  };
}

/**
 * The preset the overrides sit on: the one whose default type most tensors have (Q8_0 when
 * they are mostly float). Every quantizable tensor is named by an override, so the base
 * decides nothing but general.file_type; its default type must be a quantized one
 * (llama_tensor_get_type applies --tensor-type only then).
 */
export function basePreset(tensors: readonly { type: string }[]): string {
  const counts = new Map<string, number>();
  for (const t of tensors) counts.set(t.type, (counts.get(t.type) ?? 0) + 1);
  const ranked = [...counts].sort((a, b) => b[1] - a[1]);
  const usable = PRESETS.filter((p) => (quantType(p.defaultType)?.blockSize ?? 1) > 1 && p.name !== 'Q2_K_S');
  for (const [type] of ranked) {
    const p = usable.find((x) => x.defaultType === type);
    if (p) return p.name;
  }
  return 'Q8_0';
}

/** A tensor name as a regular expression that matches it alone (ECMAScript syntax, as std::regex's default). */
export function exactNamePattern(names: readonly string[]): string {
  const escaped = names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return escaped.length === 1 ? `^${escaped[0]}$` : `^(?:${escaped.join('|')})$`;
}

/**
 * The plan as llama-quantize overrides: one anchored pattern per type naming its tensors
 * exactly. Names with upper-case letters cannot be matched after llama-quantize lower-cases
 * the pattern: refused.
 */
export function planOverrides(plan: Pick<BudgetPlan, 'tensors'>): TensorTypeOverride[] {
  const byType = new Map<string, string[]>();
  for (const t of plan.tensors) {
    if (t.name !== t.name.toLowerCase()) {
      throw new Error(`tensor ${t.name} has upper-case letters: llama-quantize lower-cases --tensor-type patterns, so none can name it`);
    }
    byType.set(t.type, [...(byType.get(t.type) ?? []), t.name]);
  }
  return [...byType].map(([type, names]) => ({ pattern: exactNamePattern(names), type }));
}

/** The export request that writes the plan (export/). */
export function planExportRequest(plan: Pick<BudgetPlan, 'tensors' | 'base'>, imatrix?: ExportRequest['imatrix']): ExportRequest {
  return { mode: { preset: plan.base }, overrides: planOverrides(plan), imatrix };
}

/** Quoted for a POSIX shell. */
function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./=:-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The llama-quantize arguments (after the program name) that make the plan's file. */
export function llamaQuantizeArgs(plan: Pick<BudgetPlan, 'tensors' | 'base'>, input = 'MODEL.gguf', output = 'OUT.gguf', imatrixFile?: string): string[] {
  const args: string[] = [];
  if (imatrixFile !== undefined) args.push('--imatrix', imatrixFile);
  for (const o of planOverrides(plan)) args.push('--tensor-type', `${String(o.pattern)}=${o.type}`);
  args.push(input, output, plan.base);
  return args;
}

/** The same as one shell command line. */
export function llamaQuantizeCommand(plan: Pick<BudgetPlan, 'tensors' | 'base'>, input?: string, output?: string, imatrixFile?: string): string {
  return ['llama-quantize', ...llamaQuantizeArgs(plan, input, output, imatrixFile)].map(shellQuote).join(' ');
}

/** The exporter's plan for a budget plan; throws if the file would differ from what the plan predicts. */
export function checkedExportPlan(source: ExportSource, plan: BudgetPlan, imatrix?: ExportRequest['imatrix']): ExportPlan {
  const exportPlan = planExport(source, planExportRequest(plan, imatrix));
  const want = new Map(plan.tensors.map((t) => [t.name, t.type]));
  for (const t of exportPlan.tensors) {
    const type = want.get(t.name);
    if (type !== undefined && type !== t.type) throw new Error(`plan: ${t.name} would be written as ${t.type}, not ${type}`);
  }
  if (exportPlan.layout.totalBytes !== plan.bytes) {
    throw new Error(`plan: the file would have ${exportPlan.layout.totalBytes} bytes, not the ${plan.bytes} predicted`);
  }
  return exportPlan;
}

// ---- the plan as JSON (`quantlab plan --json`, `quantlab quantize --plan`) ----------------

export interface PlanJson {
  model: string;
  target: { bytes: number } | { bpw: number };
  bytes: number;
  bpw: number;
  base: string;
  damage: { kind: DamageKind; predicted: number };
  /** damage: the plan's measure (KL alone or the error); error: the tensor error (imatrix-weighted when given), where known. */
  tensors: { name: string; type: string; bytes: number; damage: number; error?: number }[];
  tensor_type_args: string[];
  /** The importance matrix file the plan was made with (its keys are in the file's header: quantize with it too), or null. */
  imatrix: string | null;
}

/** 'kl': measured KL divergence of quantizing each tensor alone (nats); 'error': tensor error (imatrix-weighted when given). */
export type DamageKind = 'kl' | 'error';

export function planToJson(model: string, plan: BudgetPlan, kind: DamageKind, imatrixFile: string | null = null, errors?: DamageTable): PlanJson {
  return {
    model,
    target: 'bytes' in plan.target ? { bytes: plan.target.bytes } : { bpw: plan.target.bpw },
    bytes: plan.bytes,
    bpw: plan.bpw,
    base: plan.base,
    damage: { kind, predicted: plan.damage },
    tensors: plan.tensors.map((t) => {
      const error = errors?.get(t.name)?.get(t.type);
      return { name: t.name, type: t.type, bytes: t.bytes, damage: t.damage, ...(error === undefined ? {} : { error }) };
    }),
    tensor_type_args: llamaQuantizeArgs(plan).slice(0, -3),
    imatrix: imatrixFile,
  };
}

/**
 * A plan read back from JSON, checked against the model: every quantizable tensor named
 * once with a type that applies to it; sizes recomputed (the file's figures, not the JSON's).
 */
export function planFromJson(m: BudgetModel, json: unknown, where = 'plan'): BudgetPlan {
  const j = json as Partial<PlanJson>;
  if (!j || typeof j !== 'object' || !Array.isArray(j.tensors)) throw new Error(`${where}: not a quantlab plan (no "tensors" list)`);
  const given = new Map<string, { type: string; damage: number }>();
  for (const t of j.tensors) {
    if (typeof t?.name !== 'string' || typeof t?.type !== 'string') throw new Error(`${where}: each tensor needs a "name" and a "type"`);
    if (given.has(t.name)) throw new Error(`${where}: tensor ${t.name} is listed twice`);
    given.set(t.name, { type: t.type, damage: typeof t.damage === 'number' ? t.damage : 0 });
  }
  const tensors = m.tensors.map((t): BudgetTensorPlan => {
    const g = given.get(t.name);
    if (!g) throw new Error(`${where}: tensor ${t.name} of the model is not in the plan`);
    given.delete(t.name);
    const c = t.candidates.find((x) => x.type.toLowerCase() === g.type.toLowerCase());
    if (!c) throw new Error(`${where}: ${g.type} does not apply to ${t.name} (one of ${t.candidates.map((x) => x.type).join(' ')})`);
    return { name: t.name, type: c.type, bytes: c.bytes, damage: g.damage };
  });
  if (given.size > 0) throw new Error(`${where}: tensor ${[...given.keys()][0]} is not a quantizable tensor of this model`);
  const target = j.target && typeof j.target === 'object' && ('bytes' in j.target || 'bpw' in j.target) ? j.target : { bytes: Infinity };
  if (typeof j.imatrix === 'string' && !m.imatrix) {
    throw new Error(`${where}: the plan was made with the importance matrix ${j.imatrix}: give it (--imatrix) to write the same file`);
  }
  const plan = finishPlan(m, target, tensors);
  if (j.base === undefined) return plan;
  const base = PRESETS.find((p) => p.name === j.base);
  if (!base || (quantType(base.defaultType)?.blockSize ?? 1) <= 1 || base.name === 'Q2_K_S') {
    throw new Error(`${where}: base ${JSON.stringify(j.base)} is not a preset whose types llama-quantize's --tensor-type can override`);
  }
  return { ...plan, base: base.name };
}

/** Bits per weight of each layer ('blk.3'; other tensors by name), in file order: the chart of the Budget tab. */
export function layerBits(m: BudgetModel, tensors: readonly { name: string; bytes: number }[]): { group: string; bpw: number; params: number }[] {
  const params = new Map(m.tensors.map((t) => [t.name, t.params]));
  const groups = new Map<string, { bits: number; params: number }>();
  for (const t of tensors) {
    const g = /^blk\.(\d+)\./.exec(t.name)?.[0].slice(0, -1) ?? t.name.replace(/\.weight$/, '');
    const acc = groups.get(g) ?? { bits: 0, params: 0 };
    acc.bits += t.bytes * 8;
    acc.params += params.get(t.name) ?? 0;
    groups.set(g, acc);
  }
  return [...groups].map(([group, a]) => ({ group, bpw: a.bits / Math.max(a.params, 1), params: a.params }));
}
