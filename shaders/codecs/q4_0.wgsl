// Q4_0: blocks of 32, 4-bit quants q with x = (q - 8) * d; d = max / -8 where max is the
// value of largest magnitude (ggml quantize_row_q4_0_ref, dequantize_row_q4_0).
// Byte map (18 bytes): [0..2) d f16 | [2..18) qs: byte j = q[j] | q[j + 16] << 4.
const BLOCK_SIZE: u32 = 32u;
const BLOCK_BYTES: u32 = 18u;

fn quantize_block(base: u32) {
  if (has_qw) {
    quantize_block_weighted(base);
    return;
  }
  var amax = 0u; // fabsf bits
  var mx = 0u;   // the value with that magnitude (first one), bits
  for (var j = 0u; j < 32u; j = j + 1u) {
    let v = vals[j];
    if (flt_lt(amax, v & F32_ABS)) {
      amax = v & F32_ABS;
      mx = v;
    }
  }
  let d = div_rn(bitcast<f32>(mx), -8.0);
  let id = select(0.0, div_rn(1.0, d), is_nonzero(d));
  st_u16(base, f32_to_f16_bits(d));
  for (var j = 0u; j < 16u; j = j + 1u) {
    let x0 = no_fuse(val(j) * id);
    let x1 = no_fuse(val(j + 16u) * id);
    let q0 = u32(min(15, c_int8(x0 + 8.5)));
    let q1 = u32(min(15, c_int8(x1 + 8.5)));
    st_u8(base + 2u + j, (q0 & 0xfu) | ((q1 & 0xfu) << 4u));
  }
}

// quantize_row_q4_0_impl's block, with importance weights (has_qw): make_qx_quants(32,
// 8) under qw * sqrt(sigma2 + x^2), sigma2 the row's mean square (lib/kquant.wgsl).
fn quantize_block_weighted(base: u32) {
  kq_begin_block();
  kq_fill_importance(0u, 32u, qw_sigma2);
  st_u16(base, f32_to_f16_bits(make_qx_quants(32u, 8)));
  for (var j = 0u; j < 16u; j = j + 1u) {
    st_u8(base + 2u + j, (u32(kq_l[j]) & 0xfu) | ((u32(kq_l[j + 16u]) & 0xfu) << 4u));
  }
  block_to_cpu = kq_inexact;
}

fn dequantize_block(base: u32) {
  let d = f16_bits_to_f32(ld_u16(base));
  for (var j = 0u; j < 16u; j = j + 1u) {
    let b = ld_u8(base + 2u + j);
    set_val(j, f32(i32(b & 0xfu) - 8) * d);
    set_val(j + 16u, f32(i32(b >> 4u) - 8) * d);
  }
}
