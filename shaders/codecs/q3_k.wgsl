// Q3_K: super-blocks of 256 = 16 sub-blocks of 16, value = d*(sc_j - 32)*(q - 4), q in 0..7
// (ggml quantize_row_q3_K_ref, dequantize_row_q3_K; src/quant/codecs/kquants.ts).
// Byte map (110 bytes): [0..32) hmask: bit h of byte l = bit 2 of q[32h + l] |
// [32..96) qs: bits 0..1 of q, laid out as Q2_K's qs | [96..108) scales: 6-bit sc_j, bits
// 0..3 in the low (j < 8) or high nibble of byte j % 8, bits 4..5 in byte 8 + j % 4 at bit
// 2 * (j / 4) | [108..110) d f16. Uses lib/kquant.wgsl.
const BLOCK_SIZE: u32 = 256u;
const BLOCK_BYTES: u32 = 110u;

// quantize_row_q3_K_ref, or quantize_row_q3_K_impl with importance weights (has_qw).
fn quantize_block(base: u32) {
  kq_begin_block();
  var sigma2 = 0.0;
  if (has_qw) {
    sigma2 = kg_mul(kg_mul(2.0, kq_sum_squares(0u, 256u)), 0.00390625);
  }
  var max_scale = 0.0;
  var amax = 0.0;
  for (var j = 0u; j < 16u; j = j + 1u) {
    var scale = 0.0;
    if (has_qw) {
      kq_sw[j] = kq_fill_importance(16u * j, 16u, sigma2);
      scale = make_qx_quants(16u, 4);
    } else {
      for (var l = 0u; l < 16u; l = l + 1u) {
        kq_x[l] = val(16u * j + l);
      }
      scale = make_q3_quants(16u, 4);
    }
    for (var l = 0u; l < 16u; l = l + 1u) {
      kq_L[16u * j + l] = kq_l[l];
    }
    kq_scales[j] = scale;
    if (abs(scale) > amax) {
      amax = abs(scale);
      max_scale = scale;
    }
  }
  // 6-bit levels sc_j: ref from the largest scale (all 0 with a zero one: then d = 0 too),
  // impl from make_qx_quants over the scales, weighted by the sub-blocks' weight sums.
  var lv: array<u32, 16>;
  var d_bits = 0u;
  if (has_qw) {
    for (var j = 0u; j < 16u; j = j + 1u) {
      kq_x[j] = kq_scales[j];
      kq_w[j] = kq_sw[j];
    }
    d_bits = f32_to_f16_bits(make_qx_quants(16u, 32));
    for (var j = 0u; j < 16u; j = j + 1u) {
      lv[j] = u32(kq_l[j]);
    }
  } else if (max_scale != 0.0) {
    let iscale = kg_div(-32.0, max_scale);
    for (var j = 0u; j < 16u; j = j + 1u) {
      let l = (kq_nearest_int(kg_mul(iscale, kq_scales[j])) << 24u) >> 24u; // (int8_t)
      lv[j] = u32(kq_clamp(l, -32, 31) + 32);
    }
    d_bits = f32_to_f16_bits(kg_div(1.0, iscale));
  }
  for (var i = 0u; i < 8u; i = i + 1u) {
    st_u8(base + 96u + i, (lv[i] & 0xfu) | ((lv[i + 8u] & 0xfu) << 4u));
  }
  for (var i = 0u; i < 4u; i = i + 1u) {
    st_u8(base + 104u + i, (lv[i] >> 4u) | ((lv[i + 4u] >> 4u) << 2u) | ((lv[i + 8u] >> 4u) << 4u) | ((lv[i + 12u] >> 4u) << 6u));
  }
  st_u16(base + 108u, d_bits);
  let d_all = f16_bits_to_f32(d_bits);
  for (var j = 0u; j < 16u; j = j + 1u) {
    kq_requantize_symmetric(16u * j, -4, 3, kg_mul(d_all, f32(i32(lv[j]) - 32)));
  }
  // hmask: bit 2 of q[32h + l] to bit h of byte l; the 2-bit rest to qs.
  for (var l = 0u; l < 32u; l = l + 1u) {
    var hm = 0u;
    for (var h = 0u; h < 8u; h = h + 1u) {
      let v = 32u * h + l;
      let hi = select(0u, 1u, kq_L[v] > 3);
      hm = hm | (hi << h);
      kq_L[v] = kq_L[v] - 4 * i32(hi);
    }
    st_u8(base + l, hm);
  }
  kq_pack_2bit(base + 32u);
  block_to_cpu = kq_inexact;
}

fn dequantize_block(base: u32) {
  let d_all = f16_bits_to_f32(ld_u16(base + 108u));
  for (var j = 0u; j < 16u; j = j + 1u) {
    let sb = ld_u8(base + 96u + (j & 7u));
    let low = select(sb >> 4u, sb & 0xfu, j < 8u);
    let sc = low | (((ld_u8(base + 104u + (j & 3u)) >> (2u * (j >> 2u))) & 3u) << 4u);
    // d * (sc - 32) * (q - 4) is exact: f16 times 6-bit times 3-bit integers.
    let dl = d_all * f32(i32(sc) - 32);
    let h = j >> 3u;         // 128-value half
    let s = (j >> 1u) & 3u;  // 2-bit field
    let qs = base + 32u + 32u * h + 16u * (j & 1u);
    let hm = base + 16u * (j & 1u);
    let hm_bit = 4u * h + s;
    for (var l = 0u; l < 16u; l = l + 1u) {
      let low2 = (ld_u8(qs + l) >> (2u * s)) & 3u;
      let q = i32(low2) - select(4, 0, ((ld_u8(hm + l) >> hm_bit) & 1u) == 1u);
      set_val(16u * j + l, dl * f32(q));
    }
  }
}
