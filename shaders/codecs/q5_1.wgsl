// Q5_1: blocks of 32, 5-bit quants q with x = q * d + m; d = (max - min) / 31, m = min
// (ggml quantize_row_q5_1_ref, dequantize_row_q5_1).
// Byte map (24 bytes): [0..2) d f16 | [2..4) m f16 | [4..8) qh u32: bit j = bit 4 of q[j] |
// [8..24) qs: byte j = (q[j] & 15) | (q[j + 16] & 15) << 4.
const BLOCK_SIZE: u32 = 32u;
const BLOCK_BYTES: u32 = 24u;

fn quantize_block(base: u32) {
  if (has_qw) {
    quantize_block_weighted(base);
    return;
  }
  var mn = 0x7f7fffffu; // FLT_MAX
  var mx = 0xff7fffffu; // -FLT_MAX
  for (var j = 0u; j < 32u; j = j + 1u) {
    let v = vals[j];
    if (flt_lt(v, mn)) {
      mn = v;
    }
    if (flt_lt(mx, v)) {
      mx = v;
    }
  }
  let fmin = bitcast<f32>(mn);
  let d = div_rn(bitcast<f32>(mx) - fmin, 31.0);
  let id = select(0.0, div_rn(1.0, d), is_nonzero(d));
  st_u16(base, f32_to_f16_bits(d));
  st_u16(base + 2u, f32_to_f16_bits(fmin));
  var qh = 0u;
  for (var j = 0u; j < 16u; j = j + 1u) {
    let x0 = no_fuse((val(j) - fmin) * id);
    let x1 = no_fuse((val(j + 16u) - fmin) * id);
    let q0 = c_uint8(x0 + 0.5);
    let q1 = c_uint8(x1 + 0.5);
    st_u8(base + 8u + j, (q0 & 0xfu) | ((q1 & 0xfu) << 4u));
    qh = qh | (((q0 & 0x10u) >> 4u) << j) | (((q1 & 0x10u) >> 4u) << (j + 16u));
  }
  st_u32(base + 4u, qh);
}

// quantize_row_q5_1_impl's block, with importance weights (has_qw): make_qkx3_quants(32,
// 31, -0.9, 0.05, 36) under qw * sqrt(sigma2 + x^2), sigma2 the row's mean square;
// m = -the_min (lib/kquant.wgsl).
fn quantize_block_weighted(base: u32) {
  kq_begin_block();
  kq_fill_importance(0u, 32u, qw_sigma2);
  st_u16(base, f32_to_f16_bits(make_qkx_quants(32u, 31, KQ_NEG_0_9, KQ_0_05, 36, false)));
  st_u16(base + 2u, f32_to_f16_bits(-kq_the_min));
  var qh = 0u;
  for (var j = 0u; j < 16u; j = j + 1u) {
    let q0 = u32(kq_l[j]);
    let q1 = u32(kq_l[j + 16u]);
    st_u8(base + 8u + j, (q0 & 0xfu) | ((q1 & 0xfu) << 4u));
    qh = qh | (((q0 & 0x10u) >> 4u) << j) | (((q1 & 0x10u) >> 4u) << (j + 16u));
  }
  st_u32(base + 4u, qh);
  block_to_cpu = kq_inexact;
}

fn dequantize_block(base: u32) {
  let d = f16_bits_to_f32(ld_u16(base));
  let m = f16_bits_to_f32(ld_u16(base + 2u));
  let qh = ld_u32(base + 4u);
  for (var j = 0u; j < 16u; j = j + 1u) {
    let b = ld_u8(base + 8u + j);
    let h0 = ((qh >> j) << 4u) & 0x10u;
    let h1 = (qh >> (j + 12u)) & 0x10u;
    // q * d is exact (5-bit times 11-bit significand), so a fused q * d + m rounds the same.
    set_val(j, f32((b & 0xfu) | h0) * d + m);
    set_val(j + 16u, f32((b >> 4u) | h1) * d + m);
  }
}
