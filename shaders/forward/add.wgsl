// x[i] += y[i % period]: a residual add (period = count) or a bias over rows (period = its length).
// cap > 0: then x = cap * tanh(x / cap) instead (gemma2's final soft-capping, y unused).

struct AddParams {
  count: u32,
  period: u32,
  cap: f32,
  _a: u32,
}

override WG_SIZE: u32 = 64u;

@group(0) @binding(0) var<storage, read_write> ad_x: array<f32>;
@group(0) @binding(1) var<storage, read> ad_y: array<f32>;
@group(0) @binding(2) var<uniform> ad_p: AddParams;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * (65535u * WG_SIZE);
  if (i >= ad_p.count) {
    return;
  }
  if (ad_p.cap > 0.0) {
    ad_x[i] = tanh_acc(ad_x[i] * (1.0 / ad_p.cap)) * ad_p.cap;
  } else {
    ad_x[i] = ad_x[i] + ad_y[i % ad_p.period];
  }
}
