// forward/rmsnorm.wgsl as the CPU reference rounds it (gemma, whose GeGLU rounds to f16):
// the sum of squares, mean + eps and 1/sqrt in double-f32 (forward/df.wgsl), then
// out = f32(x * scale) * w, x * scale rounded once as the CPU's f64 product.
// One workgroup per row; lanes' sums meet in a fixed tree (deterministic).

struct NormParams {
  rows: u32,
  d: u32,
  eps: f32,
  zero: u32,
}

override WG_SIZE: u32 = 64u;

@group(0) @binding(0) var<storage, read> nm_x: array<f32>;
@group(0) @binding(1) var<storage, read> nm_w: array<f32>;
@group(0) @binding(2) var<storage, read_write> nm_out: array<f32>;
@group(0) @binding(3) var<uniform> nm_p: NormParams;

var<workgroup> nm_red: array<vec2<f32>, WG_SIZE>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  fp_barrier = nm_p.zero;
  let row = wid.x + wid.y * 65535u;
  if (row >= nm_p.rows) {
    return; // uniform per workgroup: no barrier is skipped by part of it
  }
  let o = row * nm_p.d;
  var s = vec2<f32>(0.0, 0.0);
  for (var j = lid; j < nm_p.d; j = j + WG_SIZE) {
    s = df_add(s, df_two_prod(nm_x[o + j], nm_x[o + j]));
  }
  nm_red[lid] = s;
  for (var h = WG_SIZE / 2u; h > 0u; h = h >> 1u) {
    workgroupBarrier();
    if (lid < h) {
      nm_red[lid] = df_add(nm_red[lid], nm_red[lid + h]);
    }
  }
  workgroupBarrier();
  let mean = df_add(df_div(nm_red[0], vec2<f32>(f32(nm_p.d), 0.0)), vec2<f32>(nm_p.eps, 0.0));
  let scale = df_rsqrt(mean);
  for (var j = lid; j < nm_p.d; j = j + WG_SIZE) {
    nm_out[o + j] = df_round(df_mul_f(scale, nm_x[o + j])) * nm_w[j];
  }
}
