// Quantized matrix products on the GPU: y = W x (matvec, the decode case) and Y = W X
// (matmul, the prefill case), W read in its packed blocks and decoded by the type's own
// WGSL codec (shaders/kernels/matmul.wgsl), so any type with a codec has a matmul.
// Three kernels share the bindings and dispatch (MatmulKernel below): the generic one, the
// cooperative matvec and the tiled prefill matmul; matmulConfig picks one.
//
// Layouts (as src/quant/matmul.ts, the CPU reference): W is `rows` rows of `cols` values
// in the type's blocks, rows back to back (GGUF's layout); X is n vectors of `cols` f32,
// token t at [t * cols, (t + 1) * cols); Y is n vectors of `rows` f32, token t, row r at
// t * rows + r (ggml's and PyTorch's x @ W^T layout).
//
// Large W: the work is split into chunks of whole rows (and, for many tokens, of whole
// tokens) whose buffers fit maxStorageBufferBindingSize, maxBufferSize and
// MAX_MATMUL_CHUNK_BYTES and whose dispatch fits maxComputeWorkgroupsPerDimension. Rows
// and tokens are independent and each output's summation order depends only on the
// kernel configuration, so a split product is bit-identical to an unsplit one.
import { quantType, type QuantType } from '../quant/types.ts';
import { productError, type ProductError } from '../quant/matmul.ts';
import type { GpuContext } from './device.ts';
import { getPipeline } from './pipelines.ts';
import { codecLibs, composeShader, hasCodecShader } from './shaders.ts';
import { withErrorScopes } from './dispatch.ts';
import { quantizeOnGpu } from './quantize.ts';
import { mapRead, submit } from './counters.ts';

/** Cap on one chunk's buffers (W, X or Y): bounds the GPU memory one product holds. */
export const MAX_MATMUL_CHUNK_BYTES = 128 * 1024 * 1024;
/** shaders/kernels/matmul.wgsl's MM_MAX_ACC: outputs (rows x tokens) per workgroup tile. */
const MAX_ACC = 16;
/** Tokens per tile in the prefill case; the rest of MAX_ACC goes to rows. */
const MATMUL_TOKENS_PER_WG = 8;
const MATMUL_ROWS_PER_WG = 2;
/** Rows per workgroup in the decode case on a hardware GPU (x is re-read from cache for each). */
const MATVEC_ROWS_PER_WG = 2;
/** Hardware GPUs: workgroup size a power of two near the blocks in a row, within these bounds. */
const MIN_WG_SIZE = 32;
const MAX_WG_SIZE = 128;
/**
 * Software adapters (SwiftShader: a CPU, barriers and idle lanes are expensive): few, fat
 * workgroups. Measured on SwiftShader, 1024 x 1024 q4_0 matvec: 16 x 8 rows 81 Melem/s,
 * 32 x 4 60, 64 x 4 49, 128 x 2 27.
 */
const FALLBACK_WG_SIZE = 16;
const FALLBACK_MATVEC_ROWS_PER_WG = 8;

/**
 * The kernels (docs/webgpu.md, "Matrix product kernels"):
 *  - 'generic' (kernels/matmul.wgsl): one invocation per block, any type with a codec; the
 *    fallback for every case the others do not take;
 *  - 'coop' (kernels/matmul_coop.wgsl): the cooperative matvec, several lanes per block,
 *    for fewer than TILED_MIN_TOKENS tokens and the types of COOP_CODECS;
 *  - 'tiled' (kernels/matmul_tiled.wgsl): the register-tiled prefill matmul, W tile decoded
 *    once into workgroup memory, for TILED_MIN_TOKENS tokens or more, any type with a codec
 *    whose tile fits the workgroup memory.
 */
export type MatmulKernel = 'generic' | 'coop' | 'tiled';

export interface MatmulOptions {
  /**
   * Reduce with subgroup operations when the device has 'subgroups' and the WGSL
   * 'subgroup_id' extension (default true); false forces the workgroup-memory tree.
   */
  subgroups?: boolean;
  /**
   * 'auto' (default): the best kernel this type, token count and device allow; a kernel
   * name forces it ('generic' always works; 'coop' and 'tiled' throw where they cannot run).
   */
  kernel?: MatmulKernel | 'auto';
}

/** One kernel configuration (override constants and variant). */
export interface MatmulConfig {
  readonly wgSize: number;
  readonly rowsPerWg: number;
  readonly tokensPerWg: number;
  readonly subgroups: boolean;
  /** Which kernel (absent: 'generic'). */
  readonly kernel?: MatmulKernel;
  /** 'tiled': blocks per K step, and the register tile (rows x tokens) of one invocation. */
  readonly stepBlocks?: number;
  readonly regRows?: number;
  readonly regTokens?: number;
}

/** Codecs with lanes for the cooperative matvec (shaders/kernels/matmul_coop_<codec>.wgsl). */
export const COOP_CODECS: ReadonlySet<string> = new Set(['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0', 'iq4_nl', 'q2_k', 'q4_k', 'q5_k', 'q6_k']);
/** Lanes of 32-value blocks with two values a byte: their x side is kernels/matmul_coop_nibbles.wgsl. */
const COOP_NIBBLE_LANES: ReadonlySet<string> = new Set(['q4_0', 'q4_1', 'q5_0', 'q5_1', 'iq4_nl']);
/** Lanes that use a codec library beyond lib/rounding.wgsl and lib/f16.wgsl: composed with all of them. */
const COOP_WITH_CODEC_LIBS: ReadonlySet<string> = new Set(['iq4_nl']);
/** From this many tokens on, products take the tiled kernel; below, the matvec kernels. */
export const TILED_MIN_TOKENS = 8;
/** Cooperative matvec rows per workgroup (x held in registers across them). */
const COOP_ROWS_PER_WG = 4;
const COOP_WG_SIZE = 64;
/** Software adapters: measured on SwiftShader (see docs/measurements.md). */
const COOP_FALLBACK_ROWS_PER_WG = 16;
const COOP_FALLBACK_WG_SIZE = 16;
/** Tiled kernel: values per K step aimed at (whole blocks), and the tile shapes tried, largest first. */
const TILED_STEP_VALUES = 64;
const TILE_SHAPES = [
  { rows: 16, tokens: 16, regRows: 2, regTokens: 2 },
  { rows: 8, tokens: 8, regRows: 2, regTokens: 1 },
] as const;

function resolveType(type: QuantType | string): QuantType {
  const t = typeof type === 'string' ? quantType(type) : type;
  if (!t) throw new RangeError(`unknown quantization type ${String(type)}`);
  return t;
}

/** Whether W of this type can be multiplied on the GPU: a WGSL codec and a plain block layout. */
export function gpuMatmulSupportsType(type: QuantType | string): boolean {
  const t = typeof type === 'string' ? quantType(type) : type;
  return t !== undefined && hasCodecShader(t.wgsl) && t.layout === 'blocks';
}

function requireMatmulType(type: QuantType | string, what: string): QuantType {
  const t = resolveType(type);
  if (!hasCodecShader(t.wgsl)) throw new RangeError(`${what} ${t.id}: no WGSL codec yet (shaders/codecs/${t.wgsl}.wgsl)`);
  if (t.layout !== 'blocks') throw new RangeError(`${what} ${t.id}: not a plain block layout (per-tensor or per-row data)`);
  return t;
}

/** Whether this device can run the subgroup variant. */
export function canUseSubgroups(gpu: GpuContext): boolean {
  return gpu.features.has('subgroups') && (gpu.wgslLanguageFeatures?.has('subgroup_id') ?? false);
}

function floorPow2(n: number): number {
  return 2 ** Math.floor(Math.log2(Math.max(1, n)));
}

function ceilPow2(n: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, n)));
}

/** Whether the cooperative matvec has lanes for this type. */
export function coopSupportsType(type: QuantType): boolean {
  return COOP_CODECS.has(type.wgsl) && type.layout === 'blocks';
}

function coopConfig(gpu: GpuContext, type: QuantType, options: MatmulOptions): MatmulConfig | undefined {
  if (!coopSupportsType(type)) return undefined;
  const { limits } = gpu;
  const maxInv = floorPow2(Math.min(limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX));
  const lanes = type.blockSize === 256 ? 16 : 4;
  const software = gpu.isFallbackAdapter;
  const wgSize = Math.min(maxInv, Math.max(lanes, software ? COOP_FALLBACK_WG_SIZE : COOP_WG_SIZE));
  const rowsPerWg = software ? COOP_FALLBACK_ROWS_PER_WG : COOP_ROWS_PER_WG;
  // The reductions' workgroup memory (matmul_wg.wgsl's tree: WG_SIZE floats per row).
  if (wgSize < lanes || wgSize * rowsPerWg * 4 > limits.maxComputeWorkgroupStorageSize) return undefined;
  const subgroups = options.subgroups !== false && canUseSubgroups(gpu);
  return { wgSize, rowsPerWg, tokensPerWg: 1, subgroups, kernel: 'coop' };
}

/** The largest divisor of `blocks` not above `most` (a K step never runs past a row's end). */
function stepBlocksFor(blocks: number, most: number): number {
  for (let s = Math.max(1, Math.min(blocks, most)); s > 1; s--) if (blocks % s === 0) return s;
  return 1;
}

function tiledConfig(gpu: GpuContext, type: QuantType, cols: number): MatmulConfig | undefined {
  const { limits } = gpu;
  const maxInv = Math.min(limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX);
  const stepBlocks = stepBlocksFor(cols / type.blockSize, Math.floor(TILED_STEP_VALUES / type.blockSize));
  const bk = stepBlocks * type.blockSize;
  for (const s of TILE_SHAPES) {
    const wgSize = (s.rows / s.regRows) * (s.tokens / s.regTokens);
    if (wgSize > maxInv || (s.rows + s.tokens) * bk * 4 > limits.maxComputeWorkgroupStorageSize) continue;
    return { wgSize, rowsPerWg: s.rows, tokensPerWg: s.tokens, subgroups: false, kernel: 'tiled', stepBlocks, regRows: s.regRows, regTokens: s.regTokens };
  }
  return undefined;
}

/** The kernel configuration for rows of `cols` values of `type` times `n` tokens. */
export function matmulConfig(gpu: GpuContext, type: QuantType, cols: number, n: number, options: MatmulOptions = {}): MatmulConfig {
  const want = options.kernel ?? 'auto';
  if (want === 'coop' || (want === 'auto' && n < TILED_MIN_TOKENS)) {
    const c = coopConfig(gpu, type, options);
    if (c) return c;
    if (want === 'coop') throw new RangeError(`matmul ${type.id}: no cooperative matvec for this type or device`);
  }
  // Not on software adapters unless asked: SwiftShader takes 10-60 s to compile the tiled
  // kernel (it grows with the workgroup tiles), and its barriers are expensive.
  if (want === 'tiled' || (want === 'auto' && n >= TILED_MIN_TOKENS && !gpu.isFallbackAdapter)) {
    const c = tiledConfig(gpu, type, cols);
    if (c) return c;
    if (want === 'tiled') throw new RangeError(`matmul ${type.id}: the tiled kernel's tile does not fit this device's workgroup memory`);
  }
  return genericConfig(gpu, type, cols, n, options);
}

function genericConfig(gpu: GpuContext, type: QuantType, cols: number, n: number, options: MatmulOptions): MatmulConfig {
  const { limits } = gpu;
  const blocks = cols / type.blockSize;
  const maxInv = floorPow2(Math.min(limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX));
  const software = gpu.isFallbackAdapter;
  const wgSize = Math.min(maxInv, software ? FALLBACK_WG_SIZE : Math.min(MAX_WG_SIZE, Math.max(MIN_WG_SIZE, ceilPow2(blocks))));
  // Fixed per case (not min(n, 8)): one pipeline serves every prefill length.
  const tokensPerWg = n === 1 ? 1 : MATMUL_TOKENS_PER_WG;
  const rows = n === 1 ? (software ? FALLBACK_MATVEC_ROWS_PER_WG : MATVEC_ROWS_PER_WG) : MATMUL_ROWS_PER_WG;
  let rowsPerWg = Math.min(rows, Math.floor(MAX_ACC / tokensPerWg));
  // The tree's workgroup memory: WG_SIZE floats per output of the tile.
  while (rowsPerWg > 1 && wgSize * rowsPerWg * tokensPerWg * 4 > limits.maxComputeWorkgroupStorageSize) rowsPerWg--;
  if (wgSize * rowsPerWg * tokensPerWg * 4 > limits.maxComputeWorkgroupStorageSize) {
    throw new RangeError(`matmul: a ${wgSize}-invocation workgroup does not fit ${limits.maxComputeWorkgroupStorageSize} bytes of workgroup memory`);
  }
  const subgroups = options.subgroups !== false && canUseSubgroups(gpu);
  return { wgSize, rowsPerWg, tokensPerWg, subgroups, kernel: 'generic' };
}

/** The WGSL module of the matmul for codec `wgsl`: [directives] + libs + codec + kernel + entry point. */
export function matmulKernelSource(wgsl: string, subgroups: boolean, kernel: MatmulKernel = 'generic'): string {
  const reduce = subgroups ? 'kernels/matmul_sg.wgsl' : 'kernels/matmul_wg.wgsl';
  if (kernel === 'coop') {
    if (!COOP_CODECS.has(wgsl)) throw new RangeError(`matmul: no cooperative matvec lanes for codec ${wgsl}`);
    return composeShader([
      ...(subgroups ? ['kernels/matmul_enable_subgroups.wgsl'] : []),
      ...(COOP_WITH_CODEC_LIBS.has(wgsl) ? codecLibs(wgsl) : ['lib/rounding.wgsl', 'lib/f16.wgsl']),
      ...(COOP_NIBBLE_LANES.has(wgsl) ? ['kernels/matmul_coop_nibbles.wgsl'] : []),
      `kernels/matmul_coop_${wgsl}.wgsl`,
      'kernels/matmul_coop.wgsl',
      reduce,
    ]);
  }
  if (kernel === 'tiled') return composeShader([...codecLibs(wgsl), `codecs/${wgsl}.wgsl`, 'kernels/matmul.wgsl', 'kernels/matmul_tiled.wgsl']);
  return composeShader([
    ...(subgroups ? ['kernels/matmul_enable_subgroups.wgsl'] : []),
    ...codecLibs(wgsl),
    `codecs/${wgsl}.wgsl`,
    'kernels/matmul.wgsl',
    reduce,
  ]);
}

/** The compiled matmul pipeline of a type and configuration (cached per device). */
export function matmulPipeline(device: GPUDevice, type: QuantType, config: MatmulConfig): Promise<GPUComputePipeline> {
  const kernel = config.kernel ?? 'generic';
  const constants: Record<string, number> = { WG_SIZE: config.wgSize, ROWS_PER_WG: config.rowsPerWg, TOKENS_PER_WG: config.tokensPerWg };
  if (kernel === 'tiled') Object.assign(constants, { STEP_BLOCKS: config.stepBlocks ?? 1, REG_ROWS: config.regRows ?? 1, REG_TOKENS: config.regTokens ?? 1 });
  const subgroups = kernel !== 'tiled' && config.subgroups;
  return getPipeline(device, {
    name: `matmul.${kernel === 'generic' ? '' : `${kernel}.`}${type.wgsl}.${subgroups ? 'subgroups' : 'workgroup'}`,
    code: () => matmulKernelSource(type.wgsl, subgroups, kernel),
    constants,
  });
}

/** Bytes of the uniform MatmulParams. */
export const MATMUL_PARAMS_BYTES = 32;

/** MatmulParams for a chunk of `rows` rows and `n` tokens (Y vectors of `rows`). */
export function matmulParams(type: QuantType, rows: number, cols: number, n: number): Uint32Array<ArrayBuffer> {
  const blocks = cols / type.blockSize;
  return new Uint32Array([rows, blocks, blocks * type.typeSize, n, cols, rows, 0, 0]);
}

/** Workgroups (x: row tiles, y: token tiles) for a chunk. */
export function matmulDispatch(config: MatmulConfig, rows: number, n: number): [number, number] {
  return [Math.ceil(rows / config.rowsPerWg), Math.ceil(n / config.tokensPerWg)];
}

/** Bytes of the W buffer for `rows` rows: whole words plus one (the kernel's funnel shift reads it). */
export function matmulWeightBufferBytes(rowBytes: number, rows: number): number {
  return Math.ceil((rowBytes * rows) / 4) * 4 + 4;
}

function checkShape(t: QuantType, packedW: Uint8Array, rows: number, cols: number, x: Float32Array, n: number, what: string): void {
  if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(n) || n < 1) throw new RangeError(`${what}: bad shape ${rows} rows, ${n} tokens`);
  if (!Number.isInteger(cols) || cols <= 0 || cols % t.blockSize !== 0) {
    throw new RangeError(`${what} ${t.id}: row length ${cols} is not a multiple of the block size ${t.blockSize}`);
  }
  const want = (rows * cols * t.typeSize) / t.blockSize;
  if (packedW.length !== want) throw new RangeError(`${what} ${t.id}: W has ${packedW.length} bytes, expected ${want} for ${rows} x ${cols}`);
  if (x.length !== cols * n) throw new RangeError(`${what}: X has ${x.length} values, expected ${n} vectors of ${cols}`);
}

/** Largest buffer a product binds: the binding and buffer limits and MAX_MATMUL_CHUNK_BYTES. */
export function matmulBindingBytes(gpu: GpuContext): number {
  return Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize, MAX_MATMUL_CHUNK_BYTES);
}

/** How a product is split: rows per chunk and tokens per chunk. */
export interface MatmulChunking {
  readonly rowsPerChunk: number;
  readonly tokensPerChunk: number;
}

/** Chunks whose W, X and Y buffers fit the limits and whose dispatch fits the workgroup counts. */
export function matmulChunking(gpu: GpuContext, type: QuantType, config: MatmulConfig, rows: number, cols: number, n: number): MatmulChunking {
  const { limits } = gpu;
  const bytes = matmulBindingBytes(gpu);
  const maxWg = limits.maxComputeWorkgroupsPerDimension;
  const rowBytes = (cols / type.blockSize) * type.typeSize;
  const tokensPerChunk = Math.min(n, Math.floor(bytes / (cols * 4)), maxWg * config.tokensPerWg);
  if (tokensPerChunk < 1) throw new RangeError(`matmul: one X vector of ${cols} f32 does not fit a ${bytes}-byte binding`);
  const byW = Math.floor((bytes - 8) / rowBytes);
  const byY = Math.floor(bytes / (tokensPerChunk * 4));
  const rowsPerChunk = Math.max(0, Math.min(rows, byW, byY, maxWg * config.rowsPerWg));
  if (rowsPerChunk < 1 && rows > 0) throw new RangeError(`matmul ${type.id}: one row of W (${rowBytes} bytes) does not fit a ${bytes}-byte binding`);
  return { rowsPerChunk, tokensPerChunk };
}

/** What every chunk of one product shares: the pipeline and the X, Y, readback and params buffers. */
export interface MatmulRun {
  readonly pipeline: GPUComputePipeline;
  readonly config: MatmulConfig;
  readonly type: QuantType;
  /** Prefix of the bind groups', passes' and encoders' labels. */
  readonly label: string;
  readonly x: GPUBuffer;
  readonly y: GPUBuffer;
  readonly readback: GPUBuffer;
  readonly params: GPUBuffer;
}

/** One chunk: `w` holds W's rows [r0, r0 + rows); run.x holds the `tokens` vectors of tokens [t0, ...). */
export interface MatmulChunk {
  readonly w: GPUBuffer;
  readonly r0: number;
  readonly rows: number;
  readonly t0: number;
  readonly tokens: number;
  readonly cols: number;
  /** The chunk's number, for labels. */
  readonly chunk?: number;
}

/**
 * The chunked dispatch of every product (matmulOnGpu, model/gpu-linear.ts): multiply one
 * chunk and put its outputs into y (vectors of `rows`: token t, row r at t * rows + r). Runs
 * inside the caller's withErrorScopes.
 */
export async function runMatmulChunk(gpu: GpuContext, run: MatmulRun, c: MatmulChunk, y: Float32Array, rows: number): Promise<void> {
  const { device, limits } = gpu;
  const { label } = run;
  const suffix = c.chunk === undefined ? '' : `.${c.chunk}`;
  device.queue.writeBuffer(run.params, 0, matmulParams(run.type, c.rows, c.cols, c.tokens));
  const bindGroup = device.createBindGroup({
    label: `${label}.bindgroup`,
    layout: run.pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: c.w } },
      { binding: 1, resource: { buffer: run.x, size: c.tokens * c.cols * 4 } },
      { binding: 2, resource: { buffer: run.y, size: c.rows * c.tokens * 4 } },
      { binding: 3, resource: { buffer: run.params, size: MATMUL_PARAMS_BYTES } },
    ],
  });
  const [wx, wy] = matmulDispatch(run.config, c.rows, c.tokens);
  const maxWg = limits.maxComputeWorkgroupsPerDimension;
  if (wx > maxWg || wy > maxWg) throw new Error(`${label}: dispatch ${wx} x ${wy} exceeds the workgroup limit (chunking bug)`);
  const enc = device.createCommandEncoder({ label: `${label}.encoder${suffix}` });
  const pass = enc.beginComputePass({ label: `${label}.pass${suffix}` });
  pass.setPipeline(run.pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(wx, wy);
  pass.end();
  const size = c.rows * c.tokens * 4;
  enc.copyBufferToBuffer(run.y, 0, run.readback, 0, size);
  submit(device, [enc.finish()]);
  await mapRead(device, run.readback, 0, size);
  const out = new Float32Array(run.readback.getMappedRange(0, size));
  if (c.rows === rows) y.set(out, c.t0 * rows);
  else for (let j = 0; j < c.tokens; j++) y.set(out.subarray(j * c.rows, (j + 1) * c.rows), (c.t0 + j) * rows + c.r0);
  run.readback.unmap();
}

/** Y = W X on the GPU (see the layouts above); n = 1 is matvecOnGpu. */
export async function matmulOnGpu(
  gpu: GpuContext,
  type: QuantType | string,
  packedW: Uint8Array,
  rows: number,
  cols: number,
  x: Float32Array,
  n: number,
  options: MatmulOptions = {},
): Promise<Float32Array> {
  const t = requireMatmulType(type, 'matmulOnGpu');
  checkShape(t, packedW, rows, cols, x, n, 'matmulOnGpu');
  const y = new Float32Array(rows * n);
  if (rows === 0) return y;
  const { device } = gpu;
  const config = matmulConfig(gpu, t, cols, n, options);
  const { rowsPerChunk, tokensPerChunk } = matmulChunking(gpu, t, config, rows, cols, n);
  const rowBytes = (cols / t.blockSize) * t.typeSize;
  const pipeline = await matmulPipeline(device, t, config);
  const label = `${n === 1 ? 'matvec' : 'matmul'}.${t.id}`;
  const tokenChunks = Math.ceil(n / tokensPerChunk);

  await withErrorScopes(gpu, label, async () => {
    const wBytes = matmulWeightBufferBytes(rowBytes, rowsPerChunk);
    const yBytes = rowsPerChunk * tokensPerChunk * 4;
    const wBuf = device.createBuffer({ label: `${label}.w`, size: wBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    const xBuf = device.createBuffer({ label: `${label}.x`, size: tokensPerChunk * cols * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    const yBuf = device.createBuffer({ label: `${label}.y`, size: yBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const readback = device.createBuffer({ label: `${label}.readback`, size: yBytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const params = device.createBuffer({ label: `${label}.params`, size: MATMUL_PARAMS_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    const run: MatmulRun = { pipeline, config, type: t, label, x: xBuf, y: yBuf, readback, params };
    let staging: Uint8Array<ArrayBuffer> | undefined;
    try {
      let chunk = 0;
      for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
        const rc = Math.min(rowsPerChunk, rows - r0);
        const wPart = packedW.subarray(r0 * rowBytes, (r0 + rc) * rowBytes);
        if (wPart.length % 4 === 0 && wPart.buffer instanceof ArrayBuffer) {
          device.queue.writeBuffer(wBuf, 0, wPart as Uint8Array<ArrayBuffer>);
        } else {
          // Not whole words (or a shared buffer): go through a word-padded copy.
          staging ??= new Uint8Array(wBytes);
          staging.set(wPart);
          device.queue.writeBuffer(wBuf, 0, staging, 0, Math.ceil(wPart.length / 4) * 4);
        }
        for (let t0 = 0; t0 < n; t0 += tokensPerChunk, chunk++) {
          const tc = Math.min(tokensPerChunk, n - t0);
          if (r0 === 0 || tokenChunks > 1) device.queue.writeBuffer(xBuf, 0, x as Float32Array<ArrayBuffer>, t0 * cols, tc * cols);
          await runMatmulChunk(gpu, run, { w: wBuf, r0, rows: rc, t0, tokens: tc, cols, chunk }, y, rows);
        }
      }
    } finally {
      for (const b of [wBuf, xBuf, yBuf, readback, params]) b.destroy();
    }
  });
  return y;
}

/** y = W x on the GPU: W `rows` x `cols` in the type's packed blocks, x of `cols` values. */
export function matvecOnGpu(
  gpu: GpuContext,
  type: QuantType | string,
  packedW: Uint8Array,
  rows: number,
  cols: number,
  x: Float32Array,
  options: MatmulOptions = {},
): Promise<Float32Array> {
  return matmulOnGpu(gpu, type, packedW, rows, cols, x, 1, options);
}

/** The error quantizing W puts into Y = W X, measured on the GPU. */
export interface GpuProductError extends ProductError {
  /** The quantized product W_q X (GPU). */
  readonly y: Float32Array;
  /** The unquantized product W X (GPU, f32 W). */
  readonly yRef: Float32Array;
}

export interface MatmulErrorOptions extends MatmulOptions {
  /** W already quantized to the type (e.g. by the CPU codec): skips the GPU quantize. */
  packed?: Uint8Array;
}

/**
 * Quantize W (f32, rows x cols) to `type` on the GPU (unless options.packed gives the
 * blocks) and compare W_q X with W X, both multiplied on the GPU with f32 accumulation
 * (so the f32 type's error is exactly 0).
 */
export async function matmulErrorOnGpu(
  gpu: GpuContext,
  type: QuantType | string,
  w: Float32Array,
  rows: number,
  cols: number,
  x: Float32Array,
  n = 1,
  options: MatmulErrorOptions = {},
): Promise<GpuProductError> {
  const t = requireMatmulType(type, 'matmulErrorOnGpu');
  if (w.length !== rows * cols) throw new RangeError(`matmulErrorOnGpu: W has ${w.length} values, expected ${rows} x ${cols}`);
  const f32 = resolveType('f32');
  const packed = options.packed ?? (await quantizeOnGpu(gpu, t, w, cols));
  const y = await matmulOnGpu(gpu, t, packed, rows, cols, x, n, options);
  const wBytes = new Uint8Array(w.buffer, w.byteOffset, w.byteLength);
  const yRef = await matmulOnGpu(gpu, f32, wBytes, rows, cols, x, n, options);
  return { ...productError(y, yRef), y, yRef };
}

/** ||W_q x - W x|| / ||W x|| measured on the GPU (matmulErrorOnGpu with one token). */
export async function matvecErrorOnGpu(
  gpu: GpuContext,
  type: QuantType | string,
  w: Float32Array,
  rows: number,
  cols: number,
  x: Float32Array,
  options: MatmulErrorOptions = {},
): Promise<number> {
  return (await matmulErrorOnGpu(gpu, type, w, rows, cols, x, 1, options)).relError;
}
