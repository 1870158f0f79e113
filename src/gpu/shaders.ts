// The only place that loads .wgsl text (house rule 5). Shaders are composed by
// concatenation, lib files + codec file + kernel file; per-pipeline values are WGSL
// `override` constants set at pipeline creation, never string templating.
//
// Under Vite (the app, vitest) the files come from import.meta.glob, inlined at build
// time. Plain Node (the CLI under tsx) has no import.meta.glob: there node-gpu.ts reads
// shaders/ from disk and calls registerShaderSources().

let sources: Map<string, string> | undefined;

function fromViteGlob(): Map<string, string> | undefined {
  try {
    // Vite rewrites this call into an object of the files' text; elsewhere
    // import.meta.glob is undefined and calling it throws.
    const files = import.meta.glob('../../shaders/**/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<
      string,
      string
    >;
    return new Map(Object.entries(files).map(([k, v]) => [k.replace(/^(\.\.\/)+shaders\//, ''), v]));
  } catch {
    return undefined;
  }
}

sources = fromViteGlob();

/** Install the WGSL sources (Node without Vite), keyed by path under shaders/: 'lib/f16.wgsl'. */
export function registerShaderSources(files: Record<string, string>): void {
  sources = new Map(Object.entries(files));
}

export function hasShaderSources(): boolean {
  return sources !== undefined && sources.size > 0;
}

/** The text of shaders/<path>. */
export function shaderSource(path: string): string {
  if (!sources) {
    throw new Error(
      'WGSL sources are not loaded: in Node without Vite, create the GPU with createNodeGpu() (src/gpu/node-gpu.ts)',
    );
  }
  const text = sources.get(path);
  if (text === undefined) throw new Error(`no shader shaders/${path}`);
  return text;
}

/** Whether shaders/codecs/<wgsl>.wgsl exists, i.e. the GPU can run this type. */
export function hasCodecShader(wgsl: string): boolean {
  return sources?.has(`codecs/${wgsl}.wgsl`) ?? false;
}

/** Concatenate shader files into one module, each under a marker naming its file. */
export function composeShader(paths: readonly string[]): string {
  return paths.map((p) => `// ---- shaders/${p} ----\n${shaderSource(p)}`).join('\n');
}

/**
 * Libraries every codec may use (matmul.ts composes them too). lib/kquant.wgsl: the K-quant
 * codecs' exact float ops and scale searches (needs rounding.wgsl and bytes.wgsl).
 */
export const CODEC_LIBS = [
  'lib/rounding.wgsl',
  'lib/f16.wgsl',
  'lib/bf16.wgsl',
  'lib/bytes.wgsl',
  'lib/kquant.wgsl',
  // Exact C float * and + (subnormals included), then what codecs of one family share:
  // IQ4_NL/IQ4_XS's scale search, TQ1_0/TQ2_0's trits, NF4/FP4 (and their _dq forms), INT4.
  'lib/softfloat.wgsl',
  'lib/iq4.wgsl',
  'lib/ternary.wgsl',
  'lib/bnb4.wgsl',
  'lib/int4.wgsl',
];

export type CodecKernel = 'quantize' | 'dequantize';

/** lib files + codecs/<codec>.wgsl + kernels/<kernel>.wgsl. */
export function codecKernelSource(kernel: CodecKernel, codec: string): string {
  return composeShader([...CODEC_LIBS, `codecs/${codec}.wgsl`, `kernels/${kernel}.wgsl`]);
}

export function statsKernelSource(): string {
  return composeShader(['kernels/stats.wgsl']);
}
