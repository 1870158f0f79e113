// NF4 / FP4 support (codecs/nf4.wgsl, fp4.wgsl, nf4_dq.wgsl, fp4_dq.wgsl): bitsandbytes'
// 4-bit codes in blocks of 64 with an f32 absmax (src/quant/codecs/nf4.ts: blockAbsmax,
// writeBlockCodes with quantizeNf4 / quantizeFp4, readBlockCodes). The tables are the f32
// bits of nf4.ts's (NF4_VALUES, FP4_VALUES, the kernel's thresholds); comparisons are on
// bits, products through sf_mul (the absmax may be subnormal).
//
// Staged block (36 bytes): [0..4) f32 absmax | [4..36) 64 codes, element 2i in the HIGH
// nibble of byte i, 2i+1 in the low one.

const BNB4_NF4_VALUES = array<u32, 16>(
  0xbf800000u, 0xbf3239b1u, 0xbf066b30u, 0xbeca32a0u, 0xbe91a24du, 0xbe3d353fu, 0xbdba7871u, 0x00000000u,
  0x3da2faffu, 0x3e24cae3u, 0x3e7c04ddu, 0x3ead033au, 0x3ee1a4b8u, 0x3f1007abu, 0x3f3913b3u, 0x3f800000u);
// dQuantizeNF4's thresholds (midpoints of the values), as the kernel's f32 literals.
const BNB4_NF4_THRESHOLDS = array<u32, 15>(
  0xbf591cd8u, 0xbf1c5270u, 0xbeeb8480u, 0xbeadea76u, 0xbe703cecu, 0xbe0d38bcu, 0xbd3a7871u, 0x3d22faffu,
  0x3df64862u, 0x3e5067e0u, 0x3e9582d4u, 0x3ec753f9u, 0x3f006d04u, 0x3f248dafu, 0x3f5c89dau);
// FP4 (E2M1, bias 3) / 12 by code, the sign in bit 3 (code 8 is -0).
const BNB4_FP4_VALUES = array<u32, 16>(
  0x00000000u, 0x3baaaaabu, 0x3f2aaaabu, 0x3f800000u, 0x3eaaaaabu, 0x3f000000u, 0x3e2aaaabu, 0x3e800000u,
  0x80000000u, 0xbbaaaaabu, 0xbf2aaaabu, 0xbf800000u, 0xbeaaaaabu, 0xbf000000u, 0xbe2aaaabu, 0xbe800000u);
// dQuantizeFP4's thresholds on |x|, ascending, and the 3 magnitude bits by rank of |value|.
const BNB4_FP4_THRESHOLDS = array<u32, 7>(0x3b2aaab9u, 0x3db00000u, 0x3e555555u, 0x3e955555u, 0x3ed55556u, 0x3f155550u, 0x3f555555u);
const BNB4_FP4_CODE_BY_RANK = array<u32, 8>(0u, 1u, 6u, 7u, 4u, 5u, 2u, 3u);
// bitsandbytes clamps the absmax to 1e-38f before 1 / absmax (a subnormal f32).
const BNB4_MIN_ABSMAX: u32 = 0x006ce3eeu;

fn bnb4_gt(x: u32, t: u32) -> u32 {
  return select(0u, 1u, flt_lt(t, x));
}

// The NF4 code of x: the kernel's binary search with x > threshold (ties and NaN go low).
fn bnb4_nf4_code(x: u32) -> u32 {
  var code = bnb4_gt(x, BNB4_NF4_THRESHOLDS[7]) << 3u;
  code = code + (bnb4_gt(x, BNB4_NF4_THRESHOLDS[code + 3u]) << 2u);
  code = code + (bnb4_gt(x, BNB4_NF4_THRESHOLDS[code + 1u]) << 1u);
  return code + bnb4_gt(x, BNB4_NF4_THRESHOLDS[code]);
}

// The FP4 code of x: sign bit for x < 0, then the tree on |x|.
fn bnb4_fp4_code(x: u32) -> u32 {
  let m = x & F32_ABS;
  var rank = bnb4_gt(m, BNB4_FP4_THRESHOLDS[3]) << 2u;
  rank = rank + (bnb4_gt(m, BNB4_FP4_THRESHOLDS[rank + 1u]) << 1u);
  rank = rank + bnb4_gt(m, BNB4_FP4_THRESHOLDS[rank]);
  return BNB4_FP4_CODE_BY_RANK[rank] | select(0u, 8u, flt_lt(x, 0u));
}

// vals[0..64) -> the staged block at grp byte `base`.
fn bnb4_quantize_block(base: u32, fp4: bool) {
  var amax = 0u;
  for (var i = 0u; i < 64u; i = i + 1u) {
    let a = vals[i] & F32_ABS;
    if (flt_lt(amax, a)) {
      amax = a;
    }
  }
  st_u32(base, amax);
  // Both are non-negative and not NaN: the larger bits are the larger value.
  let inv = div_rn(1.0, bitcast<f32>(max(amax, BNB4_MIN_ABSMAX)));
  for (var i = 0u; i < 64u; i = i + 1u) {
    let x = bitcast<u32>(sf_mul(val(i), inv));
    let code = select(bnb4_nf4_code(x), bnb4_fp4_code(x), fp4);
    let at = base + 4u + (i >> 1u);
    if ((i & 1u) == 0u) {
      st_u8(at, code << 4u);
    } else {
      st_u8(at, ld_u8(at) | code);
    }
  }
}

// The staged block at grp byte `base` -> vals[0..64).
fn bnb4_dequantize_block(base: u32, fp4: bool) {
  let amax = bitcast<f32>(ld_u32(base));
  for (var i = 0u; i < 64u; i = i + 1u) {
    let b = ld_u8(base + 4u + (i >> 1u));
    let code = select(b & 0xfu, b >> 4u, (i & 1u) == 0u);
    let v = select(BNB4_NF4_VALUES[code], BNB4_FP4_VALUES[code], fp4);
    set_val(i, sf_mul(bitcast<f32>(v), amax));
  }
}
