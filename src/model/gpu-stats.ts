// Calibration statistics on the resident forward pass (gpu-forward.ts's product tap): for
// chosen weights, llama-imatrix's Σx² of each input column (kernels/imatrix_sums.wgsl, summed
// in collect_imatrix's order) and, for groups of weights that read one input (q/k/v,
// gate/up), XᵀX for GPTQ's Hessian (kernels/gptq_hessian.wgsl, the upper triangle only).
// They accumulate in GPU buffers across the chunks (WebGPU zero-fills new buffers); read()
// brings all of them back with one readback at the end, never per chunk.
import { mapRead, submit } from '../gpu/counters.ts';
import type { GpuContext } from '../gpu/device.ts';
import { withErrorScopes } from '../gpu/dispatch.ts';
import { getPipeline } from '../gpu/pipelines.ts';
import { composeShader } from '../gpu/shaders.ts';
import type { ModelConfig } from './families/config.ts';
import type { WeightProvider } from './families/linear.ts';
import { GpuForward, ResidentUnsupportedError, type Step } from './gpu-forward.ts';

/** gptq_hessian.wgsl: 8 x 8 invocations of 4 x 4 outputs each. */
const XTX_TILE = 4;
const XTX_WG = 8;
const SUMS_WG = 64;
/** Uniform slots: minUniformBufferOffsetAlignment is at most 256 on every device. */
const SLOT = 256;

/** gptq_hessian.wgsl: XᵀX's upper triangle (upperOnly), or every tile (the former kernel, for the benchmark). */
export function xtxPipeline(device: GPUDevice, upperOnly = true): Promise<GPUComputePipeline> {
  return getPipeline(device, {
    name: `gptq.hessian${upperOnly ? '' : '.full'}`,
    code: () => composeShader(['kernels/gptq_hessian.wgsl']),
    constants: { WG_X: XTX_WG, WG_Y: XTX_WG, UPPER_ONLY: upperOnly ? 1 : 0 },
  });
}

/** Workgroups of gptq_hessian.wgsl for a band of `rows` rows of H of `stride` columns. */
export function xtxDispatch(stride: number, rows: number): [number, number] {
  return [Math.ceil(stride / XTX_TILE / XTX_WG), Math.ceil(rows / XTX_TILE / XTX_WG)];
}

/** Fills a symmetric matrix's lower triangle from its upper one (gptq_hessian.wgsl sums only j >= i). */
export function mirrorUpper(h: Float64Array, cols: number): void {
  for (let i = 1; i < cols; i++) for (let j = 0; j < i; j++) h[i * cols + j] = h[j * cols + i];
}

export interface ResidentStatsRequest {
  /** Weights (names in the files) whose input columns' squared sums are wanted, with their columns. */
  sums: ReadonlyMap<string, number>;
  /** Groups of weights reading one input, with its columns: one XᵀX per group, summed at the group's first product. */
  xtx?: readonly { weights: readonly string[]; cols: number }[];
}

export interface ResidentStatsResult {
  /** Σx² per input column (f32, as llama-imatrix), by weight. */
  sums: Map<string, Float32Array>;
  /** XᵀX (unscaled f32 sums, mirrored), by weight (every weight of a group). */
  xtx: Map<string, Float64Array>;
  /** Input rows summed (the same for every weight: each chunk's positions). */
  rows: number;
}

interface SumsEntry {
  cols: number;
  /** First word in the sums buffer. */
  out: number;
  slot: number;
  tapped: boolean;
}

interface XtxEntry {
  weights: readonly string[];
  cols: number;
  buffer: GPUBuffer;
  slot: number;
  tapped: boolean;
}

/** The statistics' GPU buffers and the tap that records their kernels into a GpuForward program. */
export class ResidentStats {
  private readonly sums = new Map<string, SumsEntry>();
  private readonly xtx = new Map<string, XtxEntry>();
  private readonly sumsBuf: GPUBuffer;
  private readonly uniforms: GPUBuffer;
  private readonly slotWords: Uint32Array<ArrayBuffer>;
  private readonly buffers: GPUBuffer[] = [];
  private sumsWords = 0;
  private rows = 0;

  constructor(
    private readonly gpu: GpuContext,
    request: ResidentStatsRequest,
  ) {
    const { device, limits } = gpu;
    const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
    let slot = 0;
    for (const [w, cols] of request.sums) {
      this.sums.set(w, { cols, out: this.sumsWords, slot: slot++, tapped: false });
      this.sumsWords += cols;
    }
    for (const g of request.xtx ?? []) {
      if (g.cols % 4 !== 0) throw new ResidentUnsupportedError(`${g.weights[0]}: rows of ${g.cols} are not whole vec4s (gptq_hessian.wgsl)`);
      const bytes = g.cols * g.cols * 4;
      if (bytes > limits.maxStorageBufferBindingSize) throw new ResidentUnsupportedError(`${g.weights[0]}: XᵀX (${bytes} bytes) exceeds one storage binding`);
      if (Math.max(...xtxDispatch(g.cols, g.cols)) > limits.maxComputeWorkgroupsPerDimension) throw new ResidentUnsupportedError(`${g.weights[0]}: ${g.cols} columns exceed one dispatch`);
      const buffer = this.track(device.createBuffer({ label: `stats.xtx.${g.weights[0]}`, size: bytes, usage: storage }));
      this.xtx.set(g.weights[0], { weights: g.weights, cols: g.cols, buffer, slot: slot++, tapped: false });
    }
    this.sumsBuf = this.track(device.createBuffer({ label: 'stats.sums', size: Math.max(16, this.sumsWords * 4), usage: storage }));
    this.uniforms = this.track(device.createBuffer({ label: 'stats.params', size: Math.max(1, slot) * SLOT, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }));
    this.slotWords = new Uint32Array((Math.max(1, slot) * SLOT) / 4);
    for (const e of this.sums.values()) this.slotWords.set([0, e.cols, e.out, 0], (e.slot * SLOT) / 4);
    for (const e of this.xtx.values()) this.slotWords.set([0, e.cols, 0, e.cols], (e.slot * SLOT) / 4);
  }

  private track(b: GPUBuffer): GPUBuffer {
    this.buffers.push(b);
    return b;
  }

  /** gpu-forward.ts's tap: after a requested weight's product, its kernels over the product's input. */
  readonly tap = async (weight: string, input: GPUBuffer, cols: number): Promise<Step[]> => {
    const steps: Step[] = [];
    const s = this.sums.get(weight);
    const g = this.xtx.get(weight);
    for (const e of [s, g]) if (e && e.cols !== cols) throw new Error(`${weight}: its product reads rows of ${cols}, the statistics were sized for ${e.cols}`);
    const noParams = () => [];
    if (s) {
      const pipeline = await getPipeline(this.gpu.device, { name: 'stats.imatrix-sums', code: () => composeShader(['kernels/imatrix_sums.wgsl']), constants: { WG_SIZE: SUMS_WG } });
      steps.push({ pipeline, bindGroup: this.bind(pipeline, `sums.${weight}`, input, this.sumsBuf, s.slot), dispatch: () => [Math.ceil(cols / SUMS_WG), 1], params: noParams });
      s.tapped = true;
    }
    if (g) {
      const pipeline = await xtxPipeline(this.gpu.device);
      steps.push({ pipeline, bindGroup: this.bind(pipeline, `xtx.${weight}`, input, g.buffer, g.slot), dispatch: () => xtxDispatch(cols, cols), params: noParams });
      g.tapped = true;
    }
    return steps;
  };

  private bind(pipeline: GPUComputePipeline, label: string, x: GPUBuffer, out: GPUBuffer, slot: number): GPUBindGroup {
    return this.gpu.device.createBindGroup({
      label: `stats.${label}`,
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: x } },
        { binding: 1, resource: { buffer: out } },
        { binding: 2, resource: { buffer: this.uniforms, offset: slot * SLOT, size: 16 } },
      ],
    });
  }

  /** Before each chunk's forward: its rows (queued ahead of the chunk's submit). */
  setRows(n: number): void {
    for (let s = 0; s < this.slotWords.length; s += SLOT / 4) this.slotWords[s] = n;
    this.gpu.device.queue.writeBuffer(this.uniforms, 0, this.slotWords);
    this.rows += n;
  }

  /** Every statistic, in one readback. Throws when a requested weight's product never ran. */
  async read(): Promise<ResidentStatsResult> {
    for (const [w, e] of [...this.sums, ...this.xtx]) if (!e.tapped) throw new Error(`the forward pass never ran the product of '${w}'`);
    const { device } = this.gpu;
    const sumsBytes = this.sumsWords * 4;
    const parts = [{ src: this.sumsBuf, bytes: sumsBytes, at: 0 }];
    let total = sumsBytes;
    for (const e of this.xtx.values()) {
      parts.push({ src: e.buffer, bytes: e.cols * e.cols * 4, at: total });
      total += e.cols * e.cols * 4;
    }
    const rb = device.createBuffer({ label: 'stats.readback', size: Math.max(16, total), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    try {
      const words = await withErrorScopes(this.gpu, 'calibration statistics', async () => {
        const enc = device.createCommandEncoder({ label: 'stats.read' });
        for (const p of parts) if (p.bytes > 0) enc.copyBufferToBuffer(p.src, 0, rb, p.at, p.bytes);
        submit(device, [enc.finish()]);
        await mapRead(device, rb, 0, total);
        const out = new Float32Array(rb.getMappedRange(0, total).slice(0));
        rb.unmap();
        return out;
      });
      const sums = new Map<string, Float32Array>();
      for (const [w, e] of this.sums) sums.set(w, words.slice(e.out, e.out + e.cols));
      const xtx = new Map<string, Float64Array>();
      parts.slice(1).forEach((p, i) => {
        const e = [...this.xtx.values()][i];
        const h = Float64Array.from(words.subarray(p.at / 4, p.at / 4 + e.cols * e.cols));
        mirrorUpper(h, e.cols);
        for (const w of e.weights) xtx.set(w, h);
      });
      return { sums, xtx, rows: this.rows };
    } finally {
      rb.destroy();
    }
  }

  dispose(): void {
    for (const b of this.buffers) b.destroy();
    this.buffers.length = 0;
  }
}

/**
 * The F32 model resident on `gpu`, run over each chunk (from an empty cache) with the
 * statistics of `request` accumulated on the GPU; one readback per chunk (the pass's
 * scores) and one for the statistics at the end. Throws ResidentUnsupportedError for a
 * model the resident pass (or the statistics) cannot hold.
 */
export async function residentStatistics(
  gpu: GpuContext,
  config: ModelConfig,
  weights: WeightProvider,
  chunks: readonly (readonly number[])[],
  request: ResidentStatsRequest,
  options: { check?: () => void; onChunk?: (done: number, total: number) => void } = {},
): Promise<ResidentStatsResult> {
  const longest = Math.max(...chunks.map((c) => c.length));
  const stats = new ResidentStats(gpu, request);
  let forward: GpuForward | null = null;
  try {
    forward = await GpuForward.create(gpu, config, weights, null, { maxTokens: longest, capacity: longest, tap: stats.tap });
    for (const [i, c] of chunks.entries()) {
      options.check?.();
      forward.reset();
      stats.setRows(c.length);
      await forward.forward(c);
      options.onChunk?.(i + 1, chunks.length);
    }
    return await stats.read();
  } finally {
    forward?.dispose();
    stats.dispose();
  }
}
