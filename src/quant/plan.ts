// Whole-model plans: which type each tensor gets under a preset (or one type), the file
// it makes, and the error it costs, per tensor and per layer.
import { elementCount, type ModelIndex } from '../formats/model.ts';
import { emptySums, mergeSums, metricsFromSums, type ErrorMetrics, type ErrorSums } from './metrics.ts';
import { PRESETS, modelInfoFromMetadata, planQuantization, type PlanMode, type TensorPlan } from './presets.ts';
import { quantType } from './types.ts';

/** A serializable --tensor-type override: a regular expression source and a type id. */
export interface OverrideSpec {
  pattern: string;
  type: string;
}

export interface PlanRow extends TensorPlan {
  shape: number[];
  params: number;
  /** Bytes of this tensor in the output file (before alignment padding). */
  bytes: number;
}

export interface PlanSummary {
  rows: PlanRow[];
  totalBytes: number;
  bpw: number;
  params: number;
}

export interface PresetSize {
  preset: string;
  bytes: number;
  bpw: number;
}

/** Bytes of a tensor of `shape` stored as `type` (a quant type or a plain ggml type). */
function storedBytes(type: string, shape: readonly number[], fallback: number): number {
  const t = quantType(type);
  if (!t) return fallback;
  const rowLength = shape[shape.length - 1] ?? 1;
  const rows = shape.reduce((n, d) => n * d, 1) / rowLength;
  return t.bytesFor(rows, rowLength);
}

export function planModel(model: ModelIndex, mode: PlanMode, overrides: readonly OverrideSpec[] = [], options: { hasImatrix?: boolean } = {}): PlanSummary {
  const info = modelInfoFromMetadata(model.metadata);
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  const plans = planQuantization(
    model.tensors,
    info,
    mode,
    overrides.map((o) => ({ pattern: new RegExp(o.pattern), type: o.type })),
    options,
  );
  const rows = plans.map((p): PlanRow => {
    const t = byName.get(p.name)!;
    return { ...p, shape: [...t.shape], params: elementCount(t), bytes: p.converted ? storedBytes(p.type, t.shape, t.nbytes) : t.nbytes };
  });
  const totalBytes = rows.reduce((s, r) => s + r.bytes, 0);
  const params = rows.reduce((s, r) => s + r.params, 0);
  return { rows, totalBytes, params, bpw: (totalBytes * 8) / Math.max(params, 1) };
}

/**
 * Size and bits per weight of the model under every preset llama.cpp would write for it
 * (Q1_0's blocks of 128 have no fallback: on rows of 64 llama-quantize refuses, and it is left out).
 */
export function presetSizes(model: ModelIndex): PresetSize[] {
  return PRESETS.flatMap((p) => {
    let s;
    try {
      s = planModel(model, { preset: p.name });
    } catch {
      return [];
    }
    return [{ preset: p.name, bytes: s.totalBytes, bpw: s.bpw }];
  });
}

export interface LayerError {
  /** 'blk.3' for a layer's tensors; the tensor name otherwise (token_embd, output...). */
  group: string;
  metrics: ErrorMetrics;
  sums: ErrorSums;
}

/** The layer a tensor belongs to, for per-layer figures. */
export function layerOf(name: string): string {
  const m = /^blk\.(\d+)\./.exec(name);
  return m ? `blk.${m[1]}` : name.replace(/\.weight$/, '');
}

/** Groups per-tensor error sums by layer, in first-seen order. */
export function errorsByLayer(perTensor: readonly { name: string; sums: ErrorSums }[]): LayerError[] {
  const groups = new Map<string, ErrorSums>();
  for (const { name, sums } of perTensor) {
    const g = layerOf(name);
    groups.set(g, mergeSums(groups.get(g) ?? emptySums(), sums));
  }
  return [...groups].map(([group, sums]) => ({ group, sums, metrics: metricsFromSums(sums) }));
}

