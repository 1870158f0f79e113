// `quantlab help COMMAND` and `quantlab COMMAND --help`: every option of the command with what
// it does, its default and examples, as llama-quantize's help has them. The option names come
// from the command's own parseArgs table (HelpRequested), the words from OPTION_HELP below;
// help.test.ts fails on an option without its words, or words for an option that is gone.
import { type CliIO, type Command, HelpRequested } from './command.ts';

export interface OptionHelp {
  /** The value's placeholder (FILE, N, T,T,...); none for a flag. */
  value?: string;
  /** What the option does, one sentence or two. */
  text: string;
  /** What happens without it. */
  default?: string;
}

const BACKEND: OptionHelp = { value: 'cpu|webgpu', text: 'where the codecs run: the CPU, or WebGPU through the webgpu package (Dawn)', default: 'cpu' };
const JSON_OUT: OptionHelp = { text: 'print the result as JSON (the shapes of docs/contracts.md) instead of a table' };

/** Per command: each option's help (by its long name) and examples. */
export const OPTION_HELP: Readonly<Record<string, { options: Readonly<Record<string, OptionHelp>>; examples: readonly string[] }>> = {
  inspect: {
    options: { json: JSON_OUT },
    examples: ['quantlab inspect model.gguf', 'quantlab inspect model-00001-of-00002.safetensors model-00002-of-00002.safetensors --json'],
  },
  quantize: {
    options: {
      output: { value: 'OUT.gguf', text: 'the GGUF file to write (required; -o for short); never one of the inputs' },
      preset: { value: 'P', text: "a llama.cpp file type such as Q4_K_M, Q5_K_S, Q8_0, IQ4_XS: its per-tensor rules, as llama-quantize's FTYPE argument", default: 'one of --preset, --type or --plan is required' },
      type: { value: 'T', text: 'every quantizable tensor in one ggml type (llama-quantize --pure with that file type), e.g. q4_K' },
      'tensor-type': { value: 'REGEX=T', text: "override the type of the tensors whose name matches REGEX (llama-quantize --tensor-type); repeat for more", default: 'none' },
      imatrix: { value: 'FILE', text: "an importance matrix (llama-imatrix's GGUF or legacy .dat) weighting the quantization error per column", default: 'none: uniform weights' },
      plan: { value: 'PLAN.json', text: "the per-tensor types of `quantlab plan -o PLAN.json`, over that plan's base preset" },
      backend: BACKEND,
      threads: { value: 'N', text: 'worker threads that quantize tensors in parallel', default: 'one per core for models of 64 MiB or more, else 1' },
      gptq: { text: 'write GPTQ-optimized Q4_0/Q4_K blocks for the blk.* weights, calibrated on --text (with --type q4_0|q4_K or a preset whose weights are those)' },
      'act-order': { text: "with --gptq: quantize each matrix's columns in order of decreasing activation (GPTQ's act-order)", default: 'columns in order' },
      awq: { text: "fold AWQ's activation-aware scales into the weights (calibrated on --text), then the usual export" },
      smoothquant: { value: 'ALPHA', text: "fold SmoothQuant's scales s = max|X|^ALPHA / max|W|^(1-ALPHA) (ALPHA from 0 to 1, calibrated on --text) into attn_norm/ffn_norm and the q/k/v, gate/up columns, then the usual export" },
      text: { value: 'FILE', text: 'with --gptq, --awq or --smoothquant: the calibration text', default: 'the built-in calibration text' },
      chunk: { value: 'N', text: 'with --gptq, --awq or --smoothquant: tokens per calibration chunk (at least 16)', default: '512, halved until it fits the context and the text' },
    },
    examples: [
      'quantlab quantize model.gguf -o model-Q4_K_M.gguf --preset Q4_K_M',
      "quantlab quantize model.safetensors -o out.gguf --type q4_K --tensor-type 'ffn_down=q6_K' --imatrix imatrix.gguf",
      'quantlab quantize model.gguf -o gptq.gguf --type q4_K --gptq --act-order --text wiki.txt',
    ],
  },
  compare: {
    options: {
      tensor: { value: 'NAME', text: 'the tensor to quantize, as `quantlab inspect` lists it (required); a misspelt name gets the nearest ones' },
      types: { value: 'T,T,...', text: 'the types to compare it in, comma-separated, any of the type table (f16, q8_0, q4_K, iq4_xs, nf4, int4_g32_sym, ...) (required)' },
      pad: { text: "compare a type whose block does not divide the rows on the rows zero-padded to its block (marked *, bytes with the padding, not storable in GGUF as is)", default: 'such a type is refused, as GGUF refuses it' },
      json: JSON_OUT,
      backend: BACKEND,
    },
    examples: ['quantlab compare model.gguf --tensor blk.0.attn_q.weight --types q8_0,q4_K,q6_K', 'quantlab compare stories260K.gguf --tensor blk.0.attn_q.weight --types q4_K,q6_K --pad --json'],
  },
  eval: {
    options: {
      presets: { value: 'P,P,...', text: 'the llama.cpp file types to score against the F32 model, comma-separated (F32 itself allowed) (required)' },
      text: { value: 'FILE', text: 'the text to score perplexity and KL divergence on', default: 'the built-in evaluation text' },
      prompt: { value: 'TEXT', text: "a prompt whose greedy continuation each model prints", default: 'the built-in prompt' },
      tokens: { value: 'N', text: 'tokens of greedy continuation per model (0: none)', default: '32' },
      json: JSON_OUT,
      backend: BACKEND,
      threads: { value: 'N', text: "worker threads for the CPU matrix products (each a range of a weight's rows; same figures as one thread)", default: '1' },
      activations: {
        value: 'f32|ggml|int8|int8-static|fp8_e4m3|llm.int8',
        text: "how each preset's matrix products see their inputs: ggml as llama.cpp's CPU backend rounds them, int8/fp8_e4m3 per token, int8-static per tensor (built-in calibration text), llm.int8 with f16 outlier columns (docs/activations.md)",
        default: 'f32: inputs unrounded',
      },
      lora: { value: 'ADAPTER.gguf|PEFT_DIR', text: 'a LoRA adapter (GGUF as convert_lora_to_gguf.py writes it, or a PEFT directory) added in f32 to the baseline and to every preset\'s model: y = W·x + scale·B·(A·x) (docs/lora.md)', default: 'no adapter' },
      'lora-scale': { value: 'S', text: "the adapter's scale, times alpha / rank (llama.cpp's --lora-scaled)", default: '1' },
      ctx: { value: 'N', text: "score as llama-perplexity: the text cut into chunks of N tokens (BOS first), the second half of each scored, and print its full KL report per preset (docs/eval.md)", default: 'every position of the whole text' },
      'kl-divergence-base': { value: 'FILE', text: "a llama-perplexity _logits_ file (--kl-divergence-base) to score the presets against; with --save-logits, where to write the F32 pass's", default: 'the F32 pass' },
      'save-logits': { text: 'write --kl-divergence-base FILE from the F32 pass (needs --ctx N) instead of reading it' },
    },
    examples: ['quantlab eval model.gguf --presets Q8_0,Q4_K_M,Q2_K', 'quantlab eval model.gguf --presets Q8_0 --activations ggml', 'quantlab eval model.gguf --presets F32 --ctx 128 --text wiki.txt --kl-divergence-base base.kld --save-logits', 'quantlab eval model.gguf --presets Q4_K_M --text wiki.txt --kl-divergence-base base.kld', 'quantlab eval model.gguf --presets Q4_K_M --text wiki.txt --tokens 0 --json --backend webgpu'],
  },
  plan: {
    options: {
      'target-size': { value: 'SIZE', text: 'the file size to fit, e.g. 4.5GB, 700MiB (one of --target-size or --target-bpw is required)' },
      'target-bpw': { value: 'BPW', text: 'the average bits per weight to fit, e.g. 4.5' },
      imatrix: { value: 'FILE', text: 'an importance matrix for the quantizations the plan measures', default: 'none: uniform weights' },
      damage: { value: 'kl|error', text: "how a tensor's damage is measured: KL divergence of the output with that tensor alone quantized, or its weighted quantization error", default: 'kl where the forward pass runs, else error' },
      'scan-cache': { value: 'FILE', text: 'read the scan (damage per tensor and type) from FILE when it exists, and save it there after the run', default: 'no cache' },
      output: { value: 'PLAN.json', text: 'also write the plan as JSON for `quantlab quantize --plan` (-o for short)', default: 'not written' },
      json: JSON_OUT,
    },
    examples: ['quantlab plan model.gguf --target-size 4.5GB -o plan.json', 'quantlab plan model.gguf --target-bpw 3.5 --imatrix imatrix.gguf --damage error --json'],
  },
  calibrate: {
    options: {
      text: { value: 'FILE', text: 'the calibration text run through the model', default: 'the built-in calibration text' },
      chunk: { value: 'N', text: 'tokens per chunk (at least 16), as llama-imatrix --chunk', default: '512, halved until it fits the context and the text' },
      output: { value: 'IMATRIX.gguf', text: "write llama-imatrix's importance matrix (GGUF) there (-o for short; this or --compare is required)" },
      json: JSON_OUT,
      compare: { text: 'compare RTN, RTN with the imatrix, AWQ and GPTQ at ~4 bits on held-out text instead of (or besides) writing the matrix' },
      'held-out': { value: 'FILE', text: 'with --compare: the text the methods are scored on', default: 'the built-in held-out text' },
      group: { value: '32|64|128', text: 'with --compare: the INT4 group size of every method', default: '32' },
      'act-order': { text: "with --compare: GPTQ in act-order", default: 'columns in order' },
      backend: { ...BACKEND, text: 'with --compare: where GPTQ runs (the importance matrix is computed on the CPU)' },
      'activation-stats': { text: "instead: every blk.* linear's per-channel max |x| and per-token range over the text, its weights' per-channel max |W|, the outlier channels (docs/activations.md)" },
      'smoothquant-sweep': { text: "instead: W8A8 (Q8_0 weights, per-token INT8 inputs) KL to F32 on the eval text without SmoothQuant and at alpha 0, 0.1, ..., 1" },
    },
    examples: [
      'quantlab calibrate model.gguf --text wiki.txt -o imatrix.gguf',
      'quantlab calibrate model.gguf --compare --group 128 --act-order --backend webgpu --json',
      'quantlab calibrate model.gguf --activation-stats --json',
      'quantlab calibrate model.gguf --smoothquant-sweep',
    ],
  },
  lora: {
    options: {
      output: { value: 'OUT.gguf', text: 'merge: the merged model to write; convert: the GGUF adapter to write from a PEFT directory (-o for short)' },
      type: { value: 'T', text: 'merge: quantize the merged model to this ggml type (as quantize --type)', default: 'the merged model as llama-export-lora writes it (F32 where the base is F32, F16 otherwise)' },
      preset: { value: 'P', text: 'merge: quantize the merged model with this llama.cpp file type (as quantize --preset)' },
      'lora-scale': { value: 'S', text: "merge: the adapter's scale, times alpha / rank (llama-export-lora --lora-scaled)", default: '1' },
      base: { value: 'FILE', text: 'convert: the base GGUF the adapter belongs to (its architecture, and the heads llama q/k rows are permuted by)' },
      peft: { value: 'DIR', text: 'convert: write the GGUF adapter as PEFT files (adapter_model.safetensors, adapter_config.json) into DIR' },
    },
    examples: [
      'quantlab lora merge model.gguf adapter.gguf -o merged-q4_K_M.gguf --preset Q4_K_M',
      'quantlab lora convert adapter.gguf --base model.gguf --peft adapter-peft/',
      'quantlab lora convert adapter-peft/ --base model.gguf -o adapter.gguf',
    ],
  },
  train: {
    options: {
      output: { value: 'OUT.gguf', text: 'the GGUF of the trained model to write (required; -o for short): the last step\'s blocks, written to OUT.part and renamed when complete; with --lora, the GGUF LoRA adapter' },
      qat: { value: 'TYPE', text: 'quantization-aware training for every quantizable tensor in this ggml type (as quantize --type), e.g. q4_0, q2_K', default: 'one of --qat, --preset or --lora is required' },
      preset: { value: 'P', text: "quantization-aware training for a llama.cpp file type's per-tensor types (as quantize --preset), e.g. Q4_K_M" },
      steps: { value: 'N', text: 'optimizer steps (AdamW, one sequence of --seq tokens each; required)' },
      lr: { value: 'X', text: 'peak learning rate of the cosine schedule (warmup: a tenth of the steps); a rate that makes the loss NaN stops there and writes nothing', default: '1e-4 (QAT), 1e-3 (--lora)' },
      text: { value: 'FILE', text: 'the training text (UTF-8)', default: "quantlab's built-in calibration stories" },
      loss: { value: 'kl|ce', text: "kl: distillation, KL(F32 model ‖ QAT model) on the text; ce: cross-entropy on the text's next tokens", default: 'kl' },
      seq: { value: 'N', text: 'tokens per training sequence (BOS first), at most the context', default: '64' },
      seed: { value: 'N', text: 'the seed of the sequences\' order (with --lora also of A\'s init and the dropout)', default: '0' },
      json: { text: 'print the summary as JSON: loss per step, held-out KL/PPL of F32, PTQ (rounding) and QAT (with --lora: of the quantized base alone and base + adapter)' },
      lora: { value: 'RANK', text: 'QLoRA: train LoRA adapters of this rank over a frozen quantized base (--base-type); -o writes the GGUF LoRA adapter llama.cpp loads' },
      'base-type': { value: 'nf4|q4_K|TYPE', text: "the frozen base's type with --lora: the decoder's linear weights held as its blocks (rows must fit its blocks)" },
      alpha: { value: 'A', text: 'LoRA alpha with --lora (scale alpha / rank)', default: 'the rank' },
      targets: { value: 'M,...', text: 'the PEFT modules the adapters sit on with --lora: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj', default: 'q_proj,v_proj' },
      dropout: { value: 'P', text: "LoRA dropout on the adapters' input while training with --lora (seeded by --seed)", default: '0' },
      peft: { value: 'DIR', text: 'with --lora, also write the PEFT files (adapter_model.safetensors, adapter_config.json) into DIR' },
      backend: { ...BACKEND, text: "where the steps and held-out scores run: cpu (f64) or webgpu (f32 kernels, the CPU's losses within 1e-3; --json adds the GPU's counters; --dropout needs cpu)" },
    },
    examples: ['quantlab train model.gguf --qat q4_0 --steps 100 -o model-qat-q4_0.gguf', 'quantlab train model.gguf --qat q4_0 --steps 100 --backend webgpu --json -o model-qat-q4_0.gguf', 'quantlab train model.gguf --lora 8 --base-type nf4 --targets q_proj,v_proj --steps 200 --lr 1e-3 --peft adapter-peft -o adapter.gguf', 'quantlab train model.gguf --preset Q2_K --steps 200 --lr 2e-4 --text stories.txt --json -o model-qat-Q2_K.gguf'],
  },
};

/** The command's options as its run() parses them (it throws HelpRequested on --help before doing anything). */
export async function commandOptions(command: Command): Promise<Record<string, { type: string; short?: string; multiple?: boolean }>> {
  const silent: CliIO = { stdout: () => {}, stderr: () => {} };
  try {
    await command.run(['--help'], silent);
  } catch (error) {
    if (error instanceof HelpRequested) return error.options as Record<string, { type: string; short?: string; multiple?: boolean }>;
    throw error;
  }
  throw new Error(`quantlab ${command.name}: --help did not reach its option parser`);
}

/** `quantlab help COMMAND`: usage, summary, every option with its value, words and default, examples. */
export async function commandHelp(command: Command): Promise<string> {
  const options = await commandOptions(command);
  const docs = OPTION_HELP[command.name];
  const rows = Object.entries(options).map(([name, spec]) => {
    const doc = docs?.options[name];
    const value = spec.type === 'string' ? ` ${doc?.value ?? 'VALUE'}` : '';
    const flag = `${spec.short ? `-${spec.short}, ` : ''}--${name}${value}${spec.multiple ? ' (repeatable)' : ''}`;
    const text = doc?.text ?? '(not described yet)';
    return { flag, lines: [text, ...(doc?.default ? [`default: ${doc.default}`] : [])] };
  });
  const width = Math.min(30, Math.max(...rows.map((r) => r.flag.length))) + 2;
  const body = rows.flatMap(({ flag, lines }) => {
    const [first, ...rest] = lines;
    const head = flag.length + 2 > width ? [`  ${flag}`, `  ${''.padEnd(width)}${first}`] : [`  ${flag.padEnd(width)}${first}`];
    return [...head, ...rest.map((l) => `  ${''.padEnd(width)}${l}`)];
  });
  const help = ['  -h, --help'.padEnd(width + 2) + 'print this help and exit'];
  const examples = (docs?.examples ?? []).map((e) => `  ${e}`);
  return [`usage: ${command.usage}`, '', `${command.summary}.`, '', 'options:', ...body, ...help, ...(examples.length ? ['', 'examples:', ...examples] : []), ''].join('\n');
}
