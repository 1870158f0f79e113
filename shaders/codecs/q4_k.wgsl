// Q4_K: super-blocks of 256 = 8 sub-blocks of 32, value = d*sc_j*q - dmin*m_j, q in 0..15
// (ggml quantize_row_q4_K_ref, dequantize_row_q4_K; src/quant/codecs/kquants.ts).
// Byte map (144 bytes): [0..2) d f16 | [2..4) dmin f16 | [4..16) scales: 6-bit sc_j and
// m_j, get_scale_min_k4 | [16..144) qs: byte 32c + l = q[64c + l] | q[64c + 32 + l] << 4.
// Uses lib/kquant.wgsl.
const BLOCK_SIZE: u32 = 256u;
const BLOCK_BYTES: u32 = 144u;

// quantize_row_q4_K_ref, or quantize_row_q4_K_impl with importance weights (has_qw).
fn quantize_block(base: u32) {
  kq_begin_block();
  kq_scales_mins_k4(base, 15, -1.0, KQ_ONE_TENTH, 20, false, has_qw);
  for (var c = 0u; c < 4u; c = c + 1u) {
    for (var l = 0u; l < 32u; l = l + 1u) {
      st_u8(base + 16u + 32u * c + l, u32(kq_L[64u * c + l]) | (u32(kq_L[64u * c + 32u + l]) << 4u));
    }
  }
  block_to_cpu = kq_inexact;
}

fn dequantize_block(base: u32) {
  var q: array<u32, 32>;
  for (var j = 0u; j < 8u; j = j + 1u) {
    // Sub-block j = 2c + h: the low (h = 0) or high nibbles of qs bytes 32c..32c+31.
    let qs = base + 16u + 32u * (j >> 1u);
    let shift = 4u * (j & 1u);
    for (var l = 0u; l < 32u; l = l + 1u) {
      q[l] = (ld_u8(qs + l) >> shift) & 0xfu;
    }
    kq_dequantize_k4(base, j, &q);
  }
}
