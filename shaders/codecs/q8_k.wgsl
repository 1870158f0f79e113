// Q8_K: super-blocks of 256, value = d*q with an f32 d and int8 q, plus the sums of each 16
// quants (ggml quantize_row_q8_K_ref, dequantize_row_q8_K; src/quant/codecs/kquants.ts).
// ggml makes it from matmul activations only (no importance weights).
// Byte map (292 bytes): [0..4) d f32 | [4..260) qs int8 | [260..292) bsums: 16 int16.
// Uses lib/kquant.wgsl.
const BLOCK_SIZE: u32 = 256u;
const BLOCK_BYTES: u32 = 292u;

fn quantize_block(base: u32) {
  kq_begin_block();
  var mx = 0.0;
  var amax = 0.0;
  for (var j = 0u; j < 256u; j = j + 1u) {
    let ax = abs(val(j));
    if (ax > amax) {
      amax = ax;
      mx = val(j);
    }
  }
  if (amax == 0.0) {
    kq_zero_bytes(base, BLOCK_BYTES); // C leaves bsums unwritten; zero is their sum
    block_to_cpu = kq_inexact;
    return;
  }
  // -127, not -128: ggml keeps q in -127..127.
  let iscale = kg_div(-127.0, mx);
  for (var j = 0u; j < 16u; j = j + 1u) {
    var sum = 0;
    for (var l = 0u; l < 16u; l = l + 1u) {
      let q = min(127, kq_nearest_int(kg_mul(iscale, val(16u * j + l))));
      st_u8(base + 4u + 16u * j + l, u32(q) & 0xffu);
      sum = sum + ((q << 24u) >> 24u);
    }
    st_u16(base + 260u + 2u * j, u32(sum) & 0xffffu);
  }
  st_u32(base, bitcast<u32>(kg_div(1.0, iscale)));
  block_to_cpu = kq_inexact;
}

fn dequantize_block(base: u32) {
  let d = bitcast<f32>(ld_u32(base));
  for (var j = 0u; j < 256u; j = j + 1u) {
    // Any f32 d: the product may be subnormal, which sf_mul keeps.
    set_val(j, sf_mul(d, f32((i32(ld_u8(base + 4u + j)) << 24u) >> 24u)));
  }
}
