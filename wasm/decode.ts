// AssemblyScript: block decoders, ported from the reference decoders
// (src/quant/codecs/{legacy,kquants}.ts; ggml-org/ggml src/ggml-quants.c dequantize_row_*).
// A block whose f16 scale (or min) is Inf or NaN is flagged and left to the reference,
// which reproduces x86's NaN bits. Otherwise every value is one or two f32 operations, as
// in the C: q*d, q*d + m, (d*sc)*q, (d*sc)*q - (dmin*m).
import { f16ToF32 } from './common';

@inline function u8at(p: usize, i: i32): i32 {
  return <i32>load<u8>(p + <usize>i);
}
@inline function i8at(p: usize, i: i32): i32 {
  return <i32>load<i8>(p + <usize>i);
}
@inline function put(y: usize, e: i32, v: f32): void {
  store<f32>(y + ((<usize>e) << 2), v);
}
/** The f16 at p is Inf or NaN. */
@inline function nonFiniteF16(p: usize): bool {
  return (load<u16>(p) & 0x7c00) == 0x7c00;
}
@inline function half(p: usize): f32 {
  return f16ToF32(<i32>load<u16>(p));
}

const subScales = memory.data(16 * 4, 16); // f32 d*sc per sub-block
const subMins = memory.data(16 * 4, 16); // f32 dmin*m per sub-block

/** dequantize_row_q8_0/q4_0/q4_1/q5_0/q5_1 block at p into y; false when left to the reference. */
export function decodeLegacyBlock(type: i32, p: usize, y: usize): bool {
  if (nonFiniteF16(p) || ((type == 1 || type == 3) && nonFiniteF16(p + 2))) return false;
  const d = half(p);
  if (type == 4) {
    for (let j = 0; j < 32; j++) put(y, j, <f32>i8at(p + 2, j) * d);
  } else if (type == 0) {
    for (let j = 0; j < 16; j++) {
      const b = u8at(p + 2, j);
      put(y, j, <f32>((b & 0xf) - 8) * d);
      put(y, j + 16, <f32>((b >> 4) - 8) * d);
    }
  } else if (type == 1) {
    const m = half(p + 2);
    for (let j = 0; j < 16; j++) {
      const b = u8at(p + 4, j);
      put(y, j, <f32>(b & 0xf) * d + m);
      put(y, j + 16, <f32>(b >> 4) * d + m);
    }
  } else {
    const hasMin = type == 3;
    const qhAt: usize = hasMin ? 4 : 2;
    const qh = load<u32>(p + qhAt);
    const qs = p + qhAt + 4;
    const m: f32 = hasMin ? half(p + 2) : 0;
    for (let j = 0; j < 16; j++) {
      const b = u8at(qs, j);
      const q0 = (b & 0xf) | (<i32>((qh >> <u32>j) & 1) << 4);
      const q1 = (b >> 4) | (<i32>((qh >> <u32>(j + 16)) & 1) << 4);
      if (hasMin) {
        put(y, j, <f32>q0 * d + m);
        put(y, j + 16, <f32>q1 * d + m);
      } else {
        put(y, j, <f32>(q0 - 16) * d);
        put(y, j + 16, <f32>(q1 - 16) * d);
      }
    }
  }
  return true;
}

/** get_scale_min_k4 into subScales/subMins as d*sc and dmin*m. */
function scalesMinsK4(s: usize, d: f32, dmin: f32): void {
  for (let j = 0; j < 8; j++) {
    let sc: i32, m: i32;
    if (j < 4) {
      sc = u8at(s, j) & 63;
      m = u8at(s, j + 4) & 63;
    } else {
      sc = (u8at(s, j + 4) & 0xf) | ((u8at(s, j - 4) >> 6) << 4);
      m = (u8at(s, j + 4) >> 4) | ((u8at(s, j) >> 6) << 4);
    }
    store<f32>(subScales + ((<usize>j) << 2), d * <f32>sc);
    store<f32>(subMins + ((<usize>j) << 2), dmin * <f32>m);
  }
}

@inline function dl(j: i32): f32 {
  return load<f32>(subScales + ((<usize>j) << 2));
}
@inline function ml(j: i32): f32 {
  return load<f32>(subMins + ((<usize>j) << 2));
}

/** dequantize_row_q2_K..q6_K block at p into y; false when left to the reference. */
export function decodeKBlock(type: i32, p: usize, y: usize): bool {
  if (type == 10) {
    // Q2_K: scales[16] at 0, qs at 16, d at 80, dmin at 82
    if (nonFiniteF16(p + 80) || nonFiniteF16(p + 82)) return false;
    const d = half(p + 80);
    const dmin = half(p + 82);
    for (let j = 0; j < 16; j++) {
      const sc = u8at(p, j);
      store<f32>(subScales + ((<usize>j) << 2), d * <f32>(sc & 0xf));
      store<f32>(subMins + ((<usize>j) << 2), dmin * <f32>(sc >> 4));
    }
    for (let e = 0; e < 256; e++) {
      const q = (u8at(p + 16, 32 * (e >> 7) + (e & 31)) >> (2 * ((e >> 5) & 3))) & 3;
      put(y, e, dl(e >> 4) * <f32>q - ml(e >> 4));
    }
    return true;
  }
  if (type == 11) {
    // Q3_K: hmask at 0, qs at 32, scales[12] at 96, d at 108
    if (nonFiniteF16(p + 108)) return false;
    const d = half(p + 108);
    const s = p + 96;
    for (let j = 0; j < 16; j++) {
      const low = j < 8 ? u8at(s, j) & 0xf : u8at(s, j - 8) >> 4;
      const sc = low | (((u8at(s, 8 + (j & 3)) >> (2 * (j >> 2))) & 3) << 4);
      store<f32>(subScales + ((<usize>j) << 2), d * <f32>(sc - 32));
    }
    for (let e = 0; e < 256; e++) {
      let q = (u8at(p + 32, 32 * (e >> 7) + (e & 31)) >> (2 * ((e >> 5) & 3))) & 3;
      if (!(u8at(p, e & 31) & (1 << (e >> 5)))) q -= 4;
      put(y, e, dl(e >> 4) * <f32>q);
    }
    return true;
  }
  if (type == 12 || type == 13) {
    // Q4_K / Q5_K: d at 0, dmin at 2, scales[12] at 4; Q4_K qs at 16; Q5_K qh at 16, qs at 48
    if (nonFiniteF16(p) || nonFiniteF16(p + 2)) return false;
    scalesMinsK4(p + 4, half(p), half(p + 2));
    const five = type == 13;
    const qs = p + (five ? 48 : 16);
    for (let c = 0; c < 4; c++) {
      const d0 = dl(2 * c), m0 = ml(2 * c), d1 = dl(2 * c + 1), m1 = ml(2 * c + 1);
      for (let l = 0; l < 32; l++) {
        const b = u8at(qs, 32 * c + l);
        let q0 = b & 0xf;
        let q1 = b >> 4;
        if (five) {
          const h = u8at(p + 16, l);
          q0 |= ((h >> (2 * c)) & 1) << 4;
          q1 |= ((h >> (2 * c + 1)) & 1) << 4;
        }
        put(y, 64 * c + l, d0 * <f32>q0 - m0);
        put(y, 64 * c + 32 + l, d1 * <f32>q1 - m1);
      }
    }
    return true;
  }
  if (type == 14) {
    // Q6_K: ql at 0, qh at 128, scales (int8) at 192, d at 208
    if (nonFiniteF16(p + 208)) return false;
    const d = half(p + 208);
    for (let j = 0; j < 16; j++) store<f32>(subScales + ((<usize>j) << 2), d * <f32>i8at(p + 192, j));
    for (let h = 0; h < 2; h++) {
      const ql = p + <usize>(64 * h);
      const qh = p + <usize>(128 + 32 * h);
      const e0 = 128 * h;
      for (let l = 0; l < 32; l++) {
        const a = u8at(ql, l), b = u8at(ql, l + 32), hb = u8at(qh, l);
        const q0 = ((a & 0xf) | ((hb & 3) << 4)) - 32;
        const q1 = ((b & 0xf) | (((hb >> 2) & 3) << 4)) - 32;
        const q2 = ((a >> 4) | (((hb >> 4) & 3) << 4)) - 32;
        const q3 = ((b >> 4) | (((hb >> 6) & 3) << 4)) - 32;
        put(y, e0 + l, dl((e0 + l) >> 4) * <f32>q0);
        put(y, e0 + l + 32, dl((e0 + l + 32) >> 4) * <f32>q1);
        put(y, e0 + l + 64, dl((e0 + l + 64) >> 4) * <f32>q2);
        put(y, e0 + l + 96, dl((e0 + l + 96) >> 4) * <f32>q3);
      }
    }
    return true;
  }
  return false;
}
