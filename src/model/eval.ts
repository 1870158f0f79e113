// What quantization does to a model's output: the F32 model and each preset's model
// (weights.ts: every tensor quantized as llama-quantize would, dequantized back) score
// every next-token position of a text (teacher forcing, one pass over the sequence with
// the KV cache), and continue a prompt greedily. Per position: log-softmax of both;
// KL(p_f32 || p_preset) in nats; the negative log-likelihood of the true next token;
// whether the two argmaxes agree. As llama.cpp's perplexity tool with
// --kl-divergence (tools/perplexity/perplexity.cpp: median of the middle two, percentiles
// by linear interpolation), except that every position of the text is scored (llama.cpp
// scores the second half of each context window).
import type { ModelIndex } from '../formats/model.ts';
import { findPreset, type PlanMode } from '../quant/presets.ts';
import { argmax, generateGreedy, llamaConfig, LlamaModel, type LlamaConfig, type Linear, type WeightProvider } from './llama.ts';
import { forwardModel } from './converted.ts';
import { EVAL_PROMPT, EVAL_TEXT } from './eval-text.ts';
import { SpmTokenizer, spmVocabFromModelProto, type Tokenizer } from './tokenizer.ts';
import { tokenizerFromGguf } from './tokenizer-gguf.ts';
import { tokenizerFromHf } from './tokenizer-hf.ts';
import { fastCpuLinear, sumsFor, type Sums } from './fast-linear.ts';
import { absMaxRecorder, activationLinear, type ActivationMode } from './activations.ts';
import { mapProvider, planForModel, quantizedProvider, quantizeWeights, readLlamaWeights, type QuantizedWeights } from './weights.ts';
import type { GpuContext } from '../gpu/device.ts';
import { ResidentEval, type ForwardNote } from './eval-resident.ts';
import { RESIDENT_ACTIVATIONS } from './gpu-forward.ts';
import { compressLogProbs, KlAccumulator, klReport, logProbRowLength, type KlReport } from './kl-report.ts';
import { checkLogitsBase, scoredPerChunk, type LogitsFile } from './logits-file.ts';

export interface EvalProgress {
  done: number;
  total: number;
  label: string;
}

export interface EvalOptions {
  /**
   * Preset names (llama-quantize's, case-insensitive, aliases as Q4_K), or 'F32': the
   * model as it is (llama-quantize's F32 file type; its KL against the F32 pass is 0).
   */
  presets: readonly string[];
  /** The text to score (default EVAL_TEXT), tokenized as llama.cpp does (BOS first). */
  text?: string;
  /** The greedy continuation's prompt (default EVAL_PROMPT) and its length (default 32). */
  prompt?: string;
  greedyTokens?: number;
  /** Positions per forward call (default 1: cancellation is checked between positions). */
  chunk?: number;
  onProgress?: (p: EvalProgress) => void;
  signal?: AbortSignal;
  /**
   * The matrix products of a model (default: the CPU reference over `weights`). `quantized`
   * is null for the F32 model; else it carries each converted tensor's packed blocks: the
   * seam where a GPU path plugs in (llama.ts `Linear`; gpu-linear.ts). A Linear with a
   * `dispose()` method (a GPU linear's weight buffers) is disposed once its model is done.
   */
  linear?: (config: LlamaConfig, weights: WeightProvider, quantized: QuantizedWeights | null, sums: Sums) => Linear;
  /**
   * How each preset's products see their inputs (activations.ts; default 'f32'). The F32
   * baseline always runs in f32, so a preset's KL holds the weights' and the activations' effect.
   */
  activations?: ActivationMode;
  /** int8-static: the text its per-tensor ranges are calibrated on (the F32 model's inputs to each product). */
  calibrationText?: string;
  /**
   * Keep the weights (f32 and packed) in SharedArrayBuffers, moved there tensor by tensor,
   * so that worker threads read them without a copy (the CLI's forward pool, --threads).
   */
  sharedWeights?: boolean;
  /**
   * Run each model's whole forward pass on this GPU (eval-resident.ts, gpu-forward.ts: one
   * readback per chunk) where it can: activation modes f32 and ggml (RESIDENT_ACTIVATIONS),
   * over the whole text or in `ctx` windows; other modes, and models the resident pass cannot
   * run, go through `linear`.
   */
  residentGpu?: GpuContext;
  /**
   * llama-perplexity's chunking (perplexity.cpp): the text cut into floor(tokens/ctx) chunks of
   * `ctx` tokens, each run from an empty cache with BOS first (where the model adds it), only
   * the second half of each scored; each preset gets the full KL report (kl-report.ts) against
   * the F32 pass's log-probs in perplexity.cpp's compressed form. Unset: every position of the
   * whole text, as before.
   */
  ctx?: number;
  /** A llama-perplexity `_logits_` base (logits-file.ts): the presets are scored against it instead of the F32 pass; its n_ctx is the chunking. */
  klBase?: { file: LogitsFile; name: string };
  /** With `ctx`: return the F32 pass's log-probs as a `_logits_` file (ModelEval.logitsFile). */
  saveLogits?: boolean;
}

/** `a` moved into a SharedArrayBuffer (the caller drops the original). */
function shared<T extends Float32Array | Uint8Array>(a: T): T {
  const copy = new (a.constructor as new (b: SharedArrayBuffer) => T)(new SharedArrayBuffer(a.byteLength));
  copy.set(a as never);
  return copy;
}

export interface GreedyResult {
  tokens: number[];
  /** The continuation's text (llama_detokenize of the generated tokens). */
  text: string;
}

export interface PresetEval {
  preset: string;
  /** File size under the preset (llama-quantize's tensor bytes, before alignment padding). */
  bytes: number;
  bpw: number;
  ppl: number;
  klMean: number;
  klMedian: number;
  klP99: number;
  /** Share of positions whose argmax equals the F32 model's. */
  top1Agree: number;
  /** KL per scored position, in nats. */
  kl: Float64Array;
  greedy: GreedyResult;
  /** Type of each tensor the forward reads, by its name in the files. */
  types: Record<string, string>;
  /** llama-perplexity's KL report; with `ctx` or `klBase` ppl, kl* and top1Agree are its figures. */
  report?: KlReport;
}

export interface ModelEval {
  /** The model file's name. */
  model: string;
  /** Tokens of the text, BOS included. */
  textTokens: number;
  /** Scored positions (textTokens - 1). */
  positions: number;
  prompt: string;
  /** The activation mode the presets ran under. */
  activations: ActivationMode;
  f32: { bytes: number; bpw: number; ppl: number; greedy: GreedyResult };
  results: PresetEval[];
  /** Which forward pass ran: resident on the GPU (per model), or through the products' Linear. */
  forward: ForwardNote;
  /** With `ctx` or `klBase`: perplexity.cpp's chunking, and where the base log-probs came from. */
  chunking?: { nCtx: number; nChunk: number; base: string };
  /** With `saveLogits`: the F32 pass as llama-perplexity's `_logits_` file. */
  logitsFile?: LogitsFile;
}

/** A preset name as the eval takes it: llama-quantize's presets, and F32 (nothing converted). */
export function resolveEvalPreset(name: string): { name: string; mode: PlanMode } {
  if (name.toUpperCase() === 'F32') return { name: 'F32', mode: { type: 'f32' } };
  const p = findPreset(name);
  if (!p) throw new Error(`unknown preset '${name}'`);
  return { name: p.name, mode: { preset: p.name } };
}

/**
 * The model's tokenizer, as llama.cpp runs it: from GGUF metadata (SentencePiece or
 * byte-level BPE); beside safetensors, a SentencePiece tokenizer.model, else a byte-level
 * BPE tokenizer.json (+ tokenizer_config.json) as the GGUF conversion would write it.
 */
export async function modelTokenizer(model: ModelIndex): Promise<Tokenizer> {
  if (model.format === 'gguf') return tokenizerFromGguf(model.metadata);
  const spm = model.files.find((f) => f.role === 'tokenizer');
  if (spm) return new SpmTokenizer(spmVocabFromModelProto(await spm.source.read(0, spm.source.size)));
  const named = (name: string) => model.files.find((f) => f.source.name.split('/').pop() === name)?.source;
  const json = named('tokenizer.json');
  if (!json) throw new Error('a tokenizer is needed beside the safetensors files: tokenizer.model (SentencePiece) or tokenizer.json');
  const tokenizerConfig = named('tokenizer_config.json');
  const config = model.metadata.config as Record<string, unknown> | undefined;
  const vocabSize = typeof config?.vocab_size === 'number' ? config.vocab_size : undefined;
  return tokenizerFromHf(await json.read(0, json.size), tokenizerConfig ? await tokenizerConfig.read(0, tokenizerConfig.size) : undefined, {
    vocabSize,
    config,
    tokenizerFile: json.name,
    tokenizerConfigFile: tokenizerConfig?.name,
  });
}

function check(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('cancelled');
}

/** Natural-log softmax of `n` logits, in f64. */
export function logSoftmax(logits: ArrayLike<number>, offset: number, n: number, out: Float64Array): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[offset + i]);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[offset + i] - max);
  const logSum = max + Math.log(sum);
  for (let i = 0; i < n; i++) out[i] = logits[offset + i] - logSum;
  return out;
}

/** KL(p || q) = Σ p·(log p − log q), from log-probabilities, in nats. */
export function klDivergence(logP: Float64Array, logQ: Float64Array): number {
  let kl = 0;
  for (let i = 0; i < logP.length; i++) {
    const p = Math.exp(logP[i]);
    if (p > 0) kl += p * (logP[i] - logQ[i]);
  }
  return kl;
}

/** perplexity.cpp's percentile: linear interpolation between the sorted values. */
export function percentile(sorted: ArrayLike<number>, fraction: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  if (fraction <= 0) return sorted[0];
  if (fraction >= 1) return sorted[n - 1];
  const p = fraction * (n - 1);
  const i = Math.floor(p);
  const f = p - i;
  return (1 - f) * sorted[i] + f * sorted[Math.min(i + 1, n - 1)];
}

/** perplexity.cpp's median: the middle value, or the mean of the middle two. */
export function median(sorted: ArrayLike<number>): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  return n % 2 === 0 ? 0.5 * (sorted[n / 2] + sorted[n / 2 - 1]) : sorted[(n - 1) / 2];
}

interface Pass {
  /** Logits per scored position (positions × vocab), kept for the baseline only. */
  logits: Float32Array | null;
  argmax: Int32Array;
  nll: Float64Array;
  kl: Float64Array | null;
}

/**
 * Runs `model` over `tokens` (teacher forcing) and scores each next-token position; with
 * `base`, KL against it. Keeps the logits only when asked (the F32 pass).
 */
async function scorePass(
  model: LlamaModel,
  tokens: readonly number[],
  chunk: number,
  keep: boolean,
  base: Pass | null,
  tick: (label: string) => void,
  signal: AbortSignal | undefined,
): Promise<Pass> {
  const V = model.config.nVocab;
  const positions = tokens.length - 1;
  const pass: Pass = {
    logits: keep ? new Float32Array(positions * V) : null,
    argmax: new Int32Array(positions),
    nll: new Float64Array(positions),
    kl: base ? new Float64Array(positions) : null,
  };
  const cache = model.newCache(tokens.length);
  const lp = new Float64Array(V);
  const lpBase = new Float64Array(V);
  for (let start = 0; start < positions; start += chunk) {
    check(signal);
    const n = Math.min(chunk, positions - start);
    const logits = await model.forward(tokens.slice(start, start + n), cache, { logits: 'all' });
    for (let i = 0; i < n; i++) {
      const pos = start + i;
      logSoftmax(logits, i * V, V, lp);
      pass.argmax[pos] = argmax(logits, i * V, V);
      pass.nll[pos] = -lp[tokens[pos + 1]];
      if (pass.logits) pass.logits.set(logits.subarray(i * V, (i + 1) * V), pos * V);
      if (base && pass.kl) {
        // From the baseline's f32 logits, so that equal logits give a KL of exactly 0.
        logSoftmax(base.logits!, pos * V, V, lpBase);
        pass.kl[pos] = klDivergence(lpBase, lp);
      }
    }
    tick(`position ${start + n} of ${positions}`);
  }
  return pass;
}

/**
 * perplexity.cpp's chunks: `nChunk` (default floor(tokens / nCtx)) windows of `nCtx` tokens of
 * the text, the first token of each replaced by BOS where the model adds one.
 */
export function perplexityChunks(tokens: readonly number[], nCtx: number, bos: number | null, nChunk = Math.floor(tokens.length / nCtx)): number[][] {
  return Array.from({ length: nChunk }, (_, c) => {
    const w = tokens.slice(c * nCtx, (c + 1) * nCtx);
    if (bos !== null) w[0] = bos;
    return w;
  });
}

/**
 * Runs `model` over each window from an empty cache (`batch` tokens per forward call) and
 * hands over each scored position (nCtx/2 … nCtx − 2) in order: its logits, its index among
 * all scored positions, the true next token. `endChunk` after each window.
 */
async function windowPass(
  model: LlamaModel,
  windows: readonly number[][],
  batch: number,
  visit: (logits: Float32Array, offset: number, index: number, target: number) => void,
  endChunk: () => void,
  tick: (label: string) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  const V = model.config.nVocab;
  let index = 0;
  for (const [c, w] of windows.entries()) {
    const first = Math.floor(w.length / 2);
    const cache = model.newCache(w.length);
    for (let start = 0; start < w.length; start += batch) {
      check(signal);
      const n = Math.min(batch, w.length - start);
      const logits = await model.forward(w.slice(start, start + n), cache, { logits: 'all' });
      for (let i = 0; i < n; i++) {
        const pos = start + i;
        if (pos >= first && pos < w.length - 1) visit(logits, i * V, index++, w[pos + 1]);
      }
      tick(`chunk ${c + 1} of ${windows.length}, position ${start + n} of ${w.length}`);
    }
    endChunk();
  }
}

/**
 * int8-static's calibration: the F32 model over the calibration text (chunks of at most the
 * context, each from an empty cache), max |x| of every product's input by tensor name.
 */
async function calibrateAbsMax(config: LlamaConfig, weights: WeightProvider, tokenizer: Tokenizer, options: EvalOptions): Promise<Map<string, number>> {
  if (!options.calibrationText) throw new Error('--activations int8-static needs a calibration text');
  const tokens = tokenizer.encode(options.calibrationText);
  const ranges = new Map<string, number>();
  const model = new LlamaModel(config, weights, absMaxRecorder(fastCpuLinear(weights, null), ranges));
  const window = Math.min(config.contextLength, 512);
  for (let start = 0; start < tokens.length; start += window) {
    check(options.signal);
    const part = tokens.slice(start, start + window);
    await model.forward(part, model.newCache(part.length), { logits: 'last' });
  }
  return ranges;
}

function perplexity(nll: Float64Array): number {
  let s = 0;
  for (const v of nll) s += v;
  return Math.exp(s / nll.length);
}

/**
 * The F32 model and each preset's model on the text: perplexity, KL against F32 (mean,
 * median, 99th percentile), top-1 agreement, and a greedy continuation of the prompt.
 */
export async function evaluateModel(checkpoint: ModelIndex, options: EvalOptions): Promise<ModelEval> {
  const model = await forwardModel(checkpoint); // safetensors of other families: converted as an export would
  const presets = options.presets.map(resolveEvalPreset);
  const chunk = Math.max(1, Math.floor(options.chunk ?? 1));
  const config = llamaConfig(model);
  const tokenizer = await modelTokenizer(model);
  const tokens = tokenizer.encode(options.text ?? EVAL_TEXT);
  if (tokens.length < 2) throw new Error('the text is too short to score (it needs at least one token after BOS)');
  if (tokens.some((t) => t >= config.nVocab)) throw new Error(`the tokenizer gives ids beyond the model's ${config.nVocab} embeddings`);
  const promptText = options.prompt ?? EVAL_PROMPT;
  const prompt = tokenizer.encode(promptText);
  const greedyTokens = options.greedyTokens ?? 32;
  const windows = chunkWindows(tokens, config.nVocab, tokenizer.addBos ? tokenizer.bosId : null, options);
  const positions = windows ? windows.length * scoredPerChunk(windows[0].length) : tokens.length - 1;
  const forwardCalls = windows ? windows.length * Math.ceil(windows[0].length / chunk) : Math.ceil(positions / chunk);
  const total = (presets.length + 1) * (forwardCalls + 1) + 1;
  let done = 0;
  const tick = (label: string) => options.onProgress?.({ done: ++done, total, label });

  const base = await readLlamaWeights(model, config);
  if (options.sharedWeights) for (const [name, w] of base) base.set(name, shared(w));
  check(options.signal);
  tick('read the weights');

  const residentMode = RESIDENT_ACTIVATIONS.find((m) => m === (options.activations ?? 'f32'));
  const residentWhy = !options.residentGpu ? 'not on WebGPU' : !residentMode ? `activations ${options.activations} run per product` : null;
  const sequence = windows ? windows[0].length : tokens.length; // the KV cache holds one window
  const resident = new ResidentEval(residentWhy ? null : options.residentGpu!, config, Math.max(sequence, prompt.length + greedyTokens), chunk, residentWhy ?? undefined, residentMode);
  const check_ = () => check(options.signal);
  const makeModel = (provider: WeightProvider, quantized: QuantizedWeights | null, wrap: (l: Linear) => Linear = (l) => l) => {
    // Default: the fast CPU products (WebAssembly SIMD, one ulp of the reference at most), a
    // preset's converted tensors multiplied from their packed blocks (fast-linear.ts).
    // --activations ggml: llama.cpp's sums too, the F32 pass's included (fast-linear.ts Sums; a CPU `linear` is handed them).
    const sums = sumsFor(options.activations);
    const linear = options.linear?.(config, provider, quantized, sums) ?? fastCpuLinear(provider, quantized?.packed ?? null, undefined, sums);
    const release = () => {
      resident.release();
      (linear as { dispose?: () => void } | undefined)?.dispose?.();
    };
    return { model: new LlamaModel(config, provider, wrap(linear)), release };
  };
  const greedy = async (m: LlamaModel): Promise<GreedyResult> => {
    const out = await generateGreedy(m, prompt, greedyTokens, { eosId: tokenizer.eosId, check: () => check(options.signal) });
    return { tokens: out, text: tokenizer.detokenize(out) };
  };
  const residentGreedy = async (): Promise<GreedyResult | null> => {
    const out = await resident.greedy(prompt, greedyTokens, tokenizer.eosId, check_);
    return out && { tokens: out, text: tokenizer.detokenize(out) };
  };

  const activations = options.activations ?? 'f32';
  const staticAbsMax = activations === 'int8-static' ? await calibrateAbsMax(config, mapProvider(base), tokenizer, options) : undefined;
  const makePresetModel = (provider: WeightProvider, quantized: QuantizedWeights) =>
    makeModel(provider, quantized, (l) => activationLinear(activations, l, { weights: provider, typeOf: (name) => quantized.types.get(name), staticAbsMax }));

  const f32Model = makeModel(mapProvider(base), null);
  let f32Pass: Pass;
  let f32Greedy: GreedyResult;
  const nv = logProbRowLength(config.nVocab);
  // With chunking: the F32 pass's log-probs per scored position, compressed as perplexity.cpp keeps them.
  const f32Rows = windows ? new Uint16Array(positions * nv) : null;
  try {
    if (windows && f32Rows) {
      const nll = new Float64Array(positions);
      const visit = (logits: Float32Array, offset: number, k: number, target: number) => {
        nll[k] = compressLogProbs(logits, offset, config.nVocab, target, f32Rows, k * nv);
      };
      const onGpu = await resident.windowPass('F32', mapProvider(base), null, true, windows, visit, () => {}, (l) => tick(`F32: ${l}`), check_);
      if (!onGpu) await windowPass(f32Model.model, windows, chunk, visit, () => {}, (l) => tick(`F32: ${l}`), options.signal);
      f32Pass = { logits: null, argmax: new Int32Array(0), nll, kl: null };
    } else {
      f32Pass =
        (await resident.pass('F32', mapProvider(base), null, tokens, null, (l) => tick(`F32: ${l}`), check_)) ??
        (await scorePass(f32Model.model, tokens, chunk, true, null, (l) => tick(`F32: ${l}`), options.signal));
    }
    f32Greedy = (await residentGreedy()) ?? (await greedy(f32Model.model));
  } finally {
    f32Model.release();
  }
  tick('F32: greedy continuation');
  const fileBytes = model.tensors.reduce((s, t) => s + t.nbytes, 0);
  const params = model.tensors.reduce((s, t) => s + t.shape.reduce((n, d) => n * d, 1), 0);

  const results: PresetEval[] = [];
  for (const { name: preset, mode } of presets) {
    check(options.signal);
    const plan = planForModel(model, config, mode);
    // Packed blocks only: no f32 copy of the converted tensors beside the base (bounded memory on a 0.5B model).
    const quantized = quantizeWeights(base, config, plan, undefined, { dequantize: false });
    if (options.sharedWeights) for (const [name, p] of quantized.packed) quantized.packed.set(name, { ...p, bytes: shared(p.bytes) });
    const m = makePresetModel(quantizedProvider(quantized), quantized);
    let pass: Pass | null = null;
    let report: KlReport | null = null;
    let g: GreedyResult;
    try {
      if (windows && f32Rows) {
        const acc = new KlAccumulator();
        const baseRows = options.klBase?.file.logProbs ?? f32Rows;
        const visit = (logits: Float32Array, offset: number, k: number, target: number) => acc.add(logits, offset, config.nVocab, baseRows, k * nv, target);
        const onGpu = await resident.windowPass(preset, quantizedProvider(quantized), quantized, false, windows, visit, () => acc.endChunk(), (l) => tick(`${preset}: ${l}`), check_);
        if (!onGpu) await windowPass(m.model, windows, chunk, visit, () => acc.endChunk(), (l) => tick(`${preset}: ${l}`), options.signal);
        report = klReport(acc);
      } else {
        pass =
          (await resident.pass(preset, quantizedProvider(quantized), quantized, tokens, f32Pass, (l) => tick(`${preset}: ${l}`), check_)) ??
          (await scorePass(m.model, tokens, chunk, false, f32Pass, (l) => tick(`${preset}: ${l}`), options.signal));
      }
      g = (await residentGreedy()) ?? (await greedy(m.model));
    } finally {
      m.release();
    }
    tick(`${preset}: greedy continuation`);
    if (report) {
      const q = (label: string) => report.kldQuantiles.find((x) => x.label === label)!.value;
      results.push({
        preset,
        bytes: plan.totalBytes,
        bpw: plan.bpw,
        ppl: report.pplQ.value,
        klMean: report.kldMean.value,
        klMedian: q('Median'),
        klP99: q('99.0%'),
        top1Agree: report.sameTop.value,
        kl: new Float64Array(0),
        greedy: g,
        types: Object.fromEntries(quantized.types),
        report,
      });
      continue;
    }
    if (!pass) throw new Error('unreachable: no pass');
    const kl = pass.kl!;
    const sorted = Float64Array.from(kl).sort();
    let agree = 0;
    for (let i = 0; i < positions; i++) if (pass.argmax[i] === f32Pass.argmax[i]) agree++;
    results.push({
      preset,
      bytes: plan.totalBytes,
      bpw: plan.bpw,
      ppl: perplexity(pass.nll),
      klMean: kl.reduce((s, v) => s + v, 0) / positions,
      klMedian: median(sorted),
      klP99: percentile(sorted, 0.99),
      top1Agree: agree / positions,
      kl,
      greedy: g,
      types: Object.fromEntries(quantized.types),
      report: wholeTextReport(pass, f32Pass),
    });
  }
  resident.dispose();
  return {
    model: checkpoint.files.find((f) => f.role === 'gguf' || f.role === 'safetensors')?.source.name ?? '(model)',
    textTokens: tokens.length,
    positions,
    prompt: promptText,
    activations,
    f32: { bytes: fileBytes, bpw: (fileBytes * 8) / Math.max(params, 1), ppl: perplexity(f32Pass.nll), greedy: f32Greedy },
    results,
    forward: resident.note,
    ...(windows
      ? { chunking: { nCtx: windows[0].length, nChunk: windows.length, base: options.klBase?.name ?? 'F32 pass' } }
      : {}),
    ...(windows && f32Rows && options.saveLogits
      ? { logitsFile: { nCtx: windows[0].length, nVocab: config.nVocab, nChunk: windows.length, tokens: Int32Array.from(tokens.slice(0, windows.length * windows[0].length)), logProbs: f32Rows } }
      : {}),
  };
}

/**
 * Without chunking: llama-perplexity's report over every position of the whole text, one
 * chunk, from the passes' own per-position figures (KL in f64 against the uncompressed F32
 * log-probs; the figures above are unchanged).
 */
function wholeTextReport(pass: Pass, base: Pass): KlReport {
  const acc = new KlAccumulator();
  for (let i = 0; i < pass.nll.length; i++) acc.addToken(pass.nll[i], base.nll[i], pass.kl![i], pass.argmax[i] === base.argmax[i]);
  acc.endChunk();
  return klReport(acc);
}

/**
 * The chunk windows of `ctx` or of a base file (checked against the model and the text), or
 * null for the whole-text scoring. perplexity.cpp needs 2·n_ctx tokens of text.
 */
function chunkWindows(tokens: readonly number[], nVocab: number, bos: number | null, options: EvalOptions): number[][] | null {
  if (options.klBase) {
    const { file, name } = options.klBase;
    checkLogitsBase(file, name, nVocab, tokens);
    return perplexityChunks(tokens, file.nCtx, bos, file.nChunk);
  }
  if (options.ctx === undefined) {
    if (options.saveLogits) throw new Error('saving the logits needs a context size (--ctx N): the file holds chunks of n_ctx tokens');
    return null;
  }
  const nCtx = options.ctx;
  if (!Number.isInteger(nCtx) || nCtx < 4) throw new Error(`the context size must be a whole number of at least 4, not ${nCtx}`);
  if (tokens.length < 2 * nCtx) {
    throw new Error(`the text tokenizes to ${tokens.length} tokens; a context of ${nCtx} needs at least ${2 * nCtx} (as llama-perplexity: two chunks)`);
  }
  return perplexityChunks(tokens, nCtx, bos);
}
