// RoPE of `heads` heads per row, n rows (row t at position start + t): NORM (adjacent
// pairs) or NEOX (halves). cos and sin come from the host's table (blocks.ts RopeTable:
// ggml's f32 angles, frequency factors and attn_factor already in), [t][pair][cos, sin],
// so the GPU's own cos/sin precision never enters. Dimensions past n_rot are copied.
// Reads src[t * src_stride + src_off + h * head_dim + j], writes
// dst[dst_off + t * dst_stride + h * head_dim + j]: k goes straight into the KV cache.

struct RopeParams {
  n: u32,
  heads: u32,
  head_dim: u32,
  pairs: u32,       // n_rot / 2
  neox: u32,
  src_stride: u32,
  src_off: u32,
  dst_stride: u32,
  dst_off: u32,
  table_off: u32,   // floats into the cos/sin buffer
  _a: u32,
  _b: u32,
}

override WG_SIZE: u32 = 64u;
// gemma: rotate in double-f32 (forward/df.wgsl composed before this file); else plain f32.
override ROPE_DF: bool = false;

@group(0) @binding(0) var<storage, read> rp_src: array<f32>;
@group(0) @binding(1) var<storage, read> rp_cs: array<f32>;
@group(0) @binding(2) var<storage, read_write> rp_dst: array<f32>;
@group(0) @binding(3) var<uniform> rp_p: RopeParams;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  fp_barrier = rp_p._a;
  let idx = gid.x + gid.y * (65535u * WG_SIZE);
  let hd = rp_p.head_dim;
  if (idx >= rp_p.n * rp_p.heads * hd) {
    return;
  }
  let j = idx % hd;
  let h = (idx / hd) % rp_p.heads;
  let t = idx / (hd * rp_p.heads);
  let so = t * rp_p.src_stride + rp_p.src_off + h * hd;
  let pairs = rp_p.pairs;
  let cs = rp_p.table_off + t * pairs * 2u;
  var v = rp_src[so + j];
  if (j < 2u * pairs) {
    var i0: u32;
    var i1: u32;
    var i: u32;
    if (rp_p.neox != 0u) {
      i = j % pairs;
      i0 = i;
      i1 = i + pairs;
    } else {
      i = j / 2u;
      i0 = 2u * i;
      i1 = i0 + 1u;
    }
    let c = rp_cs[cs + 2u * i];
    let s = rp_cs[cs + 2u * i + 1u];
    let x0 = rp_src[so + i0];
    let x1 = rp_src[so + i1];
    if (ROPE_DF) {
      // x0 c - x1 s (or x0 s + x1 c) from exact products, rounded once (the CPU's f64).
      v = df_round(select(df_add(df_two_prod(x0, s), df_two_prod(x1, c)), df_add(df_two_prod(x0, c), -df_two_prod(x1, s)), j == i0));
    } else {
      v = select(x0 * s + x1 * c, x0 * c - x1 * s, j == i0);
    }
  }
  rp_dst[rp_p.dst_off + t * rp_p.dst_stride + h * hd + j] = v;
}
