// TQ1_0 / TQ2_0 support (codecs/tq1_0.wgsl, codecs/tq2_0.wgsl): ternary weights
// {-1, 0, 1} times the block absmax (ggml quantize_row_tq1_0_ref / _tq2_0_ref;
// src/quant/codecs/ternary.ts).

// The absmax of vals[0..256) as C's MAX(amax, fabsf(x)) = amax > |x| ? amax : |x| (bits).
fn tq_absmax() -> u32 {
  var amax = 0u;
  for (var j = 0u; j < 256u; j = j + 1u) {
    let a = vals[j] & F32_ABS;
    amax = select(a, amax, flt_lt(a, amax));
  }
  return amax;
}

// C's `d ? 1.0f/d : 0.0f`, with an infinite result (subnormal d) made 0: there C's
// lroundf(x * inf) gives the middle trit for every weight, as id = 0 does.
fn tq_inverse(d: f32) -> f32 {
  let id = select(0.0, div_rn(1.0, d), is_nonzero(d));
  return select(id, 0.0, (bitcast<u32>(id) & F32_ABS) == F32_INF);
}

// lroundf(x * id) + 1 for |x * id| < 1.5: the trit 0, 1 or 2 of weight j. The product
// goes through sf_mul: x may be subnormal while id is huge.
fn tq_trit(j: u32, id: f32) -> u32 {
  let v = bitcast<u32>(sf_mul(val(j), id));
  if (is_nan_bits(v)) {
    return 1u;
  }
  let up = !flt_lt(v, 0x3f000000u);   // v >= 0.5
  let down = !flt_lt(0xbf000000u, v); // v <= -0.5
  return 1u + select(0u, 1u, up) - select(0u, 1u, down);
}
