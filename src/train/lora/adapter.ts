// A LoRA adapter on a decoder's linear weights: for each target W (out x in),
// W' = W + scale · B·A with A (rank x in), B (out x rank), scale = alpha / rank (PEFT's
// `scaling`, llama.cpp's llama_adapter_lora_weight::get_scale). Tensors are kept by the
// base's GGUF name (blk.N.attn_q.weight) with B's rows in the GGUF's row order (llama's
// q/k rows are permuted by the converter; peft.ts undoes that for PEFT files), so an
// adapter is applied, merged and written to GGUF without reordering anything.
import type { ModelIndex } from '../../formats/model.ts';
import type { ModelConfig } from '../../model/families/index.ts';

/** PEFT's module names (target_modules) -> llama.cpp's tensor role, and their parent in HF's layer. */
export const LORA_MODULES = {
  q_proj: { gguf: 'attn_q', hfParent: 'self_attn' },
  k_proj: { gguf: 'attn_k', hfParent: 'self_attn' },
  v_proj: { gguf: 'attn_v', hfParent: 'self_attn' },
  o_proj: { gguf: 'attn_output', hfParent: 'self_attn' },
  gate_proj: { gguf: 'ffn_gate', hfParent: 'mlp' },
  up_proj: { gguf: 'ffn_up', hfParent: 'mlp' },
  down_proj: { gguf: 'ffn_down', hfParent: 'mlp' },
} as const;

export type LoraModule = keyof typeof LORA_MODULES;
export const LORA_MODULE_NAMES = Object.keys(LORA_MODULES) as LoraModule[];

export function isLoraModule(name: string): name is LoraModule {
  return Object.hasOwn(LORA_MODULES, name);
}

/** One adapted weight: the base tensor's GGUF name, A (rank x cols) and B (rows x rank), row-major f32. */
export interface LoraWeight {
  readonly name: string;
  readonly layer: number;
  readonly module: LoraModule;
  readonly rank: number;
  /** Outputs (the base's rows) and inputs (its row length, GGUF ne0). */
  readonly rows: number;
  readonly cols: number;
  readonly a: Float32Array;
  readonly b: Float32Array;
}

export interface LoraAdapter {
  /** general.architecture of the base (llama.cpp refuses an adapter of another). */
  readonly architecture: string;
  /** adapter.lora.alpha / lora_alpha. 0 means "scale = the user's scale" (llama.cpp's rule). */
  readonly alpha: number;
  /** PEFT's r (every weight's rank here). */
  readonly rank: number;
  /** PEFT target_modules, in LORA_MODULE_NAMES order. */
  readonly targetModules: readonly LoraModule[];
  /** lora_dropout: recorded for training and PEFT's config; inference ignores it. */
  readonly dropout: number;
  /** By the base tensor's GGUF name, in layer then module order. */
  readonly weights: ReadonlyMap<string, LoraWeight>;
}

/** llama.cpp's get_scale: alpha ? userScale · alpha / rank : userScale (rank = B's ne[0]). */
export function loraScale(alpha: number, rank: number, userScale = 1): number {
  return alpha ? (userScale * alpha) / rank : userScale;
}

/** The GGUF name of module `m` in layer `il`. */
export function loraTargetName(il: number, m: LoraModule): string {
  return `blk.${il}.${LORA_MODULES[m].gguf}.weight`;
}

/** Parses `blk.N.<role>.weight` back into layer and module; undefined when it is no LoRA target. */
export function parseLoraTargetName(name: string): { layer: number; module: LoraModule } | undefined {
  const m = /^blk\.(\d+)\.([a-z_]+)\.weight$/.exec(name);
  if (!m) return undefined;
  const module = LORA_MODULE_NAMES.find((k) => LORA_MODULES[k].gguf === m[2]);
  return module ? { layer: Number(m[1]), module } : undefined;
}

/**
 * The linear weights of a base that LoRA may target, by GGUF name -> [rows, cols]; with
 * `fileNames`, the names the model's files use (a safetensors checkpoint's HF names).
 */
export interface LoraBase {
  readonly architecture: string;
  readonly nLayer: number;
  readonly shapes: ReadonlyMap<string, readonly [number, number]>;
  /** GGUF name -> name in the files, where they differ (safetensors). */
  readonly fileNames?: ReadonlyMap<string, string>;
  /** Set when the files hold llama's q/k rows in HF order (not permuted as a GGUF's): the heads to un-permute B by. */
  readonly hfQkHeads?: { readonly q: number; readonly k: number };
}

/**
 * The targets of a loaded model (shapes from its tensor headers): a GGUF under its own
 * names; a safetensors checkpoint under the GGUF names its config maps to its files.
 */
export function loraBase(model: ModelIndex, config: ModelConfig): LoraBase {
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  const shapes = new Map<string, readonly [number, number]>();
  const gguf = model.format === 'gguf';
  const fileNames = new Map<string, string>();
  for (const [ggufName, fileName] of config.ggufNames) {
    const t = byName.get(fileName);
    if (!parseLoraTargetName(ggufName) || !t || t.shape.length !== 2) continue;
    shapes.set(ggufName, [t.shape[0], t.shape[1]]);
    if (!gguf) fileNames.set(ggufName, fileName);
  }
  if (gguf) return { architecture: String(model.metadata['general.architecture']), nLayer: config.nLayer, shapes };
  return {
    architecture: config.family,
    nLayer: config.nLayer,
    shapes,
    fileNames,
    ...(config.family === 'llama' ? { hfQkHeads: { q: config.nHead, k: config.nHeadKv } } : {}),
  };
}

export interface NewAdapterOptions {
  rank: number;
  alpha?: number;
  targetModules?: readonly string[];
  dropout?: number;
  seed?: number;
}

/**
 * A fresh adapter as PEFT initialises one: A ~ kaiming_uniform(a = sqrt(5)), i.e.
 * U(-1/sqrt(in), 1/sqrt(in)); B = 0, so base + adapter = base until trained. Seeded.
 */
export function createLoraAdapter(base: LoraBase, options: NewAdapterOptions): LoraAdapter {
  const rank = checkRank(options.rank);
  const targetModules = checkTargetModules(options.targetModules ?? ['q_proj', 'v_proj']);
  const alpha = options.alpha ?? rank;
  if (!Number.isFinite(alpha) || alpha < 0) throw new Error(`LoRA alpha ${alpha} must be a finite number >= 0`);
  const dropout = options.dropout ?? 0;
  if (!(dropout >= 0 && dropout < 1)) throw new Error(`LoRA dropout ${dropout} must be in [0, 1)`);
  const random = uniform01(options.seed ?? 1);
  const weights = new Map<string, LoraWeight>();
  for (let il = 0; il < base.nLayer; il++) {
    for (const module of targetModules) {
      const name = loraTargetName(il, module);
      const shape = base.shapes.get(name);
      if (!shape) throw new Error(`LoRA target ${module} (${name}) is not in the model`);
      const [rows, cols] = shape;
      if (rank > Math.min(rows, cols)) throw new Error(`LoRA rank ${rank} is above ${name}'s ${rows} x ${cols}`);
      const bound = 1 / Math.sqrt(cols);
      const a = Float32Array.from({ length: rank * cols }, () => (2 * random() - 1) * bound);
      weights.set(name, { name, layer: il, module, rank, rows, cols, a, b: new Float32Array(rows * rank) });
    }
  }
  return { architecture: base.architecture, alpha, rank, targetModules, dropout, weights };
}

/** Throws one line for the first thing in `adapter` that does not fit `base`. */
export function checkAdapterFits(adapter: LoraAdapter, base: LoraBase): void {
  if (adapter.architecture !== base.architecture) {
    throw new Error(`LoRA adapter is for architecture '${adapter.architecture}', the model is '${base.architecture}'`);
  }
  for (const w of adapter.weights.values()) {
    const shape = base.shapes.get(w.name);
    if (!shape) throw new Error(`LoRA tensor '${w.name}' (${w.module}) is not in the model`);
    if (shape[0] !== w.rows || shape[1] !== w.cols) {
      throw new Error(`LoRA tensor '${w.name}' is ${w.rows} x ${w.cols} (B ${w.rows} x ${w.rank}, A ${w.rank} x ${w.cols}), the model's is ${shape[0]} x ${shape[1]}`);
    }
  }
}

/** Checks one weight's pieces against each other; `where` names the file or tensor. */
export function checkLoraWeight(w: LoraWeight, where: string): void {
  checkRank(w.rank, where);
  if (w.a.length !== w.rank * w.cols) throw new Error(`${where}: lora A has ${w.a.length} values, expected rank ${w.rank} x ${w.cols}`);
  if (w.b.length !== w.rows * w.rank) throw new Error(`${where}: lora B has ${w.b.length} values, expected ${w.rows} x rank ${w.rank}`);
}

export function checkRank(rank: number, where = 'LoRA'): number {
  if (!Number.isInteger(rank) || rank < 1) throw new Error(`${where}: rank ${rank} must be a whole number >= 1`);
  return rank;
}

function checkTargetModules(modules: readonly string[]): LoraModule[] {
  if (modules.length === 0) throw new Error('LoRA: no target modules');
  for (const m of modules) {
    if (!isLoraModule(m)) throw new Error(`LoRA target module '${m}' is not one of ${LORA_MODULE_NAMES.join(', ')}`);
  }
  return LORA_MODULE_NAMES.filter((m) => modules.includes(m));
}

/** mulberry32: a small seeded generator, uniform in [0, 1). */
function uniform01(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The adapter with every B filled from a seeded generator (tests; a trained adapter's stand-in). */
export function withRandomB(adapter: LoraAdapter, seed: number, scale = 0.05): LoraAdapter {
  const random = uniform01(seed);
  const weights = new Map<string, LoraWeight>();
  for (const [name, w] of adapter.weights) weights.set(name, { ...w, b: Float32Array.from(w.b, () => (2 * random() - 1) * scale) });
  return { ...adapter, weights };
}
