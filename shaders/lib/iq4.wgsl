// IQ4_NL / IQ4_XS support (codecs/iq4_nl.wgsl, codecs/iq4_xs.wgsl): the non-linear 4-bit
// grid and ggml's scale search for 32 weights, as ggml_quantize_chunk runs it without
// importance weights (ggml-quants.c quantize_row_iq4_nl_impl with ntry = 7, weights x^2;
// src/quant/codecs/iquants.ts bestSubBlockScale / packNibbles).
// Products and sums go through sf_mul / sf_add (lib/softfloat.wgsl): the weights x^2 and the
// sums of w*q*x of small blocks are subnormal where C keeps them and devices may flush them.
// Divisions are div_rn, comparisons on bit patterns.

// kvalues_iq4nl, ascending.
const IQ4_GRID = array<i32, 16>(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
// Scales tried either side of the absmax one (ggml_quantize_chunk passes 7).
const IQ4_NTRY: i32 = 7;
// GROUP_MAX_EPS = 1e-15f: a block with a smaller absmax gets scale 0.
const IQ4_GROUP_MAX_EPS: u32 = 0x26901d7du;

// The error weights x^2 of the sub-block being searched.
var<private> iq4_w: array<f32, 32>;

fn iq4_grid(i: u32) -> f32 {
  return f32(IQ4_GRID[i]);
}

// best_index_int8: binary search, then the nearer of the two neighbours in f32 (ties up).
// The grid values are integers, so a flushed subnormal x changes nothing here.
fn iq4_best_index(x: f32) -> u32 {
  if (x <= -127.0) {
    return 0u;
  }
  if (x >= 113.0) {
    return 15u;
  }
  var lo = 0u;
  var hi = 15u;
  while (hi - lo > 1u) {
    let mid = (lo + hi) >> 1u;
    if (x < iq4_grid(mid)) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return select(hi, hi - 1u, (x - iq4_grid(hi - 1u)) < (iq4_grid(hi) - x));
}

// For inverse scale id: (sum w*q*x, sum w*q*q) over vals[off..off+32) snapped to the grid,
// in C's order ((w*q)*x, each op rounded).
fn iq4_fit(off: u32, id: f32) -> vec2<f32> {
  var sqx = 0.0;
  var sq2 = 0.0;
  for (var j = 0u; j < 32u; j = j + 1u) {
    let x = val(off + j);
    let q = iq4_grid(iq4_best_index(no_fuse(id * x)));
    // wq = w*q, then sqx += wq*x and sq2 += wq*q: one sf_mul and one sf_add in the code.
    var wq = iq4_w[j];
    for (var k = 0u; k < 3u; k = k + 1u) {
      let p = sf_mul(wq, select(q, x, k == 1u));
      if (k == 0u) {
        wq = p;
      } else {
        let s = sf_add(select(sq2, sqx, k == 1u), p);
        if (k == 1u) {
          sqx = s;
        } else {
          sq2 = s;
        }
      }
    }
  }
  return vec2<f32>(sqx, sq2);
}

// The scale ggml picks for vals[off..off+32): from max/-127 (the signed absmax onto the grid's
// -127), then the 2*NTRY+1 scales mapping max onto -127+itry, keeping the best weighted fit.
// One loop over the 16 fits (iq4_fit and each operation written once: compile time).
fn iq4_best_scale(off: u32) -> f32 {
  var amax = 0u;
  var mx = 0u;
  for (var j = 0u; j < 32u; j = j + 1u) {
    let v = vals[off + j];
    if (flt_lt(amax, v & F32_ABS)) {
      amax = v & F32_ABS;
      mx = v;
    }
  }
  if (flt_lt(amax, IQ4_GROUP_MAX_EPS)) {
    return 0.0;
  }
  for (var j = 0u; j < 32u; j = j + 1u) {
    iq4_w[j] = sf_mul(val(off + j), val(off + j));
  }
  let fmax = bitcast<f32>(mx);
  let d0 = div_rn(sf_neg(fmax), -127.0);
  var d = 0.0;
  var best = 0.0;
  for (var t = 0; t <= 2 * IQ4_NTRY + 1; t = t + 1) {
    // t = 0: id = 1 / (-max / -127); then id = (itry - 127) / max, itry = -NTRY..NTRY.
    let first = t == 0;
    let s = iq4_fit(off, div_rn(select(f32(t - IQ4_NTRY - 1 - 127), 1.0, first), select(fmax, d0, first)));
    let positive = sf_lt(0.0, s.y);
    if (first || (positive && sf_lt(sf_mul(best, s.y), sf_mul(s.x, s.x)))) {
      d = select(0.0, div_rn(s.x, s.y), positive);
      best = sf_mul(d, s.x);
    }
  }
  return d;
}

// 32 weights at vals[off..) -> 16 bytes at grp byte `at`: weight j low nibble, j+16 high.
fn iq4_pack(off: u32, inv: f32, at: u32) {
  for (var j = 0u; j < 32u; j = j + 1u) {
    let idx = iq4_best_index(no_fuse(inv * val(off + j)));
    if (j < 16u) {
      st_u8(at + j, idx);
    } else {
      st_u8(at + j - 16u, ld_u8(at + j - 16u) | (idx << 4u));
    }
  }
}

// 16 bytes at grp byte `at` -> 32 values at vals[to..), times `scale` (exact products:
// an f16 scale, or one times a 6-bit factor, times a 7-bit grid value).
fn iq4_unpack(at: u32, scale: f32, to: u32) {
  for (var j = 0u; j < 16u; j = j + 1u) {
    let b = ld_u8(at + j);
    set_val(to + j, scale * iq4_grid(b & 0xfu));
    set_val(to + j + 16u, scale * iq4_grid(b >> 4u));
  }
}
