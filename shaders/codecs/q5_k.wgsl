// Q5_K: super-blocks of 256 = 8 sub-blocks of 32, value = d*sc_j*q - dmin*m_j, q in 0..31
// (ggml quantize_row_q5_K_ref, dequantize_row_q5_K; src/quant/codecs/kquants.ts).
// Byte map (176 bytes): [0..2) d f16 | [2..4) dmin f16 | [4..16) scales as Q4_K |
// [16..48) qh: byte l, bit 2c = bit 4 of q[64c + l], bit 2c + 1 = bit 4 of q[64c + 32 + l] |
// [48..176) qs: low 4 bits, laid out as Q4_K's. Uses lib/kquant.wgsl.
const BLOCK_SIZE: u32 = 256u;
const BLOCK_BYTES: u32 = 176u;

// quantize_row_q5_K_ref, or quantize_row_q5_K_impl with importance weights (has_qw).
fn quantize_block(base: u32) {
  kq_begin_block();
  kq_scales_mins_k4(base, 31, -0.5, KQ_ONE_TENTH, 15, true, has_qw);
  for (var l = 0u; l < 32u; l = l + 1u) {
    var qh = 0u;
    for (var c = 0u; c < 4u; c = c + 1u) {
      let lo = u32(kq_L[64u * c + l]);
      let hi = u32(kq_L[64u * c + 32u + l]);
      qh = qh | ((lo >> 4u) << (2u * c)) | ((hi >> 4u) << (2u * c + 1u));
      st_u8(base + 48u + 32u * c + l, (lo & 0xfu) | ((hi & 0xfu) << 4u));
    }
    st_u8(base + 16u + l, qh);
  }
  block_to_cpu = kq_inexact;
}

fn dequantize_block(base: u32) {
  var q: array<u32, 32>;
  for (var j = 0u; j < 8u; j = j + 1u) {
    // Sub-block j = 2c + h: nibble h of qs bytes 32c.., bit j of the qh bytes.
    let qs = base + 48u + 32u * (j >> 1u);
    let shift = 4u * (j & 1u);
    for (var l = 0u; l < 32u; l = l + 1u) {
      q[l] = ((ld_u8(qs + l) >> shift) & 0xfu) | (((ld_u8(base + 16u + l) >> j) & 1u) << 4u);
    }
    kq_dequantize_k4(base, j, &q);
  }
}
