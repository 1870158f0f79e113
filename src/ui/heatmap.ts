// The Activations view's heat maps (layers x input channels) as plain data: which linears a
// row takes its values from, channels binned (max) when a row has more than fit, a log colour
// scale. Pure functions, unit-tested (heatmap.test.ts).
import type { ActivationInput, ActivationStats } from '../store/slices/activations.ts';

/** The linears that read each input: their activations are the same; their weights' max is taken over all of them (SmoothQuant's max|W_j|). */
const READERS: Record<ActivationInput, readonly string[]> = {
  attn_q: ['attn_q', 'attn_k', 'attn_v'],
  attn_output: ['attn_output'],
  ffn_gate: ['ffn_gate', 'ffn_up'],
  ffn_down: ['ffn_down'],
};

/** At most this many cells per row: wider inputs are shown in bins of channels (each the bin's max). */
export const MAX_HEATMAP_COLUMNS = 512;

export interface HeatmapRow {
  layer: number;
  /** Per column (a channel, or a bin of `bin` channels): max |x| and max |W|. */
  act: number[];
  weight: number[];
  /** Per column: holds an outlier channel. */
  outlier: boolean[];
  /** The layer's token range over the calibration text. */
  tokenMin: number;
  tokenMax: number;
}

export interface Heatmap {
  rows: HeatmapRow[];
  /** Input channels, and channels per column (1: one cell per channel). */
  channels: number;
  bin: number;
  columns: number;
  /** Outlier channels by layer, as the statistics name them. */
  outliers: number[][];
}

function binMax(values: ArrayLike<number>, bin: number, columns: number): number[] {
  const out = new Array<number>(columns).fill(0);
  for (let j = 0; j < values.length; j++) out[Math.floor(j / bin)] = Math.max(out[Math.floor(j / bin)], values[j]);
  return out;
}

/** The heat map of one input kind: a row per layer, in layer order. */
export function heatmapOf(stats: ActivationStats, input: ActivationInput, maxColumns = MAX_HEATMAP_COLUMNS): Heatmap {
  const byName = new Map(stats.linears.map((l) => [l.name, l]));
  const layers = [...new Set(stats.linears.map((l) => l.layer))].sort((a, b) => a - b);
  const rows: HeatmapRow[] = [];
  const outliers: number[][] = [];
  let channels = 0;
  for (const layer of layers) {
    const ls = READERS[input].map((r) => byName.get(`blk.${layer}.${r}.weight`)).filter((l) => l !== undefined);
    if (ls.length === 0) continue;
    channels = ls[0].cols;
    const bin = Math.ceil(channels / maxColumns);
    const columns = Math.ceil(channels / bin);
    const wMax = new Float64Array(channels);
    for (const l of ls) for (let j = 0; j < channels; j++) wMax[j] = Math.max(wMax[j], l.weightMax[j]);
    const outlier = new Array<boolean>(columns).fill(false);
    for (const c of ls[0].outliers) outlier[Math.floor(c / bin)] = true;
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of ls[0].tokenMin) lo = Math.min(lo, v);
    for (const v of ls[0].tokenMax) hi = Math.max(hi, v);
    rows.push({ layer, act: binMax(ls[0].actMax, bin, columns), weight: binMax(wMax, bin, columns), outlier, tokenMin: lo, tokenMax: hi });
    outliers.push(ls[0].outliers);
  }
  const bin = Math.max(1, Math.ceil(channels / maxColumns));
  return { rows, channels, bin, columns: Math.ceil(channels / bin), outliers };
}

/** The smallest positive and the largest value of a field over the rows (the colour scale's ends). */
export function rangeOf(rows: readonly HeatmapRow[], field: 'act' | 'weight'): { min: number; max: number } {
  let min = Infinity;
  let max = 0;
  for (const r of rows) for (const v of r[field]) if (v > 0) [min, max] = [Math.min(min, v), Math.max(max, v)];
  return Number.isFinite(min) ? { min, max } : { min: 1, max: 1 };
}

// Viridis at five stops: dark for small values, yellow for the largest (readable in both themes).
const STOPS = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

/** Where v falls between min and max on a log scale, 0..1 (0 for v <= 0). */
export function logPosition(v: number, min: number, max: number): number {
  if (!(v > 0)) return 0;
  if (max <= min) return 1;
  return Math.min(1, Math.max(0, Math.log(v / min) / Math.log(max / min)));
}

/** The colour of v on the log scale from min to max. */
export function logColour(v: number, min: number, max: number): string {
  const t = logPosition(v, min, max) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(t));
  const f = t - i;
  const [a, b] = [STOPS[i], STOPS[i + 1]];
  const c = a.map((x, k) => Math.round(x + f * (b[k] - x)));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

/** The colour scale's stops as CSS (a legend's gradient). */
export const LEGEND_GRADIENT = `linear-gradient(to right, ${STOPS.map((c) => `rgb(${c.join(', ')})`).join(', ')})`;
