// Q5_0: blocks of 32, 5-bit quants q with x = (q - 16) * d; d = max / -16 where max is the
// value of largest magnitude (ggml quantize_row_q5_0_ref, dequantize_row_q5_0).
// Byte map (22 bytes): [0..2) d f16 | [2..6) qh u32: bit j = bit 4 of q[j] |
// [6..22) qs: byte j = (q[j] & 15) | (q[j + 16] & 15) << 4.
const BLOCK_SIZE: u32 = 32u;
const BLOCK_BYTES: u32 = 22u;

fn quantize_block(base: u32) {
  if (has_qw) {
    quantize_block_weighted(base);
    return;
  }
  var amax = 0u;
  var mx = 0u;
  for (var j = 0u; j < 32u; j = j + 1u) {
    let v = vals[j];
    if (flt_lt(amax, v & F32_ABS)) {
      amax = v & F32_ABS;
      mx = v;
    }
  }
  let d = div_rn(bitcast<f32>(mx), -16.0);
  let id = select(0.0, div_rn(1.0, d), is_nonzero(d));
  st_u16(base, f32_to_f16_bits(d));
  var qh = 0u;
  for (var j = 0u; j < 16u; j = j + 1u) {
    let x0 = no_fuse(val(j) * id);
    let x1 = no_fuse(val(j + 16u) * id);
    let q0 = u32(min(31, c_int8(x0 + 16.5))) & 0xffu;
    let q1 = u32(min(31, c_int8(x1 + 16.5))) & 0xffu;
    st_u8(base + 6u + j, (q0 & 0xfu) | ((q1 & 0xfu) << 4u));
    qh = qh | (((q0 & 0x10u) >> 4u) << j) | (((q1 & 0x10u) >> 4u) << (j + 16u));
  }
  st_u32(base + 2u, qh);
}

// quantize_row_q5_0_impl's block, with importance weights (has_qw): make_qx_quants(32,
// 16) under qw * sqrt(sigma2 + x^2), sigma2 the row's mean square (lib/kquant.wgsl).
fn quantize_block_weighted(base: u32) {
  kq_begin_block();
  kq_fill_importance(0u, 32u, qw_sigma2);
  st_u16(base, f32_to_f16_bits(make_qx_quants(32u, 16)));
  var qh = 0u;
  for (var j = 0u; j < 16u; j = j + 1u) {
    let q0 = u32(kq_l[j]);
    let q1 = u32(kq_l[j + 16u]);
    st_u8(base + 6u + j, (q0 & 0xfu) | ((q1 & 0xfu) << 4u));
    qh = qh | (((q0 & 0x10u) >> 4u) << j) | (((q1 & 0x10u) >> 4u) << (j + 16u));
  }
  st_u32(base + 2u, qh);
  block_to_cpu = kq_inexact;
}

fn dequantize_block(base: u32) {
  let d = f16_bits_to_f32(ld_u16(base));
  let qh = ld_u32(base + 2u);
  for (var j = 0u; j < 16u; j = j + 1u) {
    let b = ld_u8(base + 6u + j);
    let h0 = ((qh >> j) << 4u) & 0x10u;
    let h1 = (qh >> (j + 12u)) & 0x10u;
    set_val(j, f32(i32((b & 0xfu) | h0) - 16) * d);
    set_val(j + 16u, f32(i32((b >> 4u) | h1) - 16) * d);
  }
}
