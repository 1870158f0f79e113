// Q6_K: super-blocks of 256 = 16 sub-blocks of 16, value = d*sc_j*(q - 32), q in 0..63
// (ggml quantize_row_q6_K_ref, dequantize_row_q6_K; src/quant/codecs/kquants.ts).
// Byte map (210 bytes): [0..128) ql: byte 64h + l (l < 32) = low nibbles of q[128h + l]
// (low) and q[128h + 64 + l] (high); byte 64h + 32 + l likewise for 128h + 32 + l and
// 128h + 96 + l | [128..192) qh: byte 32h + l, bits 2s..2s+1 = bits 4..5 of
// q[128h + 32s + l] | [192..208) scales: int8 sc_j | [208..210) d f16. Uses lib/kquant.wgsl.
const BLOCK_SIZE: u32 = 256u;
const BLOCK_BYTES: u32 = 210u;

// quantize_row_q6_K_ref, or quantize_row_q6_K_impl with importance weights (has_qw).
fn quantize_block(base: u32) {
  kq_begin_block();
  var max_scale = 0.0;
  var max_abs_scale = 0.0;
  for (var j = 0u; j < 16u; j = j + 1u) {
    for (var l = 0u; l < 16u; l = l + 1u) {
      let x = val(16u * j + l);
      kq_x[l] = x;
      // ref: x^2; impl (importance weights): the weights as they are.
      kq_w[l] = select(kg_mul(x, x), qw[16u * j + l], has_qw);
    }
    let scale = make_qx_quants(16u, 32);
    for (var l = 0u; l < 16u; l = l + 1u) {
      kq_L[16u * j + l] = kq_l[l];
    }
    kq_scales[j] = scale;
    if (abs(scale) > max_abs_scale) {
      max_abs_scale = abs(scale);
      max_scale = scale;
    }
  }
  if (max_abs_scale < KQ_GROUP_MAX_EPS) {
    kq_zero_bytes(base, BLOCK_BYTES); // d = f16(0) too
    block_to_cpu = kq_inexact;
    return;
  }
  let iscale = kg_div(-128.0, max_scale);
  let d_bits = f32_to_f16_bits(kg_div(1.0, iscale));
  st_u16(base + 208u, d_bits);
  let d_all = f16_bits_to_f32(d_bits);
  for (var j = 0u; j < 16u; j = j + 1u) {
    let sc = u32(min(127, kq_nearest_int(kg_mul(iscale, kq_scales[j])))) & 0xffu;
    st_u8(base + 192u + j, sc);
    kq_requantize_symmetric(16u * j, -32, 31, kg_mul(d_all, f32((i32(sc) << 24u) >> 24u)));
  }
  for (var h = 0u; h < 2u; h = h + 1u) {
    for (var l = 0u; l < 32u; l = l + 1u) {
      let v = 128u * h + l;
      let a = u32(kq_L[v]);
      let b = u32(kq_L[v + 32u]);
      let c = u32(kq_L[v + 64u]);
      let e = u32(kq_L[v + 96u]);
      st_u8(base + 64u * h + l, (a & 0xfu) | ((c & 0xfu) << 4u));
      st_u8(base + 64u * h + 32u + l, (b & 0xfu) | ((e & 0xfu) << 4u));
      st_u8(base + 128u + 32u * h + l, (a >> 4u) | ((b >> 4u) << 2u) | ((c >> 4u) << 4u) | ((e >> 4u) << 6u));
    }
  }
  block_to_cpu = kq_inexact;
}

fn dequantize_block(base: u32) {
  let d = f16_bits_to_f32(ld_u16(base + 208u));
  for (var j = 0u; j < 16u; j = j + 1u) {
    // Sub-block j = 8h + 2s + (j & 1): values 128h + 32s + 16(j & 1) + l.
    let h = j >> 3u;
    let s = (j >> 1u) & 3u;
    let dl = d * f32((i32(ld_u8(base + 192u + j)) << 24u) >> 24u); // exact: f16 times int8
    for (var l = 16u * (j & 1u); l < 16u * (j & 1u) + 16u; l = l + 1u) {
      let ql = ld_u8(base + 64u * h + 32u * (s & 1u) + l) >> (4u * (s >> 1u));
      let qh = ld_u8(base + 128u + 32u * h + l) >> (2u * s);
      let q = i32((ql & 0xfu) | ((qh & 3u) << 4u)) - 32;
      set_val(128u * h + 32u * s + l, dl * f32(q)); // one rounding, as C's
    }
  }
}
