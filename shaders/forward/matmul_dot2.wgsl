// Y = W X with each output rounded to f32 once from a near-exact sum, as the CPU reference
// (f64 sums, then f32) rounds it: the product feeding GeGLU, whose f16 rounding of its
// input (ggml's GELU table) turns the f32 tree sum's ulp of difference into a whole f16
// step. The codec's dequantize_block (composed before this file) decodes W's blocks.
//
// Every w * x is split exactly into four partial products of 12-bit halves (the halves
// are cut on the bits, so each partial product is exact in f32 whether or not a driver
// fuses it into an fma), and each partial product is added to a (sum, error) pair with
// TwoSum (WGSL's + and - are correctly rounded). Lanes stride over the blocks of one row
// for up to D2_TOKENS tokens; the lanes' pairs meet in a fixed tree. The result s + c is
// the exact sum rounded to f32 unless the exact sum lies within ~1e-12 relative of a
// rounding midpoint.
//
// One workgroup per (row, tile of D2_TOKENS tokens); workgroup index = row + rows * tile.
// Parameters and layouts: kernels/matmul.wgsl's MatmulParams (y_stride: the whole output
// row, the chunk's rows being written at a binding offset).

struct Dot2Params {
  rows: u32,
  blocks: u32,
  row_bytes: u32,
  n: u32,
  cols: u32,
  y_stride: u32,
  zero: u32,
  _pad: u32,
}

override WG_SIZE: u32 = 64u; // a power of two (the tree halves it); 1 on software adapters
const D2_TOKENS: u32 = 8u;
const D2_BLOCK_WORDS: u32 = (BLOCK_BYTES + 3u) / 4u;

@group(0) @binding(0) var<storage, read> d2_w: array<u32>; // the blocks, padded by one word
@group(0) @binding(1) var<storage, read> d2_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> d2_y: array<f32>;
@group(0) @binding(3) var<uniform> d2_p: Dot2Params;

var<workgroup> d2_red_s: array<f32, WG_SIZE * D2_TOKENS>;
var<workgroup> d2_red_c: array<f32, WG_SIZE * D2_TOKENS>;
var<private> d2_s: array<f32, D2_TOKENS>;
var<private> d2_c: array<f32, D2_TOKENS>;

fn d2_load_block(off: u32) {
  let i0 = off >> 2u;
  let sh = (off & 3u) * 8u;
  for (var i = 0u; i < D2_BLOCK_WORDS; i = i + 1u) {
    if (sh == 0u) {
      grp[i] = d2_w[i0 + i];
    } else {
      grp[i] = (d2_w[i0 + i] >> sh) | (d2_w[i0 + i + 1u] << (32u - sh));
    }
  }
}

// The top 12 significant bits of v (its low 12 mantissa bits cleared); v - hi is exact.
fn d2_hi(v: f32) -> f32 {
  return bitcast<f32>(bitcast<u32>(v) & 0xfffff000u);
}

// Adds the exact value v to the pair of token t (TwoSum: s + e == old s + v exactly).
fn d2_add(t: u32, v: f32) {
  let a = d2_s[t];
  let s = no_fuse(a + v);
  let bb = no_fuse(s - a);
  let e = (a - (s - bb)) + (v - bb);
  d2_s[t] = s;
  d2_c[t] = d2_c[t] + e;
}

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  fp_barrier = d2_p.zero;
  let idx = wid.x + wid.y * 65535u;
  let tiles = (d2_p.n + D2_TOKENS - 1u) / D2_TOKENS;
  if (idx >= d2_p.rows * tiles) {
    return; // uniform per workgroup
  }
  let row = idx % d2_p.rows;
  let tok0 = (idx / d2_p.rows) * D2_TOKENS;
  let nt = min(D2_TOKENS, d2_p.n - tok0);
  for (var t = 0u; t < D2_TOKENS; t = t + 1u) {
    d2_s[t] = 0.0;
    d2_c[t] = 0.0;
  }
  for (var k = lid; k < d2_p.blocks; k = k + WG_SIZE) {
    d2_load_block(row * d2_p.row_bytes + k * BLOCK_BYTES);
    dequantize_block(0u);
    for (var i = 0u; i < BLOCK_SIZE; i = i + 1u) {
      let w = bitcast<f32>(vals[i]);
      let wh = d2_hi(w);
      let wl = w - wh;
      for (var t = 0u; t < nt; t = t + 1u) {
        let x = d2_x[(tok0 + t) * d2_p.cols + k * BLOCK_SIZE + i];
        let xh = d2_hi(x);
        let xl = x - xh;
        d2_add(t, no_fuse(wh * xh));
        d2_add(t, no_fuse(wh * xl));
        d2_add(t, no_fuse(wl * xh));
        d2_add(t, no_fuse(wl * xl));
      }
    }
  }
  for (var t = 0u; t < D2_TOKENS; t = t + 1u) {
    d2_red_s[t * WG_SIZE + lid] = d2_s[t];
    d2_red_c[t * WG_SIZE + lid] = d2_c[t];
  }
  for (var h = WG_SIZE / 2u; h > 0u; h = h >> 1u) {
    workgroupBarrier();
    if (lid < h) {
      for (var t = 0u; t < D2_TOKENS; t = t + 1u) {
        let i = t * WG_SIZE + lid;
        let a = d2_red_s[i];
        let b = d2_red_s[i + h];
        let s = no_fuse(a + b);
        let bb = no_fuse(s - a);
        let e = (a - (s - bb)) + (b - bb);
        d2_red_s[i] = s;
        d2_red_c[i] = d2_red_c[i] + d2_red_c[i + h] + e;
      }
    }
  }
  workgroupBarrier();
  for (var t = lid; t < nt; t = t + WG_SIZE) { // WG_SIZE may be below D2_TOKENS (software adapters: 1)
    d2_y[(tok0 + t) * d2_p.y_stride + row] = d2_red_s[t * WG_SIZE] + d2_red_c[t * WG_SIZE];
  }
}
