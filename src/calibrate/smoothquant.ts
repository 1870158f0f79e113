// Activation statistics and SmoothQuant (Xiao et al. 2023; mit-han-lab/smoothquant
// smooth.py smooth_ln_fcs / smooth_ln_fcs_llama_like): W8A8 is hard because a few input
// channels of a linear carry values far larger than the rest, so a per-token INT8 grid
// spends its 255 steps on them. SmoothQuant divides channel j of the input by
//   s_j = max|X_j|^α / max|W_j|^(1-α)
// (max|W_j| over every linear reading that input) and multiplies column j of those weights
// by s_j: the product is unchanged, the input's outliers move into the weights. As the AWQ
// export folds (awq-export.ts), 1/s goes into the RMSNorm weight that makes the input:
// - attn_q, attn_k, attn_v read attn_norm's output: one s for the three, 1/s into attn_norm;
// - ffn_gate, ffn_up read ffn_norm's output: one s, 1/s into ffn_norm.
// attn_output and ffn_down are left unsmoothed, as the reference smooths Llama's two norms
// only (their inputs come from attention and silu(gate)·up, with no norm to fold into).
import type { ModelIndex } from '../formats/model.ts';
import type { ExportSource } from '../export/source.ts';
import type { PrecomputedTensors } from '../export/plan.ts';
import { GGUF_VALUE_TYPE } from '../formats/gguf/constants.ts';
import { ggufEntry } from '../formats/gguf/metadata.ts';
import { EVAL_TEXT } from '../model/eval-text.ts';
import { klDivergence, logSoftmax } from '../model/eval.ts';
import { fastCpuLinear } from '../model/fast-linear.ts';
import { activationLinear } from '../model/activations.ts';
import { argmax, LlamaModel, type Linear, type WeightProvider } from '../model/llama.ts';
import { mapProvider, planForModel, quantizedProvider, quantizeWeights } from '../model/weights.ts';
import { assertMethodSupported } from '../model/families/support.ts';
import { chunkTokens, defaultChunk, linearWeightNames, runCalibration, type CalibrationModel, type CalibrationProgress } from './activations.ts';
import { replacedSource } from './awq-export.ts';
import { CALIBRATION_STORY_TEXT } from './calibration-text.ts';

/** Header keys of a SmoothQuant export (as quantize.awq.* for AWQ). */
export const SMOOTHQUANT_KEYS = {
  alpha: 'quantize.smoothquant.alpha',
  dataset: 'quantize.smoothquant.dataset',
  tensors: 'quantize.smoothquant.tensors_count',
  chunks: 'quantize.smoothquant.chunks_count',
  chunkSize: 'quantize.smoothquant.chunk_size',
} as const;

/** A channel is an outlier when its max |x| is at least this many times the linear's median channel. */
export const OUTLIER_FACTOR = 10;
/** smooth.py clamps the scales (and the weights' maxima) at 1e-5. */
const MIN_SCALE = 1e-5;
/** The sweep's α grid: 0, 0.1, ..., 1. */
export const SMOOTHQUANT_ALPHAS = Array.from({ length: 11 }, (_, i) => i / 10);

/** One blk.* linear's statistics over the calibration text. */
export interface LinearStats {
  /** GGUF name, e.g. blk.0.attn_q.weight. */
  name: string;
  layer: number;
  /** Input channels. */
  cols: number;
  /** Per input channel: max |x| over every token. */
  actMax: Float32Array;
  /** Per token: the smallest and largest input value over its channels. */
  tokenMin: Float32Array;
  tokenMax: Float32Array;
  /** Per input channel: max |W[r][j]| over the output rows. */
  weightMax: Float32Array;
  /** Channels whose max |x| >= OUTLIER_FACTOR x the median channel's. */
  outliers: number[];
}

export interface ActivationStats {
  textTokens: number;
  chunk: number;
  chunks: number;
  /** In forward order (linearWeightNames). */
  linears: LinearStats[];
}

/** Channels of `actMax` at least OUTLIER_FACTOR x its median. */
export function outlierChannels(actMax: ArrayLike<number>, factor = OUTLIER_FACTOR): number[] {
  const sorted = Float64Array.from(actMax).sort();
  const n = sorted.length;
  const median = n === 0 ? 0 : n % 2 ? sorted[(n - 1) / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  const out: number[] = [];
  for (let j = 0; j < actMax.length; j++) if (median > 0 && actMax[j] >= factor * median) out.push(j);
  return out;
}

/** Per input column: max |W[r][c]| over the rows of a rows x cols weight. */
export function columnAbsMax(w: ArrayLike<number>, cols: number): Float32Array {
  const m = new Float32Array(cols);
  for (let i = 0; i < w.length; i++) {
    const c = i % cols;
    const v = Math.abs(w[i]);
    if (v > m[c]) m[c] = v;
  }
  return m;
}

function check(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('cancelled');
}

export interface StatsOptions {
  /** Default: the built-in calibration stories. */
  text?: string;
  chunk?: number;
  signal?: AbortSignal;
  onProgress?: (p: CalibrationProgress) => void;
}

/** Every blk.* linear's input statistics over the calibration text (chunked as llama-imatrix), and its weights' column maxima. */
export async function activationStats(cm: CalibrationModel, options: StatsOptions = {}): Promise<ActivationStats> {
  const tokens = cm.tokenize(options.text ?? CALIBRATION_STORY_TEXT);
  const chunk = options.chunk ?? defaultChunk(tokens.length, cm.config.contextLength);
  const { chunks } = chunkTokens(tokens, chunk, cm.bosId, cm.addBos);
  const names = linearWeightNames(cm.config);
  const acc = new Map<string, { cols: number; actMax: Float32Array; mins: number[]; maxs: number[] }>();
  await runCalibration(
    cm,
    chunks,
    (name, x, n, cols) => {
      let a = acc.get(name);
      if (!a) acc.set(name, (a = { cols, actMax: new Float32Array(cols), mins: [], maxs: [] }));
      for (let t = 0; t < n; t++) {
        let lo = Infinity;
        let hi = -Infinity;
        for (let c = 0; c < cols; c++) {
          const v = x[t * cols + c];
          if (v < lo) lo = v;
          if (v > hi) hi = v;
          const m = Math.abs(v);
          if (m > a.actMax[c]) a.actMax[c] = m;
        }
        a.mins.push(lo);
        a.maxs.push(hi);
      }
    },
    { signal: options.signal, onChunk: (done, total) => options.onProgress?.({ done, total, label: `calibration text: chunk ${done} of ${total}` }) },
  );
  const linears = names.flatMap((name) => {
    const a = acc.get(name);
    if (!a) return [];
    const w = cm.weights.get(cm.fileName(name));
    if (!w) throw new Error(`no weights for '${name}'`);
    return [{
      name,
      layer: Number(name.split('.')[1]),
      cols: a.cols,
      actMax: a.actMax,
      tokenMin: Float32Array.from(a.mins),
      tokenMax: Float32Array.from(a.maxs),
      weightMax: columnAbsMax(w, a.cols),
      outliers: outlierChannels(a.actMax),
    }];
  });
  return { textTokens: tokens.length, chunk, chunks: chunks.length, linears };
}

/** s_j = max|X_j|^α / max|W_j|^(1-α), clamped at 1e-5 (smooth.py); a channel never seen (max|X_j| = 0) keeps s = 1. */
export function smoothQuantScales(actMax: ArrayLike<number>, weightMax: ArrayLike<number>, alpha: number): Float64Array {
  checkAlpha(alpha);
  const s = new Float64Array(actMax.length);
  for (let j = 0; j < s.length; j++) {
    s[j] = actMax[j] > 0 ? Math.max(Math.pow(actMax[j], alpha) / Math.pow(Math.max(weightMax[j], MIN_SCALE), 1 - alpha), MIN_SCALE) : 1;
  }
  return s;
}

/** α in [0, 1], or one clear error. */
export function checkAlpha(alpha: number): void {
  if (!(Number.isFinite(alpha) && alpha >= 0 && alpha <= 1)) throw new Error(`SmoothQuant's α must be a number from 0 to 1, not ${alpha}`);
}

/** One smoothed group: the linears that read the norm's output, their shared s. */
export interface SmoothGroup {
  /** GGUF names. */
  norm: string;
  linears: string[];
  scales: Float64Array;
}

/** Per layer, the two groups SmoothQuant smooths (attn_norm -> q/k/v, ffn_norm -> gate/up), s from the statistics at α. */
export function smoothGroups(cm: CalibrationModel, stats: ActivationStats, alpha: number): SmoothGroup[] {
  checkAlpha(alpha);
  assertMethodSupported(cm.config, 'awq');
  if (cm.config.names.layers.some((L) => L.qkv || !L.gate)) throw new Error('SmoothQuant: fused attn_qkv / gate|up tensors (phi3) are not smoothed yet');
  const byName = new Map(stats.linears.map((l) => [l.name, l]));
  const groups: SmoothGroup[] = [];
  for (let i = 0; i < cm.config.nLayer; i++) {
    const p = `blk.${i}.`;
    for (const [norm, members] of [['attn_norm', ['attn_q', 'attn_k', 'attn_v']], ['ffn_norm', ['ffn_gate', 'ffn_up']]] as const) {
      const linears = members.map((m) => `${p}${m}.weight`);
      const ls = linears.map((n) => byName.get(n));
      if (ls.some((l) => !l)) continue; // no calibration inputs: left as it is
      const cols = ls[0]!.cols;
      const wMax = new Float32Array(cols);
      for (const l of ls) for (let j = 0; j < cols; j++) wMax[j] = Math.max(wMax[j], l!.weightMax[j]);
      groups.push({ norm: `${p}${norm}.weight`, linears, scales: smoothQuantScales(ls[0]!.actMax, wMax, alpha) });
    }
  }
  return groups;
}

/** The tensors the groups change, by the name `read` is asked with: norm / s, linear columns x s (f32). */
export async function smoothedTensors(groups: readonly SmoothGroup[], read: (ggufName: string) => Promise<Float32Array> | Float32Array): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const g of groups) {
    const s = g.scales;
    const norm = await read(g.norm);
    out.set(g.norm, norm.map((v, j) => v / s[j]));
    for (const name of g.linears) {
      const w = await read(name);
      const cols = s.length;
      out.set(name, w.map((v, i) => v * s[i % cols]));
    }
  }
  return out;
}

/** The export source of the smoothed model (the tensors replaced; `quantize --smoothquant α`). */
export async function smoothQuantSource(source: ExportSource, groups: readonly SmoothGroup[]): Promise<ExportSource> {
  const byName = new Map(source.tensors.map((t) => [t.name, t]));
  const replaced = await smoothedTensors(groups, async (name) => {
    const t = byName.get(name);
    if (!t) throw new Error(`SmoothQuant: no tensor '${name}' in the model`);
    const rows = t.ne.slice(1).reduce((a, n) => a * n, 1);
    return (await source.readF32(t, { first: 0, count: rows })).slice();
  });
  return replacedSource(source, replaced);
}

/** No tensors: the quantize.smoothquant.* keys an export adds (ExportRequest.precomputed). */
export function smoothQuantHeader(alpha: number, dataset: string, groups: readonly SmoothGroup[], stats: ActivationStats): PrecomputedTensors {
  const { STRING, UINT32, FLOAT32 } = GGUF_VALUE_TYPE;
  return {
    tensors: new Map(),
    method: 'smoothquant',
    keys: [
      ggufEntry(SMOOTHQUANT_KEYS.alpha, FLOAT32, alpha),
      ggufEntry(SMOOTHQUANT_KEYS.dataset, STRING, dataset),
      ggufEntry(SMOOTHQUANT_KEYS.tensors, UINT32, groups.reduce((n, g) => n + g.linears.length, 0)),
      ggufEntry(SMOOTHQUANT_KEYS.chunks, UINT32, stats.chunks),
      ggufEntry(SMOOTHQUANT_KEYS.chunkSize, UINT32, stats.chunk),
    ],
  };
}

/** The calibration model's f32 weights (names in the files) with the groups folded in. */
export async function smoothedWeights(cm: CalibrationModel, groups: readonly SmoothGroup[]): Promise<Map<string, Float32Array>> {
  const changed = await smoothedTensors(groups, (name) => {
    const w = cm.weights.get(cm.fileName(name));
    if (!w) throw new Error(`no weights for '${name}'`);
    return w;
  });
  const out = new Map(cm.weights);
  for (const [g, w] of changed) out.set(cm.fileName(g), w);
  return out;
}

export interface SweepPoint {
  /** null: the model without SmoothQuant. */
  alpha: number | null;
  klMean: number;
  top1Agree: number;
}

export interface SmoothQuantSweep {
  preset: string;
  activations: 'int8';
  positions: number;
  /** W8A8 of the model as it is. */
  without: SweepPoint;
  points: SweepPoint[];
  best: SweepPoint;
  stats: ActivationStats;
}

export interface SweepOptions extends StatsOptions {
  /** The held-out text KL is measured on (default: the eval text). */
  evalText?: string;
  alphas?: readonly number[];
  /** The weights' preset (default Q8_0: INT8 blocks of 32). */
  preset?: string;
}

/** Logits of every position of `tokens` (teacher forced, one pass). */
async function allLogits(cm: CalibrationModel, provider: WeightProvider, linear: Linear, tokens: readonly number[]): Promise<Float32Array> {
  const model = new LlamaModel(cm.config, provider, linear);
  return model.forward(tokens, model.newCache(tokens.length), { logits: 'all' });
}

/**
 * W8A8's mean KL against the F32 model (the preset's weights, per-token INT8 inputs as
 * `eval --activations int8`) on the eval text, without SmoothQuant and at each α.
 */
export async function smoothQuantSweep(model: ModelIndex, cm: CalibrationModel, options: SweepOptions = {}): Promise<SmoothQuantSweep> {
  const alphas = options.alphas ?? SMOOTHQUANT_ALPHAS;
  alphas.forEach(checkAlpha);
  const preset = options.preset ?? 'Q8_0';
  const stats = await activationStats(cm, options);
  const tokens = cm.tokenize(options.evalText ?? EVAL_TEXT);
  const V = cm.config.nVocab;
  const positions = tokens.length - 1;
  const baseProvider = mapProvider(cm.weights);
  const base = await allLogits(cm, baseProvider, fastCpuLinear(baseProvider, null), tokens);
  const plan = planForModel(model, cm.config, { preset });
  const lpBase = new Float64Array(V);
  const lp = new Float64Array(V);
  let done = 0;
  const total = alphas.length + 1;
  const score = async (weights: ReadonlyMap<string, Float32Array>, alpha: number | null): Promise<SweepPoint> => {
    check(options.signal);
    const q = quantizeWeights(weights, cm.config, plan, undefined, { dequantize: false });
    const provider = quantizedProvider(q);
    const linear = activationLinear('int8', fastCpuLinear(provider, q.packed), { weights: provider, typeOf: (n) => q.types.get(n) });
    const logits = await allLogits(cm, provider, linear, tokens);
    let kl = 0;
    let agree = 0;
    for (let i = 0; i < positions; i++) {
      logSoftmax(base, i * V, V, lpBase);
      logSoftmax(logits, i * V, V, lp);
      kl += klDivergence(lpBase, lp);
      if (argmax(base, i * V, V) === argmax(logits, i * V, V)) agree++;
    }
    options.onProgress?.({ done: ++done, total, label: alpha === null ? `W8A8 ${preset} without SmoothQuant` : `W8A8 ${preset}, α = ${alpha}` });
    return { alpha, klMean: kl / positions, top1Agree: agree / positions };
  };
  const without = await score(cm.weights, null);
  const points: SweepPoint[] = [];
  for (const alpha of alphas) points.push(await score(await smoothedWeights(cm, smoothGroups(cm, stats, alpha)), alpha));
  const best = points.reduce((a, b) => (b.klMean < a.klMean ? b : a), points[0] ?? without);
  return { preset, activations: 'int8', positions, without, points, best, stats };
}
