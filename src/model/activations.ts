// Activation quantization at run time: what each matrix product's input looks like under a
// chosen scheme (docs/activations.md). Every mode wraps the forward pass's Linear seam
// (families/linear.ts): the input is rounded here, in JS, and the product itself runs on
// whatever Linear is underneath (the WASM SIMD CPU path, the reference, or WebGPU), so the
// rounded inputs are the same bits on every backend. llm.int8 also rewrites the weights
// (f16 for outlier columns, INT8 for the rest), so it computes its products itself on the CPU.
//   f32          the input as it is (the weights' effect alone)
//   ggml         llama.cpp's CPU backend: rounded to the weight type's vec_dot_type (llamacpp-linear.ts)
//   int8         per token (row of the input) absmax INT8: s = max|x|/127, x' = s·round(x/s)
//   int8-static  one scale per tensor: s = (max|x| over the calibration text)/127, clamped to ±127
//   fp8_e4m3     per token: s = max|x|/448, x' = s·e4m3(x/s) (the fp8_e4m3 codec, one row a "tensor")
//   llm.int8     LLM.int8 (Dettmers et al. 2022): the columns where any token has |x| >= 6 in f16
//                with f16 weights; the rest per-token INT8 x per-output-row INT8 weights
import { f16BitsToF32, f32ToF16Bits } from '../formats/float16.ts';
import { FP8_E4M3 } from '../quant/codecs/float.ts';
import { quantType } from '../quant/types.ts';
import type { Linear, WeightProvider } from './families/linear.ts';
import { roundActivations } from './llamacpp-linear.ts';

export const ACTIVATION_MODES = ['f32', 'ggml', 'int8', 'int8-static', 'fp8_e4m3', 'llm.int8'] as const;
export type ActivationMode = (typeof ACTIVATION_MODES)[number];

/** LLM.int8's outlier threshold: an input column with any |x| at or above it stays in f16. */
export const LLM_INT8_THRESHOLD = 6;

/** A mode by name, or one clear error listing the modes. */
export function parseActivationMode(name: string): ActivationMode {
  const mode = ACTIVATION_MODES.find((m) => m === name.toLowerCase());
  if (!mode) throw new Error(`unknown activation mode '${name}' (one of ${ACTIVATION_MODES.join(' ')})`);
  return mode;
}

/** Round half to even (ggml's nearest_int, torch.round). */
function roundEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** max |x| over x[from, to). */
function absMax(x: Float32Array, from: number, to: number): number {
  let m = 0;
  for (let i = from; i < to; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

/** x[from, to) on a symmetric INT8 grid of step `scale` (f32), clamped to ±127, written to out. */
function int8Round(x: Float32Array, from: number, to: number, scale: number, out: Float32Array): void {
  if (scale === 0) {
    out.fill(0, from, to);
    return;
  }
  for (let i = from; i < to; i++) out[i] = Math.fround(scale * Math.max(-127, Math.min(127, roundEven(Math.fround(x[i] / scale)))));
}

/** Per-token dynamic absmax INT8: each row of `cols` on its own grid of max|x|/127. */
export function int8PerToken(x: Float32Array, n: number, cols: number): Float32Array {
  const out = new Float32Array(n * cols);
  for (let t = 0; t < n; t++) int8Round(x, t * cols, (t + 1) * cols, Math.fround(absMax(x, t * cols, (t + 1) * cols) / 127), out);
  return out;
}

/** Static INT8: every value on one grid of `absMaxCalibrated`/127, values beyond it clamped. */
export function int8Static(x: Float32Array, absMaxCalibrated: number): Float32Array {
  const out = new Float32Array(x.length);
  int8Round(x, 0, x.length, Math.fround(absMaxCalibrated / 127), out);
  return out;
}

/** Per-token FP8 E4M3: each row scaled so that its max |x| is 448, rounded to e4m3, scaled back (the fp8_e4m3 codec per row). */
export function fp8E4m3PerToken(x: Float32Array, n: number, cols: number): Float32Array {
  const out = new Float32Array(n * cols);
  for (let t = 0; t < n; t++) {
    const row = x.subarray(t * cols, (t + 1) * cols);
    out.set(FP8_E4M3.decode(FP8_E4M3.encode(row, cols), 1, cols), t * cols);
  }
  return out;
}

const f16 = (v: number) => f16BitsToF32(f32ToF16Bits(v));

/** The input columns LLM.int8 keeps in f16: any token's |x| >= threshold. */
export function llmInt8OutlierColumns(x: Float32Array, n: number, cols: number, threshold = LLM_INT8_THRESHOLD): Uint8Array {
  const outlier = new Uint8Array(cols);
  for (let i = 0; i < n * cols; i++) if (Math.abs(x[i]) >= threshold) outlier[i % cols] = 1;
  return outlier;
}

/**
 * LLM.int8's mixed product y = X_o·W_oᵀ (f16 x f16, the outlier columns) + s_x[t]·s_w[r]·(Q_x·Q_wᵀ)
 * (the other columns: per-token INT8 inputs, per-output-row INT8 weights, an exact integer sum).
 * Sums in f64, result f32.
 */
export function llmInt8Product(w: Float32Array, rows: number, cols: number, x: Float32Array, n: number, threshold = LLM_INT8_THRESHOLD): Float32Array {
  const outlier = llmInt8OutlierColumns(x, n, cols, threshold);
  const qw = new Int8Array(rows * cols);
  const sw = new Float64Array(rows);
  const hw = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let c = 0; c < cols; c++) if (!outlier[c]) m = Math.max(m, Math.abs(w[r * cols + c]));
    const s = Math.fround(m / 127);
    sw[r] = s;
    for (let c = 0; c < cols; c++) {
      const v = w[r * cols + c];
      if (outlier[c]) hw[r * cols + c] = f16(v);
      else qw[r * cols + c] = s === 0 ? 0 : Math.max(-127, Math.min(127, roundEven(Math.fround(v / s))));
    }
  }
  const y = new Float32Array(n * rows);
  const qx = new Int8Array(cols);
  const hx = new Float32Array(cols);
  for (let t = 0; t < n; t++) {
    let m = 0;
    for (let c = 0; c < cols; c++) if (!outlier[c]) m = Math.max(m, Math.abs(x[t * cols + c]));
    const sx = Math.fround(m / 127);
    for (let c = 0; c < cols; c++) {
      const v = x[t * cols + c];
      if (outlier[c]) hx[c] = f16(v);
      else qx[c] = sx === 0 ? 0 : Math.max(-127, Math.min(127, roundEven(Math.fround(v / sx))));
    }
    for (let r = 0; r < rows; r++) {
      let acc = 0; // integer sum, exact
      let hi = 0;
      const o = r * cols;
      for (let c = 0; c < cols; c++) {
        if (outlier[c]) hi += hx[c] * hw[o + c];
        else acc += qx[c] * qw[o + c];
      }
      y[t * rows + r] = hi + sx * sw[r] * acc;
    }
  }
  return y;
}

export interface ActivationContext {
  /** The model's weights as f32 (llm.int8 reads them). */
  weights: WeightProvider;
  /** A tensor's type by name (ggml: its vec_dot_type); undefined = f32. */
  typeOf: (name: string) => string | undefined;
  /** int8-static: max |x| of each product's input over the calibration text, by tensor name. */
  staticAbsMax?: ReadonlyMap<string, number>;
}

/**
 * `inner` with its inputs quantized as `mode` says (llm.int8: its own CPU product). Keeps
 * inner's `dispose()` (a GPU linear's buffers), which eval calls when a model is done.
 */
export function activationLinear(mode: ActivationMode, inner: Linear, ctx: ActivationContext): Linear {
  const wrapped = wrapLinear(mode, inner, ctx);
  const dispose = (inner as { dispose?: () => void }).dispose;
  return wrapped === inner || !dispose ? wrapped : Object.assign(wrapped, { dispose: () => dispose.call(inner) });
}

function wrapLinear(mode: ActivationMode, inner: Linear, ctx: ActivationContext): Linear {
  switch (mode) {
    case 'f32':
      return inner;
    case 'ggml':
      return (name, x, n, rows, cols) => {
        const type = ctx.typeOf(name) ?? 'f32';
        const vecDot = quantType(type)?.vecDot;
        if (!vecDot) throw new Error(`tensor '${name}': no llama.cpp activation rounding known for type ${type}`);
        return inner(name, roundActivations(x.subarray(0, n * cols), cols, vecDot), n, rows, cols);
      };
    case 'int8':
      return (name, x, n, rows, cols) => inner(name, int8PerToken(x, n, cols), n, rows, cols);
    case 'fp8_e4m3':
      return (name, x, n, rows, cols) => inner(name, fp8E4m3PerToken(x, n, cols), n, rows, cols);
    case 'int8-static':
      return (name, x, n, rows, cols) => {
        const m = ctx.staticAbsMax?.get(name);
        if (m === undefined) throw new Error(`tensor '${name}': no calibrated activation range (int8-static needs a calibration pass)`);
        return inner(name, int8Static(x.subarray(0, n * cols), m), n, rows, cols);
      };
    case 'llm.int8':
      return (name, x, n, rows, cols) => llmInt8Product(ctx.weights(name), rows, cols, x, n);
  }
}

/** `inner`, recording each product's max |input| by tensor name into `into` (int8-static's calibration). */
export function absMaxRecorder(inner: Linear, into: Map<string, number>): Linear {
  return (name, x, n, rows, cols) => {
    into.set(name, Math.max(into.get(name) ?? 0, absMax(x, 0, n * cols)));
    return inner(name, x, n, rows, cols);
  };
}
