// A `Linear` that rounds the activations the way llama.cpp's CPU backend does before a
// matrix product, to compare logits with llama.cpp closely. ggml-cpu converts the input
// of a mul_mat to its weight type's vec_dot_type (ggml-cpu.c type_traits_cpu; the type
// table's vecDot, quant/types.ts):
//   f32 -> f32;  f16 -> f16;  bf16 -> bf16
//   q4_0 q5_0 q8_0 iq4_nl mxfp4 -> q8_0 (blocks of 32, f16 scale)
//   q4_1 q5_1 -> q8_1 (q8_0's values plus a block sum)
//   q2_K..q6_K iq4_xs tq1_0 tq2_0 -> q8_K (blocks of 256, f32 scale)
// q8_0/q8_1 as ggml-cpu/arch/x86/quants.c quantize_row_q8_0 (AVX: id = 127/amax, round
// half to even), q8_K as ggml-quants.c quantize_row_q8_K_ref (the x86 build calls it).
// The dot product then runs on the dequantized weights and dequantized activations with
// f64 accumulation, which equals ggml's integer block sums up to f32 rounding of the
// per-block partial sums. The reference forward pass does not use this: it keeps
// activations in f32, as the quantization's own effect is what quantlab measures.
//
// What it shows (stories260K, llama-quantize's Q2_K file in node-llama-cpp with an f32 KV
// cache): logits equal llama.cpp's within ~2e-6 position after position, until one
// activation lands on the other side of a rounding boundary: our f32 inputs differ from
// ggml's by an ulp or so (f64 vs SIMD f32 sums), and an ulp near k + 0.5 moves a q8 value
// by a whole step (amax/127), which moves logits by ~0.1. A flip in a query stays local
// to its position; one in a key or value carries on to later positions. Bit-exact
// agreement would need ggml's summation order, lane by lane; this does not attempt it.
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../formats/float16.ts';
import { quantType, type VecDotType } from '../quant/types.ts';
import { matmulF32, type Linear, type WeightProvider } from './llama.ts';

/** Round half to even, as _mm256_round_ps(_MM_ROUND_NEAREST) and ggml's nearest_int. */
function roundEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** x rounded as llama.cpp rounds a mul_mat input for weights of type `vecDot`. */
export function roundActivations(x: Float32Array, cols: number, vecDot: VecDotType): Float32Array {
  if (vecDot === 'f32') return x;
  const out = new Float32Array(x.length);
  if (vecDot === 'f16') {
    for (let i = 0; i < x.length; i++) out[i] = f16BitsToF32(f32ToF16Bits(x[i]));
    return out;
  }
  if (vecDot === 'bf16') {
    for (let i = 0; i < x.length; i++) out[i] = bf16BitsToF32(f32ToBf16Bits(x[i]));
    return out;
  }
  const block = vecDot === 'q8_0' ? 32 : 256;
  if (cols % block !== 0) throw new Error(`a row of ${cols} is not a whole number of ${vecDot} blocks`);
  for (let b = 0; b < x.length; b += block) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < block; j++) {
      const a = Math.abs(x[b + j]);
      if (a > amax) {
        amax = a;
        max = x[b + j];
      }
    }
    if (vecDot === 'q8_0') {
      const d = f16BitsToF32(f32ToF16Bits(Math.fround(amax / 127)));
      const id = amax !== 0 ? Math.fround(127 / amax) : 0;
      for (let j = 0; j < block; j++) out[b + j] = d * roundEven(Math.fround(x[b + j] * id));
    } else {
      if (amax === 0) continue;
      const iscale = Math.fround(-127 / max);
      const d = Math.fround(1 / iscale);
      for (let j = 0; j < block; j++) out[b + j] = d * Math.min(127, roundEven(Math.fround(iscale * x[b + j])));
    }
  }
  return out;
}

/**
 * The CPU product over `weights` (dequantized values) with llama.cpp's activation rounding
 * for each tensor's type (`typeOf(name)`, e.g. QuantizedWeights.types.get; f32 if unknown).
 */
export function llamaCppCpuLinear(weights: WeightProvider, typeOf: (name: string) => string | undefined): Linear {
  return (name, x, n, rows, cols) => {
    const type = typeOf(name) ?? 'f32';
    const vecDot = quantType(type)?.vecDot;
    if (!vecDot) throw new Error(`tensor '${name}': no llama.cpp activation rounding known for type ${type}`);
    return matmulF32(weights(name), rows, cols, roundActivations(x, cols, vecDot), n);
  };
}
