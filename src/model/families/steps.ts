// Steps of a layer that several families share, each one weight product (through the
// Linear seam) and what llama.cpp's build_qkv / build_attn / build_ffn do around it.
import { addBias, attend, rmsNorm, sliceColumns, type AttentionShape } from './blocks.ts';
import type { LayerNames, ModelConfig } from './config.ts';
import type { LayerContext } from './decoder.ts';

/** y = W·x (+ bias, added on the CPU after the product). */
export async function project(ctx: LayerContext, name: string, x: Float32Array, n: number, rows: number, cols: number, bias?: string): Promise<Float32Array> {
  const y = await ctx.linear(name, x, n, rows, cols);
  return bias ? addBias(y, ctx.weights(bias)) : y;
}

export interface Qkv {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
}

function need(name: string | undefined, role: string, il: number): string {
  if (!name) throw new Error(`layer ${il} has no ${role} tensor`);
  return name;
}

/** q, k, v from their own matrices, each with its bias where the layer has one (qwen2). */
export async function separateQkv(ctx: LayerContext, il: number, h: Float32Array, n: number): Promise<Qkv> {
  const c = ctx.config;
  const L = c.names.layers[il];
  const d = c.nEmbd;
  const qDim = c.nHead * c.headDim;
  const kvDim = c.nHeadKv * c.headDim;
  const q = await project(ctx, need(L.q, 'attn_q', il), h, n, qDim, d, L.qBias);
  const k = await project(ctx, need(L.k, 'attn_k', il), h, n, kvDim, d, L.kBias);
  const v = await project(ctx, need(L.v, 'attn_v', il), h, n, kvDim, d, L.vBias);
  return { q, k, v };
}

/** q, k, v from one fused matrix (rows q, then k, then v: llama.cpp's attn_qkv). */
export async function fusedQkv(ctx: LayerContext, il: number, h: Float32Array, n: number): Promise<Qkv> {
  const c = ctx.config;
  const qDim = c.nHead * c.headDim;
  const kvDim = c.nHeadKv * c.headDim;
  const rows = qDim + 2 * kvDim;
  const y = await project(ctx, need(c.names.layers[il].qkv, 'attn_qkv', il), h, n, rows, c.nEmbd);
  return { q: sliceColumns(y, n, rows, 0, qDim), k: sliceColumns(y, n, rows, qDim, kvDim), v: sliceColumns(y, n, rows, qDim + kvDim, kvDim) };
}

/** RMSNorm over each head of n rows of `heads` heads (qwen3/gemma3's q/k norms). */
export function normHeads(ctx: LayerContext, weight: string | undefined, a: Float32Array, n: number, heads: number, il: number): Float32Array {
  const c = ctx.config;
  return rmsNorm(a, n * heads, c.headDim, ctx.weights(need(weight, 'q/k norm', il)), c.rmsEps);
}

/** The attention shape of layer il with the family's scale and soft-cap. */
export function attentionShape(c: ModelConfig, il: number): AttentionShape {
  return { nHead: c.nHead, nHeadKv: c.nHeadKv, headDim: c.headDim, scale: c.attnScale, softcap: c.attnSoftcap, window: c.layerAttention[il].window };
}

/** Stores k/v at positions start.. in the layer's cache, attends, and projects through attn_output. */
export async function attendAndProject(
  ctx: LayerContext,
  il: number,
  qkv: Qkv,
  n: number,
  start: number,
  kCache: Float32Array,
  vCache: Float32Array,
): Promise<Float32Array> {
  const c = ctx.config;
  const kvDim = c.nHeadKv * c.headDim;
  kCache.set(qkv.k, start * kvDim);
  vCache.set(qkv.v, start * kvDim);
  const attn = attend(qkv.q, kCache, vCache, n, start, attentionShape(c, il));
  return ctx.linear(c.names.layers[il].o, attn, n, c.nEmbd, c.nHead * c.headDim);
}

/** down(act(gate(h)) · up(h)) with separate gate and up matrices (build_ffn, LLM_FFN_PAR). */
export async function gatedFfn(ctx: LayerContext, L: LayerNames, h: Float32Array, n: number, act: (gate: Float32Array, up: Float32Array) => Float32Array): Promise<Float32Array> {
  const c = ctx.config;
  if (!L.gate) throw new Error(`no ffn_gate tensor next to '${L.up}'`);
  const gate = await ctx.linear(L.gate, h, n, c.nFf, c.nEmbd);
  const up = await ctx.linear(L.up, h, n, c.nFf, c.nEmbd);
  return ctx.linear(L.down, act(gate, up), n, c.nEmbd, c.nFf);
}

/** The layer's input norm (attn_norm or ffn_norm) of the n rows of x. */
export function inputNorm(ctx: LayerContext, weight: string, x: Float32Array, n: number): Float32Array {
  const c = ctx.config;
  return rmsNorm(x, n, c.nEmbd, ctx.weights(weight), c.rmsEps);
}
