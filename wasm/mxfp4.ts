// AssemblyScript: MXFP4 rows, ported from the reference src/quant/codecs/mxfp4.ts
// (ggml-org/ggml src/ggml-quants.c quantize_row_mxfp4_ref, best_index_mxfp4,
// dequantize_row_mxfp4; ggml-impl.h ggml_e8m0_to_fp32_half; byte map there). Sixteen
// weights at a time: each weight's two candidate codes (the grid values around x / d) come
// from byte tables by i8x16.swizzle, and the nearer one wins as in the reference's
// nearestCode (f32 distances, ties to the lower code index, as the C scan keeps the first).
// A row holding Inf or NaN is left to the reference.

/** Math.log2 of the host (JavaScript): the reference's log2, for the few blocks where it matters. */
@external('env', 'log2')
declare function hostLog2(x: f64): f64;

export const QK_MXFP4 = 32;
export const MXFP4_BYTES = 17;

// Per bucket k + 16 of k = floor(x / d) (k = -16..15), the reference's buildCodeBuckets:
// the code of the grid value at or below k, of the one above, their values (kvalues_mxfp4,
// doubled E2M1), and 0xff where a tie goes to the code above (its index is the lower).
// Each table is two halves of 16 bytes: buckets 0..15 and 16..31.
const CODE_BELOW = memory.data<u8>([15, 15, 15, 15, 15, 15, 15, 15, 14, 14, 13, 13, 12, 11, 10, 9, 0, 1, 2, 3, 4, 4, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7]);
const CODE_ABOVE = memory.data<u8>([15, 15, 15, 15, 14, 14, 14, 14, 13, 13, 12, 12, 11, 10, 9, 0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7]);
const VALUE_BELOW = memory.data<i8>([-12, -12, -12, -12, -12, -12, -12, -12, -8, -8, -6, -6, -4, -3, -2, -1, 0, 1, 2, 3, 4, 4, 6, 6, 8, 8, 8, 8, 12, 12, 12, 12]);
const VALUE_ABOVE = memory.data<i8>([-12, -12, -12, -12, -8, -8, -8, -8, -6, -6, -4, -4, -3, -2, -1, 0, 1, 2, 3, 4, 6, 6, 8, 8, 12, 12, 12, 12, 12, 12, 12, 12]);
const TIE_TAKES_ABOVE = memory.data<u8>([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
const KVALUES = memory.data<i8>([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]);

/** Table[bucket] for sixteen bucket bytes 0..31 (swizzle gives 0 for an index past 15). */
@inline function lookup32(table: usize, buckets: v128): v128 {
  return v128.or(i8x16.swizzle(v128.load(table), buckets), i8x16.swizzle(v128.load(table, 16), i8x16.sub(buckets, i8x16.splat(16))));
}

/**
 * floor(x / d) + 16 of four weights, as i32 lanes. x / d is exact in f32 (d a power of two)
 * unless it underflows; then only a negative x's -0 would floor wrongly, to 0: made -1.
 * x * (1/d) is the same correctly rounded quotient where 1/d is an f32 (all d but 2^-128):
 * then `inverse` holds it and `divide` is false.
 */
@inline function bucket4(x: v128, d: v128, inverse: v128, divide: bool): v128 {
  const k = i32x4.trunc_sat_f32x4_s(f32x4.floor(divide ? f32x4.div(x, d) : f32x4.mul(x, inverse)));
  const negativeZero = v128.and(f32x4.lt(x, f32x4.splat(0)), i32x4.eq(k, i32x4.splat(0)));
  return i32x4.add(i32x4.add(k, negativeZero), i32x4.splat(16));
}

/** |f32(value * d) - x| of four weights whose grid values are the i8 lanes 4g..4g+3 of `values`. */
@inline function distance4(values: v128, g: i32, x: v128, d: v128): v128 {
  const wide = g < 2 ? i16x8.extend_low_i8x16_s(values) : i16x8.extend_high_i8x16_s(values);
  const v = g % 2 == 0 ? i32x4.extend_low_i16x8_s(wide) : i32x4.extend_high_i16x8_s(wide);
  return f32x4.abs(f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(v), d), x));
}

/** The codes (bytes) of the sixteen weights at p, each the reference's nearestCode. */
@inline function codes16(p: usize, d: v128, inverse: v128, divide: bool): v128 {
  const x0 = v128.load(p), x1 = v128.load(p, 16), x2 = v128.load(p, 32), x3 = v128.load(p, 48);
  const buckets = i8x16.narrow_i16x8_u(
    i16x8.narrow_i32x4_u(bucket4(x0, d, inverse, divide), bucket4(x1, d, inverse, divide)),
    i16x8.narrow_i32x4_u(bucket4(x2, d, inverse, divide), bucket4(x3, d, inverse, divide)),
  );
  const below = lookup32(VALUE_BELOW, buckets);
  const above = lookup32(VALUE_ABOVE, buckets);
  const da0 = distance4(above, 0, x0, d), db0 = distance4(below, 0, x0, d);
  const da1 = distance4(above, 1, x1, d), db1 = distance4(below, 1, x1, d);
  const da2 = distance4(above, 2, x2, d), db2 = distance4(below, 2, x2, d);
  const da3 = distance4(above, 3, x3, d), db3 = distance4(below, 3, x3, d);
  // Compare masks are -1/0 lanes: the signed narrows keep them -1/0 bytes.
  const nearer = i8x16.narrow_i16x8_s(
    i16x8.narrow_i32x4_s(f32x4.lt(da0, db0), f32x4.lt(da1, db1)),
    i16x8.narrow_i32x4_s(f32x4.lt(da2, db2), f32x4.lt(da3, db3)),
  );
  const notFarther = i8x16.narrow_i16x8_s(
    i16x8.narrow_i32x4_s(f32x4.le(da0, db0), f32x4.le(da1, db1)),
    i16x8.narrow_i32x4_s(f32x4.le(da2, db2), f32x4.le(da3, db3)),
  );
  // Above wins where it is nearer, or as near and the bucket's tie goes to it.
  const takeAbove = v128.or(nearer, v128.and(notFarther, lookup32(TIE_TAKES_ABOVE, buckets)));
  return v128.bitselect(lookup32(CODE_ABOVE, buckets), lookup32(CODE_BELOW, buckets), takeAbove);
}

/**
 * The block's E8M0 byte from its absmax bits (finite): (floor(log2f(amax)) - 2 + 127) & 0xff,
 * 0 for amax 0. floor(f32(log2(amax))) is the exponent, except where f32 rounding of the log
 * reaches the next integer: only for a mantissa within 2^-15 of the next power of two (the
 * log is then within 2^-16/ln 2 of it, more than half an f32 ulp of any |log| < 256), and
 * for subnormals; those take the host's Math.log2, as the reference does.
 */
function sharedExponent(amaxBits: u32): i32 {
  if (amaxBits == 0) return 0;
  const exponent = <i32>(amaxBits >> 23);
  let floorLog2: i32;
  if (exponent == 0 || (amaxBits & 0x7fffff) >= 0x7fff00) {
    floorLog2 = <i32>Mathf.floor(<f32>hostLog2(<f64>reinterpret<f32>(amaxBits)));
  } else {
    floorLog2 = exponent - 127;
  }
  return (floorLog2 - 2 + 127) & 0xff;
}

/** ggml_e8m0_to_fp32_half: 2^(e - 128), subnormal for e < 2. */
@inline function e8m0Half(e: i32): f32 {
  return reinterpret<f32>(e < 2 ? <u32>0x00200000 << <u32>e : <u32>(e - 1) << 23);
}

/** quantize_row_mxfp4_ref over `blocks` blocks at x; false when the row holds Inf or NaN. */
export function encodeMxfp4Row(x: usize, blocks: i32, out: usize): bool {
  const magnitude = i32x4.splat(0x7fffffff);
  for (let b = 0; b < blocks; b++) {
    const xb = x + ((<usize>b) << 7);
    const o = out + <usize>(b * MXFP4_BYTES);
    // The absmax by an integer max of the magnitudes' bits (the same order for floats >= 0).
    let m = i32x4.max_u(v128.and(v128.load(xb), magnitude), v128.and(v128.load(xb, 16), magnitude));
    m = i32x4.max_u(m, i32x4.max_u(v128.and(v128.load(xb, 32), magnitude), v128.and(v128.load(xb, 48), magnitude)));
    m = i32x4.max_u(m, i32x4.max_u(v128.and(v128.load(xb, 64), magnitude), v128.and(v128.load(xb, 80), magnitude)));
    m = i32x4.max_u(m, i32x4.max_u(v128.and(v128.load(xb, 96), magnitude), v128.and(v128.load(xb, 112), magnitude)));
    const bits = max<u32>(max<u32>(i32x4.extract_lane(m, 0), i32x4.extract_lane(m, 1)), max<u32>(i32x4.extract_lane(m, 2), i32x4.extract_lane(m, 3)));
    if (bits >= 0x7f800000) return false;
    const e = sharedExponent(bits);
    const half = e8m0Half(e);
    const d = f32x4.splat(half);
    store<u8>(o, <u8>e);
    // Byte 1 + j: code of weight j, and of weight j + 16 in the high nibble.
    if (e == 0) {
      v128.store(o + 1, v128.or(codes16(xb, d, d, true), i8x16.shl(codes16(xb + 64, d, d, true), 4)));
    } else {
      const inverse = f32x4.splat(<f32>1.0 / half);
      v128.store(o + 1, v128.or(codes16(xb, d, inverse, false), i8x16.shl(codes16(xb + 64, d, inverse, false), 4)));
    }
  }
  return true;
}

/** dequantize_row_mxfp4 block at p into y (every scale is finite: never left to the reference). */
export function decodeMxfp4Block(p: usize, y: usize): bool {
  const d = e8m0Half(<i32>load<u8>(p));
  for (let j = 0; j < 16; j++) {
    const byte = <i32>load<u8>(p + 1 + <usize>j);
    store<f32>(y + ((<usize>j) << 2), <f32>load<i8>(KVALUES + <usize>(byte & 0xf)) * d);
    store<f32>(y + ((<usize>(j + 16)) << 2), <f32>load<i8>(KVALUES + <usize>(byte >> 4)) * d);
  }
  return true;
}
