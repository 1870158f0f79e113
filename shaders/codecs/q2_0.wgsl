// Q2_0: blocks of 64, 2-bit q with x = (q - 1) * d, d = max |x| as f16
// (src/quant/codecs/lowbit.ts; ggml quantize_row_q2_0_ref, dequantize_row_q2_0). Byte map (18 bytes): [0..2) d
// f16 | [2..18) bits 2(j % 4).. of byte j / 4 = q of value j. An Inf or NaN d follows the
// CPU's SSE rules (rounding.ts sseMulInt): NaN stays NaN, Inf * 0 is NaN, else a signed Inf.
const BLOCK_SIZE: u32 = 64u;
const BLOCK_BYTES: u32 = 18u;

fn quantize_block(base: u32) {
  var amax = 0u; // fabsf bits; NaN never compares greater
  for (var j = 0u; j < 64u; j = j + 1u) {
    if (flt_lt(amax, vals[j] & F32_ABS)) {
      amax = vals[j] & F32_ABS;
    }
  }
  // 1 / amax (0 for Inf and for 0, as C's 1.0f/inf and the amax > 0 test give).
  let id = select(0.0, div_rn(1.0, bitcast<f32>(amax)), amax != 0u && amax != F32_INF);
  st_u16(base, f32_to_f16_bits(bitcast<f32>(amax)));
  for (var j = 0u; j < 16u; j = j + 1u) {
    var byte = 0u;
    for (var i = 0u; i < 4u; i = i + 1u) {
      let v = bitcast<u32>(sf_mul(val(4u * j + i), id));
      // (int)roundf of Inf or NaN is INT_MIN on x86: q clamps to 0.
      let q = select(0, clamp(roundf_i(bitcast<f32>(v)) + 1, 0, 3), (v & F32_INF) != F32_INF);
      byte = byte | (u32(q) << (2u * i));
    }
    st_u8(base + 2u + j, byte);
  }
}

fn dequantize_block(base: u32) {
  let h = ld_u16(base);
  let d_bits = f16_bits_to_f32_bits(h);
  let finite = (h & 0x7c00u) != 0x7c00u;
  let d = bitcast<f32>(d_bits);
  for (var j = 0u; j < 64u; j = j + 1u) {
    let q = i32((ld_u8(base + 2u + (j >> 2u)) >> (2u * (j & 3u))) & 3u) - 1;
    if (finite) {
      set_val(j, f32(q) * d);
    } else if ((h & 0x3ffu) != 0u) {
      vals[j] = d_bits | 0x00400000u;
    } else if (q == 0) {
      vals[j] = 0xffc00000u;
    } else {
      vals[j] = d_bits ^ select(0u, 0x80000000u, q < 0);
    }
  }
}
