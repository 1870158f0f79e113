// `quantlab eval FILE... --presets P,P,... [--text FILE] [--json] [--backend cpu|webgpu]`:
// what each preset does to the model's predictions (src/model/eval.ts), on the CPU
// reference forward pass or (--backend webgpu) with every matrix product on the GPU, in
// each tensor's packed blocks (src/model/gpu-linear.ts).
import { didYouMean } from '../formats/suggest.ts';
import { resolveEvalPreset, type ModelEval } from '../model/eval.ts';
import { ACTIVATION_MODES, parseActivationMode, type ActivationMode } from '../model/activations.ts';
import { PRESETS } from '../quant/presets.ts';
import { evalJob } from '../engine/jobs/eval.ts';
import { uncancelled } from '../engine/jobs/job.ts';
import { type BackendChoice, type Command, parseBackend, parseCommandLine, UsageError } from './command.ts';
import { openFiles } from './inspect.ts';
import { toJson } from './json.ts';
import { gpuField } from './gpu-json.ts';
import { openSession } from './session.ts';
import { readTextFile } from './text.ts';
import { ForwardPool } from './forward-pool.ts';
import { KL_OPTIONS, klEvalOptions, klJson, klText, saveKlBase } from './eval-kl.ts';
import type { WeightProvider } from '../model/families/linear.ts';
import type { QuantizedWeights } from '../model/weights.ts';
import type { Sums } from '../model/fast-linear.ts';

const DEFAULT_GREEDY_TOKENS = 32;

/** Where the products ran: the backend, and on WebGPU how many ran on the GPU and on the CPU (types without a GPU matmul). */
export interface EvalRun {
  backend: BackendChoice;
  products?: { gpu: number; cpu: number };
}

export function parsePresets(list: string | undefined): string[] {
  if (!list) throw new UsageError('--presets P,P,... is required');
  const names = list.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new UsageError('--presets P,P,... is required');
  return names.map((n) => {
    try {
      return resolveEvalPreset(n).name;
    } catch {
      const names = ['F32', ...PRESETS.map((x) => x.name)];
      throw new UsageError(`unknown preset '${n}'${didYouMean(n, names)} (one of ${names.join(' ')})`);
    }
  });
}

export function parseActivations(name: string | undefined): ActivationMode {
  if (name === undefined) return 'f32';
  try {
    return parseActivationMode(name);
  } catch {
    throw new UsageError(`unknown --activations mode '${name}'${didYouMean(name, [...ACTIVATION_MODES])} (one of ${ACTIVATION_MODES.join(' ')})`);
  }
}

export const evalCommand: Command = {
  name: 'eval',
  summary: "score the F32 model and each preset's model on a text: perplexity, KL divergence, top-1 agreement",
  usage: 'quantlab eval FILE... --presets P,P,... [--text FILE] [--prompt TEXT] [--tokens N] [--json] [--backend cpu|webgpu] [--activations f32|ggml|int8|int8-static|fp8_e4m3|llm.int8] [--threads N] [--lora ADAPTER.gguf|PEFT_DIR [--lora-scale S]] [--ctx N] [--kl-divergence-base FILE [--save-logits]]',
  async run(args, io) {
    const { positionals, values } = parseCommandLine(args, {
          presets: { type: 'string' },
          ...KL_OPTIONS,
          text: { type: 'string' },
          prompt: { type: 'string' },
          tokens: { type: 'string' },
          json: { type: 'boolean' },
          backend: { type: 'string' },
          threads: { type: 'string' },
          activations: { type: 'string' },
          lora: { type: 'string' },
          'lora-scale': { type: 'string' },
        });
    const presets = parsePresets(values.presets);
    const backend = parseBackend(values.backend);
    const activations = parseActivations(values.activations);
    const greedyTokens = values.tokens === undefined ? DEFAULT_GREEDY_TOKENS : Number(values.tokens);
    if (!Number.isInteger(greedyTokens) || greedyTokens < 0) throw new UsageError(`--tokens must be a whole number, not '${values.tokens}'`);
    const threads = values.threads === undefined ? 1 : Number(values.threads);
    if (!Number.isInteger(threads) || threads < 1) throw new UsageError(`--threads must be a positive integer, not '${values.threads}'`);
    const text = values.text === undefined ? undefined : await readTextFile(values.text);
    const kl = await klEvalOptions(values); // --ctx, --kl-divergence-base, --save-logits (eval-kl.ts)
    const session = await openSession(backend);
    await session.load(await openFiles(positionals));
    // --threads N: the CPU products on N worker threads, the weights in shared memory (forward-pool.ts).
    const pool = threads > 1 ? await ForwardPool.start(threads) : null;
    const cpu = pool ? { linear: (_c: unknown, weights: WeightProvider, q: QuantizedWeights | null, sums: Sums) => pool.linear(weights, q?.packed ?? null, sums), sharedWeights: true } : {};
    // --lora: the adapter around every model's products, the baseline's included (docs/lora.md).
    if (values.lora !== undefined) {
      if (backend === 'webgpu') throw new UsageError('--lora runs on the CPU only (leave out --backend webgpu)');
      const { loadAdapterForProducts, parseLoraScale } = await import('./lora.ts');
      const { loraLinear } = await import('../train/lora/apply.ts');
      const { fastCpuLinear } = await import('../model/fast-linear.ts');
      const adapter = await loadAdapterForProducts(values.lora, session.loadedModel());
      const scale = parseLoraScale(values['lora-scale']);
      const inner = cpu.linear;
      Object.assign(cpu, {
        linear: (_c: unknown, weights: WeightProvider, q: QuantizedWeights | null, sums: Sums) =>
          loraLinear(inner ? inner(_c, weights, q, sums) : fastCpuLinear(weights, q?.packed ?? null, undefined, sums), adapter, scale),
      });
    } else if (values['lora-scale'] !== undefined) throw new UsageError('--lora-scale needs --lora');
    let job;
    try {
      job = await evalJob(session, { presets, text, prompt: values.prompt, greedyTokens, activations, ...kl, ...cpu }, uncancelled());
    } finally {
      await pool?.close();
    }
    const { backend: ran, products, gpu, ...result } = job;
    const run: EvalRun = { backend: ran, products: products ?? undefined };
    // `backend` in the JSON when --backend is given (the docs/contracts.md shape stays as it is without it).
    const saved = await saveKlBase(values, result);
    io.stdout(values.json ? `${toJson({ ...evalJson(result, values.backend === undefined ? undefined : run), ...klJson(result, saved), ...gpuField(gpu) })}\n` : evalText(result, run) + klText(result, saved));
    return 0;
  },
};

/**
 * The `eval --json` shape of docs/contracts.md; extensions: `activations` (the mode the presets ran under), `f32_ppl` (the F32 model's
 * perplexity on the same text), `greedy` (prompt and continuation per model); with `run`
 * (`--backend` given), `backend` (cpu or webgpu) and on WebGPU `products` (matrix
 * products run on the GPU and on the CPU, for types without a GPU matmul).
 */
export function evalJson(r: Omit<ModelEval, 'results'> & { results: Omit<ModelEval['results'][number], 'kl'>[] }, run?: EvalRun) {
  return {
    model: r.model,
    text_tokens: r.textTokens,
    results: r.results.map((p) => ({
      preset: p.preset,
      bytes: p.bytes,
      bpw: p.bpw,
      ppl: p.ppl,
      kl_mean: p.klMean,
      kl_median: p.klMedian,
      kl_p99: p.klP99,
      top1_agree: p.top1Agree,
    })),
    f32_ppl: r.f32.ppl,
    greedy: { prompt: r.prompt, F32: r.f32.greedy.text, ...Object.fromEntries(r.results.map((p) => [p.preset, p.greedy.text])) },
    activations: r.activations,
    ...(run ? { backend: run.backend, ...(run.products ? { products: run.products } : {}) } : {}),
  };
}

function evalText(r: Parameters<typeof evalJson>[0], run: EvalRun = { backend: 'cpu' }): string {
  const where = run.products ? `backend ${run.backend} (${run.products.gpu} matrix products on the GPU, ${run.products.cpu} on the CPU)` : `backend ${run.backend}`;
  const head =
    `${r.model}: ${r.textTokens} tokens of text (${r.positions} positions scored), ${where}\n` +
    `activations: ${r.activations}${r.activations === 'f32' ? '' : ' (the presets\' products; the baseline runs in f32)'}\n` +
    `baseline (the weights as stored, run in f32): ${r.f32.bytes} bytes, ${r.f32.bpw.toFixed(2)} bpw, ppl ${r.f32.ppl.toFixed(4)}\n\n`;
  const cols = ['preset', 'bytes', 'bpw', 'ppl', 'kl_mean', 'kl_median', 'kl_p99', 'top1_agree'];
  const rows = r.results.map((p) => [
    p.preset,
    String(p.bytes),
    p.bpw.toFixed(3),
    p.ppl.toFixed(4),
    p.klMean.toExponential(3),
    p.klMedian.toExponential(3),
    p.klP99.toExponential(3),
    `${(100 * p.top1Agree).toFixed(1)}%`,
  ]);
  const widths = cols.map((c, i) => Math.max(c.length, ...rows.map((x) => x[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const width = Math.max(8, ...r.results.map((p) => p.preset.length));
  const greedy = [`greedy continuation of ${JSON.stringify(r.prompt)}:`, `  ${'baseline'.padEnd(width)}  ${JSON.stringify(r.f32.greedy.text)}`];
  for (const p of r.results) greedy.push(`  ${p.preset.padEnd(width)}  ${JSON.stringify(p.greedy.text)}`);
  return `${head}${[line(cols), ...rows.map(line)].join('\n')}\n\n${greedy.join('\n')}\n`;
}
