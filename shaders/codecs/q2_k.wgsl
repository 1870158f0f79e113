// Q2_K: super-blocks of 256 = 16 sub-blocks of 16, value = d*sc_j*q - dmin*m_j, q in 0..3
// (ggml quantize_row_q2_K_ref, dequantize_row_q2_K; src/quant/codecs/kquants.ts).
// Byte map (84 bytes): [0..16) scales: sub-block j's 4-bit sc_j (low) and m_j (high) |
// [16..80) qs: byte 32h + l, bits 2s..2s+1 = q of value 128h + 32s + l |
// [80..82) d f16 | [82..84) dmin f16. Uses lib/kquant.wgsl.
const BLOCK_SIZE: u32 = 256u;
const BLOCK_BYTES: u32 = 84u;

// quantize_row_q2_K_ref, or quantize_row_q2_K_impl with importance weights (has_qw).
fn quantize_block(base: u32) {
  kq_begin_block();
  var sigma2 = 0.0;
  if (has_qw) {
    sigma2 = kg_mul(kq_sum_squares(0u, 256u), 0.00390625);
  }
  var max_scale = 0.0;
  var max_min = 0.0;
  for (var j = 0u; j < 16u; j = j + 1u) {
    if (has_qw) {
      kq_sw[j] = kq_fill_importance(16u * j, 16u, sigma2);
    } else {
      for (var l = 0u; l < 16u; l = l + 1u) {
        let x = val(16u * j + l);
        kq_x[l] = x;
        kq_w[l] = abs(x);
      }
    }
    // ref: make_qkx2_quants(-0.5, 0.1, 15, mad); impl: make_qkx3_quants(-0.9, 0.05, 36).
    let scale = make_qkx_quants(16u, 3, select(-0.5, KQ_NEG_0_9, has_qw), select(KQ_ONE_TENTH, KQ_0_05, has_qw),
                                select(15, 36, has_qw), !has_qw);
    for (var l = 0u; l < 16u; l = l + 1u) {
      kq_L[16u * j + l] = kq_l[l];
    }
    kq_scales[j] = scale;
    kq_mins[j] = kq_the_min;
    max_scale = select(max_scale, scale, scale > max_scale);
    max_min = select(max_min, kq_the_min, kq_the_min > max_min);
  }
  // 4-bit levels of the scales (low nibbles, k = 0) and mins (high nibbles, k = 1): ref
  // from the maxima (a zero maximum leaves its nibbles 0 and its f16 0), impl from
  // make_qp_quants.
  var sc: array<u32, 16>;
  var bits = vec2<u32>(0u, 0u);
  for (var k = 0u; k < 2u; k = k + 1u) {
    if (has_qw) {
      for (var j = 0u; j < 16u; j = j + 1u) {
        kq_x[j] = select(kq_scales[j], kq_mins[j], k == 1u);
        kq_w[j] = kq_sw[j];
      }
      bits[k] = f32_to_f16_bits(make_qp_quants(16u, 15));
      for (var j = 0u; j < 16u; j = j + 1u) {
        sc[j] = (sc[j] | (u32(kq_l[j]) << (4u * k))) & 0xffu;
      }
      continue;
    }
    let mx = select(max_scale, max_min, k == 1u);
    if (mx > 0.0) {
      let iscale = kg_div(15.0, mx);
      for (var j = 0u; j < 16u; j = j + 1u) {
        let v = select(kq_scales[j], kq_mins[j], k == 1u);
        sc[j] = (sc[j] | (u32(kq_nearest_int(kg_mul(iscale, v))) << (4u * k))) & 0xffu;
      }
      bits[k] = f32_to_f16_bits(kg_div(mx, 15.0));
    }
  }
  let d_all = f16_bits_to_f32(bits.x);
  let m_all = f16_bits_to_f32(bits.y);
  for (var j = 0u; j < 16u; j = j + 1u) {
    st_u8(base + j, sc[j]);
    let d = kg_mul(d_all, f32(sc[j] & 0xfu));
    let dm = kg_mul(m_all, f32(sc[j] >> 4u));
    kq_requantize_with_min(16u * j, 16u, 3, d, dm);
  }
  kq_pack_2bit(base + 16u);
  st_u16(base + 80u, bits.x);
  st_u16(base + 82u, bits.y);
  block_to_cpu = kq_inexact;
}

fn dequantize_block(base: u32) {
  let d = f16_bits_to_f32(ld_u16(base + 80u));
  let mn = f16_bits_to_f32(ld_u16(base + 82u));
  for (var j = 0u; j < 16u; j = j + 1u) {
    let sc = ld_u8(base + j);
    // d * sc and its products with q are exact (f16 times small ints, at least 2^-24),
    // so plain f32 arithmetic is C's here, fused or not.
    let dl = d * f32(sc & 0xfu);
    let ml = mn * f32(sc >> 4u);
    // Sub-block j = 8h + 2s + (j & 1): values 128h + 32s + 16(j & 1) + l.
    let qs = base + 16u + 32u * (j >> 3u) + 16u * (j & 1u);
    let shift = 2u * ((j >> 1u) & 3u);
    for (var l = 0u; l < 16u; l = l + 1u) {
      let q = (ld_u8(qs + l) >> shift) & 3u;
      set_val(16u * j + l, no_fuse(dl * f32(q)) - ml);
    }
  }
}
