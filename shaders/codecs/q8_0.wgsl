// Q8_0: blocks of 32, 8-bit signed quants and an f16 scale (ggml quantize_row_q8_0_ref,
// dequantize_row_q8_0; ggml-org/ggml src/ggml-quants.c).
// Byte map (34 bytes): [0..2) d f16 | [2..34) qs int8[32]; x = qs[j] * d.
const BLOCK_SIZE: u32 = 32u;
const BLOCK_BYTES: u32 = 34u;

fn quantize_block(base: u32) {
  // amax = MAX(amax, fabsf(v)), MAX(a, b) = a > b ? a : b.
  var amax = 0u;
  for (var j = 0u; j < 32u; j = j + 1u) {
    let av = vals[j] & F32_ABS;
    amax = select(av, amax, flt_lt(av, amax));
  }
  let d = div_rn(bitcast<f32>(amax), 127.0);
  let id = select(0.0, div_rn(1.0, d), is_nonzero(d));
  st_u16(base, f32_to_f16_bits(d));
  for (var j = 0u; j < 32u; j = j + 1u) {
    // roundf(x * id) works on the rounded product's bits: nothing to fuse.
    st_u8(base + 2u + j, u32(roundf_i(val(j) * id)));
  }
}

fn dequantize_block(base: u32) {
  let d = f16_bits_to_f32(ld_u16(base));
  for (var j = 0u; j < 32u; j = j + 1u) {
    let q = (i32(ld_u8(base + 2u + j)) << 24u) >> 24u;
    set_val(j, f32(q) * d); // exact: 8-bit times 11-bit significand
  }
}
