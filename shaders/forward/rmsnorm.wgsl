// RMSNorm of `rows` rows of d values (ggml_rms_norm then mul by the weight): one
// workgroup per row, sum of squares reduced by a fixed tree (deterministic), then
// out = (x * scale) * w. Rows of a head (qwen3/gemma3's q/k norms) are rows of head_dim.

struct NormParams {
  rows: u32,
  d: u32,
  eps: f32,
  _a: u32,
}

override WG_SIZE: u32 = 64u;

@group(0) @binding(0) var<storage, read> nm_x: array<f32>;
@group(0) @binding(1) var<storage, read> nm_w: array<f32>;
@group(0) @binding(2) var<storage, read_write> nm_out: array<f32>;
@group(0) @binding(3) var<uniform> nm_p: NormParams;

var<workgroup> nm_red: array<f32, WG_SIZE>;

@compute @workgroup_size(WG_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * 65535u;
  if (row >= nm_p.rows) {
    return; // uniform per workgroup: no barrier is skipped by part of it
  }
  let o = row * nm_p.d;
  var s = 0.0;
  for (var j = lid; j < nm_p.d; j = j + WG_SIZE) {
    s = s + nm_x[o + j] * nm_x[o + j];
  }
  nm_red[lid] = s;
  for (var h = WG_SIZE / 2u; h > 0u; h = h >> 1u) {
    workgroupBarrier();
    if (lid < h) {
      nm_red[lid] = nm_red[lid] + nm_red[lid + h];
    }
  }
  workgroupBarrier();
  let scale = 1.0 / sqrt(nm_red[0] / f32(nm_p.d) + nm_p.eps);
  for (var j = lid; j < nm_p.d; j = j + WG_SIZE) {
    nm_out[o + j] = (nm_x[o + j] * scale) * nm_w[j];
  }
}
