// Sensitivity: how much damage each tensor takes in each candidate type.
// - errorDamage: the tensor's own error, Σ importance[col]·(w − q)² over its values, with
//   llama.cpp's imatrix as the importance when there is one (the quantizers minimize that
//   same weighted error, ggml-quants.c), else Σ (w − q)².
// - KlProbe: for a Llama the forward pass runs, the measured KL divergence of quantizing
//   that tensor ALONE (every other weight f32) on a short calibration text, one forward
//   per (tensor, type). Cheap: one pass over the text at once, and the matrix products
//   that come before the tensor's first use are taken from the f32 pass (their inputs are
//   the same bits). Results are cached by model, text, tensor and type. Given a GPU, the
//   probe runs on the resident forward pass instead (model/gpu-forward.ts): the F32 model
//   uploaded once, the F32 logits kept on the GPU, each variant one tensor rewritten in place
//   (GpuForward.setWeight) and one forward pass whose single readback is the per-position
//   KL and argmax.
import { cpuLinear, llamaConfig, LlamaModel, type Linear, type LlamaConfig } from '../model/llama.ts';
import { klDivergence, logSoftmax, modelTokenizer } from '../model/eval.ts';
import { mapProvider, readLlamaWeights } from '../model/weights.ts';
import type { ModelIndex } from '../formats/model.ts';
import type { ExportSource } from '../export/source.ts';
import type { Imatrix } from '../formats/imatrix.ts';
import { quantType } from '../quant/types.ts';
import type { GpuContext } from '../gpu/device.ts';
import { BaseLogits, GpuForward, ResidentUnsupportedError } from '../model/gpu-forward.ts';
import type { BudgetModel, DamageTable } from './budget.ts';

export interface ScanProgress {
  done: number;
  total: number;
  label: string;
}

export interface ScanOptions {
  onProgress?: (p: ScanProgress) => void;
  signal?: AbortSignal;
}

function check(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('cancelled');
}

const yieldNow = () => new Promise((resolve) => setTimeout(resolve, 0));

/** The importance of a tensor's columns (ne0 values; per matrix for 3-D), or null. */
function importanceOf(imatrix: Imatrix | undefined, name: string, ne0: number): Float32Array | null {
  const v = imatrix?.entries.get(name);
  return v && v.length === ne0 ? v : null;
}

/** w quantized to `type` and back (with the importance the exporter gives the codec). */
export function roundTrip(type: string, w: Float32Array, cols: number, importance: Float32Array | null): Float32Array {
  const q = quantType(type);
  if (!q) throw new Error(`unknown type ${type}`);
  if (q.id === 'f32') return w;
  const bytes = q.codec.encode(w, cols, importance && q.usesImportance ? importance : undefined);
  return q.codec.decode(bytes, w.length / cols, cols);
}

/** Σ importance[col]·(w − q)² (Σ (w − q)² without importance), in f64. */
export function weightedError(w: Float32Array, q: Float32Array, cols: number, imp: Float32Array | null): number {
  let s = 0;
  for (let i = 0; i < w.length; i++) {
    const e = w[i] - q[i];
    s += (imp ? imp[i % cols] : 1) * e * e;
  }
  return s;
}

/** Every tensor's error in every candidate type (imatrix-weighted when one is given). */
export async function errorDamage(source: ExportSource, m: BudgetModel, imatrix?: Imatrix, options: ScanOptions = {}): Promise<DamageTable> {
  const byName = new Map(source.tensors.map((t) => [t.name, t]));
  const total = m.tensors.reduce((s, t) => s + t.candidates.length, 0);
  let done = 0;
  const out = new Map<string, Map<string, number>>();
  for (const t of m.tensors) {
    check(options.signal);
    const src = byName.get(t.name)!;
    const cols = t.ne[0] ?? 1;
    const w = await source.readF32(src, { first: 0, count: t.params / cols });
    const imp = importanceOf(imatrix, t.name, cols);
    const row = new Map<string, number>();
    for (const c of t.candidates) {
      row.set(c.type, weightedError(w, roundTrip(c.type, w, cols, imp), cols, imp));
      options.onProgress?.({ done: ++done, total, label: `${t.name} → ${c.type}` });
      await yieldNow();
      check(options.signal);
    }
    out.set(t.name, row);
  }
  return out;
}

/** Results of KL scans, by model key, text, tensor and type: a later scan (or a re-plan) reads them here. */
const KL_CACHE = new Map<string, { kl: number; error: number }>();
const KL_CACHE_MAX = 1 << 16;
/** Tokens of a text the probe runs at most: each scan step is one forward pass over them. */
export const DEFAULT_MAX_TOKENS = 256;
/** Tokens of the calibration text the scan uses at most. */
export const SCAN_MAX_TOKENS = 64;

/** A key for a loaded model: its files, sizes and tensors. */
export function modelKey(model: ModelIndex): string {
  const files = model.files.map((f) => `${f.source.name}:${f.source.size}`).join(',');
  return `${files}|${model.tensors.length}|${model.tensors.map((t) => `${t.name}:${t.dtype}`).join(',').length}`;
}

export interface KlMeasure {
  klMean: number;
  klMax: number;
  top1Agree: number;
  positions: number;
}

/** The probe's F32 model resident on a GPU: its logits kept there, its argmax per position. */
interface ResidentProbe {
  forward: GpuForward;
  store: BaseLogits;
  argmax: Int32Array;
}

/** The F32 model resident on `gpu` and its pass over `tokens`; null where it cannot run resident. */
async function residentProbe(gpu: GpuContext, config: LlamaConfig, base: Map<string, Float32Array>, tokens: number[]): Promise<ResidentProbe | null> {
  const positions = tokens.length - 1;
  let forward: GpuForward | null = null;
  let store: BaseLogits | null = null;
  try {
    forward = await GpuForward.create(gpu, config, mapProvider(base), null, { maxTokens: positions, capacity: tokens.length });
    store = new BaseLogits(gpu, positions, config.nVocab);
    const r = await forward.forward(tokens.slice(0, -1), { keep: store });
    return { forward, store, argmax: r.argmax };
  } catch (e) {
    forward?.dispose();
    store?.destroy();
    if (e instanceof ResidentUnsupportedError) return null;
    throw e;
  }
}

/**
 * The F32 model on a text, and the same model with some tensors quantized: mean KL over
 * every next-token position (nats, KL(p_f32 || p_q), as model/eval.ts), top-1 agreement.
 */
export class KlProbe {
  /** Set by open() with a GPU the model runs on; dispose() frees it. */
  private resident: ResidentProbe | null = null;

  private constructor(
    private readonly key: string,
    readonly config: LlamaConfig,
    private readonly base: Map<string, Float32Array>,
    readonly tokens: number[],
    private readonly f32LogProbs: Float64Array[],
    private readonly f32Argmax: number[],
    /** f32 outputs of every matrix product, in call order, and the call index of each tensor's first use. */
    private readonly f32Products: Float32Array[],
    private readonly firstUse: Map<string, number>,
    private readonly imatrix: Imatrix | undefined,
    /** Row length of each tensor, by its name in the files. */
    private readonly cols: Map<string, number>,
  ) {}

  /**
   * Reads the weights and runs the F32 model on `text` (BOS first): on `gpu`'s resident
   * forward pass where given and the model runs there (dispose() frees it), else on the CPU.
   */
  static async open(model: ModelIndex, text: string, imatrix?: Imatrix, maxTokens = DEFAULT_MAX_TOKENS, gpu?: GpuContext): Promise<KlProbe> {
    const config = llamaConfig(model);
    const tokenizer = await modelTokenizer(model);
    const tokens = tokenizer.encode(text).slice(0, maxTokens);
    if (tokens.length < 2) throw new Error('the calibration text is too short (it needs a token after BOS)');
    const base = await readLlamaWeights(model, config);
    const cols = new Map(model.tensors.map((t) => [t.name, t.shape[t.shape.length - 1] ?? 1]));
    const resident = gpu ? await residentProbe(gpu, config, base, tokens) : null;
    if (resident) {
      const key = `${modelKey(model)}|${hashText(text)}:${tokens.length}|${imatrix ? `imatrix:${imatrix.entries.size}:${imatrix.chunkCount}` : 'plain'}|gpu`;
      const probe = new KlProbe(key, config, base, tokens, [], [], [], new Map(), imatrix, cols);
      probe.resident = resident;
      return probe;
    }
    const products: Float32Array[] = [];
    const firstUse = new Map<string, number>();
    const inner = cpuLinear(mapProvider(base));
    const recorder: Linear = async (name, x, n, rows, cols) => {
      if (!firstUse.has(name)) firstUse.set(name, products.length);
      const y = await inner(name, x, n, rows, cols);
      products.push(y.slice()); // the forward pass changes its products in place (rope, silu)
      return y;
    };
    const m = new LlamaModel(config, mapProvider(base), recorder);
    const logits = await m.forward(tokens.slice(0, -1), m.newCache(tokens.length), { logits: 'all' });
    const V = config.nVocab;
    const logProbs: Float64Array[] = [];
    const argmaxes: number[] = [];
    for (let p = 0; p < tokens.length - 1; p++) {
      const lp = logSoftmax(logits, p * V, V, new Float64Array(V));
      logProbs.push(lp);
      argmaxes.push(argmaxOf(lp));
    }
    const key = `${modelKey(model)}|${hashText(text)}:${tokens.length}|${imatrix ? `imatrix:${imatrix.entries.size}:${imatrix.chunkCount}` : 'plain'}`;
    return new KlProbe(key, config, base, tokens, logProbs, argmaxes, products, firstUse, imatrix, cols);
  }

  /** The file name of a GGUF tensor name. */
  private fileName(name: string): string {
    const f = this.config.ggufNames.get(name);
    if (!f) throw new Error(`tensor ${name} is not read by the forward pass`);
    return f;
  }

  /** Whether the forward reads this tensor (GGUF name). */
  reads(name: string): boolean {
    return this.config.ggufNames.has(name);
  }

  /** The model with `types` (GGUF name -> type) applied; the others stay f32. */
  async measure(types: ReadonlyMap<string, string>, quantized: ReadonlyMap<string, Float32Array> = new Map()): Promise<KlMeasure> {
    const values = new Map(this.base);
    let firstChanged = Infinity;
    for (const [name, type] of types) {
      const file = this.fileName(name);
      const w = this.base.get(file)!;
      const cols = this.cols.get(file)!;
      values.set(file, quantized.get(name) ?? roundTrip(type, w, cols, importanceOf(this.imatrix, name, cols)));
      const use = file === this.config.names.tokenEmbd ? -1 : (this.firstUse.get(file) ?? Infinity);
      firstChanged = Math.min(firstChanged, use);
    }
    if (this.resident) return this.runResident(this.resident, values);
    return this.run(values, firstChanged);
  }

  /** measure() on the GPU: the changed tensors written in place, one pass, put back. */
  private async runResident(r: ResidentProbe, values: Map<string, Float32Array>): Promise<KlMeasure> {
    const changed = [...values].filter(([file, v]) => v !== this.base.get(file));
    try {
      for (const [file, v] of changed) r.forward.setWeight(file, v);
      r.forward.reset();
      const out = await r.forward.forward(this.tokens.slice(0, -1), { base: r.store });
      const positions = this.tokens.length - 1;
      let sum = 0;
      let max = 0;
      let agree = 0;
      for (let p = 0; p < positions; p++) {
        sum += out.kl![p];
        max = Math.max(max, out.kl![p]);
        if (out.argmax[p] === r.argmax[p]) agree++;
      }
      return { klMean: sum / positions, klMax: max, top1Agree: agree / positions, positions };
    } finally {
      for (const [file] of changed) r.forward.setWeight(file, this.base.get(file)!);
    }
  }

  /** Whether measure() runs on the GPU's resident forward pass. */
  get onGpu(): boolean {
    return this.resident !== null;
  }

  /** Frees the GPU's copy of the model (a CPU probe has none). */
  dispose(): void {
    this.resident?.forward.dispose();
    this.resident?.store.destroy();
    this.resident = null;
  }

  private async run(values: Map<string, Float32Array>, firstChanged: number): Promise<KlMeasure> {
    const provider = mapProvider(values);
    const compute = cpuLinear(provider);
    let call = 0;
    const linear: Linear = (name, x, n, rows, cols) => {
      const i = call++;
      return i < firstChanged ? this.f32Products[i].slice() : compute(name, x, n, rows, cols);
    };
    const m = new LlamaModel(this.config, provider, linear);
    const logits = await m.forward(this.tokens.slice(0, -1), m.newCache(this.tokens.length), { logits: 'all' });
    const V = this.config.nVocab;
    const lq = new Float64Array(V);
    let sum = 0;
    let max = 0;
    let agree = 0;
    const positions = this.tokens.length - 1;
    for (let p = 0; p < positions; p++) {
      logSoftmax(logits, p * V, V, lq);
      const kl = klDivergence(this.f32LogProbs[p], lq);
      sum += kl;
      max = Math.max(max, kl);
      if (argmaxOf(lq) === this.f32Argmax[p]) agree++;
    }
    return { klMean: sum / positions, klMax: max, top1Agree: agree / positions, positions };
  }

  /**
   * The sensitivity scan: each quantizable tensor alone in each of its candidate types, its
   * KL and its tensor error (imatrix-weighted as errorDamage), from one round trip.
   */
  async scan(m: BudgetModel, options: ScanOptions = {}): Promise<{ kl: DamageTable; error: DamageTable }> {
    const total = m.tensors.reduce((s, t) => s + t.candidates.length, 0);
    let done = 0;
    const kl = new Map<string, Map<string, number>>();
    const error = new Map<string, Map<string, number>>();
    for (const t of m.tensors) {
      if (!this.reads(t.name)) throw new Error(`tensor ${t.name} is not read by the forward pass: measure its error instead`);
      const file = this.fileName(t.name);
      const w = this.base.get(file)!;
      const cols = this.cols.get(file)!;
      const imp = importanceOf(this.imatrix, t.name, cols);
      const klRow = new Map<string, number>();
      const errorRow = new Map<string, number>();
      for (const c of t.candidates) {
        check(options.signal);
        const key = `${this.key}|${t.name}|${c.type}`;
        let hit = KL_CACHE.get(key);
        if (hit === undefined) {
          const q = roundTrip(c.type, w, cols, imp);
          const same = c.type === 'f32' && t.sourceType === 'f32';
          hit = {
            kl: same ? 0 : (await this.measure(new Map([[t.name, c.type]]), new Map([[t.name, q]]))).klMean,
            error: weightedError(w, q, cols, imp),
          };
          if (KL_CACHE.size >= KL_CACHE_MAX) KL_CACHE.clear();
          KL_CACHE.set(key, hit);
          await yieldNow();
        }
        klRow.set(c.type, hit.kl);
        errorRow.set(c.type, hit.error);
        options.onProgress?.({ done: ++done, total, label: `${t.name} → ${c.type}` });
      }
      kl.set(t.name, klRow);
      error.set(t.name, errorRow);
    }
    return { kl, error };
  }
}

function argmaxOf(a: Float64Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/** FNV-1a of the text's UTF-16 units: a cache key. */
function hashText(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return `${h.toString(16)}:${text.length}`;
}

/** The cached scan results of a model (for a cache file: `quantlab plan --scan-cache`). */
export function exportKlCache(model: ModelIndex): Record<string, { kl: number; error: number }> {
  const prefix = `${modelKey(model)}|`;
  return Object.fromEntries([...KL_CACHE].filter(([k]) => k.startsWith(prefix)));
}

/** Adds results read back from a cache file; entries of other models are kept, and cannot match. */
export function importKlCache(entries: unknown): number {
  if (!entries || typeof entries !== 'object') return 0;
  let n = 0;
  for (const [k, v] of Object.entries(entries as Record<string, unknown>)) {
    const e = v as { kl?: unknown; error?: unknown };
    if (typeof e?.kl === 'number' && typeof e?.error === 'number' && Number.isFinite(e.kl) && Number.isFinite(e.error)) {
      KL_CACHE.set(k, { kl: e.kl, error: e.error });
      n++;
    }
  }
  return n;
}

/** Empties the KL cache (tests). */
export function clearKlCache(): void {
  KL_CACHE.clear();
}
