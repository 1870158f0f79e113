// NVFP4: blocks of 64 = 4 sub-blocks of 16, E2M1 codes with a UE4M3 scale per sub-block
// (src/quant/codecs/lowbit.ts; ggml quantize_row_nvfp4_ref, dequantize_row_nvfp4,
// ggml_fp32_to_ue4m3, ggml_ue4m3_to_fp32).
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

// ggml_fp32_to_ue4m3 on f32 bits: <= 0 or NaN -> 0; saturate at 448 (0x7e); subnormal
// UE4M3 as (int)(x * 512 + 0.5) up to 7; else round by the mantissa's next bit.
fn nvfp4_ue4m3(b: u32) -> u32 {
  if ((b & F32_SIGN) != 0u || b == 0u || is_nan_bits(b)) {
    return 0u;
  }
  let x = select(b, 0x43e00000u, flt_lt(0x43e00000u, b)); // min(x, 448)
  var e = i32((x >> 23u) & 0xffu) - 120;
  if (e <= 0) {
    let m = u32(sf_add(sf_mul(bitcast<f32>(x), 512.0), 0.5));
    return min(m, 7u);
  }
  if (e >= 15) {
    return 0x7eu;
  }
  var m = ((x >> 20u) & 7u) + ((x >> 19u) & 1u);
  if (m > 7u) {
    m = 0u;
    e = e + 1;
    if (e >= 15) {
      return 0x7eu;
    }
  }
  return (u32(e) << 3u) | m;
}

var<private> nvfp4_grid: array<f32, 16>;

// best_index_mxfp4: the first code with the smallest f32 |value * d - x|.
fn nvfp4_best_index(x: f32) -> u32 {
  var best = 0u;
  var best_err = bitcast<u32>(sf_sub(nvfp4_grid[0], x)) & F32_ABS;
  for (var i = 1u; i < 16u; i = i + 1u) {
    let err = bitcast<u32>(sf_sub(nvfp4_grid[i], x)) & F32_ABS;
    if (flt_lt(err, best_err)) {
      best = i;
      best_err = err;
    }
  }
  return best;
}

fn quantize_block(base: u32) {
  for (var s = 0u; s < 4u; s = s + 1u) {
    var amax = 0u;
    for (var j = 0u; j < 16u; j = j + 1u) {
      if (flt_lt(amax, vals[16u * s + j] & F32_ABS)) {
        amax = vals[16u * s + j] & F32_ABS;
      }
    }
    let ue = nvfp4_ue4m3(bitcast<u32>(div_rn(bitcast<f32>(amax), 6.0)));
    st_u8(base + s, ue);
    let d = nvfp4_half_scale(ue);
    for (var i = 0u; i < 16u; i = i + 1u) {
      nvfp4_grid[i] = f32(NVFP4_VALUES[i]) * d; // exact: a small integer times a power-of-two multiple
    }
    for (var j = 0u; j < 8u; j = j + 1u) {
      let lo = nvfp4_best_index(val(16u * s + j));
      let hi = nvfp4_best_index(val(16u * s + j + 8u));
      st_u8(base + 4u + 8u * s + j, lo | (hi << 4u));
    }
  }
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
