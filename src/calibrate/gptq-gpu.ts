// GPTQ on the GPU (WebGPU), with gptq.ts as its CPU reference: the same algorithm
// (IST-DASLab/gptq gptq.py fasterquant, as gptq.ts states it, group params from the updated
// values included) in f32, as PyTorch's GPTQ runs, where gptq.ts runs in f64.
// - The Hessian's damping, Cholesky factor and triangular inverse stay on the CPU in f64
//   (prepareHessian), then go up as f32: where precision matters most (an ill-conditioned H),
//   and cols³/2 multiply-adds, about the column walk's rows · cols² for a square layer: on a
//   fast GPU, the next thing to move.
// - Per block of 128 columns, one dispatch of shaders/kernels/gptq_block.wgsl (an
//   invocation per row walks the block's columns: group params, quantize, error, in-block
//   update; on hardware adapters with subgroups, for INT and Q4_0 grids,
//   gptq_block_sg.wgsl: a subgroup per row, the block's columns in its lanes' registers,
//   the same values bit for bit; the grid from gptq_grid_int_q4_0.wgsl, or gptq_grid_q4_k.wgsl whose super-block
//   params are ggml's Q4_K search, codecs/q4_k.wgsl), then the lazy update W[:, i2:] -= Err · U[i1:i2, i2:] as a register-tiled
//   product (gptq_update.wgsl). Rows are independent given U, so large tensors are done in
//   chunks of rows whose buffers fit the storage binding limit: chunking changes no result.
// - XᵀX, the Hessian sum over many tokens, as a product too (gptq_hessian.wgsl, its upper
//   triangle, mirrored: model/gpu-stats.ts): gptqHessianGpu; on the resident forward pass the
//   same kernel sums it chunk by chunk (gpu-stats.ts residentStatistics).
// f32 vs f64: a few values near a rounding tie land on the neighbouring grid point, and the
// error feedback carries that along its row; the tests bound how many (gptq-gpu.test.ts).
import type { GpuContext, GpuLimits } from '../gpu/device.ts';
import { getPipeline } from '../gpu/pipelines.ts';
import { withErrorScopes } from '../gpu/dispatch.ts';
import { composeShader } from '../gpu/shaders.ts';
import { f16BitsToF32, f32ToF16Bits } from '../formats/float16.ts';
import { quantType } from '../quant/types.ts';
import { GPTQ_BLOCK, prepareHessian, type GptqOptions } from './gptq.ts';
import { gridGroup, Q4_0_GROUP, q4KCodeAt, Q4_K_GROUP, Q4_K_HEADER_BYTES, q4KValue, type Grid } from './grid.ts';
import { mapRead, submit } from '../gpu/counters.ts';
import { canUseSubgroups } from '../gpu/matmul.ts';
import { mirrorUpper, xtxDispatch, xtxPipeline } from '../model/gpu-stats.ts';

/** Cap on one buffer of a chunk (W, Q, X, a band of H): bounds the GPU memory one call holds. */
export const GPTQ_MAX_CHUNK_BYTES = 128 * 1024 * 1024;
/** Invocations (rows) per workgroup of gptq_block.wgsl. */
const BLOCK_WG_SIZE = 64;
/** gptq_update.wgsl / gptq_hessian.wgsl: 8 x 8 invocations of 4 x 4 outputs each. */
const TILE = 4;
const TILE_WG = 8;
/** Zero columns after each row of a U slab: gptq_update.wgsl reads a tile's 4 columns unguarded. */
const SLAB_PAD = 4;
/** ggml's block_q4_0 (f16 d and 16 bytes of nibbles) and block_q4_K, from the type table. */
const Q4_0_BLOCK_BYTES = quantType('q4_0')!.typeSize;
const Q4_K_BLOCK_BYTES = quantType('q4_K')!.typeSize;
/** Uniform slots: minUniformBufferOffsetAlignment is at most 256 on every device. */
const UNIFORM_SLOT = 256;

/** The grids the GPU walks: grid.ts's, and Q4_K's super-blocks (gptq.ts gptqQ4_K on the CPU). */
export type GpuGrid = Grid | { kind: 'q4_K' };

export interface GpuGptqOptions {
  grid: GpuGrid;
  /** Columns per dispatch (default GPTQ_BLOCK). */
  blockSize?: number;
  /** The column walk (gptqWalk): true a subgroup per row where the device has subgroups, false an invocation per row; default by the adapter. */
  subgroups?: boolean;
}

/** Columns per group (whose params open together) and per stored entry of them. */
function gridShape(grid: GpuGrid): { group: number; sub: number } {
  if (grid.kind === 'q4_K') return { group: Q4_K_GROUP, sub: 32 };
  const group = gridGroup(grid);
  return { group, sub: group };
}

export interface GptqGpuResult {
  /** rows x cols: the quantized weights (each a grid value), f32. */
  values: Float32Array;
  /** rows x cols: each weight's code (INT: 0..2^bits − 1; Q4_0: 0..15, value (code − 8) · f16(d); Q4_K: 0..15). */
  codes: Uint8Array;
  /** rows x entries (one per group; Q4_K: per sub-block of 32): the scale (Q4_0: the f32 d, before its f16 rounding; Q4_K: dl). */
  scales: Float32Array;
  /** rows x entries: the zero point (Q4_0: 8; Q4_K: dm). */
  zeros: Float32Array;
  /** Q4_K: rows x super-blocks of block_q4_K's 16-byte header (d, dmin, scales); else null. */
  headers: Uint8Array | null;
  /** What the GPU did: chunks of rows and dispatches, for tests and logs. */
  stats: { chunks: number; rowsPerChunk: number; dispatches: number; walk: GptqWalk };
}

const ceil4 = (n: number) => Math.ceil(n / 4) * 4;
const floor4 = (n: number) => Math.floor(n / 4) * 4;

function chunkBytes(limits: GpuLimits): number {
  return Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize, GPTQ_MAX_CHUNK_BYTES);
}

/**
 * Rows per chunk (a multiple of 4, gptq_update's vec4 of rows): W, Q, Err and the group
 * params of a chunk each fit one binding, and its dispatches fit the workgroup count.
 */
export function gptqRowsPerChunk(limits: GpuLimits, rows: number, cols: number, block: number, groups: number): number {
  const bytes = chunkBytes(limits);
  const maxWg = limits.maxComputeWorkgroupsPerDimension;
  const fit = Math.min(
    Math.floor(bytes / (cols * 4)),
    Math.floor(bytes / (Math.min(block, cols) * 4)),
    Math.floor(bytes / (groups * 8)),
    maxWg * blockWgSize(limits),
    maxWg * TILE * TILE_WG,
  );
  const perChunk = Math.min(floor4(fit), ceil4(rows));
  if (perChunk < 4) throw new RangeError(`GPTQ on the GPU: 4 rows of ${cols} f32 do not fit a ${bytes}-byte storage binding`);
  return perChunk;
}

function blockWgSize(limits: GpuLimits): number {
  return Math.min(BLOCK_WG_SIZE, limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX);
}

/** gptq_update.wgsl reads U as vec4: a slab's row stride, a multiple of 4 with SLAB_PAD zeros at least. */
const slabStride = (cols: number, col0: number) => ceil4(cols - col0) + SLAB_PAD;

/** Rows col0..col1-1 of U from column col0 on, each padded with zeros to slabStride. */
export function uSlab(u: Float64Array, cols: number, col0: number, col1: number): Float32Array<ArrayBuffer> {
  const stride = slabStride(cols, col0);
  const slab = new Float32Array((col1 - col0) * stride);
  for (let k = 0; k < col1 - col0; k++) {
    const from = (col0 + k) * cols + col0;
    for (let j = 0; j < cols - col0; j++) slab[k * stride + j] = u[from + j];
  }
  return slab;
}

/** Rows r0..r0+n-1 of row-major w as the kernels' column-major chunk of `padded` rows (padding 0). */
function toColumnMajor(w: ArrayLike<number>, cols: number, r0: number, n: number, padded: number, dead: Uint8Array): Float32Array<ArrayBuffer> {
  const out = new Float32Array(padded * cols);
  for (let r = 0; r < n; r++) {
    const o = (r0 + r) * cols;
    for (let c = 0; c < cols; c++) if (!dead[c]) out[c * padded + r] = w[o + c];
  }
  return out;
}

/** gptq_block.wgsl with its grid file (and Q4_K's: ggml's search, codecs/q4_k.wgsl, and what it needs). */
const BLOCK_SHADERS = {
  scalar: ['lib/rounding.wgsl', 'lib/f16.wgsl', 'kernels/gptq_grid_int_q4_0.wgsl', 'kernels/gptq_block.wgsl'],
  subgroup: ['kernels/gptq_block_sg_directives.wgsl', 'lib/rounding.wgsl', 'lib/f16.wgsl', 'kernels/gptq_grid_int_q4_0.wgsl', 'kernels/gptq_block_sg.wgsl'],
  q4_K: ['lib/rounding.wgsl', 'lib/f16.wgsl', 'lib/bytes.wgsl', 'lib/kquant.wgsl', 'codecs/q4_k.wgsl', 'kernels/gptq_grid_q4_k.wgsl', 'kernels/gptq_block.wgsl'],
};

/** Which column walk runs: a subgroup per row (gptq_block_sg.wgsl) or an invocation per row (gptq_block.wgsl). */
export type GptqWalk = 'subgroup' | 'row';

/**
 * The subgroup walk for INT and Q4_0 grids where the device has subgroups (Q4_K's params
 * search keeps the row walk), and by default not on a software adapter: SwiftShader runs a
 * subgroup's lanes as one CPU thread's SIMD, which the row walk already fills with rows, so
 * there the subgroup walk is ~3x slower (bench/gptq.ts). `subgroups`: true forces it where
 * the device can run it, false never.
 */
export function gptqWalk(gpu: GpuContext, grid: GpuGrid, subgroups?: boolean): GptqWalk {
  if (subgroups === false || grid.kind === 'q4_K' || !canUseSubgroups(gpu) || SG_WG_SIZE > gpu.limits.maxComputeInvocationsPerWorkgroup) return 'row';
  return subgroups === true || !gpu.isFallbackAdapter ? 'subgroup' : 'row';
}

/** gptq_block_sg.wgsl's workgroup: a multiple of every subgroup size up to 32. */
const SG_WG_SIZE = 32;
/** WebGPU's smallest subgroup: at most SG_WG_SIZE / 4 rows per workgroup at once. */
const SG_MIN_LANES = 4;

/** Workgroups of the column walk for `rows` rows (the subgroup walk strides over rows, so fewer are fine). */
function walkDispatch(limits: GpuLimits, walk: GptqWalk, rows: number): number {
  if (walk === 'row') return Math.ceil(rows / blockWgSize(limits));
  return Math.min(Math.ceil(rows / (SG_WG_SIZE / SG_MIN_LANES)), limits.maxComputeWorkgroupsPerDimension);
}

function gptqPipelines(gpu: GpuContext, grid: GpuGrid, walk: GptqWalk) {
  const variant = grid.kind === 'q4_K' ? 'q4_K' : walk === 'subgroup' ? 'subgroup' : 'scalar';
  const wgSize = variant === 'subgroup' ? SG_WG_SIZE : blockWgSize(gpu.limits);
  return Promise.all([
    getPipeline(gpu.device, { name: `gptq.block.${variant}`, code: () => composeShader(BLOCK_SHADERS[variant]), constants: { WG_SIZE: wgSize } }),
    getPipeline(gpu.device, { name: 'gptq.update', code: () => composeShader(['kernels/gptq_update.wgsl']), constants: { WG_X: TILE_WG, WG_Y: TILE_WG } }),
  ] as const);
}

async function readBuffer(device: GPUDevice, src: GPUBuffer, bytes: number, label: string): Promise<Float32Array> {
  const read = device.createBuffer({ label, size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder({ label: `${label}.encoder` });
  enc.copyBufferToBuffer(src, 0, read, 0, bytes);
  submit(device, [enc.finish()]);
  await mapRead(device, read);
  const out = new Float32Array(read.getMappedRange().slice(0));
  read.unmap();
  read.destroy();
  return out;
}

/**
 * GPTQ of a rows x cols weight (row-major) given its Hessian (hessian() or
 * gptqHessianGpu()), on the GPU: gptqQuantize's contract for the 'int' and 'q4_0' grids, and
 * gptqQ4_K's for 'q4_K' (its blocks: q4KBlocksFromGpu).
 */
export async function gptqQuantizeGpu(gpu: GpuContext, w: ArrayLike<number>, rows: number, cols: number, h: Float64Array, options: GpuGptqOptions & Pick<GptqOptions, 'percdamp'>): Promise<GptqGpuResult> {
  if (h.length !== cols * cols) throw new RangeError(`GPTQ: the Hessian has ${h.length} values, not ${cols} x ${cols}`);
  return gptqColumnsGpu(gpu, w, rows, cols, prepareHessian(h, cols, options.percdamp), options);
}

/**
 * GPTQ's column walk on the GPU from a prepared Hessian (prepareHessian: U, upper, with
 * H⁻¹ = UᵀU, and the dead columns, whose weights are zeroed).
 */
export async function gptqColumnsGpu(gpu: GpuContext, w: ArrayLike<number>, rows: number, cols: number, prepared: { u: Float64Array; dead: Uint8Array }, options: GpuGptqOptions): Promise<GptqGpuResult> {
  if (w.length !== rows * cols) throw new RangeError(`GPTQ: ${w.length} weights are not ${rows} x ${cols}`);
  const { u, dead } = prepared;
  const grid = options.grid;
  if (grid.kind !== 'int' && grid.kind !== 'q4_0' && grid.kind !== 'q4_K') throw new RangeError(`GPTQ on the GPU: no kernel for the ${(grid as { kind: string }).kind} grid`);
  const { group, sub } = gridShape(grid);
  const block = options.blockSize ?? GPTQ_BLOCK;
  if (grid.kind === 'q4_K') {
    if (cols % Q4_K_GROUP !== 0) throw new RangeError(`Q4_K needs rows of a multiple of ${Q4_K_GROUP} values, not ${cols}`);
    // A super-block's params are found at a block's start, where its columns hold every earlier block's update.
    if (Q4_K_GROUP % block !== 0) throw new RangeError(`GPTQ into Q4_K on the GPU: blocks that divide ${Q4_K_GROUP} columns, not ${block}`);
  }
  const groups = Math.ceil(cols / sub);
  const superBlocks = grid.kind === 'q4_K' ? cols / Q4_K_GROUP : 0;
  const { device, limits } = gpu;
  const bytes = chunkBytes(limits);
  const starts = Array.from({ length: Math.ceil(cols / block) }, (_, b) => b * block);
  if (block % 4 !== 0) throw new RangeError(`GPTQ on the GPU: blocks of a multiple of 4 columns (gptq_update.wgsl reads U as vec4), not ${block}`);
  const slabBytes = Math.min(block, cols) * slabStride(cols, 0) * 4;
  if (slabBytes > bytes) throw new RangeError(`GPTQ on the GPU: ${Math.min(block, cols)} rows of U (${slabBytes} bytes) do not fit a ${bytes}-byte storage binding`);
  const rowsPerChunk = gptqRowsPerChunk(limits, rows, cols, block, groups);
  if (block > 128) throw new RangeError(`GPTQ on the GPU: blocks of at most 128 columns (gptq_block_sg.wgsl keeps 32 per lane), not ${block}`);
  const walk = gptqWalk(gpu, grid, options.subgroups);
  const [blockPipe, updatePipe] = await gptqPipelines(gpu, grid, walk);

  const values = new Float32Array(rows * cols);
  const codes = new Uint8Array(rows * cols);
  const scales = new Float32Array(rows * groups);
  const zeros = new Float32Array(rows * groups);
  const headers = grid.kind === 'q4_K' ? new Uint8Array(rows * superBlocks * Q4_K_HEADER_BYTES) : null;
  const stats = { chunks: 0, rowsPerChunk, dispatches: 0, walk };
  await withErrorScopes(gpu, 'GPTQ', async () => {
    const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
    // U's slabs, one per block, uploaded once and shared by every chunk.
    const slabs = starts.map((col0, b) => {
      const data = uSlab(u, cols, col0, Math.min(col0 + block, cols));
      const buf = device.createBuffer({ label: `gptq.u.${b}`, size: Math.max(16, data.byteLength), usage: storage });
      device.queue.writeBuffer(buf, 0, data);
      return buf;
    });
    try {
      for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
        const n = Math.min(rowsPerChunk, rows - r0);
        await gptqChunk(r0, n, ceil4(n));
        stats.chunks++;
      }
    } finally {
      for (const s of slabs) s.destroy();
    }

    async function gptqChunk(r0: number, n: number, padded: number): Promise<void> {
      const label = `gptq.rows${r0}`;
      const wBuf = device.createBuffer({ label: `${label}.w`, size: padded * cols * 4, usage: storage });
      const qBuf = device.createBuffer({ label: `${label}.q`, size: padded * cols * 4, usage: storage });
      const errBuf = device.createBuffer({ label: `${label}.err`, size: padded * Math.min(block, cols) * 4, usage: storage });
      const gridBuf = device.createBuffer({ label: `${label}.grid`, size: padded * groups * 8, usage: storage });
      const headerBuf = headers && device.createBuffer({ label: `${label}.header`, size: padded * superBlocks * Q4_K_HEADER_BYTES, usage: storage });
      const uniforms = device.createBuffer({ label: `${label}.params`, size: starts.length * 2 * UNIFORM_SLOT, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      device.queue.writeBuffer(wBuf, 0, toColumnMajor(w, cols, r0, n, padded, dead));
      const enc = device.createCommandEncoder({ label: `${label}.encoder` });
      const pass = enc.beginComputePass({ label: `${label}.pass` });
      starts.forEach((col0, b) => {
        const col1 = Math.min(col0 + block, cols);
        const stride = slabStride(cols, col0);
        const blockAt = 2 * b * UNIFORM_SLOT;
        const kind = grid.kind === 'q4_0' ? 1 : 0; // gptq_grid_int_q4_0.wgsl's GRID_*
        const maxq = grid.kind === 'int' ? 2 ** grid.bits - 1 : 15;
        device.queue.writeBuffer(uniforms, blockAt, new Uint32Array([padded, cols, col0, col1, group, kind, maxq, stride, 0, sub, 0, 0]));
        pass.setPipeline(blockPipe);
        pass.setBindGroup(0, device.createBindGroup({
          label: `${label}.block${b}`,
          layout: blockPipe.getBindGroupLayout(0),
          entries: [
            { binding: 0, resource: { buffer: wBuf } },
            { binding: 1, resource: { buffer: qBuf } },
            { binding: 2, resource: { buffer: errBuf } },
            { binding: 3, resource: { buffer: slabs[b] } },
            { binding: 4, resource: { buffer: gridBuf } },
            { binding: 5, resource: { buffer: uniforms, offset: blockAt, size: 48 } },
            ...(headerBuf ? [{ binding: 6, resource: { buffer: headerBuf } }] : []),
          ],
        }));
        pass.dispatchWorkgroups(walkDispatch(limits, walk, padded));
        stats.dispatches++;
        if (col1 >= cols) return;
        const updateAt = blockAt + UNIFORM_SLOT;
        device.queue.writeBuffer(uniforms, updateAt, new Uint32Array([padded, cols, col0, col1, stride, 0, 0, 0]));
        pass.setPipeline(updatePipe);
        pass.setBindGroup(0, device.createBindGroup({
          label: `${label}.update${b}`,
          layout: updatePipe.getBindGroupLayout(0),
          entries: [
            { binding: 0, resource: { buffer: wBuf } },
            { binding: 1, resource: { buffer: errBuf } },
            { binding: 2, resource: { buffer: slabs[b] } },
            { binding: 3, resource: { buffer: uniforms, offset: updateAt, size: 32 } },
          ],
        }));
        pass.dispatchWorkgroups(Math.ceil(padded / TILE / TILE_WG), Math.ceil((cols - col1) / TILE / TILE_WG));
        stats.dispatches++;
      });
      pass.end();
      submit(device, [enc.finish()]);
      const [q, g, h] = await Promise.all([
        readBuffer(device, qBuf, padded * cols * 4, `${label}.q.read`),
        readBuffer(device, gridBuf, padded * groups * 8, `${label}.grid.read`),
        headerBuf && readBuffer(device, headerBuf, padded * superBlocks * Q4_K_HEADER_BYTES, `${label}.header.read`),
      ]);
      for (const buf of [wBuf, qBuf, errBuf, gridBuf, headerBuf, uniforms]) buf?.destroy();
      if (h && headers) {
        // header[(s * padded + r) * 4 ..] to rows x super-blocks, row-major.
        const words = new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
        for (let r = 0; r < n; r++) {
          for (let s = 0; s < superBlocks; s++) {
            const from = (s * padded + r) * Q4_K_HEADER_BYTES;
            headers.set(words.subarray(from, from + Q4_K_HEADER_BYTES), ((r0 + r) * superBlocks + s) * Q4_K_HEADER_BYTES);
          }
        }
      }
      for (let r = 0; r < n; r++) {
        const o = (r0 + r) * cols;
        for (let k = 0; k < groups; k++) {
          scales[(r0 + r) * groups + k] = g[2 * (k * padded + r)];
          zeros[(r0 + r) * groups + k] = g[2 * (k * padded + r) + 1];
        }
        for (let c = 0; c < cols; c++) {
          const k = (r0 + r) * groups + Math.floor(c / sub);
          codes[o + c] = q[c * padded + r];
          values[o + c] = codeValue(grid, codes[o + c], scales[k], zeros[k]);
        }
      }
    }
  });
  return { values, codes, scales, zeros, headers, stats };
}

/** A code's value, the f32 the grid file's grid_value computes. */
export function codeValue(grid: GpuGrid, code: number, scale: number, zero: number): number {
  if (grid.kind === 'q4_K') return q4KValue(code, scale, zero);
  return grid.kind === 'q4_0' ? (code - 8) * f16BitsToF32(f32ToF16Bits(scale)) : Math.fround(scale * (code - zero));
}

/** block_q4_K super-blocks from a GPU result on the 'q4_K' grid: what gptqQ4_K writes, the file's bytes. */
export function q4KBlocksFromGpu(result: GptqGpuResult, rows: number, cols: number): Uint8Array {
  if (!result.headers) throw new Error('not a Q4_K result');
  const perRow = cols / Q4_K_GROUP;
  const bytes = new Uint8Array(rows * perRow * Q4_K_BLOCK_BYTES);
  for (let b = 0; b < rows * perRow; b++) {
    const at = b * Q4_K_BLOCK_BYTES;
    bytes.set(result.headers.subarray(b * Q4_K_HEADER_BYTES, (b + 1) * Q4_K_HEADER_BYTES), at);
    for (let e = 0; e < Q4_K_GROUP; e++) {
      const { byte, high } = q4KCodeAt(e);
      const code = result.codes[b * Q4_K_GROUP + e];
      bytes[at + byte] |= high ? code << 4 : code;
    }
  }
  return bytes;
}

/**
 * Q4_0 blocks (ggml's block_q4_0: f16 d, then element j in the low nibble of byte j and
 * element j + 16 in its high nibble) from a GPU result on the 'q4_0' grid: what gptqQ4_0
 * writes, the file's bytes.
 */
export function q4_0BlocksFromGpu(result: GptqGpuResult, rows: number, cols: number): Uint8Array {
  if (cols % Q4_0_GROUP !== 0) throw new RangeError(`Q4_0 needs rows of a multiple of ${Q4_0_GROUP} values, not ${cols}`);
  const blocks = (rows * cols) / Q4_0_GROUP;
  const bytes = new Uint8Array(blocks * Q4_0_BLOCK_BYTES);
  for (let b = 0; b < blocks; b++) {
    const at = b * Q4_0_BLOCK_BYTES;
    const d = f32ToF16Bits(result.scales[b]);
    bytes[at] = d & 0xff;
    bytes[at + 1] = d >> 8;
    for (let j = 0; j < 16; j++) bytes[at + 2 + j] = result.codes[b * Q4_0_GROUP + j] | (result.codes[b * Q4_0_GROUP + j + 16] << 4);
  }
  return bytes;
}

/** The distance between neighbouring grid points of a group: its scale (Q4_0: the f16 d). */
export function gridStep(grid: GpuGrid, scale: number): number {
  return Math.abs(grid.kind === 'q4_0' ? f16BitsToF32(f32ToF16Bits(scale)) : scale);
}

/**
 * Share of weights on which two GPTQ runs chose the same grid point: |a − b| under half
 * of the group's step (from `result`, the GPU run). Scales that differ in their last bits
 * (f32 vs f64) then count as the same choice; a code or a zero point one off does not.
 */
export function sameGridPoints(a: ArrayLike<number>, b: ArrayLike<number>, result: GptqGpuResult, grid: GpuGrid, cols: number): number {
  const { sub } = gridShape(grid);
  const entries = Math.ceil(cols / sub);
  let same = 0;
  for (let k = 0; k < a.length; k++) {
    const r = Math.floor(k / cols);
    const step = gridStep(grid, result.scales[r * entries + Math.floor((k % cols) / sub)]);
    if (Math.abs(a[k] - b[k]) < step / 2 || a[k] === b[k]) same++;
  }
  return a.length === 0 ? 1 : same / a.length;
}

/**
 * GPTQ's Hessian on the GPU: H = 2/N · XᵀX for N input rows of `cols` (hessian()'s
 * contract), summed in f32 in register tiles, in bands of H's rows and chunks of tokens
 * that fit the storage binding limit; returned as f64 for prepareHessian.
 */
export async function gptqHessianGpu(gpu: GpuContext, x: Float32Array, n: number, cols: number, options: { upperOnly?: boolean } = {}): Promise<Float64Array> {
  const upperOnly = options.upperOnly !== false;
  if (x.length !== n * cols || n < 1) throw new RangeError(`GPTQ Hessian: ${x.length} values are not ${n} rows of ${cols}`);
  const { device, limits } = gpu;
  const bytes = chunkBytes(limits);
  const stride = ceil4(cols);
  const maxWg = limits.maxComputeWorkgroupsPerDimension;
  const tokensPerChunk = Math.min(n, Math.floor(bytes / (stride * 4)));
  const bandRows = Math.min(floor4(Math.floor(bytes / (stride * 4))), stride, maxWg * TILE * TILE_WG);
  if (tokensPerChunk < 1 || bandRows < 4) throw new RangeError(`GPTQ Hessian: rows of ${cols} f32 do not fit a ${bytes}-byte storage binding`);
  if (Math.ceil(stride / TILE / TILE_WG) > maxWg) throw new RangeError(`GPTQ Hessian: ${cols} columns exceed one dispatch`);
  const pipe = await xtxPipeline(device, upperOnly);
  const h = new Float64Array(cols * cols);
  await withErrorScopes(gpu, 'GPTQ Hessian', async () => {
    const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
    const xBufs: { buf: GPUBuffer; tokens: number }[] = [];
    for (let t0 = 0; t0 < n; t0 += tokensPerChunk) {
      const tokens = Math.min(tokensPerChunk, n - t0);
      const padded = new Float32Array(tokens * stride);
      for (let t = 0; t < tokens; t++) padded.set(x.subarray((t0 + t) * cols, (t0 + t + 1) * cols), t * stride);
      const buf = device.createBuffer({ label: `gptq.hessian.x${t0}`, size: padded.byteLength, usage: storage });
      device.queue.writeBuffer(buf, 0, padded);
      xBufs.push({ buf, tokens });
    }
    const slots = Math.ceil(cols / bandRows) * xBufs.length;
    const uniforms = device.createBuffer({ label: 'gptq.hessian.params', size: slots * UNIFORM_SLOT, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    try {
      let slot = 0;
      for (let row0 = 0; row0 < cols; row0 += bandRows) {
        const band = Math.min(bandRows, cols - row0);
        const hBuf = device.createBuffer({ label: `gptq.hessian.h${row0}`, size: band * stride * 4, usage: storage });
        const enc = device.createCommandEncoder({ label: `gptq.hessian.h${row0}.encoder` });
        const pass = enc.beginComputePass({ label: `gptq.hessian.h${row0}.pass` });
        pass.setPipeline(pipe);
        for (const { buf, tokens } of xBufs) {
          const at = slot++ * UNIFORM_SLOT;
          device.queue.writeBuffer(uniforms, at, new Uint32Array([tokens, stride, row0, band]));
          pass.setBindGroup(0, device.createBindGroup({
            label: `gptq.hessian.h${row0}.bindgroup`,
            layout: pipe.getBindGroupLayout(0),
            entries: [
              { binding: 0, resource: { buffer: buf } },
              { binding: 1, resource: { buffer: hBuf } },
              { binding: 2, resource: { buffer: uniforms, offset: at, size: 16 } },
            ],
          }));
          pass.dispatchWorkgroups(...xtxDispatch(stride, band));
        }
        pass.end();
        submit(device, [enc.finish()]);
        const sums = await readBuffer(device, hBuf, band * stride * 4, `gptq.hessian.h${row0}.read`);
        hBuf.destroy();
        const f = 2 / n;
        for (let i = 0; i < band; i++) for (let j = upperOnly ? row0 + i : 0; j < cols; j++) h[(row0 + i) * cols + j] = sums[i * stride + j] * f;
      }
      if (upperOnly) mirrorUpper(h, cols);
    } finally {
      for (const { buf } of xBufs) buf.destroy();
      uniforms.destroy();
    }
  });
  return h;
}
