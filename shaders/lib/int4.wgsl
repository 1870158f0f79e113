// INT4 support (codecs/int4_g{32,64,128}_{sym,asym}.wgsl): GPTQ-style 4-bit groups, as
// src/quant/codecs/intn.ts's int4Codec: GPTQ's find_params grid in f32, the scale stored as
// f16, codes made with the stored scale, torch.round (half to even).
// Block: [0..2) f16 scale | asym: [2] u8 zero-point, [3] 0 | codes: element 2i in the low
// nibble of byte i, 2i+1 in the high one; x = scale * (code - zero), zero = 8 for sym.

// vals[0..group) -> the block at grp byte `base`.
fn int4_quantize_block(base: u32, group: u32, asym: bool) {
  var mn = F32_INF;            // +inf, min over non-NaN values (x < min)
  var mx = F32_INF | F32_SIGN; // -inf, max likewise
  for (var i = 0u; i < group; i = i + 1u) {
    let v = vals[i];
    if (flt_lt(v, mn)) {
      mn = v;
    }
    if (flt_lt(mx, v)) {
      mx = v;
    }
  }
  // int4Scale: the span [min(min, 0), max(max, 0)], made symmetric for sym; [-1, 1] when empty.
  let both_zero = (mn & F32_ABS) == 0u && (mx & F32_ABS) == 0u;
  var low = select(0.0, bitcast<f32>(mn), flt_lt(mn, 0u));
  var high = select(0.0, bitcast<f32>(mx), flt_lt(0u, mx));
  if (!asym) {
    high = select(high, sf_neg(low), sf_lt(high, sf_neg(low)));
    low = sf_neg(high);
  }
  if ((bitcast<u32>(low) & F32_ABS) == 0u && (bitcast<u32>(high) & F32_ABS) == 0u) {
    low = -1.0;
    high = 1.0;
  }
  let scale = div_rn(sf_sub(high, low), 15.0);
  // int4Zero (asym): round(-min(min, 0) / scale) with the f32 scale, -1 for an all-zero group.
  var zero = 8;
  var zero_nan = false;
  if (asym) {
    let zlow = select(select(0.0, bitcast<f32>(mn), flt_lt(mn, 0u)), -1.0, both_zero);
    let z = div_rn(sf_neg(zlow), scale);
    zero_nan = is_nan_bits(bitcast<u32>(z));
    zero = select(round_even_clamp(z, 0, 15), 0, zero_nan);
  }
  // The stored f16 scale (clamped to f16's largest finite), and the codes made with it.
  let bits = f32_to_f16_bits(bitcast<f32>(min(bitcast<u32>(scale), 0x477fe000u)));
  let stored = f16_bits_to_f32(bits);
  st_u16(base, bits);
  var at = base + 2u;
  if (asym) {
    st_u16(base + 2u, u32(zero));
    at = base + 4u;
  }
  for (var i = 0u; i < group; i = i + 1u) {
    var code = zero;
    if (is_nonzero(stored)) {
      let v = div_rn(val(i), stored);
      code = select(clamp(round_even_clamp(v, -32, 32) + zero, 0, 15), 0, is_nan_bits(bitcast<u32>(v)));
    }
    // A NaN zero-point makes every code NaN, stored as 0.
    let c = select(u32(code), 0u, zero_nan);
    let byte_at = at + (i >> 1u);
    if ((i & 1u) == 0u) {
      st_u8(byte_at, c);
    } else {
      st_u8(byte_at, ld_u8(byte_at) | (c << 4u));
    }
  }
}

// The block at grp byte `base` -> vals[0..group).
fn int4_dequantize_block(base: u32, group: u32, asym: bool) {
  let scale = f16_bits_to_f32(ld_u16(base));
  let zero = select(8, i32(ld_u8(base + 2u)), asym);
  let at = base + select(2u, 4u, asym);
  for (var i = 0u; i < group; i = i + 1u) {
    let b = ld_u8(at + (i >> 1u));
    let code = select(b >> 4u, b & 0xfu, (i & 1u) == 0u);
    // An f16 scale times a small integer: exact, and normal in f32.
    set_val(i, scale * f32(i32(code) - zero));
  }
}
