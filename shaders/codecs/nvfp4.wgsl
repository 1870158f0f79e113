// NVFP4: blocks of 64 = 4 sub-blocks of 16, E2M1 codes with a UE4M3 scale per sub-block
// (src/quant/codecs/lowbit.ts; ggml dequantize_row_nvfp4, ggml_ue4m3_to_fp32).
// Byte map (36 bytes): [0..4) UE4M3 scale per sub-block | [4..36) 8 bytes per sub-block:
// byte j = code of value j (low nibble) | code of value j + 8 (high nibble).
// x = kvalues_mxfp4[code] * ue4m3 / 2, every product exact.
const BLOCK_SIZE: u32 = 64u;
const BLOCK_BYTES: u32 = 36u;

const NVFP4_VALUES = array<i32, 16>(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);

// ggml_ue4m3_to_fp32(x) / 2 (kvalues_mxfp4 holds doubled E2M1 values); 0 and 0x7f read as 0.
fn nvfp4_half_scale(x: u32) -> f32 {
  if (x == 0u || x == 0x7fu) {
    return 0.0;
  }
  let e = (x >> 3u) & 0xfu;
  let m = x & 7u;
  if (e == 0u) {
    return ldexp(f32(m), -10);
  }
  return ldexp(f32(8u + m), i32(e) - 11);
}

fn dequantize_block(base: u32) {
  for (var s = 0u; s < 4u; s = s + 1u) {
    let d = nvfp4_half_scale(ld_u8(base + s));
    for (var j = 0u; j < 8u; j = j + 1u) {
      let b = ld_u8(base + 4u + 8u * s + j);
      set_val(16u * s + j, f32(NVFP4_VALUES[b & 0xfu]) * d);
      set_val(16u * s + j + 8u, f32(NVFP4_VALUES[b >> 4u]) * d);
    }
  }
}
