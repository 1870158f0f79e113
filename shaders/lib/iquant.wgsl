// What the sub-4-bit i-quant codecs (iq1_s, iq1_m, iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s)
// share on the decode side. Their grids are generated/iq-grids.wgsl (src/gpu/shaders.ts
// builds it from src/quant/codecs/iquants-grid.ts): a point is its dequantization values as
// signed bytes, little-endian in u32 words. Every product here is one f32 multiply of
// exact operands, as the CPU decoders do it (src/quant/codecs/iq1.ts, iq2.ts, iq3.ts).

// Signed byte k of w, as f32.
fn iq_byte(w: u32, k: u32) -> f32 {
  return f32(extractBits(bitcast<i32>(w), k * 8u, 8u));
}

// ksigns_iq2xs: 7 stored sign bits -> 8, the eighth making the count of minus signs even.
fn iq_ksigns(x: u32) -> u32 {
  return x | ((countOneBits(x) & 1u) << 7u);
}

fn iq_sign(v: f32, signs: u32, j: u32) -> f32 {
  return select(v, -v, ((signs >> j) & 1u) != 0u);
}

// Eight values of an 8-dim grid point at scale db, bit j of signs negating value j.
fn iq_put8(o: u32, pt: vec2<u32>, db: f32, signs: u32) {
  for (var j = 0u; j < 8u; j = j + 1u) {
    set_val(o + j, iq_sign(db * iq_byte(pt[j >> 2u], j & 3u), signs, j));
  }
}

// Four values of a 4-dim grid point; bit j0 + j of signs negates value j.
fn iq_put4(o: u32, pt: u32, db: f32, signs: u32, j0: u32) {
  for (var j = 0u; j < 4u; j = j + 1u) {
    set_val(o + j, iq_sign(db * iq_byte(pt, j), signs, j0 + j));
  }
}

// iq1: dl * (grid + delta), delta = +-1/8 (grid + delta is exact).
fn iq1_put8(o: u32, pt: vec2<u32>, dl: f32, delta: f32) {
  for (var j = 0u; j < 8u; j = j + 1u) {
    set_val(o + j, dl * (iq_byte(pt[j >> 2u], j & 3u) + delta));
  }
}

fn iq_is_nan_f16(h: u32) -> bool {
  return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0u;
}

// The iq2/iq3 decoders' NaN rule (src/quant/codecs/iq-blocks.ts nanWithSigns): the block
// was decoded with d = 1; each value becomes the NaN d with its sign bit flipped where the
// value is negative (C's sign multiply compiles to a sign flip).
fn iq_nan_with_signs(h: u32) {
  let nan = f16_bits_to_f32_bits(h);
  for (var i = 0u; i < BLOCK_SIZE; i = i + 1u) {
    vals[i] = nan ^ (vals[i] & 0x80000000u);
  }
}

// The iq2/iq3 super-block scale: the f16 d, or 1 when it is NaN (then iq_nan_with_signs).
fn iq_scale(h: u32) -> f32 {
  return select(f16_bits_to_f32(h), 1.0, iq_is_nan_f16(h));
}
