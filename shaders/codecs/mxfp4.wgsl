// MXFP4 (OCP microscaling FP4): blocks of 32 E2M1 values with one E8M0 scale (ggml
// quantize_row_mxfp4_ref, best_index_mxfp4, dequantize_row_mxfp4; src/quant/codecs/mxfp4.ts).
// Byte map (17 bytes): [0] e: E8M0 exponent | [1..17) qs: byte j = code[j] | code[j + 16] << 4.
// x = kvalues_mxfp4[code] * 2^(e - 128): the table holds doubled E2M1 values, so it is
// multiplied by half the scale (ggml_e8m0_to_fp32_half: subnormal for e < 2).
const BLOCK_SIZE: u32 = 32u;
const BLOCK_BYTES: u32 = 17u;

const MXFP4_VALUES = array<i32, 16>(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
// floor(2^a * ln 2) for a = 0..6 (mxfp4_floor_log2).
const MXFP4_LN2_MULTIPLES = array<u32, 7>(0u, 1u, 2u, 5u, 11u, 22u, 44u);

// floor(log2f(a)) for a finite a > 0 (bits), with log2f correctly rounded as glibc's is
// (and src/quant/codecs/mxfp4.ts's fround(Math.log2)). That is the exponent k of a, plus 1
// when log2f rounds up to the integer K = k + 1, i.e. when a >= 2^K - c ulps of a's binade.
// c counts the a = 2^K (1 - m r) (r: the binade's relative spacing) whose log2,
// K - m r / ln 2 + O(r^2), is within half an f32 spacing h of K: c = floor(h ln 2 / r)
// with h / r = 2^s, s = j (normal a) or j + 125 + K (subnormal a), 2^j the binade of the
// f32 just below K. src/gpu/codecs-extra.test.ts checks every binade's threshold against
// the CPU codec.
fn mxfp4_floor_log2(a: u32) -> i32 {
  let ef = a >> 23u;
  let k = select(i32(ef) - 127, i32(firstLeadingBit(a)) - 149, ef == 0u);
  let K = k + 1;
  if (K == 0 || K == 1) {
    return k; // |log2 a| is tiny there, or the f32 spacing below 1 too fine to round up
  }
  let j = i32(firstLeadingBit(u32(select(-K, K - 1, K > 0))));
  let s = select(j, j + 125 + K, K <= -126);
  if (s < 0) {
    return k;
  }
  let pow_k = select(1u << u32(K + 149), u32(K + 127) << 23u, K >= -125);
  return select(k, K, a >= pow_k - MXFP4_LN2_MULTIPLES[s]);
}

// ggml_e8m0_to_fp32_half(e) = 2^(e - 128), as bits.
fn mxfp4_half_scale(e: u32) -> f32 {
  return bitcast<f32>(select((e - 1u) << 23u, 0x00200000u << e, e < 2u));
}

var<private> mxfp4_grid: array<f32, 16>;

fn quantize_block(base: u32) {
  var amax = 0u;
  for (var j = 0u; j < 32u; j = j + 1u) {
    let a = vals[j] & F32_ABS;
    if (flt_lt(amax, a)) {
      amax = a;
    }
  }
  // (uint8_t)(floorf(log2f(amax)) - 2 + 127), x86's conversion keeping the low byte; 0 for an
  // all-zero block and for inf (the conversion of inf gives 0x80000000).
  var e = 0u;
  if (amax != 0u && amax < F32_INF) {
    e = u32(mxfp4_floor_log2(amax) + 125) & 0xffu;
  }
  let hs = mxfp4_half_scale(e);
  st_u8(base, e);
  for (var i = 0u; i < 16u; i = i + 1u) {
    mxfp4_grid[i] = sf_mul(f32(MXFP4_VALUES[i]), hs);
  }
  for (var j = 0u; j < 16u; j = j + 1u) {
    let lo = mxfp4_best_index(val(j));
    let hi = mxfp4_best_index(val(j + 16u));
    st_u8(base + 1u + j, lo | (hi << 4u));
  }
}

// best_index_mxfp4: the first code with the smallest |value - x| in f32.
fn mxfp4_best_index(x: f32) -> u32 {
  var best = 0u;
  var best_err = bitcast<u32>(sf_sub(mxfp4_grid[0], x)) & F32_ABS;
  for (var i = 1u; i < 16u; i = i + 1u) {
    let err = bitcast<u32>(sf_sub(mxfp4_grid[i], x)) & F32_ABS;
    if (flt_lt(err, best_err)) {
      best = i;
      best_err = err;
    }
  }
  return best;
}

fn dequantize_block(base: u32) {
  let hs = mxfp4_half_scale(ld_u8(base));
  for (var j = 0u; j < 16u; j = j + 1u) {
    let b = ld_u8(base + 1u + j);
    // Exact products (a power of two times a small integer), subnormal ones included.
    set_val(j, sf_mul(f32(MXFP4_VALUES[b & 0xfu]), hs));
    set_val(j + 16u, sf_mul(f32(MXFP4_VALUES[b >> 4u]), hs));
  }
}
