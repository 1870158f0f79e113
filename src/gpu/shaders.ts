// The only place that loads .wgsl text (house rule 5). Shaders are composed by
// concatenation, lib files + codec file + kernel file; per-pipeline values are WGSL
// `override` constants set at pipeline creation, never string templating.
//
// Under Vite (the app, vitest) the files come from import.meta.glob, inlined at build
// time. Plain Node (the CLI under tsx) has no import.meta.glob: there node-gpu.ts reads
// shaders/ from disk and calls registerShaderSources().

import { iq1sGrid, iq2sGrid, iq2xsGrid, iq2xxsGrid, iq3sGrid, iq3xxsGrid, type IqGrid } from '../quant/codecs/iquants-grid.ts';

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

/**
 * shaders/generated/iq-grids.wgsl, made here from the one TS table (iquants-grid.ts), never
 * written by hand: per i-quant grid a const array of its points' dequantization values,
 * signed bytes little-endian (2 words per 8-dim point, 1 per 4-dim), as ggml-common.h's
 * iq*_grid tables, and <name>_point(p) returning point p's words.
 */
const GENERATED: Record<string, () => string> = {
  'generated/iq-grids.wgsl': () =>
    [
      iqGridWgsl('IQ2XXS', iq2xxsGrid()),
      iqGridWgsl('IQ2XS', iq2xsGrid()),
      iqGridWgsl('IQ2S', iq2sGrid()),
      iqGridWgsl('IQ1S', iq1sGrid()),
      iqGridWgsl('IQ3XXS', iq3xxsGrid()),
      iqGridWgsl('IQ3S', iq3sGrid()),
    ].join('\n'),
};
const generatedText = new Map<string, string>();

function iqGridWgsl(name: string, grid: IqGrid): string {
  const words = new Uint32Array(new Int8Array(grid.values).buffer);
  const perPoint = grid.dims / 4;
  const list = Array.from(words, (w) => `${w}u`).join(',');
  const ret = perPoint === 2 ? 'vec2<u32>' : 'u32';
  const body = perPoint === 2 ? `vec2<u32>(${name}_GRID[2u * p], ${name}_GRID[2u * p + 1u])` : `${name}_GRID[p]`;
  return `const ${name}_GRID = array<u32, ${words.length}>(${list});\nfn ${name.toLowerCase()}_point(p: u32) -> ${ret} {\n  return ${body};\n}`;
}

/** The text of shaders/<path>. */
export function shaderSource(path: string): string {
  const generate = GENERATED[path];
  if (generate) {
    let text = generatedText.get(path);
    if (text === undefined) generatedText.set(path, (text = generate()));
    return text;
  }
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

/**
 * Whether codecs/<wgsl>.wgsl has an encoder (fn quantize_block). A decode-only codec (the
 * sub-4-bit i-quants, whose neighbour searches do not fit a workgroup: docs/formats.md)
 * leaves encoding to the CPU codec (src/gpu/quantize.ts).
 */
export function hasCodecEncoder(wgsl: string): boolean {
  return hasCodecShader(wgsl) && /^fn quantize_block\(/m.test(shaderSource(`codecs/${wgsl}.wgsl`));
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

/** Codecs that read an i-quant grid (lib/iquant.wgsl, generated/iq-grids.wgsl). */
const IQ_GRID_CODECS = new Set(['iq1_s', 'iq1_m', 'iq2_xxs', 'iq2_xs', 'iq2_s', 'iq3_xxs', 'iq3_s']);

/** The libraries of codec `codec`: CODEC_LIBS, and the grids for the i-quants that use them. */
export function codecLibs(codec: string): string[] {
  return IQ_GRID_CODECS.has(codec) ? [...CODEC_LIBS, 'lib/iquant.wgsl', 'generated/iq-grids.wgsl'] : [...CODEC_LIBS];
}

export type CodecKernel = 'quantize' | 'dequantize';

/** lib files + codecs/<codec>.wgsl + kernels/<kernel>.wgsl. */
export function codecKernelSource(kernel: CodecKernel, codec: string): string {
  return composeShader([...codecLibs(codec), `codecs/${codec}.wgsl`, `kernels/${kernel}.wgsl`]);
}

export function statsKernelSource(): string {
  return composeShader(['kernels/stats.wgsl']);
}
