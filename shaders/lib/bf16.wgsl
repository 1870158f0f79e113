// f32 <-> bfloat16 bits, as ggml_compute_fp32_to_bf16 / ggml_compute_bf16_to_fp32 (and
// src/formats/float16.ts): round to nearest even on the bits, NaN made quiet, subnormals
// kept.

fn f32_to_bf16_bits(x: f32) -> u32 {
  let u = bitcast<u32>(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    return (u >> 16u) | 64u;
  }
  return ((u + (0x7fffu + ((u >> 16u) & 1u))) >> 16u) & 0xffffu;
}

fn bf16_bits_to_f32_bits(h: u32) -> u32 {
  return (h & 0xffffu) << 16u;
}
